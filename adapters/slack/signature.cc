#include "adapters/slack/signature.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace imbridge::adapters::slack {
namespace {

std::string SignedText(absl::string_view timestamp, absl::string_view body) {
  return absl::StrCat("v0:", timestamp, ":", body);
}

constexpr TimestampedSignatureScheme kScheme = {
    "X-Slack-Request-Timestamp", "X-Slack-Signature", "v0=", SignedText};

}  // namespace

absl::Status VerifySlackSignature(absl::string_view signing_secret,
                                  absl::string_view timestamp_header,
                                  absl::string_view signature_header,
                                  absl::string_view raw_body, absl::Time now,
                                  absl::Duration window) {
  return VerifyTimestampedSignature(kScheme, signing_secret, timestamp_header,
                                    signature_header, raw_body, now, window);
}

}  // namespace imbridge::adapters::slack
