#include "adapters/common/presence_names.h"

namespace imbridge::adapters {

absl::string_view PresenceName(v1::Presence presence) {
  switch (presence) {
    case v1::ONLINE:
      return "online";
    case v1::AWAY:
      return "away";
    case v1::DND:
      return "dnd";
    case v1::OFFLINE:
      return "offline";
    default:
      return "";
  }
}

v1::Presence PresenceFromName(absl::string_view name) {
  for (v1::Presence p : {v1::ONLINE, v1::AWAY, v1::DND, v1::OFFLINE}) {
    if (name == PresenceName(p)) return p;
  }
  return v1::PRESENCE_UNSPECIFIED;
}

}  // namespace imbridge::adapters
