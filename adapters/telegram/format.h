#ifndef IMBRIDGE_ADAPTERS_TELEGRAM_FORMAT_H_
#define IMBRIDGE_ADAPTERS_TELEGRAM_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "imbridge/v1/events.pb.h"
#include "nlohmann/json.hpp"

// Conversion between the bridge's RichText (UTF-8 text, byte-offset spans)
// and Telegram's text with MessageEntity objects (offsets and lengths in
// UTF-16 code units), the sender-name prefix of mirrored messages, and the
// splitting of long texts into Telegram-sized parts.
//
// Every function is pure and thread-safe. Malformed input (entities out of
// range or splitting a surrogate pair, invalid UTF-8) never fails: ranges
// are clipped and snapped to character boundaries, bytes of invalid UTF-8
// count as one code unit each.

namespace imbridge::adapters::telegram {

// Telegram's limit for a message text, in UTF-16 code units.
inline constexpr size_t kMaxMessageLength = 4096;
// Telegram's limit for a media caption, in UTF-16 code units.
inline constexpr size_t kMaxCaptionLength = 1024;

// One MessageEntity, offsets in UTF-16 code units.
struct TelegramEntity {
  std::string type;  // "bold", "text_link", "pre", ...
  size_t offset = 0;
  size_t length = 0;
  std::string url;       // text_link
  std::string language;  // pre
  int64_t user_id = 0;   // text_mention
  std::string custom_emoji_id;

  bool operator==(const TelegramEntity& o) const {
    return type == o.type && offset == o.offset && length == o.length &&
           url == o.url && language == o.language && user_id == o.user_id;
  }
};

// A text as the Bot API sends and receives it.
struct TelegramText {
  std::string text;  // UTF-8.
  std::vector<TelegramEntity> entities;
};

// Number of UTF-16 code units of a UTF-8 string.
size_t Utf16Length(absl::string_view utf8);

// Parses a JSON array of MessageEntity; entries that are not objects or
// lack type/offset/length are skipped.
std::vector<TelegramEntity> EntitiesFromJson(const nlohmann::json& entities);
// The JSON array for sendMessage's `entities`.
nlohmann::json EntitiesToJson(const std::vector<TelegramEntity>& entities);

// Telegram text → RichText. Formatting entities become spans (bold, italic,
// underline, strikethrough, spoiler, code, pre, blockquote, text_link,
// url, email, mention as a t.me link, text_mention as MENTION); entities
// without a bridge meaning (hashtags, commands, custom emoji, ...) are
// dropped, their text kept. Spans are sorted by offset.
v1::RichText ToRichText(const TelegramText& text);

// RichText → Telegram text. Spans become entities; MENTION becomes a
// text_mention only when `mentions_are_telegram_users` (the event came from
// Telegram) and the user id is numeric, otherwise it stays plain text.
// Entities that would partially overlap an earlier one, or sit inside
// code/pre, are dropped, since Telegram refuses them.
TelegramText FromRichText(const v1::RichText& rich,
                          bool mentions_are_telegram_users);

// How the sender's name is put before a mirrored message.
enum class SenderStyle {
  kInline,   // "<b>Alice (slack)</b>: text"
  kOwnLine,  // "<b>Alice (slack)</b>\ntext"
};

// The prefix (name in bold plus separator) for `sender_name`; empty text
// when the name is empty. Names over 256 code units are shortened.
TelegramText SenderPrefix(absl::string_view sender_name, SenderStyle style);

// `prefix` followed by `body`, entities shifted.
TelegramText Concat(const TelegramText& prefix, const TelegramText& body);

// Splits `text` into parts of at most `limit` UTF-16 code units, preferring
// to cut after a line break, else after a space, else at a character
// boundary (never inside a surrogate pair, so with a `limit` of 1 a
// character outside the BMP is a part of 2 units); the break character
// itself is dropped. Entities are cut to each part and re-based. A text within
// the limit is one part (an empty text is one empty part). When `max_parts` is
// not zero and more parts would be needed, the last part is cut short and
// ends with "…".
std::vector<TelegramText> Split(const TelegramText& text, size_t limit,
                                size_t max_parts = 0);

// The parts of a mirrored message: `prefix` + each part of `body`, every
// part within `limit` (the prefix repeated in each part).
std::vector<TelegramText> RenderParts(const TelegramText& prefix,
                                      const TelegramText& body, size_t limit,
                                      size_t max_parts = 0);

// The first `limit` code units of `text` (with "…" when cut), entities
// clipped; for captions.
TelegramText Truncate(const TelegramText& text, size_t limit);

// "1.5 MB", "800 KB", "12 B": common/file_size.h's FileSizeText, the one
// size text of every notice.
std::string FormatSize(uint64_t bytes);

// An italic notice line, e.g. for files that could not be copied.
TelegramText ItalicNotice(absl::string_view text);

}  // namespace imbridge::adapters::telegram

#endif  // IMBRIDGE_ADAPTERS_TELEGRAM_FORMAT_H_
