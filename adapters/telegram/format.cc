#include "adapters/telegram/format.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/file_size.h"

namespace imbridge::adapters::telegram {
namespace {

constexpr char kEllipsis[] = "\xE2\x80\xA6";  // "…", one UTF-16 unit.
constexpr size_t kMaxSenderName = 256;

// The start of each character of a UTF-8 string (plus one entry for the
// end), in bytes and in UTF-16 code units.
struct Boundary {
  size_t byte;
  size_t u16;
};

// Length in bytes of the well-formed UTF-8 sequence at s[i], and whether
// the character lies outside the BMP (two UTF-16 units). An invalid byte
// counts as a one-byte, one-unit character.
size_t CharAt(absl::string_view s, size_t i, bool* astral) {
  *astral = false;
  const auto b = static_cast<unsigned char>(s[i]);
  size_t n = 1;
  if (b >= 0xF0 && b <= 0xF4) {
    n = 4;
  } else if (b >= 0xE0) {
    n = (b <= 0xEF) ? 3 : 1;
  } else if (b >= 0xC2) {
    n = 2;
  }
  if (i + n > s.size()) return 1;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 1;
  }
  *astral = (n == 4);
  return n;
}

std::vector<Boundary> Index(absl::string_view s) {
  std::vector<Boundary> out;
  out.reserve(s.size() + 1);
  size_t u16 = 0;
  for (size_t i = 0; i < s.size();) {
    out.push_back({i, u16});
    bool astral = false;
    size_t n = CharAt(s, i, &astral);
    i += n;
    u16 += astral ? 2 : 1;
  }
  out.push_back({s.size(), u16});
  return out;
}

// Index of the last boundary with u16 <= `u16` (a position inside a
// surrogate pair snaps back to the character's start).
size_t FloorByU16(const std::vector<Boundary>& idx, size_t u16) {
  auto it =
      std::upper_bound(idx.begin(), idx.end(), u16,
                       [](size_t v, const Boundary& b) { return v < b.u16; });
  return it == idx.begin() ? 0 : static_cast<size_t>(it - idx.begin()) - 1;
}

// Index of the first boundary with u16 >= `u16`.
size_t CeilByU16(const std::vector<Boundary>& idx, size_t u16) {
  auto it =
      std::lower_bound(idx.begin(), idx.end(), u16,
                       [](const Boundary& b, size_t v) { return b.u16 < v; });
  return it == idx.end() ? idx.size() - 1
                         : static_cast<size_t>(it - idx.begin());
}

size_t FloorByByte(const std::vector<Boundary>& idx, size_t byte) {
  auto it =
      std::upper_bound(idx.begin(), idx.end(), byte,
                       [](size_t v, const Boundary& b) { return v < b.byte; });
  return it == idx.begin() ? 0 : static_cast<size_t>(it - idx.begin()) - 1;
}

size_t CeilByByte(const std::vector<Boundary>& idx, size_t byte) {
  auto it =
      std::lower_bound(idx.begin(), idx.end(), byte,
                       [](const Boundary& b, size_t v) { return b.byte < v; });
  return it == idx.end() ? idx.size() - 1
                         : static_cast<size_t>(it - idx.begin());
}

// The part of `text` between the UTF-16 positions [from, to) (both on
// character boundaries), entities clipped and re-based.
TelegramText Slice(const TelegramText& text, const std::vector<Boundary>& idx,
                   size_t from_cp, size_t to_cp) {
  TelegramText out;
  const Boundary& a = idx[from_cp];
  const Boundary& b = idx[to_cp];
  out.text = text.text.substr(a.byte, b.byte - a.byte);
  for (const TelegramEntity& e : text.entities) {
    size_t start = std::max(e.offset, a.u16);
    size_t end = std::min(e.offset + e.length, b.u16);
    if (start >= end) continue;
    TelegramEntity c = e;
    c.offset = start - a.u16;
    c.length = end - start;
    out.entities.push_back(std::move(c));
  }
  return out;
}

bool IsContainerOfNothing(const std::string& type) {
  return type == "code" || type == "pre";
}

// Sorts entities by offset (longer first) and drops those Telegram would
// refuse: empty ones, partial overlaps, and anything inside code or pre.
std::vector<TelegramEntity> Normalize(std::vector<TelegramEntity> in) {
  std::stable_sort(in.begin(), in.end(),
                   [](const TelegramEntity& x, const TelegramEntity& y) {
                     if (x.offset != y.offset) return x.offset < y.offset;
                     return x.length > y.length;
                   });
  std::vector<TelegramEntity> out;
  std::vector<const TelegramEntity*> open;
  out.reserve(in.size());
  for (const TelegramEntity& e : in) {
    if (e.length == 0) continue;
    while (!open.empty() &&
           open.back()->offset + open.back()->length <= e.offset) {
      open.pop_back();
    }
    if (!open.empty()) {
      const TelegramEntity& top = *open.back();
      if (e.offset + e.length > top.offset + top.length) continue;
      if (IsContainerOfNothing(top.type)) continue;
    }
    out.push_back(e);
    open.push_back(&e);
  }
  return out;
}

}  // namespace

