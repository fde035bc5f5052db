#ifndef IMBRIDGE_ADAPTERS_COMMON_MARKUP_NESTING_RENDERER_H_
#define IMBRIDGE_ADAPTERS_COMMON_MARKUP_NESTING_RENDERER_H_

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge::adapters::markup {

// One span of rich text for RenderNested(), already checked by the caller
// (in range, not empty, on character boundaries).
struct NestedSpan {
  enum class Role {
    // Opened before and closed after its text; where styles overlap without
    // nesting, the inner ones are closed and reopened so that the markers
    // nest (Slack's *bold*, BB-code's [b]).
    kStyle,
    // Rendered whole by Markup::atomic (code, links, mentions); spans that
    // start inside it are dropped.
    kAtomic,
    // Each line it covers gets Markup::quote_prefix.
    kQuote,
  };
  Role role = Role::kStyle;
  const v1::Span* span = nullptr;  // Its kind, url, user_id.
  size_t begin = 0;
  size_t end = 0;
};

// The spans of `text` that RenderNested() can take, in order: those not
// empty, within the text and starting and ending on UTF-8 character
// boundaries, each with its role: a QUOTE kQuote, a kind among `styles`
// kStyle (the styles the markup has markers for), CODE, PRE, LINK, MENTION
// and CHANNEL_MENTION kAtomic. Spans of other kinds are left out (their
// text renders plain). The spans point into `text`, which must outlive
// them. Pure.
std::vector<NestedSpan> NestedSpansOf(
    const v1::RichText& text, std::initializer_list<v1::Span::Kind> styles);

// What a markup language writes for RenderNested().
struct NestedMarkup {
  // Appends the opening (closing = false) or closing marker of a style.
  std::function<void(v1::Span::Kind kind, bool closing, std::string& out)>
      style;
  // Appends an atomic span whose text is `content`.
  std::function<void(const NestedSpan& span, absl::string_view content,
                     std::string& out)>
      atomic;
  // Appends plain text, escaped; `at_line_start` when `piece` begins a
  // line of the output (no quote prefix written before it on that line).
  std::function<void(absl::string_view piece, bool at_line_start,
                     std::string& out)>
      text;
  // Written at the start of every quoted line ("> ", ">>").
  std::string quote_prefix;
  // An atomic span inside a style that ends before it is cut at the
  // style's end (true), or rendered whole with the style closed after it.
  bool clip_atomic_to_styles = false;
};

// Renders `text` with `spans` in a markup of nested markers: walks the text
// once, opening styles where they start (outer first: longer, then styles
// before atomic spans of the same range), closing and reopening them so
// that they nest, rendering atomic spans whole and prefixing quoted lines
// (a text that goes on after a quote on the same line starts a new line).
// The shared walk of the Slack mrkdwn and Bitrix24 BB-code renderers. Pure.
std::string RenderNested(absl::string_view text, std::vector<NestedSpan> spans,
                         const NestedMarkup& markup);

}  // namespace imbridge::adapters::markup

#endif  // IMBRIDGE_ADAPTERS_COMMON_MARKUP_NESTING_RENDERER_H_
