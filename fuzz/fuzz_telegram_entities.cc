// Fuzzes Telegram's text with MessageEntity offsets in UTF-16 code units:
// a JSON object {"text": ..., "entities": [...]} as a message carries them
// is read (EntitiesFromJson) and converted to RichText (ToRichText); the
// result is converted back (FromRichText), split (Split, RenderParts) and
// truncated (Truncate).
//
// Properties checked: spans lie in the text; FromRichText keeps the text;
// every entity it, Split and Truncate produce lies inside its part's
// UTF-16 length; every part of Split is within the limit.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "adapters/telegram/format.h"
#include "fuzz/fuzz_support.h"
#include "nlohmann/json.hpp"

namespace telegram = imbridge::adapters::telegram;

namespace {

void CheckEntities(const telegram::TelegramText& text, const char* what) {
  const size_t length = telegram::Utf16Length(text.text);
  for (const telegram::TelegramEntity& e : text.entities) {
    imbridge::fuzz::Check(e.offset <= length && e.length <= length - e.offset,
                          what);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json message = nlohmann::json::parse(data, data + size, nullptr,
                                                 /*allow_exceptions=*/false);
  if (!message.is_object()) return 0;
  telegram::TelegramText text;
  auto t = message.find("text");
  if (t != message.end() && t->is_string()) text.text = t->get<std::string>();
  auto e = message.find("entities");
  if (e != message.end()) text.entities = telegram::EntitiesFromJson(*e);

  imbridge::v1::RichText rich = telegram::ToRichText(text);
  imbridge::fuzz::CheckSpansInRange(rich, "telegram::ToRichText");
  imbridge::fuzz::Check(rich.text() == text.text, "ToRichText keeps the text");
  for (bool native : {true, false}) {
    telegram::TelegramText back = telegram::FromRichText(rich, native);
    imbridge::fuzz::Check(back.text == text.text,
                          "FromRichText keeps the text");
    CheckEntities(back, "FromRichText: entity outside the text");
    (void)telegram::EntitiesToJson(back.entities).dump();
  }
  // Small limits (1..256 code units) split most often.
  const size_t limit = 1 + (size * 131 + data[0]) % 256;
  std::vector<telegram::TelegramText> parts =
      telegram::Split(text, limit, limit % 4);
  imbridge::fuzz::Check(!parts.empty(), "Split returns at least one part");
  for (const telegram::TelegramText& part : parts) {
    imbridge::fuzz::Check(telegram::Utf16Length(part.text) <= limit,
                          "Split: part over the limit");
    CheckEntities(part, "Split: entity outside its part");
  }
  telegram::TelegramText prefix =
      telegram::SenderPrefix("Ann 😀 (slack)", telegram::SenderStyle::kInline);
  for (const telegram::TelegramText& part :
       telegram::RenderParts(prefix, text, limit + 300)) {
    CheckEntities(part, "RenderParts: entity outside its part");
  }
  telegram::TelegramText cut = telegram::Truncate(text, limit);
  CheckEntities(cut, "Truncate: entity outside the text");
  return 0;
}