size_t Utf16Length(absl::string_view utf8) { return Index(utf8).back().u16; }

std::vector<TelegramEntity> EntitiesFromJson(const nlohmann::json& entities) {
  std::vector<TelegramEntity> out;
  if (!entities.is_array()) return out;
  for (const nlohmann::json& j : entities) {
    if (!j.is_object()) continue;
    auto type = j.find("type");
    auto offset = j.find("offset");
    auto length = j.find("length");
    if (type == j.end() || !type->is_string() || offset == j.end() ||
        !offset->is_number_unsigned() || length == j.end() ||
        !length->is_number_unsigned()) {
      continue;
    }
    TelegramEntity e;
    e.type = type->get<std::string>();
    e.offset = offset->get<size_t>();
    e.length = length->get<size_t>();
    if (auto u = j.find("url"); u != j.end() && u->is_string()) {
      e.url = u->get<std::string>();
    }
    if (auto l = j.find("language"); l != j.end() && l->is_string()) {
      e.language = l->get<std::string>();
    }
    if (auto u = j.find("user"); u != j.end() && u->is_object()) {
      if (auto id = u->find("id"); id != u->end() && id->is_number_integer()) {
        e.user_id = id->get<int64_t>();
      }
    }
    if (auto c = j.find("custom_emoji_id"); c != j.end() && c->is_string()) {
      e.custom_emoji_id = c->get<std::string>();
    }
    out.push_back(std::move(e));
  }
  return out;
}

nlohmann::json EntitiesToJson(const std::vector<TelegramEntity>& entities) {
  nlohmann::json out = nlohmann::json::array();
  for (const TelegramEntity& e : entities) {
    nlohmann::json j = {
        {"type", e.type}, {"offset", e.offset}, {"length", e.length}};
    if (!e.url.empty()) j["url"] = e.url;
    if (!e.language.empty()) j["language"] = e.language;
    if (e.user_id != 0) j["user"] = {{"id", e.user_id}};
    if (!e.custom_emoji_id.empty()) j["custom_emoji_id"] = e.custom_emoji_id;
    out.push_back(std::move(j));
  }
  return out;
}

