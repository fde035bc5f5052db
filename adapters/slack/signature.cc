#include "adapters/slack/signature.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace imbridge::adapters::slack {
namespace {

std::string SignedText(absl::string_view timestamp, absl::string_view body) {
  return absl::StrCat("v0:", timestamp, ":", body);
}

}  // namespace

constexpr TimestampedSignatureScheme kSlackSignature = {
    "X-Slack-Request-Timestamp", "X-Slack-Signature", "v0=", SignedText};

}  // namespace imbridge::adapters::slack
