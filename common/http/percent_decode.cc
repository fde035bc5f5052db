#include "common/http/percent_decode.h"

#include "absl/strings/ascii.h"

namespace imbridge {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  return absl::ascii_tolower(c) - 'a' + 10;
}

}  // namespace

std::string PercentDecode(absl::string_view text, bool form) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+' && form) {
      out += ' ';
    } else if (c == '%' && i + 2 < text.size() &&
               absl::ascii_isxdigit(text[i + 1]) &&
               absl::ascii_isxdigit(text[i + 2])) {
      out +=
          static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace imbridge
