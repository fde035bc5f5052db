// Fuzzes the Telegram inbound path: an Update (webhook body or one element
// of getUpdates' result) parsed as JSON and translated (TranslateUpdate),
// with text, captions and their UTF-16 entities, replies, topics, files and
// membership changes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "adapters/telegram/inbound.h"
#include "fuzz/fuzz_support.h"
#include "nlohmann/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace telegram = imbridge::adapters::telegram;
  nlohmann::json update = nlohmann::json::parse(data, data + size, nullptr,
                                                /*allow_exceptions=*/false);
  if (update.is_discarded()) return 0;
  telegram::InboundContext context;
  context.account = "tg";
  context.bot_id = 42;
  context.max_download_bytes = 1 << 20;
  context.original_chat_id = [](const std::string& id) {
    return id == "-100" ? std::string("-1") : id;
  };
  absl::StatusOr<telegram::InboundUpdate> translated =
      telegram::TranslateUpdate(update, context);
  if (!translated.ok()) return 0;
  for (const imbridge::v1::Event& event : translated->events) {
    if (event.has_posted()) {
      imbridge::fuzz::CheckSpansInRange(event.posted().text(),
                                        "TranslateUpdate");
    }
    if (event.has_edited()) {
      imbridge::fuzz::CheckSpansInRange(event.edited().text(),
                                        "TranslateUpdate");
    }
  }
  for (const telegram::FileToFetch& file : translated->files) {
    imbridge::fuzz::Check(
        !translated->events.empty() && file.attachment_index >= 0 &&
            file.attachment_index <
                translated->events[0].posted().attachments_size(),
        "a file to fetch names an attachment of the first event");
  }
  return 0;
}
