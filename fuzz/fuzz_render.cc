// Fuzzes every renderer of the bridge's RichText with random rich text
// (fuzz/fuzz_support.h's ConsumeRichText: markup characters of every format,
// multi-byte and astral characters, invalid UTF-8 unless `valid`, spans of
// any kind with offsets in and out of range): Slack mrkdwn, Markdown,
// BB-code (with Bitrix24's splitting), Telegram entities (with splitting)
// and the webhook adapter's outgoing JSON body.
//
// Round trips checked, where the formats promise them for a text without
// spans in valid UTF-8 (a span's markup may add characters: quote prefixes,
// code fences):
//   mrkdwn:   MrkdwnToRichText(RichTextToMrkdwn(x), styles=false).text == x
//             (Slack has no escape for * _ ~ `, so only the escapes and
//             entities round-trip; UnescapeMrkdwn(EscapeMrkdwn(s)) == s
//             for any s)
//   Telegram: FromRichText(x).text == x, spans or not (entities are
//             separate from the text)
// and for every renderer: the output of valid input is valid UTF-8.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "adapters/bitrix24/format.h"
#include "adapters/common/markup/markdown.h"
#include "adapters/common/markup/slack_mrkdwn.h"
#include "adapters/telegram/format.h"
#include "adapters/webhook/outbound.h"
#include "common/utf8.h"
#include "fuzz/fuzz_support.h"
#include "imbridge/v1/router.pb.h"

namespace markup = imbridge::adapters::markup;
namespace bitrix24 = imbridge::adapters::bitrix24;
namespace telegram = imbridge::adapters::telegram;
using imbridge::IsValidUtf8;
using imbridge::fuzz::Check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider provider(data, size);
  bool valid = provider.ConsumeBool();
  const bool native = provider.ConsumeBool();
  const size_t limit = provider.ConsumeIntegralInRange<size_t>(1, 300);
  imbridge::v1::RichText rich =
      imbridge::fuzz::ConsumeRichText(provider, valid);
  const bool plain = rich.spans_size() == 0;
  valid = valid || IsValidUtf8(rich.text());

  // Slack mrkdwn.
  std::string mrkdwn = markup::RichTextToMrkdwn(rich, {native});
  Check(!valid || IsValidUtf8(mrkdwn), "RichTextToMrkdwn: invalid UTF-8");
  Check(
      markup::UnescapeMrkdwn(markup::EscapeMrkdwn(rich.text())) == rich.text(),
      "UnescapeMrkdwn(EscapeMrkdwn(s)) == s");
  if (valid && plain) {
    Check(markup::MrkdwnToRichText(mrkdwn, nullptr, /*styles=*/false).text() ==
              rich.text(),
          "mrkdwn round trip of a plain text");
  }

  // Markdown (TeamSpirit, outgoing webhooks).
  std::string markdown = markup::RichTextToMarkdown(rich, {native});
  Check(!valid || IsValidUtf8(markdown), "RichTextToMarkdown: invalid UTF-8");
  imbridge::fuzz::CheckSpansInRange(markup::MarkdownToRichText(markdown),
                                    "MarkdownToRichText(rendered)");

  // BB-code (Bitrix24).
  std::string bbcode = bitrix24::RichTextToBbCode(rich, {native});
  Check(!valid || IsValidUtf8(bbcode), "RichTextToBbCode: invalid UTF-8");
  imbridge::fuzz::CheckSpansInRange(bitrix24::BbCodeToRichText(bbcode),
                                    "BbCodeToRichText(rendered)");
  for (const imbridge::v1::RichText& part :
       bitrix24::SplitRichText(rich, limit)) {
    Check(bitrix24::CharCount(part.text()) <= limit,
          "SplitRichText: part over the limit");
    imbridge::fuzz::CheckSpansInRange(part, "SplitRichText");
  }
  (void)bitrix24::RenderMessages(bitrix24::SenderPrefix("Ann"), rich, {native},
                                 200 + limit);

  // Telegram.
  telegram::TelegramText tg = telegram::FromRichText(rich, native);
  Check(tg.text == rich.text(), "FromRichText keeps the text");
  const size_t units = telegram::Utf16Length(tg.text);
  for (const telegram::TelegramEntity& e : tg.entities) {
    Check(e.offset <= units && e.length <= units - e.offset,
          "FromRichText: entity outside the text");
  }
  // A surrogate pair is never split: a limit of 1 lets it through whole.
  for (const telegram::TelegramText& part : telegram::Split(tg, limit, 3)) {
    Check(telegram::Utf16Length(part.text) <= std::max<size_t>(limit, 2),
          "telegram::Split: part over the limit");
  }

  // The webhook adapter's outgoing body (the router passes only valid UTF-8).
  if (valid) {
    imbridge::v1::Delivery delivery;
    delivery.set_id(1);
    delivery.set_sender_name("Ann");
    delivery.mutable_event()->set_key("k");
    *delivery.mutable_event()->mutable_posted()->mutable_text() = rich;
    std::string body = imbridge::adapters::webhook::OutgoingBody(delivery, "w");
    Check(IsValidUtf8(body), "OutgoingBody: invalid UTF-8");
  }
  return 0;
}
