// mrkdwn <-> RichText, both directions (platforms.md 1.9).

#include "adapters/common/markup/slack_mrkdwn.h"

#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::markup {
namespace {

using v1::Span;

// A span as a comparable tuple: kind, the covered text, url, user id.
using SpanView = std::tuple<Span::Kind, std::string, std::string, std::string>;

std::vector<SpanView> Spans(const v1::RichText& rt) {
  std::vector<SpanView> out;
  for (const Span& s : rt.spans()) {
    out.emplace_back(s.kind(), rt.text().substr(s.offset(), s.length()),
                     s.url(), s.user_id());
  }
  return out;
}

SpanView S(Span::Kind k, std::string text, std::string url = "",
           std::string user = "") {
  return {k, std::move(text), std::move(url), std::move(user)};
}

std::string Names(absl::string_view id) {
  if (id == "U111") return "Ann Lee";
  if (id == "U222") return "bob";
  return "";
}

v1::RichText Parse(absl::string_view in) {
  return MrkdwnToRichText(in, [](absl::string_view id) { return Names(id); });
}

v1::RichText Rich(std::string text, std::vector<Span> spans) {
  v1::RichText rt;
  rt.set_text(std::move(text));
  for (auto& s : spans) *rt.add_spans() = std::move(s);
  return rt;
}

Span At(Span::Kind k, uint32_t offset, uint32_t length, std::string url = "",
        std::string user = "") {
  Span s;
  s.set_kind(k);
  s.set_offset(offset);
  s.set_length(length);
  s.set_url(std::move(url));
  s.set_user_id(std::move(user));
  return s;
}

TEST(MrkdwnToRichText, PlainTextAndEscapes) {
  v1::RichText rt = Parse("a &amp; b &lt;c&gt; &amp;lt; d");
  EXPECT_EQ(rt.text(), "a & b <c> &lt; d");
  EXPECT_THAT(rt.spans(), ::testing::IsEmpty());
}

TEST(MrkdwnToRichText, AngleBracketsWithoutAnEntityStayLiteral) {
  v1::RichText rt = Parse("x <not a link> <https://a.io|a> y");
  EXPECT_EQ(rt.text(), "x <not a link> a y");
  ASSERT_EQ(rt.spans_size(), 1);
  EXPECT_EQ(rt.spans(0).kind(), Span::LINK);
}

TEST(MrkdwnToRichText, WithoutStylesOnlyEntitiesAreConverted) {
  v1::RichText rt = MrkdwnToRichText(
      "*a* _b_ ```c```\n> q <https://a.io|d> &amp;", nullptr, /*styles=*/false);
  EXPECT_EQ(rt.text(), "*a* _b_ ```c```\n> q d &");
  ASSERT_EQ(rt.spans_size(), 1);
  EXPECT_EQ(rt.spans(0).kind(), Span::LINK);
}

TEST(MrkdwnToRichText, BasicStyles) {
  v1::RichText rt = Parse("*bold* _it_ ~gone~ `x < y` done");
  EXPECT_EQ(rt.text(), "bold it gone x < y done");
  EXPECT_THAT(Spans(rt), ::testing::ElementsAre(
                             S(Span::BOLD, "bold"), S(Span::ITALIC, "it"),
                             S(Span::STRIKE, "gone"), S(Span::CODE, "x < y")));
}

TEST(MrkdwnToRichText, NestedStyles) {
  v1::RichText rt = Parse("*bold _both_ more* and _it *b*_");
  EXPECT_EQ(rt.text(), "bold both more and it b");
  EXPECT_THAT(Spans(rt), ::testing::ElementsAre(S(Span::BOLD, "bold both more"),
                                                S(Span::ITALIC, "both"),
                                                S(Span::ITALIC, "it b"),
                                                S(Span::BOLD, "b")));
}

TEST(MrkdwnToRichText, MarkersInsideWordsOrUnclosedStayLiteral) {
  v1::RichText rt = Parse("2*3*4 snake_case_name * alone *open");
  EXPECT_EQ(rt.text(), "2*3*4 snake_case_name * alone *open");
  EXPECT_THAT(rt.spans(), ::testing::IsEmpty());
}

TEST(MrkdwnToRichText, MentionsResolvedChannelsAndSpecials) {
  v1::RichText rt = Parse(
      "hi <@U111> and <@U999|fallback>, see <#C123|general> <!here> "
      "<!subteam^S1|@ops>");
  EXPECT_EQ(rt.text(), "hi @Ann Lee and @fallback, see #general @here @ops");
  EXPECT_THAT(Spans(rt),
              ::testing::ElementsAre(S(Span::MENTION, "@Ann Lee", "", "U111"),
                                     S(Span::MENTION, "@fallback", "", "U999"),
                                     S(Span::CHANNEL_MENTION, "#general")));
}

TEST(MrkdwnToRichText, UnknownUserShowsId) {
  v1::RichText rt = Parse("<@U999>");
  EXPECT_EQ(rt.text(), "@U999");
}

TEST(MrkdwnToRichText, LinksWithAndWithoutLabels) {
  v1::RichText rt = Parse(
      "<https://example.com/a?x=1&amp;y=2|the &lt;site&gt;> and "
      "<https://b.org> and <mailto:a@b.c>");
  EXPECT_EQ(rt.text(), "the <site> and https://b.org and a@b.c");
  EXPECT_THAT(Spans(rt),
              ::testing::ElementsAre(
                  S(Span::LINK, "the <site>", "https://example.com/a?x=1&y=2"),
                  S(Span::LINK, "https://b.org", "https://b.org"),
                  S(Span::LINK, "a@b.c", "mailto:a@b.c")));
}

TEST(MrkdwnToRichText, BoldLinkAndStyleAroundMention) {
  v1::RichText rt = Parse("*<https://x.io|x>* _<@U222>_");
  EXPECT_EQ(rt.text(), "x @bob");
  EXPECT_THAT(Spans(rt),
              ::testing::ElementsAre(S(Span::BOLD, "x"),
                                     S(Span::LINK, "x", "https://x.io"),
                                     S(Span::ITALIC, "@bob"),
                                     S(Span::MENTION, "@bob", "", "U222")));
}

TEST(MrkdwnToRichText, FencedBlocks) {
  v1::RichText rt = Parse("before\n```\nint a = b &amp;&amp; *c*;\n```\nafter");
  EXPECT_EQ(rt.text(), "before\nint a = b && *c*;\nafter");
  EXPECT_THAT(Spans(rt),
              ::testing::ElementsAre(S(Span::PRE, "int a = b && *c*;")));
  v1::RichText inline_fence = Parse("run ```ls -l``` now");
  EXPECT_EQ(inline_fence.text(), "run ls -l now");
  EXPECT_THAT(Spans(inline_fence),
              ::testing::ElementsAre(S(Span::PRE, "ls -l")));
}

TEST(MrkdwnToRichText, Quotes) {
  v1::RichText rt = Parse("&gt; first *b*\n&gt; second\nplain");
  EXPECT_EQ(rt.text(), "first b\nsecond\nplain");
  EXPECT_THAT(Spans(rt),
              ::testing::ElementsAre(S(Span::QUOTE, "first b\nsecond"),
                                     S(Span::BOLD, "b")));
  v1::RichText raw = Parse(">raw quote");
  EXPECT_EQ(raw.text(), "raw quote");
  EXPECT_THAT(Spans(raw), ::testing::ElementsAre(S(Span::QUOTE, "raw quote")));
}

TEST(MrkdwnToRichText, MultiByteText) {
  v1::RichText rt = Parse("Привет *мир* 🎉");
  EXPECT_EQ(rt.text(), "Привет мир 🎉");
  ASSERT_EQ(rt.spans_size(), 1);
  EXPECT_EQ(rt.spans(0).offset(), std::string("Привет ").size());
  EXPECT_EQ(rt.spans(0).length(), std::string("мир").size());
}

TEST(RichTextToMrkdwn, EscapesPlainText) {
  EXPECT_EQ(RichTextToMrkdwn(Rich("a & b <c> > d", {})),
            "a &amp; b &lt;c&gt; &gt; d");
}

TEST(RichTextToMrkdwn, StylesAndNesting) {
  // "bold both more"
  v1::RichText rt =
      Rich("bold both more", {At(Span::BOLD, 0, 14), At(Span::ITALIC, 5, 4)});
  EXPECT_EQ(RichTextToMrkdwn(rt), "*bold _both_ more*");
  EXPECT_EQ(RichTextToMrkdwn(
                Rich("x y z", {At(Span::STRIKE, 2, 1), At(Span::CODE, 4, 1)})),
            "x ~y~ `z`");
}

TEST(RichTextToMrkdwn, OverlappingSpansAreSplitToNest) {
  // bold "abcd", italic "cdef" over "abcdef".
  v1::RichText rt =
      Rich("ab cd ef", {At(Span::BOLD, 0, 5), At(Span::ITALIC, 3, 5)});
  EXPECT_EQ(RichTextToMrkdwn(rt), "*ab _cd_*_ ef_");
}

TEST(RichTextToMrkdwn, TrimsWhitespaceAndSplitsAtNewlines) {
  v1::RichText rt = Rich("say  hi there \nnext", {At(Span::BOLD, 3, 16)});
  EXPECT_EQ(RichTextToMrkdwn(rt), "say  *hi there* \n*next*");
}

TEST(RichTextToMrkdwn, LinksMentionsAndCode) {
  v1::RichText rt = Rich("see the <docs> or https://b.org, @Ann, a|b",
                         {At(Span::LINK, 4, 10, "https://x.io/?a=1&b=2|3"),
                          At(Span::LINK, 18, 13, "https://b.org"),
                          At(Span::MENTION, 33, 4, "", "U111"),
                          At(Span::LINK, 39, 3, "https://c.org")});
  EXPECT_EQ(RichTextToMrkdwn(rt),
            "see <https://x.io/?a=1&amp;b=2%7C3|the &lt;docs&gt;> or "
            "<https://b.org>, @Ann, <https://c.org|a|b>");
  MrkdwnOptions native;
  native.native_mentions = true;
  EXPECT_EQ(RichTextToMrkdwn(
                Rich("@Ann!", {At(Span::MENTION, 0, 4, "", "U111")}), native),
            "<@U111>!");
}

TEST(RichTextToMrkdwn, PreAndQuote) {
  v1::RichText rt = Rich("intro\nint a<b;\nquoted line\nend",
                         {At(Span::PRE, 6, 8), At(Span::QUOTE, 15, 11)});
  EXPECT_EQ(RichTextToMrkdwn(rt),
            "intro\n```\nint a&lt;b;\n```\n> quoted line\nend");
}

TEST(RichTextToMrkdwn, BoldLinkKeepsBoth) {
  v1::RichText rt =
      Rich("x", {At(Span::LINK, 0, 1, "https://x.io"), At(Span::BOLD, 0, 1)});
  EXPECT_EQ(RichTextToMrkdwn(rt), "*<https://x.io|x>*");
}

TEST(RichTextToMrkdwn, UnderlineAndSpoilerArePlainAndBadSpansIgnored) {
  v1::RichText rt =
      Rich("under secret", {At(Span::UNDERLINE, 0, 5), At(Span::SPOILER, 6, 6),
                            At(Span::BOLD, 10, 50)});
  EXPECT_EQ(RichTextToMrkdwn(rt), "under secret");
}

// Found by fuzz_render: a link ending inside a four-byte character cut it
// in two, and the message was not valid UTF-8.
TEST(RichTextToMrkdwn, SpansOffCharacterBoundariesAreIgnored) {
  const std::string grins = "\xF0\x9F\x98\x80\xF0\x9F\x98\x80";  // 😀😀
  EXPECT_EQ(RichTextToMrkdwn(
                Rich(grins, {At(Span::LINK, 0, 6, "https://example.com/")})),
            grins);
  EXPECT_EQ(RichTextToMrkdwn(Rich(grins, {At(Span::BOLD, 2, 6)})), grins);
  EXPECT_EQ(RichTextToMrkdwn(Rich(grins, {At(Span::BOLD, 4, 4)})),
            "\xF0\x9F\x98\x80*\xF0\x9F\x98\x80*");
}

TEST(RoundTrip, RenderedMrkdwnParsesBackToTheSameRichText) {
  const char* inputs[] = {
      "*bold _both_ more* plain ~s~",
      "<https://example.com/?q=a&amp;b|label &amp; more> end",
      "&gt; quoted *line*\nafter &lt;tag&gt;",
      "code `a &amp;&amp; b` here",
  };
  for (const char* in : inputs) {
    v1::RichText first = Parse(in);
    std::string rendered = RichTextToMrkdwn(first);
    v1::RichText second = Parse(rendered);
    EXPECT_EQ(second.text(), first.text()) << in << " -> " << rendered;
    EXPECT_EQ(Spans(second), Spans(first)) << in << " -> " << rendered;
  }
}

}  // namespace
}  // namespace imbridge::adapters::markup
