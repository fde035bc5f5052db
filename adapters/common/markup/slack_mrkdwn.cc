#include "adapters/common/markup/slack_mrkdwn.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "adapters/common/markup/nesting_renderer.h"

namespace imbridge::adapters::markup {
namespace {

using v1::Span;

// Collects output text and spans.
class Builder {
 public:
  size_t size() const { return text_.size(); }
  void Append(absl::string_view s) { text_.append(s.data(), s.size()); }
  void AddSpan(Span::Kind kind, size_t start, absl::string_view url = {},
               absl::string_view user_id = {}) {
    if (text_.size() <= start) return;
    Span span;
    span.set_kind(kind);
    span.set_offset(static_cast<uint32_t>(start));
    span.set_length(static_cast<uint32_t>(text_.size() - start));
    if (!url.empty()) span.set_url(std::string(url));
    if (!user_id.empty()) span.set_user_id(std::string(user_id));
    spans_.push_back(std::move(span));
  }
  // Spans sorted by offset, longer first; of equal ranges the outer one
  // (added last, as inner content is parsed first) comes first.
  v1::RichText Finish() {
    std::vector<size_t> order(spans_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [this](size_t x, size_t y) {
      const Span& a = spans_[x];
      const Span& b = spans_[y];
      if (a.offset() != b.offset()) return a.offset() < b.offset();
      if (a.length() != b.length()) return a.length() > b.length();
      return x > y;
    });
    v1::RichText out;
    out.set_text(std::move(text_));
    for (size_t i : order) *out.add_spans() = std::move(spans_[i]);
    return out;
  }

 private:
  std::string text_;
  std::vector<Span> spans_;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// A byte that may stand next to a style marker: ASCII that is not a letter
// or digit (whitespace, punctuation). Bytes of multi-byte UTF-8 characters
// count as word characters.
bool IsBoundary(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x80) return false;
  return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9'));
}

bool IsMarker(char c) { return c == '*' || c == '_' || c == '~' || c == '`'; }

Span::Kind MarkerKind(char c) {
  switch (c) {
    case '*':
      return Span::BOLD;
    case '_':
      return Span::ITALIC;
    case '~':
      return Span::STRIKE;
    default:
      return Span::CODE;
  }
}

bool IsOpener(absl::string_view s, size_t i) {
  char c = s[i];
  if (i > 0 && !IsBoundary(s[i - 1])) return false;
  if (i + 1 >= s.size() || IsSpace(s[i + 1])) return false;
  return s[i + 1] != c;
}

// The position of the marker closing the one at `open`, or npos.
size_t FindCloser(absl::string_view s, size_t open) {
  char c = s[open];
  for (size_t k = open + 1; k < s.size(); ++k) {
    if (c != '`' && s[k] == '<') {
      size_t close = s.find('>', k);
      if (close == absl::string_view::npos) return absl::string_view::npos;
      k = close;
      continue;
    }
    if (s[k] != c || k == open + 1) continue;
    if (c == '`') return k;
    if (IsSpace(s[k - 1])) continue;
    if (k + 1 < s.size() && !IsBoundary(s[k + 1])) continue;
    return k;
  }
  return absl::string_view::npos;
}

// Whether the inside of <...> is one of Slack's entities: a mention
// (@, #, !) or a link with a scheme. Anything else (a sender that did not
// escape its angle brackets) stays literal text.
bool IsEntity(absl::string_view body) {
  absl::string_view target = body.substr(0, body.find('|'));
  return absl::StartsWith(target, "@") || absl::StartsWith(target, "#") ||
         absl::StartsWith(target, "!") || absl::StrContains(target, "://") ||
         absl::StartsWith(target, "mailto:");
}

void HandleEntity(absl::string_view body, const UserNameResolver& resolve,
                  Builder& b) {
  absl::string_view target = body;
  absl::string_view label;
  bool has_label = false;
  size_t bar = body.find('|');
  if (bar != absl::string_view::npos) {
    target = body.substr(0, bar);
    label = body.substr(bar + 1);
    has_label = true;
  }
  size_t start = b.size();
  if (absl::StartsWith(target, "@") && target.size() > 1) {
    std::string id(target.substr(1));
    std::string name;
    if (resolve) name = resolve(id);
    if (name.empty() && has_label) name = UnescapeMrkdwn(label);
    if (name.empty()) name = id;
    b.Append("@");
    b.Append(name);
    b.AddSpan(Span::MENTION, start, {}, id);
    return;
  }
  if (absl::StartsWith(target, "#") && target.size() > 1) {
    b.Append("#");
    b.Append(has_label && !label.empty() ? UnescapeMrkdwn(label)
                                         : std::string(target.substr(1)));
    b.AddSpan(Span::CHANNEL_MENTION, start);
    return;
  }
  if (absl::StartsWith(target, "!")) {
    absl::string_view special = target.substr(1);
    if (special == "here" || special == "channel" || special == "everyone") {
      b.Append(absl::StrCat("@", special));
    } else if (has_label) {
      b.Append(UnescapeMrkdwn(label));
    } else if (absl::StartsWith(special, "subteam^")) {
      b.Append(absl::StrCat("@", special.substr(8)));
    } else {
      b.Append(UnescapeMrkdwn(special));
    }
    return;
  }
  std::string url = UnescapeMrkdwn(target);
  std::string shown;
  if (has_label && !label.empty()) {
    shown = UnescapeMrkdwn(label);
  } else if (absl::StartsWith(url, "mailto:")) {
    shown = url.substr(7);
  } else {
    shown = url;
  }
  b.Append(shown);
  b.AddSpan(Span::LINK, start, url);
}

// Parses one line (no newline inside) of inline mrkdwn.
void ParseInline(absl::string_view s, const UserNameResolver& resolve,
                 bool styles, Builder& b) {
  size_t plain = 0;
  auto flush = [&](size_t upto) {
    if (upto > plain) b.Append(UnescapeMrkdwn(s.substr(plain, upto - plain)));
  };
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '<') {
      size_t close = s.find('>', i);
      if (close != absl::string_view::npos && close > i + 1 &&
          IsEntity(s.substr(i + 1, close - i - 1))) {
        flush(i);
        HandleEntity(s.substr(i + 1, close - i - 1), resolve, b);
        i = close + 1;
        plain = i;
        continue;
      }
    } else if (styles && IsMarker(c) && IsOpener(s, i)) {
      size_t j = FindCloser(s, i);
      if (j != absl::string_view::npos) {
        flush(i);
        size_t start = b.size();
        absl::string_view inner = s.substr(i + 1, j - i - 1);
        if (c == '`') {
          b.Append(UnescapeMrkdwn(inner));
        } else {
          ParseInline(inner, resolve, styles, b);
        }
        b.AddSpan(MarkerKind(c), start);
        i = j + 1;
        plain = i;
        continue;
      }
    }
    ++i;
  }
  flush(s.size());
}

