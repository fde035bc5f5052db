#ifndef IMBRIDGE_COMMON_HTTP_PHP_FORM_H_
#define IMBRIDGE_COMMON_HTTP_PHP_FORM_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace imbridge {

// PHP-style nested form keys ("data[message][id]=5"), as Bitrix24 posts its
// events and takes the commands of its `batch` method. Used by the Bitrix24
// adapter and the emulated Bitrix24.

// Parses an application/x-www-form-urlencoded body with PHP-style nested
// keys, as Bitrix24 posts its events (platforms.md 3.3):
//   event=ONIMBOTV2MESSAGEADD&data[message][id]=5&data[message][params][files][0][id]=7
// becomes {"event":"...","data":{"message":{"id":"5","params":{"files":
// [{"id":"7"}]}}}}. Every scalar is a string (as Bitrix24 sends them);
// "key[]" appends; an object whose keys are exactly 0..n-1 becomes an
// array (the form itself is always an object). A later value for the same
// key replaces an earlier one.
// kInvalidArgument for a key with an unbalanced bracket, a bad %-escape,
// or a key used both as a value and as a container. Pure, thread-safe.
absl::StatusOr<nlohmann::json> ParsePhpForm(absl::string_view body);

// The reverse, as PHP's http_build_query writes it: a JSON object's members
// as "key=value" pairs joined by "&", nested objects and arrays as
// "key[member]" / "key[0]", keys and values percent-encoded (RFC 3986
// unreserved characters kept; brackets encoded too). Strings go as they
// are, numbers in JSON form, true as "1" and false as "0"; null members and
// empty containers are left out (PHP does the same). ParsePhpForm of the
// result gives back the object with every scalar a string. Pure.
std::string EncodePhpForm(const nlohmann::json& object);

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_HTTP_PHP_FORM_H_
