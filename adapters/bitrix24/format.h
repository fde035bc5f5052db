#ifndef IMBRIDGE_ADAPTERS_BITRIX24_FORMAT_H_
#define IMBRIDGE_ADAPTERS_BITRIX24_FORMAT_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "imbridge/v1/events.pb.h"

// Conversion between Bitrix24's BB-code (platforms.md 3.8) and the bridge's
// RichText, and the splitting of long texts into Bitrix24-sized messages.
//
// Every function is pure and thread-safe and accepts any input (unbalanced
// or unknown tags, spans out of range, invalid UTF-8) without failing.
//
// Bitrix24 documents no escape for a literal "[". A literal that would read
// as a tag ("[b]", "[/url]", "[USER=1]") or a literal ">>" at a line start
// is written with a ZERO WIDTH SPACE (U+200B) after its first character, so
// that Bitrix24 shows it as text; BbCodeToRichText removes that character
// again, so a bridged text reads back unchanged.

namespace imbridge::adapters::bitrix24 {

// Bitrix24's limit for a message text, in characters (code points).
inline constexpr size_t kMaxMessageChars = 20000;

// Parses BB-code as Bitrix24 delivers it in message text:
//   [b] [i] [u] [s]                 BOLD, ITALIC, UNDERLINE, STRIKE (nested
//                                   tags become nested spans)
//   [url]x[/url], [url=x]label[/url] LINK
//   [code]...[/code]                PRE when it holds a line break, else
//                                   CODE; tags inside are literal text
//   [quote]...[/quote], ">>" lines  QUOTE
//   [USER=27]Name[/USER]            "@Name", MENTION with user_id "27"
//   [CHAT=12]Title[/CHAT]           "#Title", CHANNEL_MENTION
//   [br]                            a line break
//   [img]url[/img]                  the url as a LINK
// Tag names are case-insensitive. A tag without its closing tag, an unknown
// tag, and a stray closing tag stay literal text.
v1::RichText BbCodeToRichText(absl::string_view bbcode);

// How RichTextToBbCode renders mentions.
struct BbCodeOptions {
  // True when the MENTION spans' user ids are Bitrix24 user ids of the same
  // portal (the event came from this portal): they are written as
  // [USER=id]Name[/USER]. Otherwise a mention is its plain text.
  bool native_mentions = false;
};

// Renders RichText as BB-code for imbot.v2.Chat.Message.send/update. Spans
// that overlap without nesting are closed and reopened so that the tags
// nest; QUOTE becomes ">>" line prefixes; CODE and PRE become [code];
// SPOILER has no BB-code and is plain text. Literal brackets are protected
// (see above).
std::string RichTextToBbCode(const v1::RichText& text,
                             const BbCodeOptions& options = {});

// Number of characters (code points) of UTF-8 `text`; every byte of an
// invalid sequence counts as one.
size_t CharCount(absl::string_view text);

// Splits `text` into parts of at most `max_chars` characters of plain text,
// preferring to cut after a line break, else after a space, else at any
// character boundary (never inside a UTF-8 character); the break character
// itself is dropped. Spans are clipped to each part and re-based. A text
// within the limit is one part (an empty text is one empty part).
std::vector<v1::RichText> SplitRichText(const v1::RichText& text,
                                        size_t max_chars);

// The BB-code messages for a mirrored message: `prefix` (the sender's name,
// already BB-code; may be empty) followed by each part of `body`, every
// message within `max_chars` characters including its tags and the prefix.
std::vector<std::string> RenderMessages(absl::string_view prefix,
                                        const v1::RichText& body,
                                        const BbCodeOptions& options,
                                        size_t max_chars = kMaxMessageChars);

// The sender-name prefix "[b]Name[/b]: " (the name protected like text);
// empty when the name is empty.
std::string SenderPrefix(absl::string_view sender_name);

}  // namespace imbridge::adapters::bitrix24

#endif  // IMBRIDGE_ADAPTERS_BITRIX24_FORMAT_H_