// Length of a quote marker ("> ", ">", "&gt; ", "&gt;") at the start of
// `line`, 0 if none.
size_t QuoteMarker(absl::string_view line) {
  size_t n = 0;
  if (absl::StartsWith(line, ">")) {
    n = 1;
  } else if (absl::StartsWith(line, "&gt;")) {
    n = 4;
  } else {
    return 0;
  }
  if (n < line.size() && line[n] == ' ') ++n;
  return n;
}

absl::string_view LineAt(absl::string_view in, size_t pos, size_t* next) {
  size_t end = in.find('\n', pos);
  if (end == absl::string_view::npos) {
    *next = in.size();
    return in.substr(pos);
  }
  *next = end + 1;
  return in.substr(pos, end - pos);
}

}  // namespace

std::string EscapeMrkdwn(absl::string_view text) {
  return absl::StrReplaceAll(text,
                             {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}});
}

std::string UnescapeMrkdwn(absl::string_view text) {
  return absl::StrReplaceAll(text,
                             {{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}});
}

v1::RichText MrkdwnToRichText(absl::string_view in,
                              const UserNameResolver& resolve, bool styles) {
  Builder b;
  size_t pos = 0;
  while (pos < in.size()) {
    // A fenced block, possibly spanning lines.
    if (styles && absl::StartsWith(in.substr(pos), "```")) {
      size_t end = in.find("```", pos + 3);
      if (end != absl::string_view::npos) {
        absl::string_view content = in.substr(pos + 3, end - pos - 3);
        if (absl::StartsWith(content, "\n")) content.remove_prefix(1);
        if (absl::EndsWith(content, "\n")) content.remove_suffix(1);
        size_t start = b.size();
        b.Append(UnescapeMrkdwn(content));
        b.AddSpan(Span::PRE, start);
        pos = end + 3;
        continue;
      }
    }
    bool line_start = pos == 0 || in[pos - 1] == '\n';
    if (styles && line_start && QuoteMarker(in.substr(pos)) > 0) {
      size_t start = b.size();
      bool first = true;
      while (pos < in.size()) {
        size_t next = 0;
        absl::string_view line = LineAt(in, pos, &next);
        size_t marker = QuoteMarker(line);
        if (marker == 0) break;
        if (!first) b.Append("\n");
        first = false;
        ParseInline(line.substr(marker), resolve, styles, b);
        pos = next;
      }
      b.AddSpan(Span::QUOTE, start);
      if (pos < in.size() || in.back() == '\n') b.Append("\n");
      continue;
    }
    size_t next = 0;
    absl::string_view line = LineAt(in, pos, &next);
    size_t fence = line.find("```");
    if (styles && fence != absl::string_view::npos && fence > 0 &&
        in.find("```", pos + fence + 3) != absl::string_view::npos) {
      ParseInline(line.substr(0, fence), resolve, styles, b);
      pos += fence;
      continue;
    }
    ParseInline(line, resolve, styles, b);
    if (next > pos + line.size()) b.Append("\n");
    pos = next;
  }
  return b.Finish();
}

