#ifndef IMBRIDGE_ADAPTERS_BITRIX24_PHP_FORM_H_
#define IMBRIDGE_ADAPTERS_BITRIX24_PHP_FORM_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::bitrix24 {

// Parses an application/x-www-form-urlencoded body with PHP-style nested
// keys, as Bitrix24 posts its events (platforms.md 3.3):
//   event=ONIMBOTV2MESSAGEADD&data[message][id]=5&data[message][params][files][0][id]=7
// becomes {"event":"...","data":{"message":{"id":"5","params":{"files":
// [{"id":"7"}]}}}}. Every scalar is a string (as Bitrix24 sends them);
// "key[]" appends; an object whose keys are exactly 0..n-1 becomes an
// array (the form itself is always an object). A later value for the same key
// replaces an earlier one. kInvalidArgument for a key with an unbalanced
// bracket, a bad %-escape, or a key used both as a value and as a container.
// Pure, thread-safe.
absl::StatusOr<nlohmann::json> ParsePhpForm(absl::string_view body);

}  // namespace imbridge::adapters::bitrix24

#endif  // IMBRIDGE_ADAPTERS_BITRIX24_PHP_FORM_H_
