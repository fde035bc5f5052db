// Fuzzes the Chatlio adapter's inbound path: a webhook body parsed
// (ParseChatlioWebhook) as it arrives at the URL of each webhook type or of
// none, then turned into the notice or transcript event the adapter sends
// to the router (WebhookEvent: NoticeText, TranscriptText, the event key,
// the transcript's file name). The first byte picks the type the URL names
// and whether a workspace URL is configured; the rest is the body.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/chatlio/format.h"
#include "adapters/chatlio/payload.h"
#include "common/utf8.h"
#include "fuzz/fuzz_support.h"
#include "nlohmann/json.hpp"

namespace {

namespace chatlio = imbridge::adapters::chatlio;
using imbridge::fuzz::Check;

constexpr chatlio::WebhookKind kNamed[] = {
    chatlio::WebhookKind::kUnknown,
    chatlio::WebhookKind::kNewConversation,
    chatlio::WebhookKind::kOfflineMessage,
    chatlio::WebhookKind::kFeedback,
    chatlio::WebhookKind::kNotAnswered,
    chatlio::WebhookKind::kTranscript};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const chatlio::WebhookKind named = kNamed[data[0] % 6];
  const absl::string_view workspace_url =
      (data[0] / 6) % 2 == 0 ? "" : "https://acme.slack.com";
  absl::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  chatlio::ChatlioWebhook webhook;
  std::string error;
  chatlio::ParseOutcome outcome =
      chatlio::ParseChatlioWebhook(body, named, &webhook, &error);
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  Check((outcome == chatlio::ParseOutcome::kMalformed) ==
            (j.is_discarded() || !j.is_object()),
        "kMalformed exactly for a body that is not a JSON object");
  if (outcome != chatlio::ParseOutcome::kParsed) {
    Check(!error.empty(), "a refused body has a reason");
    return 0;
  }
  Check(webhook.kind != chatlio::WebhookKind::kUnknown,
        "a parsed webhook has a kind");
  Check(named == chatlio::WebhookKind::kUnknown || webhook.kind == named,
        "the kind is the one the URL names");
  Check(chatlio::WebhookKindFromName(chatlio::WebhookKindName(webhook.kind)) ==
            webhook.kind,
        "the kind's name names it");
  Check(!chatlio::VisitorDisplayName(webhook).empty(),
        "the visitor has a name for people");
  Check(chatlio::SlackChannelUrl(workspace_url, webhook.channel_id).empty() ==
            webhook.channel_id.empty(),
        "a channel link exactly when there is a channel id");

  const std::string file_name = chatlio::TranscriptFileName(webhook);
  Check(absl::StartsWith(file_name, "chatlio-transcript-") &&
            absl::EndsWith(file_name, ".html"),
        "the transcript's file name has its prefix and suffix");
  for (char c : file_name) {
    Check((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-',
          "the transcript's file name is [A-Za-z0-9._-]");
  }
  const std::string key = chatlio::WebhookEventKey("site", webhook);
  Check(absl::StartsWith(key, "chatlio:site:"), "the key names the account");

  imbridge::v1::Event event =
      chatlio::WebhookEvent("site", webhook, workspace_url, absl::Now());
  Check(event.key() == key, "the event carries the key");
  Check(event.has_posted(), "a webhook is a posted message");
  imbridge::fuzz::CheckSpansInRange(event.posted().text(), "WebhookEvent");
  Check(!event.posted().text().text().empty(), "a notice has a text");
  Check(imbridge::FindInvalidUtf8Field(event).empty(),
        "every field of the event is UTF-8");
  Check(event.posted().attachments_size() ==
            (webhook.kind == chatlio::WebhookKind::kTranscript &&
                     !webhook.html_body.empty()
                 ? 1
                 : 0),
        "one attachment exactly for a transcript with an htmlBody");
  if (webhook.kind == chatlio::WebhookKind::kTranscript) {
    imbridge::fuzz::CheckSpansInRange(
        chatlio::TranscriptText(webhook, workspace_url), "TranscriptText");
  } else {
    imbridge::fuzz::CheckSpansInRange(
        chatlio::NoticeText(webhook, workspace_url), "NoticeText");
  }
  return 0;
}
