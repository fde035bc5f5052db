#include "adapters/common/markup/nesting_renderer.h"

#include <algorithm>
#include <utility>

#include "common/utf8.h"

namespace imbridge::adapters::markup {

std::vector<NestedSpan> NestedSpansOf(
    const v1::RichText& text, std::initializer_list<v1::Span::Kind> styles) {
  using Role = NestedSpan::Role;
  const std::string& chars = text.text();
  std::vector<NestedSpan> out;
  for (const v1::Span& s : text.spans()) {
    size_t begin = s.offset();
    size_t end = begin + s.length();
    if (s.length() == 0 || end > chars.size() ||
        !IsUtf8Boundary(chars, begin) || !IsUtf8Boundary(chars, end)) {
      continue;
    }
    switch (s.kind()) {
      case v1::Span::QUOTE:
        out.push_back({Role::kQuote, &s, begin, end});
        break;
      case v1::Span::CODE:
      case v1::Span::PRE:
      case v1::Span::LINK:
      case v1::Span::MENTION:
      case v1::Span::CHANNEL_MENTION:
        out.push_back({Role::kAtomic, &s, begin, end});
        break;
      default:
        if (std::find(styles.begin(), styles.end(), s.kind()) != styles.end()) {
          out.push_back({Role::kStyle, &s, begin, end});
        }
        break;
    }
  }
  return out;
}

std::string RenderNested(absl::string_view text, std::vector<NestedSpan> spans,
                         const NestedMarkup& markup) {
  using Role = NestedSpan::Role;
  // Byte positions that start a quoted line, and those that end a quote.
  std::vector<bool> quoted(text.size() + 1, false);
  std::vector<bool> quote_end(text.size() + 1, false);
  for (const NestedSpan& s : spans) {
    if (s.role != Role::kQuote) continue;
    for (size_t p = s.begin; p < s.end; ++p) {
      if (p == s.begin || text[p - 1] == '\n') quoted[p] = true;
    }
    quote_end[s.end] = true;
  }
  spans.erase(std::remove_if(
                  spans.begin(), spans.end(),
                  [](const NestedSpan& s) { return s.role == Role::kQuote; }),
              spans.end());
  std::stable_sort(spans.begin(), spans.end(),
                   [](const NestedSpan& a, const NestedSpan& b) {
                     if (a.begin != b.begin) return a.begin < b.begin;
                     if (a.end != b.end) return a.end > b.end;
                     return a.role == Role::kStyle && b.role == Role::kAtomic;
                   });

  std::string out;
  std::vector<const NestedSpan*> open;  // Styles, outermost first.
  size_t next_span = 0;
  size_t pos = 0;
  bool at_line_start = true;
  // Closes every style ending at or before p, reopening the ones above it
  // that go on.
  auto close_upto = [&](size_t p) {
    size_t first = 0;
    while (first < open.size() && open[first]->end > p) ++first;
    if (first == open.size()) return;
    std::vector<const NestedSpan*> reopen;
    for (size_t i = open.size(); i-- > first;) {
      markup.style(open[i]->span->kind(), /*closing=*/true, out);
      if (open[i]->end > p) reopen.push_back(open[i]);
    }
    open.resize(first);
    for (size_t i = reopen.size(); i-- > 0;) {
      markup.style(reopen[i]->span->kind(), /*closing=*/false, out);
      open.push_back(reopen[i]);
    }
  };
  while (pos <= text.size()) {
    close_upto(pos);
    if (pos > 0 && quote_end[pos] && pos < text.size() &&
        text[pos - 1] != '\n' && text[pos] != '\n') {
      // Text after a quote on the same line must not join the quote.
      out.push_back('\n');
      at_line_start = true;
    }
    if (pos == text.size()) break;
    if (quoted[pos]) {
      if (!at_line_start) out.push_back('\n');
      out.append(markup.quote_prefix);
      at_line_start = false;
    }
    bool jumped = false;
    while (next_span < spans.size() && spans[next_span].begin <= pos) {
      const NestedSpan& s = spans[next_span++];
      if (s.begin < pos) continue;  // Started inside an atomic span.
      if (s.role == Role::kAtomic) {
        size_t end = s.end;
        if (markup.clip_atomic_to_styles) {
          for (const NestedSpan* o : open) end = std::min(end, o->end);
        }
        markup.atomic(s, text.substr(pos, end - pos), out);
        while (next_span < spans.size() && spans[next_span].begin < end) {
          ++next_span;
        }
        pos = end;
        at_line_start = text[pos - 1] == '\n';
        jumped = true;
        break;
      }
      markup.style(s.span->kind(), /*closing=*/false, out);
      open.push_back(&s);
    }
    if (jumped) continue;
    // Plain text up to the next boundary.
    size_t stop = text.size();
    if (next_span < spans.size()) stop = std::min(stop, spans[next_span].begin);
    for (const NestedSpan* s : open) stop = std::min(stop, s->end);
    for (size_t p = pos + 1; p < stop; ++p) {
      if (quoted[p] || quote_end[p]) {
        stop = p;
        break;
      }
    }
    if (stop <= pos) stop = pos + 1;
    absl::string_view piece = text.substr(pos, stop - pos);
    markup.text(piece, at_line_start, out);
    at_line_start = piece.back() == '\n';
    pos = stop;
  }
  close_upto(text.size());
  return out;
}

}  // namespace imbridge::adapters::markup
