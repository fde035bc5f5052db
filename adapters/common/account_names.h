#ifndef IMBRIDGE_ADAPTERS_COMMON_ACCOUNT_NAMES_H_
#define IMBRIDGE_ADAPTERS_COMMON_ACCOUNT_NAMES_H_

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

// Config checks that adapters with several accounts share. Pure functions;
// thread-compatible.

namespace imbridge::adapters {

// OK when `name` is 1-64 characters of a-z, 0-9, _ and - and not in *seen
// (it is then added); else the ConfigError for `field` ("accounts[1].name")
// of `source`: "required: 1-64 characters of a-z, 0-9, _ and -" or
// "'x' is used twice".
absl::Status CheckAccountName(absl::string_view source, absl::string_view field,
                              absl::string_view name,
                              absl::flat_hash_set<std::string>* seen);

// OK when `path`, the route of one account's webhook, starts with "/" and
// is not in *seen (it is then added); else the ConfigError for `field`
// ("accounts[1].webhook_path") of `source`: "must start with /" or "used by
// two accounts".
absl::Status CheckWebhookPath(absl::string_view source, absl::string_view field,
                              absl::string_view path,
                              absl::flat_hash_set<std::string>* seen);

// Whether `url` starts with https:// or http://.
bool IsHttpUrl(absl::string_view url);

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_ACCOUNT_NAMES_H_
