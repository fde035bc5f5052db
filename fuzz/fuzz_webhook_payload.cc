// Fuzzes the body of the webhook adapter's incoming webhooks
// (ParseIncomingPayload): a Slack-compatible JSON object, or a form whose
// `payload` field holds it, with mrkdwn text and legacy attachments. The
// first byte picks the Content-Type; the rest is the body.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/webhook/inbound.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace webhook = imbridge::adapters::webhook;
  if (size == 0) return 0;
  static const char* const kContentTypes[] = {
      "application/json", "application/x-www-form-urlencoded",
      "application/json; charset=utf-8", "text/plain", ""};
  const char* content_type =
      kContentTypes[data[0] % (sizeof(kContentTypes) / sizeof(char*))];
  absl::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  webhook::IncomingMessage message;
  webhook::PayloadError error;
  if (!webhook::ParseIncomingPayload(content_type, body, &message, &error)) {
    imbridge::fuzz::Check(!error.reason.empty(), "a refusal has a reason");
    return 0;
  }
  imbridge::fuzz::CheckSpansInRange(message.text, "ParseIncomingPayload");
  imbridge::v1::Event event = webhook::IncomingEvent(
      "acme", "wh1", "u1", message, absl::FromUnixSeconds(1700000000));
  imbridge::fuzz::Check(event.has_posted(), "IncomingEvent posts");
  return 0;
}