// ---------------------------------------------------------------------------
// Rendering.

namespace {

const char* Marker(Span::Kind k) {
  switch (k) {
    case Span::BOLD:
      return "*";
    case Span::ITALIC:
      return "_";
    default:
      return "~";
  }
}

// Valid spans, with style spans trimmed of whitespace and split at newlines.
std::vector<NestedSpan> Prepare(const v1::RichText& rt) {
  const std::string& text = rt.text();
  std::vector<NestedSpan> out;
  for (const NestedSpan& s :
       NestedSpansOf(rt, {Span::BOLD, Span::ITALIC, Span::STRIKE})) {
    if (s.role != NestedSpan::Role::kStyle) {
      out.push_back(s);
      continue;
    }
    size_t p = s.begin;
    while (p < s.end) {
      size_t nl = text.find('\n', p);
      size_t piece_end = (nl == std::string::npos || nl > s.end) ? s.end : nl;
      size_t a = p, z = piece_end;
      while (a < z && IsSpace(text[a])) ++a;
      while (z > a && IsSpace(text[z - 1])) --z;
      if (z > a) out.push_back({NestedSpan::Role::kStyle, s.span, a, z});
      p = piece_end + 1;
    }
  }
  return out;
}

std::string EscapeUrl(absl::string_view url) {
  return absl::StrReplaceAll(
      url, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"|", "%7C"}});
}

std::string RenderAtomic(const NestedSpan& s, absl::string_view content,
                         const MrkdwnOptions& options) {
  switch (s.span->kind()) {
    case Span::CODE:
      return absl::StrCat("`", EscapeMrkdwn(content), "`");
    case Span::PRE:
      return absl::StrCat("```\n", EscapeMrkdwn(content), "\n```");
    case Span::LINK:
      if (s.span->url().empty()) return EscapeMrkdwn(content);
      if (content == s.span->url()) {
        return absl::StrCat("<", EscapeUrl(s.span->url()), ">");
      }
      return absl::StrCat("<", EscapeUrl(s.span->url()), "|",
                          EscapeMrkdwn(content), ">");
    case Span::MENTION:
      if (options.native_mentions && !s.span->user_id().empty()) {
        return absl::StrCat("<@", EscapeUrl(s.span->user_id()), ">");
      }
      return EscapeMrkdwn(content);
    case Span::CHANNEL_MENTION:
      if (!s.span->url().empty()) {
        return absl::StrCat("<", EscapeUrl(s.span->url()), "|",
                            EscapeMrkdwn(content), ">");
      }
      return EscapeMrkdwn(content);
    default:
      return EscapeMrkdwn(content);
  }
}

}  // namespace

std::string RichTextToMrkdwn(const v1::RichText& rt,
                             const MrkdwnOptions& options) {
  NestedMarkup markup;
  markup.style = [](Span::Kind kind, bool, std::string& out) {
    out.append(Marker(kind));
  };
  markup.atomic = [&options](const NestedSpan& s, absl::string_view content,
                             std::string& out) {
    out.append(RenderAtomic(s, content, options));
  };
  markup.text = [](absl::string_view piece, bool, std::string& out) {
    out.append(EscapeMrkdwn(piece));
  };
  markup.quote_prefix = "> ";
  return RenderNested(rt.text(), Prepare(rt), markup);
}

}  // namespace imbridge::adapters::markup
