#include "adapters/teamspirit/signature.h"

#include "absl/strings/str_cat.h"

namespace imbridge::adapters::teamspirit {
namespace {

std::string SignedText(absl::string_view timestamp, absl::string_view body) {
  return absl::StrCat(timestamp, ".", body);
}

constexpr TimestampedSignatureScheme kScheme = {
    "X-TeamSpirit-Timestamp", "X-TeamSpirit-Signature", "v1=", SignedText};

}  // namespace

absl::Status VerifyTeamSpiritSignature(absl::string_view secret,
                                       absl::string_view timestamp_header,
                                       absl::string_view signature_header,
                                       absl::string_view raw_body,
                                       absl::Time now, absl::Duration window) {
  return VerifyTimestampedSignature(kScheme, secret, timestamp_header,
                                    signature_header, raw_body, now, window);
}

absl::StatusOr<std::string> SignTeamSpirit(absl::string_view secret,
                                           int64_t timestamp,
                                           absl::string_view body) {
  return SignTimestamped(kScheme, secret, timestamp, body);
}

}  // namespace imbridge::adapters::teamspirit
