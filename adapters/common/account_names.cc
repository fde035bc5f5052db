#include "adapters/common/account_names.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/config_loader.h"

namespace imbridge::adapters {

absl::Status CheckAccountName(absl::string_view source, absl::string_view field,
                              absl::string_view name,
                              absl::flat_hash_set<std::string>* seen) {
  bool valid = !name.empty() && name.size() <= 64 &&
               std::all_of(name.begin(), name.end(), [](char c) {
                 return absl::ascii_islower(c) || absl::ascii_isdigit(c) ||
                        c == '_' || c == '-';
               });
  if (!valid) {
    return ConfigError(source, field,
                       "required: 1-64 characters of a-z, 0-9, _ and -");
  }
  if (!seen->insert(std::string(name)).second) {
    return ConfigError(source, field,
                       absl::StrCat("'", name, "' is used twice"));
  }
  return absl::OkStatus();
}

absl::Status CheckWebhookPath(absl::string_view source, absl::string_view field,
                              absl::string_view path,
                              absl::flat_hash_set<std::string>* seen) {
  if (!absl::StartsWith(path, "/")) {
    return ConfigError(source, field, "must start with /");
  }
  if (!seen->insert(std::string(path)).second) {
    return ConfigError(source, field, "used by two accounts");
  }
  return absl::OkStatus();
}

bool IsHttpUrl(absl::string_view url) {
  return absl::StartsWith(url, "https://") || absl::StartsWith(url, "http://");
}

}  // namespace imbridge::adapters
