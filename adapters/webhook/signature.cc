#include "adapters/webhook/signature.h"

#include "absl/strings/str_cat.h"
#include "adapters/common/signature.h"

namespace imbridge::adapters::webhook {
namespace {

std::string SignedText(absl::string_view timestamp, absl::string_view body) {
  return absl::StrCat(timestamp, ".", body);
}

constexpr TimestampedSignatureScheme kScheme = {
    "X-Imbridge-Timestamp", "X-Imbridge-Signature", "v1=", SignedText};

}  // namespace

absl::StatusOr<std::string> SignOutgoingWebhook(absl::string_view secret,
                                                int64_t timestamp,
                                                absl::string_view body) {
  return SignTimestamped(kScheme, secret, timestamp, body);
}

}  // namespace imbridge::adapters::webhook
