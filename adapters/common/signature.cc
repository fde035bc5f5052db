#include "adapters/common/signature.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/http/hmac.h"

namespace imbridge::adapters {
namespace {

// Parses a unix-seconds timestamp header: 1 to 12 ASCII digits, nothing else.
absl::StatusOr<int64_t> ParseTimestamp(absl::string_view header,
                                       absl::string_view header_name) {
  if (header.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("missing ", header_name, " header"));
  }
  if (header.size() > 12) {
    return absl::UnauthenticatedError(
        absl::StrCat("malformed ", header_name, " header"));
  }
  for (char c : header) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return absl::UnauthenticatedError(
          absl::StrCat("malformed ", header_name, " header"));
    }
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(header, &value)) {
    return absl::UnauthenticatedError(
        absl::StrCat("malformed ", header_name, " header"));
  }
  return value;
}

}  // namespace

std::string TimestampDotBody(absl::string_view timestamp,
                             absl::string_view body) {
  return absl::StrCat(timestamp, ".", body);
}

absl::Status VerifyTimestampedSignature(
    const TimestampedSignatureScheme& scheme, absl::string_view secret,
    absl::string_view timestamp_header, absl::string_view signature_header,
    absl::string_view raw_body, absl::Time now, absl::Duration window) {
  if (absl::Status s = CheckSigningSecret(secret); !s.ok()) return s;
  if (signature_header.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("missing ", scheme.signature_header, " header"));
  }
  absl::StatusOr<int64_t> ts =
      ParseTimestamp(timestamp_header, scheme.timestamp_header);
  if (!ts.ok()) return ts.status();
  absl::Duration skew = absl::AbsDuration(now - absl::FromUnixSeconds(*ts));
  if (skew > window) {
    return absl::UnauthenticatedError(absl::StrCat(
        scheme.timestamp_header, " is outside the allowed window of ",
        absl::FormatDuration(window), " (skew ", absl::FormatDuration(skew),
        ")"));
  }
  std::string expected = absl::StrCat(
      scheme.prefix,
      HmacSha256Hex(secret, scheme.signed_text(timestamp_header, raw_body)));
  if (!ConstantTimeEquals(expected, signature_header)) {
    return absl::UnauthenticatedError(
        absl::StrCat(scheme.signature_header, " does not match"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SignTimestamped(
    const TimestampedSignatureScheme& scheme, absl::string_view secret,
    int64_t timestamp, absl::string_view body) {
  if (absl::Status s = CheckSigningSecret(secret); !s.ok()) return s;
  return absl::StrCat(
      scheme.prefix,
      HmacSha256Hex(secret, scheme.signed_text(absl::StrCat(timestamp), body)));
}

}  // namespace imbridge::adapters