v1::RichText ToRichText(const TelegramText& text) {
  v1::RichText rich;
  rich.set_text(text.text);
  const std::vector<Boundary> idx = Index(text.text);
  std::vector<v1::Span> spans;
  for (const TelegramEntity& e : text.entities) {
    size_t from = idx[FloorByU16(idx, e.offset)].byte;
    size_t to = idx[CeilByU16(idx, e.offset + e.length)].byte;
    if (to <= from) continue;
    v1::Span span;
    span.set_offset(static_cast<uint32_t>(from));
    span.set_length(static_cast<uint32_t>(to - from));
    absl::string_view covered(text.text.data() + from, to - from);
    if (e.type == "bold") {
      span.set_kind(v1::Span::BOLD);
    } else if (e.type == "italic") {
      span.set_kind(v1::Span::ITALIC);
    } else if (e.type == "underline") {
      span.set_kind(v1::Span::UNDERLINE);
    } else if (e.type == "strikethrough") {
      span.set_kind(v1::Span::STRIKE);
    } else if (e.type == "spoiler") {
      span.set_kind(v1::Span::SPOILER);
    } else if (e.type == "code") {
      span.set_kind(v1::Span::CODE);
    } else if (e.type == "pre") {
      span.set_kind(v1::Span::PRE);
      span.set_language(e.language);
    } else if (e.type == "blockquote" || e.type == "expandable_blockquote") {
      span.set_kind(v1::Span::QUOTE);
    } else if (e.type == "text_link") {
      span.set_kind(v1::Span::LINK);
      span.set_url(e.url);
    } else if (e.type == "url") {
      span.set_kind(v1::Span::LINK);
      span.set_url(std::string(covered));
    } else if (e.type == "email") {
      span.set_kind(v1::Span::LINK);
      span.set_url(absl::StrCat("mailto:", covered));
    } else if (e.type == "mention" && covered.size() > 1 && covered[0] == '@') {
      span.set_kind(v1::Span::LINK);
      span.set_url(absl::StrCat("https://t.me/", covered.substr(1)));
    } else if (e.type == "text_mention" && e.user_id != 0) {
      span.set_kind(v1::Span::MENTION);
      span.set_user_id(absl::StrCat(e.user_id));
    } else {
      continue;
    }
    spans.push_back(std::move(span));
  }
  std::stable_sort(spans.begin(), spans.end(),
                   [](const v1::Span& a, const v1::Span& b) {
                     if (a.offset() != b.offset()) {
                       return a.offset() < b.offset();
                     }
                     return a.length() > b.length();
                   });
  for (v1::Span& s : spans) *rich.add_spans() = std::move(s);
  return rich;
}

TelegramText FromRichText(const v1::RichText& rich,
                          bool mentions_are_telegram_users) {
  TelegramText out;
  out.text = rich.text();
  const std::vector<Boundary> idx = Index(out.text);
  std::vector<TelegramEntity> entities;
  for (const v1::Span& s : rich.spans()) {
    size_t from_byte = std::min<size_t>(s.offset(), out.text.size());
    size_t to_byte = std::min<size_t>(
        static_cast<size_t>(s.offset()) + s.length(), out.text.size());
    size_t from = idx[FloorByByte(idx, from_byte)].u16;
    size_t to = idx[CeilByByte(idx, to_byte)].u16;
    if (to <= from) continue;
    TelegramEntity e;
    e.offset = from;
    e.length = to - from;
    switch (s.kind()) {
      case v1::Span::BOLD:
        e.type = "bold";
        break;
      case v1::Span::ITALIC:
        e.type = "italic";
        break;
      case v1::Span::UNDERLINE:
        e.type = "underline";
        break;
      case v1::Span::STRIKE:
        e.type = "strikethrough";
        break;
      case v1::Span::SPOILER:
        e.type = "spoiler";
        break;
      case v1::Span::CODE:
        e.type = "code";
        break;
      case v1::Span::PRE:
        e.type = "pre";
        e.language = s.language();
        break;
      case v1::Span::QUOTE:
        e.type = "blockquote";
        break;
      case v1::Span::LINK:
      case v1::Span::CHANNEL_MENTION:
        if (s.url().empty()) continue;
        e.type = "text_link";
        e.url = s.url();
        break;
      case v1::Span::MENTION: {
        int64_t id = 0;
        if (!mentions_are_telegram_users ||
            !absl::SimpleAtoi(s.user_id(), &id) || id <= 0) {
          continue;
        }
        e.type = "text_mention";
        e.user_id = id;
        break;
      }
      default:
        continue;
    }
    entities.push_back(std::move(e));
  }
  out.entities = Normalize(std::move(entities));
  return out;
}

