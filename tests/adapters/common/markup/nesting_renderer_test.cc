// NestedSpansOf: which spans RenderNested() is given, and in which role.

#include "adapters/common/markup/nesting_renderer.h"

#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::markup {
namespace {

using Role = NestedSpan::Role;
using ::testing::ElementsAre;
using v1::Span;

void Add(v1::RichText& rt, Span::Kind kind, uint32_t offset, uint32_t length) {
  Span* s = rt.add_spans();
  s->set_kind(kind);
  s->set_offset(offset);
  s->set_length(length);
}

// Role, kind, begin, end of each span.
std::vector<std::tuple<Role, Span::Kind, size_t, size_t>> Views(
    const std::vector<NestedSpan>& spans) {
  std::vector<std::tuple<Role, Span::Kind, size_t, size_t>> out;
  for (const NestedSpan& s : spans) {
    out.emplace_back(s.role, s.span->kind(), s.begin, s.end);
  }
  return out;
}

TEST(NestedSpansOf, GivesEachKindItsRoleInOrder) {
  v1::RichText rt;
  rt.set_text("bold under code > quote @ann #room link");
  Add(rt, Span::BOLD, 0, 4);
  Add(rt, Span::UNDERLINE, 5, 5);
  Add(rt, Span::CODE, 11, 4);
  Add(rt, Span::QUOTE, 16, 7);
  Add(rt, Span::MENTION, 24, 4);
  Add(rt, Span::CHANNEL_MENTION, 29, 5);
  Add(rt, Span::LINK, 35, 4);
  Add(rt, Span::PRE, 0, 4);
  EXPECT_THAT(
      Views(NestedSpansOf(rt, {Span::BOLD, Span::UNDERLINE})),
      ElementsAre(std::make_tuple(Role::kStyle, Span::BOLD, 0, 4),
                  std::make_tuple(Role::kStyle, Span::UNDERLINE, 5, 10),
                  std::make_tuple(Role::kAtomic, Span::CODE, 11, 15),
                  std::make_tuple(Role::kQuote, Span::QUOTE, 16, 23),
                  std::make_tuple(Role::kAtomic, Span::MENTION, 24, 28),
                  std::make_tuple(Role::kAtomic, Span::CHANNEL_MENTION, 29, 34),
                  std::make_tuple(Role::kAtomic, Span::LINK, 35, 39),
                  std::make_tuple(Role::kAtomic, Span::PRE, 0, 4)));
}

TEST(NestedSpansOf, LeavesOutStylesTheMarkupHasNoMarkerFor) {
  v1::RichText rt;
  rt.set_text("under spoiler");
  Add(rt, Span::UNDERLINE, 0, 5);
  Add(rt, Span::SPOILER, 6, 7);
  Add(rt, Span::ITALIC, 6, 7);
  EXPECT_THAT(Views(NestedSpansOf(rt, {Span::BOLD, Span::ITALIC})),
              ElementsAre(std::make_tuple(Role::kStyle, Span::ITALIC, 6, 13)));
}

TEST(NestedSpansOf, LeavesOutEmptyOutOfRangeAndMidCharacterSpans) {
  v1::RichText rt;
  rt.set_text("h\xC3\xA9llo");  // "héllo": é is two bytes, 1 and 2.
  Add(rt, Span::BOLD, 0, 0);    // Empty.
  Add(rt, Span::BOLD, 3, 4);    // Past the end.
  Add(rt, Span::BOLD, 2, 2);    // Starts inside é.
  Add(rt, Span::BOLD, 0, 2);    // Ends inside é.
  Add(rt, Span::CODE, 1, 2);    // é alone.
  EXPECT_THAT(Views(NestedSpansOf(rt, {Span::BOLD})),
              ElementsAre(std::make_tuple(Role::kAtomic, Span::CODE, 1, 3)));
}

}  // namespace
}  // namespace imbridge::adapters::markup
