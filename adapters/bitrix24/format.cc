#include "adapters/bitrix24/format.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "adapters/common/markup/nesting_renderer.h"

namespace imbridge::adapters::bitrix24 {
namespace {

using v1::Span;

constexpr absl::string_view kZwsp = "\xE2\x80\x8B";  // U+200B
// A tag longer than this is not a tag (keeps the scan linear on junk).
constexpr size_t kMaxTagLength = 512;

bool IsContinuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// One tag as written: "[b]", "[/url]", "[url=https://x]".
struct Tag {
  std::string name;  // Lower case, without "/".
  std::string value;
  bool closing = false;
  size_t end = 0;  // Just past "]".
};

bool IsKnownTag(absl::string_view name) {
  for (absl::string_view known : {"b", "i", "u", "s", "url", "code", "quote",
                                  "user", "chat", "br", "img"}) {
    if (name == known) return true;
  }
  return false;
}

// Reads the tag at src[at] == '['; false when it is not a known tag.
bool ReadTag(absl::string_view src, size_t at, size_t end, Tag* tag) {
  // The "]" is looked for only as far as a tag may reach: a scan to the end
  // for every "[" made a text of many "[" quadratic.
  size_t close =
      src.substr(0, std::min(end, at + kMaxTagLength + 1)).find(']', at + 1);
  if (close == absl::string_view::npos) return false;
  absl::string_view body = src.substr(at + 1, close - at - 1);
  if (body.find('[') != absl::string_view::npos ||
      body.find('\n') != absl::string_view::npos) {
    return false;
  }
  tag->closing = absl::ConsumePrefix(&body, "/");
  size_t eq = body.find('=');
  absl::string_view name = body.substr(0, eq);
  // [img size=small]: the parameters after a space are ignored.
  absl::string_view head = name.substr(0, name.find(' '));
  tag->name = absl::AsciiStrToLower(head);
  if (!IsKnownTag(tag->name)) return false;
  if (head.size() != name.size() && tag->name != "img") return false;
  if (tag->closing && eq != absl::string_view::npos) return false;
  tag->value.clear();
  if (eq != absl::string_view::npos) {
    absl::string_view value = body.substr(eq + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    tag->value = std::string(value);
  }
  tag->end = close + 1;
  return true;
}

// Whether a literal "[" at text[at] would be read as a tag by Bitrix24 (or
// by BbCodeToRichText): "[name]", "[/name]" or "[name=" of a known tag.
bool LooksLikeTag(absl::string_view text, size_t at) {
  size_t p = at + 1;
  if (p < text.size() && text[p] == '/') ++p;
  size_t name_begin = p;
  while (p < text.size() && absl::ascii_isalpha(text[p])) ++p;
  if (p == name_begin || p >= text.size()) return false;
  if (text[p] != ']' && text[p] != '=' && text[p] != ' ') return false;
  return IsKnownTag(
      absl::AsciiStrToLower(text.substr(name_begin, p - name_begin)));
}

// Parses BB-code into text and spans.
class Parser {
 public:
  explicit Parser(absl::string_view src) : src_(src) {}

  v1::RichText Run() {
    MatchTags();
    Parse(0, src_.size());
    EndLine();
    // Consecutive quoted lines make one quote.
    for (size_t k = 0; k < quoted_lines_.size();) {
      size_t begin = quoted_lines_[k].first;
      size_t end = quoted_lines_[k].second;
      ++k;
      while (k < quoted_lines_.size() && quoted_lines_[k].first == end + 1) {
        end = quoted_lines_[k++].second;
      }
      if (end > begin) AddSpan(Span::QUOTE, begin, end);
    }
    std::stable_sort(spans_.begin(), spans_.end(),
                     [](const Span& a, const Span& b) {
                       if (a.offset() != b.offset()) {
                         return a.offset() < b.offset();
                       }
                       return a.length() > b.length();
                     });
    v1::RichText out;
    out.set_text(std::move(text_));
    for (Span& s : spans_) *out.add_spans() = std::move(s);
    return out;
  }

 private:
  bool AtLineStart(size_t i) const { return i == 0 || src_[i - 1] == '\n'; }

  void EndLine() {
    if (quote_start_ != std::string::npos) {
      quoted_lines_.emplace_back(quote_start_, text_.size());
      quote_start_ = std::string::npos;
    }
  }

  void AddSpan(Span::Kind kind, size_t begin, size_t end,
               absl::string_view url = {}, absl::string_view user_id = {}) {
    if (end <= begin) return;
    Span span;
    span.set_kind(kind);
    span.set_offset(static_cast<uint32_t>(begin));
    span.set_length(static_cast<uint32_t>(end - begin));
    if (!url.empty()) span.set_url(std::string(url));
    if (!user_id.empty()) span.set_user_id(std::string(user_id));
    spans_.push_back(std::move(span));
  }

  // Appends literal text, removing the protection of RichTextToBbCode.
  void AppendLiteral(absl::string_view s) {
    for (size_t i = 0; i < s.size(); ++i) {
      text_.push_back(s[i]);
      if (s[i] == '[' && s.substr(i + 1, kZwsp.size()) == kZwsp) {
        i += kZwsp.size();
      }
    }
  }

  // Pairs every opening tag of the text with the tag that closes it, in one
  // pass: tags of the same name opened in between nest (not [code]: its
  // first [/code] closes it). Searching from each opening tag instead made a
  // text of many unclosed tags quadratic.
  void MatchTags() {
    absl::flat_hash_map<std::string, std::vector<size_t>> open;
    for (size_t i = src_.find('['); i != absl::string_view::npos;
         i = src_.find('[', i + 1)) {
      Tag tag;
      if (!ReadTag(src_, i, src_.size(), &tag)) continue;
      std::vector<size_t>& opened = open[tag.name];
      if (!tag.closing) {
        opened.push_back(tag.end);
        continue;
      }
      if (opened.empty()) continue;
      if (tag.name == "code") {
        for (size_t o : opened) closes_[o] = {i, tag.end};
        opened.clear();
      } else {
        closes_[opened.back()] = {i, tag.end};
        opened.pop_back();
      }
    }
  }

  // The position of the tag closing `tag`, when it is before `end`, or npos;
  // *close_end is then just past it.
  size_t FindClose(const Tag& tag, size_t end, size_t* close_end) const {
    auto it = closes_.find(tag.end);
    if (it == closes_.end() || it->second.end > end) {
      return absl::string_view::npos;
    }
    *close_end = it->second.end;
    return it->second.at;
  }

  void Parse(size_t begin, size_t end) {
    size_t i = begin;
    while (i < end) {
      char c = src_[i];
      if (AtLineStart(i)) {
        absl::string_view rest = src_.substr(i, end - i);
        if (absl::StartsWith(rest, ">>")) {
          EndLine();
          quote_start_ = text_.size();
          i += (rest.size() > 2 && rest[2] == ' ') ? 3 : 2;
          continue;
        }
        std::string protected_quote = absl::StrCat(">", kZwsp, ">");
        if (absl::StartsWith(rest, protected_quote)) {
          text_.append(">>");
          i += protected_quote.size();
          continue;
        }
      }
      if (c == '\n') {
        EndLine();
        text_.push_back('\n');
        ++i;
        continue;
      }
      if (c == '[') {
        if (src_.substr(i + 1, kZwsp.size()) == kZwsp) {
          text_.push_back('[');
          i += 1 + kZwsp.size();
          continue;
        }
        Tag tag;
        if (ReadTag(src_, i, end, &tag) && !tag.closing) {
          size_t next = OpenTag(tag, end);
          if (next != absl::string_view::npos) {
            i = next;
            continue;
          }
        }
      }
      text_.push_back(c);
      ++i;
    }
  }

  // Handles an opening tag (its text ends at tag.end); returns where parsing
  // continues, or npos when the tag is not closed (it is then literal text).
  size_t OpenTag(const Tag& tag, size_t end) {
    if (tag.name == "br") {
      text_.push_back('\n');
      return tag.end;
    }
    size_t close_end = 0;
    size_t close = FindClose(tag, end, &close_end);
    if (close == absl::string_view::npos) return absl::string_view::npos;
    absl::string_view inner = src_.substr(tag.end, close - tag.end);
    size_t start = text_.size();
    if (tag.name == "code") {
      AppendLiteral(inner);
      bool block = inner.find('\n') != absl::string_view::npos;
      AddSpan(block ? Span::PRE : Span::CODE, start, text_.size());
    } else if (tag.name == "url" || tag.name == "img") {
      std::string url = tag.value;
      if (url.empty() || tag.name == "img") {
        url = std::string(absl::StripAsciiWhitespace(inner));
        AppendLiteral(url);
      } else {
        Parse(tag.end, close);
      }
      AddSpan(Span::LINK, start, text_.size(), url);
    } else if (tag.name == "user" || tag.name == "chat") {
      const char* sigil = tag.name == "user" ? "@" : "#";
      if (!absl::StartsWith(inner, sigil)) text_.append(sigil);
      Parse(tag.end, close);
      bool id = !tag.value.empty() &&
                std::all_of(tag.value.begin(), tag.value.end(),
                            [](char d) { return absl::ascii_isdigit(d); });
      if (tag.name == "user" && id) {
        AddSpan(Span::MENTION, start, text_.size(), {}, tag.value);
      } else if (tag.name == "chat") {
        AddSpan(Span::CHANNEL_MENTION, start, text_.size());
      }
    } else {
      Parse(tag.end, close);
      Span::Kind kind = tag.name == "b"   ? Span::BOLD
                        : tag.name == "i" ? Span::ITALIC
                        : tag.name == "u" ? Span::UNDERLINE
                        : tag.name == "s" ? Span::STRIKE
                                          : Span::QUOTE;
      AddSpan(kind, start, text_.size());
    }
    return close_end;
  }

  // Where a closing tag starts and ends.
  struct Close {
    size_t at;
    size_t end;
  };

  absl::string_view src_;
  // The closing tag of each opening tag that has one, by the opening tag's
  // end.
  absl::flat_hash_map<size_t, Close> closes_;
  std::string text_;
  std::vector<Span> spans_;
  size_t quote_start_ = std::string::npos;
  std::vector<std::pair<size_t, size_t>> quoted_lines_;
};

// ---------------------------------------------------------------------------
// Rendering.

const char* TagName(Span::Kind k) {
  switch (k) {
    case Span::BOLD:
      return "b";
    case Span::ITALIC:
      return "i";
    case Span::UNDERLINE:
      return "u";
    default:
      return "s";
  }
}

// Protects literal text: tag-like "[" and ">>" at a line start get a
// ZERO WIDTH SPACE after their first character.
void AppendEscaped(absl::string_view text, bool at_line_start,
                   std::string& out) {
  for (size_t i = 0; i < text.size(); ++i) {
    bool line_start = i == 0 ? at_line_start : text[i - 1] == '\n';
    out.push_back(text[i]);
    if ((text[i] == '[' && LooksLikeTag(text, i)) ||
        (line_start && text[i] == '>' && i + 1 < text.size() &&
         text[i + 1] == '>')) {
      out.append(kZwsp.data(), kZwsp.size());
    }
  }
}

// [code] content: only "[/code" needs protection.
void AppendCode(absl::string_view text, std::string& out) {
  for (size_t i = 0; i < text.size(); ++i) {
    out.push_back(text[i]);
    if (text[i] == '[' &&
        absl::StartsWithIgnoreCase(text.substr(i), "[/code")) {
      out.append(kZwsp.data(), kZwsp.size());
    }
  }
}

void RenderAtomic(const markup::NestedSpan& s, absl::string_view content,
                  const BbCodeOptions& options, std::string& out) {
  const Span& span = *s.span;
  switch (span.kind()) {
    case Span::CODE:
    case Span::PRE:
      out.append("[code]");
      AppendCode(content, out);
      out.append("[/code]");
      return;
    case Span::LINK:
      if (span.url().empty() || span.url().find(']') != std::string::npos) {
        break;
      }
      if (content == span.url()) {
        absl::StrAppend(&out, "[url]", span.url(), "[/url]");
      } else {
        absl::StrAppend(&out, "[url=", span.url(), "]");
        AppendEscaped(content, false, out);
        out.append("[/url]");
      }
      return;
    case Span::MENTION: {
      const std::string& id = span.user_id();
      bool numeric = !id.empty() &&
                     std::all_of(id.begin(), id.end(),
                                 [](char d) { return absl::ascii_isdigit(d); });
      if (!options.native_mentions || !numeric) break;
      absl::string_view name = content;
      absl::ConsumePrefix(&name, "@");
      absl::StrAppend(&out, "[USER=", id, "]");
      AppendEscaped(name, false, out);
      out.append("[/USER]");
      return;
    }
    default:
      break;
  }
  AppendEscaped(content, false, out);
}

}  // namespace

v1::RichText BbCodeToRichText(absl::string_view bbcode) {
  return Parser(bbcode).Run();
}

std::string RichTextToBbCode(const v1::RichText& rt,
                             const BbCodeOptions& options) {
  markup::NestedMarkup bbcode;
  bbcode.style = [](Span::Kind kind, bool closing, std::string& out) {
    absl::StrAppend(&out, closing ? "[/" : "[", TagName(kind), "]");
  };
  bbcode.atomic = [&options](const markup::NestedSpan& s,
                             absl::string_view content, std::string& out) {
    RenderAtomic(s, content, options, out);
  };
  bbcode.text = [](absl::string_view piece, bool at_line_start,
                   std::string& out) {
    AppendEscaped(piece, at_line_start, out);
  };
  bbcode.quote_prefix = ">>";
  // An atomic span cannot straddle the end of a style span.
  bbcode.clip_atomic_to_styles = true;
  return markup::RenderNested(
      rt.text(),
      markup::NestedSpansOf(
          rt, {Span::BOLD, Span::ITALIC, Span::UNDERLINE, Span::STRIKE}),
      bbcode);
}

size_t CharCount(absl::string_view text) {
  return static_cast<size_t>(std::count_if(
      text.begin(), text.end(), [](char c) { return !IsContinuation(c); }));
}

std::vector<v1::RichText> SplitRichText(const v1::RichText& rt,
                                        size_t max_chars) {
  if (max_chars == 0) max_chars = 1;
  const std::string& text = rt.text();
  std::vector<v1::RichText> parts;
  size_t pos = 0;
  while (true) {
    // The byte offset just past max_chars characters from pos.
    size_t limit = pos;
    size_t chars = 0;
    while (limit < text.size()) {
      if (!IsContinuation(text[limit])) {
        if (chars == max_chars) break;
        ++chars;
      }
      ++limit;
    }
    size_t cut = limit;
    size_t next = limit;
    if (limit < text.size()) {
      absl::string_view window =
          absl::string_view(text).substr(pos, limit - pos);
      size_t brk = window.rfind('\n');
      if (brk == absl::string_view::npos || brk == 0) brk = window.rfind(' ');
      if (brk != absl::string_view::npos && brk > 0) {
        cut = pos + brk;
        next = cut + 1;
      }
    }
    v1::RichText part;
    part.set_text(text.substr(pos, cut - pos));
    for (const Span& s : rt.spans()) {
      size_t begin = std::max<size_t>(s.offset(), pos);
      size_t end = std::min<size_t>(size_t{s.offset()} + s.length(), cut);
      if (end <= begin) continue;
      Span* clipped = part.add_spans();
      *clipped = s;
      clipped->set_offset(static_cast<uint32_t>(begin - pos));
      clipped->set_length(static_cast<uint32_t>(end - begin));
    }
    parts.push_back(std::move(part));
    if (limit >= text.size()) break;
    pos = next;
  }
  return parts;
}

namespace {

void RenderPart(absl::string_view prefix, const v1::RichText& part,
                const BbCodeOptions& options, size_t max_chars,
                std::vector<std::string>& out) {
  std::string rendered = absl::StrCat(prefix, RichTextToBbCode(part, options));
  size_t chars = CharCount(rendered);
  size_t text_chars = CharCount(part.text());
  if (chars <= max_chars || text_chars <= 1) {
    out.push_back(std::move(rendered));
    return;
  }
  // Tags and the prefix took the room: split this part smaller.
  size_t overhead = chars - text_chars;
  size_t limit = overhead < max_chars ? max_chars - overhead : 0;
  limit = std::min(limit, text_chars - 1);
  if (limit == 0) limit = std::max<size_t>(1, text_chars / 2);
  for (const v1::RichText& piece : SplitRichText(part, limit)) {
    RenderPart(prefix, piece, options, max_chars, out);
  }
}

}  // namespace

std::vector<std::string> RenderMessages(absl::string_view prefix,
                                        const v1::RichText& body,
                                        const BbCodeOptions& options,
                                        size_t max_chars) {
  size_t prefix_chars = CharCount(prefix);
  size_t budget = prefix_chars < max_chars ? max_chars - prefix_chars : 1;
  std::vector<std::string> out;
  for (const v1::RichText& part : SplitRichText(body, budget)) {
    RenderPart(prefix, part, options, max_chars, out);
  }
  return out;
}

std::string SenderPrefix(absl::string_view sender_name) {
  if (sender_name.empty()) return "";
  std::string out = "[b]";
  AppendEscaped(sender_name, false, out);
  out.append("[/b]: ");
  return out;
}

}  // namespace imbridge::adapters::bitrix24
