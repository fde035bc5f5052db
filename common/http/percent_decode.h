#ifndef IMBRIDGE_COMMON_HTTP_PERCENT_DECODE_H_
#define IMBRIDGE_COMMON_HTTP_PERCENT_DECODE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace imbridge {

// Decodes the %XX escapes of a URL path segment or query component, and '+'
// as a space when `form` (application/x-www-form-urlencoded). Malformed
// escapes ("%2", "%zz") are kept as they are: callers that must refuse them
// check the input themselves. Used by the adapters' webhook parsers and by
// the emulated messengers.
std::string PercentDecode(absl::string_view text, bool form);

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_HTTP_PERCENT_DECODE_H_
