// Fuzzes TeamSpirit's outgoing-webhook inbound path: the body parsed
// (ParseWebhookEvent) and translated into a bridge event
// (TranslateWebhookEvent), Markdown text included, as the receiver does for
// a request whose signature checked out.
#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/teamspirit/inbound.h"
#include "adapters/teamspirit/teamspirit_api.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace teamspirit = imbridge::adapters::teamspirit;
  absl::StatusOr<teamspirit::TsWebhookEvent> event =
      teamspirit::ParseWebhookEvent(
          absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!event.ok()) return 0;
  teamspirit::InboundContext context;
  context.account = "ts";
  context.bot_user_id = "bot1";
  context.external_user_prefix = "imb-";
  teamspirit::InboundTranslation t =
      teamspirit::TranslateWebhookEvent(*event, context);
  if (!t.event.has_value()) return 0;
  if (t.event->has_posted()) {
    imbridge::fuzz::CheckSpansInRange(t.event->posted().text(),
                                      "TranslateWebhookEvent");
    imbridge::fuzz::Check(
        t.files.size() ==
            static_cast<size_t>(t.event->posted().attachments_size()),
        "one TeamSpirit file per attachment");
  }
  if (t.event->has_edited()) {
    imbridge::fuzz::CheckSpansInRange(t.event->edited().text(),
                                      "TranslateWebhookEvent");
  }
  return 0;
}
