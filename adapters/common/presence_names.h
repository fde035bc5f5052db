#ifndef IMBRIDGE_ADAPTERS_COMMON_PRESENCE_NAMES_H_
#define IMBRIDGE_ADAPTERS_COMMON_PRESENCE_NAMES_H_

#include "absl/strings/string_view.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge::adapters {

// The lower-case names of the bridge's presence states, as TeamSpirit's API
// and the webhook adapter's JSON spell them: "online", "away", "dnd",
// "offline". Pure functions; thread-safe.

// The name of `presence`; empty for PRESENCE_UNSPECIFIED or an unknown value.
absl::string_view PresenceName(v1::Presence presence);

// The presence named `name` (exactly as PresenceName spells it);
// PRESENCE_UNSPECIFIED for any other string.
v1::Presence PresenceFromName(absl::string_view name);

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_PRESENCE_NAMES_H_