TelegramText SenderPrefix(absl::string_view sender_name, SenderStyle style) {
  TelegramText out;
  if (sender_name.empty()) return out;
  TelegramText name;
  name.text = std::string(sender_name);
  if (Utf16Length(name.text) > kMaxSenderName) {
    name = Truncate(name, kMaxSenderName);
  }
  size_t len = Utf16Length(name.text);
  out.text =
      absl::StrCat(name.text, style == SenderStyle::kInline ? ": " : "\n");
  out.entities.push_back({"bold", 0, len, "", "", 0, ""});
  return out;
}

TelegramText Concat(const TelegramText& prefix, const TelegramText& body) {
  TelegramText out;
  out.text = absl::StrCat(prefix.text, body.text);
  out.entities = prefix.entities;
  size_t shift = Utf16Length(prefix.text);
  for (TelegramEntity e : body.entities) {
    e.offset += shift;
    out.entities.push_back(std::move(e));
  }
  return out;
}

TelegramText Truncate(const TelegramText& text, size_t limit) {
  const std::vector<Boundary> idx = Index(text.text);
  // Slice() also clips entities past the end.
  if (idx.back().u16 <= limit) return Slice(text, idx, 0, idx.size() - 1);
  if (limit == 0) return TelegramText();
  size_t cut = FloorByU16(idx, limit - 1);
  TelegramText out = Slice(text, idx, 0, cut);
  out.text += kEllipsis;
  return out;
}

std::vector<TelegramText> Split(const TelegramText& text, size_t limit,
                                size_t max_parts) {
  const std::vector<Boundary> idx = Index(text.text);
  const size_t end_cp = idx.size() - 1;
  std::vector<TelegramText> parts;
  if (idx.back().u16 <= limit || limit == 0) {
    parts.push_back(Slice(text, idx, 0, end_cp));  // Clips the entities.
    return parts;
  }
  size_t start = 0;
  while (start < end_cp) {
    const size_t base = idx[start].u16;
    if (idx.back().u16 - base <= limit) {
      parts.push_back(Slice(text, idx, start, end_cp));
      break;
    }
    if (max_parts != 0 && parts.size() + 1 == max_parts) {
      TelegramText rest = Slice(text, idx, start, end_cp);
      parts.push_back(Truncate(rest, limit));
      break;
    }
    // The furthest character boundary within the limit.
    size_t cut = FloorByU16(idx, base + limit);
    if (cut <= start) cut = start + 1;
    // Prefer a line break, then a space, in the second half of the part.
    size_t next = cut;
    const size_t min_cut = start + (cut - start) / 2;
    for (char sep : {'\n', ' '}) {
      bool found = false;
      for (size_t j = cut; j > min_cut; --j) {
        if (text.text[idx[j - 1].byte] == sep) {
          cut = j - 1;
          next = j;
          found = true;
          break;
        }
      }
      if (found) break;
    }
    parts.push_back(Slice(text, idx, start, cut));
    start = next;
  }
  if (parts.empty()) parts.emplace_back();
  return parts;
}

std::vector<TelegramText> RenderParts(const TelegramText& prefix,
                                      const TelegramText& body, size_t limit,
                                      size_t max_parts) {
  size_t prefix_len = Utf16Length(prefix.text);
  size_t body_limit = limit > prefix_len ? limit - prefix_len : 1;
  std::vector<TelegramText> parts = Split(body, body_limit, max_parts);
  for (TelegramText& part : parts) part = Concat(prefix, part);
  return parts;
}

std::string FormatSize(uint64_t bytes) { return FileSizeText(bytes); }

TelegramText ItalicNotice(absl::string_view text) {
  TelegramText out;
  out.text = std::string(text);
  size_t len = Utf16Length(out.text);
  if (len > 0) out.entities.push_back({"italic", 0, len, "", "", 0, ""});
  return out;
}

}  // namespace imbridge::adapters::telegram
