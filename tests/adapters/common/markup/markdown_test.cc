#include "adapters/common/markup/markdown.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::markup {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// A span as "KIND[offset,length]" plus url/user/language when set, so that
// expectations read like the text.
std::string Describe(const v1::Span& s) {
  std::string out = absl::StrCat(v1::Span::Kind_Name(s.kind()), "[", s.offset(),
                                 ",", s.length(), "]");
  if (!s.url().empty()) absl::StrAppend(&out, " url=", s.url());
  if (!s.user_id().empty()) absl::StrAppend(&out, " user=", s.user_id());
  if (!s.language().empty()) absl::StrAppend(&out, " lang=", s.language());
  return out;
}

std::vector<std::string> Spans(const v1::RichText& t) {
  std::vector<std::string> out;
  for (const v1::Span& s : t.spans()) out.push_back(Describe(s));
  return out;
}

v1::RichText Rich(std::string text, std::vector<v1::Span> spans = {}) {
  v1::RichText t;
  t.set_text(std::move(text));
  for (auto& s : spans) *t.add_spans() = std::move(s);
  return t;
}

v1::Span S(v1::Span::Kind kind, uint32_t offset, uint32_t length,
           std::string extra = "") {
  v1::Span s;
  s.set_kind(kind);
  s.set_offset(offset);
  s.set_length(length);
  if (kind == v1::Span::LINK) s.set_url(extra);
  if (kind == v1::Span::MENTION) s.set_user_id(extra);
  if (kind == v1::Span::PRE) s.set_language(extra);
  return s;
}

v1::RichText Text(const std::string& textproto) {
  v1::RichText out;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(textproto, &out))
      << textproto;
  return out;
}

TEST(MarkdownParseTest, ContractExample) {
  v1::RichText t =
      MarkdownToRichText("Hello **team**, see [the doc](https://example.com)");
  EXPECT_EQ(t.text(), "Hello team, see the doc");
  EXPECT_THAT(Spans(t),
              ElementsAre("BOLD[6,4]", "LINK[16,7] url=https://example.com"));
}

TEST(MarkdownParseTest, InlineStyles) {
  v1::RichText t =
      MarkdownToRichText("*it* _it2_ __b2__ ~~gone~~ `a*b*c` ***both***");
  EXPECT_EQ(t.text(), "it it2 b2 gone a*b*c both");
  EXPECT_THAT(Spans(t), ElementsAre("ITALIC[0,2]", "ITALIC[3,3]", "BOLD[7,2]",
                                    "STRIKE[10,4]", "CODE[15,5]",
                                    "ITALIC[21,4]", "BOLD[21,4]"));
}

TEST(MarkdownParseTest, NestedEmphasis) {
  v1::RichText t = MarkdownToRichText("**bold *and italic* end**");
  EXPECT_EQ(t.text(), "bold and italic end");
  EXPECT_THAT(Spans(t), ElementsAre("BOLD[0,19]", "ITALIC[5,10]"));

  t = MarkdownToRichText("**b *i***");
  EXPECT_EQ(t.text(), "b i");
  EXPECT_THAT(Spans(t), ElementsAre("BOLD[0,3]", "ITALIC[2,1]"));

  t = MarkdownToRichText("*a **b***");
  EXPECT_EQ(t.text(), "a b");
  EXPECT_THAT(Spans(t), ElementsAre("ITALIC[0,3]", "BOLD[2,1]"));
}

TEST(MarkdownParseTest, IntrawordUnderscoreIsLiteral) {
  v1::RichText t = MarkdownToRichText("snake_case_name and _real_");
  EXPECT_EQ(t.text(), "snake_case_name and real");
  EXPECT_THAT(Spans(t), ElementsAre("ITALIC[20,4]"));
}

TEST(MarkdownParseTest, UnbalancedMarkupStaysLiteral) {
  v1::RichText t =
      MarkdownToRichText("2 * 3 = 6, **open, `tick, [x](, ~single~");
  EXPECT_EQ(t.text(), "2 * 3 = 6, **open, `tick, [x](, ~single~");
  EXPECT_THAT(Spans(t), IsEmpty());
}

TEST(MarkdownParseTest, EscapesAreRemoved) {
  v1::RichText t = MarkdownToRichText(R"(\*not italic\* \[x\] a\\b)");
  EXPECT_EQ(t.text(), R"(*not italic* [x] a\b)");
  EXPECT_THAT(Spans(t), IsEmpty());
}

TEST(MarkdownParseTest, Mentions) {
  v1::RichText t = MarkdownToRichText("hi @[Ivan Petrov](user:u-7)!");
  EXPECT_EQ(t.text(), "hi @Ivan Petrov!");
  EXPECT_THAT(Spans(t), ElementsAre("MENTION[3,12] user=u-7"));
}

TEST(MarkdownParseTest, LinkWithStyledTextAndTitle) {
  v1::RichText t =
      MarkdownToRichText(R"(see [the **big** doc](https://x.io/a_(b) "T"))");
  EXPECT_EQ(t.text(), "see the big doc");
  EXPECT_THAT(Spans(t),
              ElementsAre("LINK[4,11] url=https://x.io/a_(b)", "BOLD[8,3]"));
}

TEST(MarkdownParseTest, CodeBlockWithLanguage) {
  v1::RichText t = MarkdownToRichText(
      "before\n```cpp\nint x = 1; // **not bold**\n```\nafter");
  EXPECT_EQ(t.text(), "before\nint x = 1; // **not bold**\nafter");
  EXPECT_THAT(Spans(t), ElementsAre("PRE[7,26] lang=cpp"));
}

TEST(MarkdownParseTest, UnclosedCodeBlockRunsToTheEnd) {
  v1::RichText t = MarkdownToRichText("```\na\nb");
  EXPECT_EQ(t.text(), "a\nb");
  EXPECT_THAT(Spans(t), ElementsAre("PRE[0,3]"));
}

TEST(MarkdownParseTest, BlockQuote) {
  v1::RichText t = MarkdownToRichText("> quoted **line**\n>second\nreply");
  EXPECT_EQ(t.text(), "quoted line\nsecond\nreply");
  EXPECT_THAT(Spans(t), ElementsAre("QUOTE[0,18]", "BOLD[7,4]"));
}

TEST(MarkdownParseTest, EmphasisAcrossLinesOfOneParagraph) {
  v1::RichText t = MarkdownToRichText("**a\nb**\n\n**c");
  EXPECT_EQ(t.text(), "a\nb\n\n**c");
  EXPECT_THAT(Spans(t), ElementsAre("BOLD[0,3]"));
}

TEST(MarkdownParseTest, CyrillicOffsetsAreBytes) {
  v1::RichText t = MarkdownToRichText("Привет **мир**");
  EXPECT_EQ(t.text(), "Привет мир");
  // "Привет " is 13 bytes, "мир" 6.
  EXPECT_THAT(Spans(t), ElementsAre("BOLD[13,6]"));
}

TEST(MarkdownParseTest, HostileInputIsLinearAndSafe) {
  std::string nested(50000, '[');
  std::string openers;
  for (int i = 0; i < 20000; ++i) openers += "*a _b ~~c `d [e](f ";
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += "**x ";
  for (const std::string& input : {nested, openers, deep}) {
    v1::RichText t = MarkdownToRichText(input);
    EXPECT_FALSE(t.text().empty());
  }
  v1::RichText bad = MarkdownToRichText(std::string("\xff\xfe**\xc3", 5));
  EXPECT_EQ(bad.text(), std::string("\xff\xfe**\xc3", 5));
}

TEST(MarkdownRenderTest, Styles) {
  EXPECT_EQ(RichTextToMarkdown(
                Rich("bold italic gone code",
                     {S(v1::Span::BOLD, 0, 4), S(v1::Span::ITALIC, 5, 6),
                      S(v1::Span::STRIKE, 12, 4), S(v1::Span::CODE, 17, 4)})),
            "**bold** _italic_ ~~gone~~ `code`");
}

TEST(MarkdownRenderTest, IntrawordItalicUsesAsterisks) {
  EXPECT_EQ(
      RichTextToMarkdown(Rich("unbelievable", {S(v1::Span::ITALIC, 2, 6)})),
      "un*believ*able");
}

TEST(MarkdownRenderTest, EscapesMarkupCharacters) {
  EXPECT_EQ(EscapeMarkdown("a*b* [x](y) `c` ~~d~~ 2 * 3 snake_case _e_ \\"),
            R"(a\*b\* \[x\](y) \`c\` \~\~d\~\~ 2 * 3 snake_case \_e\_ \\)");
  EXPECT_EQ(EscapeMarkdown("> not a quote\n  > nor this\na > b"),
            "\\> not a quote\n  \\> nor this\na > b");
}

TEST(MarkdownRenderTest, LinksAndMentions) {
  v1::RichText t = Rich("see doc, ask @Ivan",
                        {S(v1::Span::LINK, 4, 3, "https://x.io/a b(c)"),
                         S(v1::Span::MENTION, 13, 5, "u-7")});
  EXPECT_EQ(RichTextToMarkdown(t, {true}),
            "see [doc](https://x.io/a%20b%28c%29), ask @[Ivan](user:u-7)");
  // Mentions of people on other messengers stay text.
  EXPECT_EQ(RichTextToMarkdown(t, {false}),
            "see [doc](https://x.io/a%20b%28c%29), ask @Ivan");
}

TEST(MarkdownRenderTest, CodeBlocksAndQuotes) {
  v1::RichText t =
      Rich("intro\nint x;\nquoted\nend",
           {S(v1::Span::PRE, 6, 6, "cpp"), S(v1::Span::QUOTE, 13, 6)});
  EXPECT_EQ(RichTextToMarkdown(t), "intro\n```cpp\nint x;\n```\n> quoted\nend");
}

TEST(MarkdownRenderTest, CodeWithBackticksGetsLongerFence) {
  EXPECT_EQ(RichTextToMarkdown(Rich("a`b", {S(v1::Span::CODE, 0, 3)})),
            "``a`b``");
  EXPECT_EQ(RichTextToMarkdown(Rich("`x`", {S(v1::Span::CODE, 0, 3)})),
            "`` `x` ``");
}

TEST(MarkdownRenderTest, CrossingSpansAreSplitSoMarkersNest) {
  // bold "abc d", italic "d efg": they cross at "d".
  v1::RichText t =
      Rich("abc d efg", {S(v1::Span::BOLD, 0, 5), S(v1::Span::ITALIC, 4, 5)});
  std::string md = RichTextToMarkdown(t);
  EXPECT_EQ(md, "**abc _d_** _efg_");
  v1::RichText back = MarkdownToRichText(md);
  EXPECT_EQ(back.text(), "abc d efg");
  EXPECT_THAT(Spans(back),
              ElementsAre("BOLD[0,5]", "ITALIC[4,1]", "ITALIC[6,3]"));
}

TEST(MarkdownRenderTest, WhitespaceMovesOutsideMarkers) {
  EXPECT_EQ(RichTextToMarkdown(Rich("a bold b", {S(v1::Span::BOLD, 1, 6)})),
            "a **bold** b");
}

TEST(MarkdownRenderTest, InvalidSpansAreIgnored) {
  v1::RichText t = Rich("Привет", {S(v1::Span::BOLD, 1, 2),   // mid-char
                                   S(v1::Span::BOLD, 0, 99),  // too long
                                   S(v1::Span::KIND_UNSPECIFIED, 0, 2),
                                   S(v1::Span::UNDERLINE, 0, 2)});
  EXPECT_EQ(RichTextToMarkdown(t), "Привет");
}

TEST(MarkdownRoundTripTest, MarkdownSurvivesParseAndRender) {
  for (const char* md : {
           "Hello **team**, see [the doc](https://example.com)",
           "**bold *and italic* end**",
           "_it_ and ~~strike~~ and `co*de`",
           "> quote with **bold**\nplain line",
           "```py\nprint('*')\n```",
           "snake_case stays",
           "2 * 3 = 6",
           "hi @[Ivan Petrov](user:u-7)",
           "Привет, **мир**!",
       }) {
    v1::RichText once = MarkdownToRichText(md);
    std::string rendered = RichTextToMarkdown(once, {true});
    v1::RichText twice = MarkdownToRichText(rendered);
    EXPECT_EQ(twice.text(), once.text()) << md << " -> " << rendered;
    EXPECT_THAT(Spans(twice), ::testing::ContainerEq(Spans(once)))
        << md << " -> " << rendered;
  }
}

TEST(MarkdownRenderTest, SpansBecomeCommonMark) {
  v1::RichText text = Text(R"(text: "Deploy done old v1.2 doc"
                              spans { kind: BOLD offset: 0 length: 6 }
                              spans { kind: ITALIC offset: 7 length: 4 }
                              spans { kind: STRIKE offset: 12 length: 3 }
                              spans { kind: CODE offset: 16 length: 4 }
                              spans { kind: LINK offset: 21 length: 3
                                      url: "https://d.example" })");
  EXPECT_EQ(RichTextToMarkdown(text),
            "**Deploy** _done_ ~~old~~ `v1.2` [doc](https://d.example)");
}

TEST(MarkdownRenderTest, EscapesPlainTextButNotCode) {
  v1::RichText text = Text(R"(text: "a*b_c [x] p*q"
                              spans { kind: CODE offset: 10 length: 3 })");
  // An underscore inside a word is literal in CommonMark, so it needs no
  // escape (the rendering is TeamSpirit's, which is CommonMark).
  EXPECT_EQ(RichTextToMarkdown(text), "a\\*b_c \\[x\\] `p*q`");
}

TEST(MarkdownRenderTest, PreAndQuoteBlocks) {
  v1::RichText text = Text(R"(text: "see int x;\nafter\nq1\nq2"
                              spans { kind: PRE offset: 4 length: 6
                                      language: "c" }
                              spans { kind: QUOTE offset: 17 length: 5 })");
  EXPECT_EQ(RichTextToMarkdown(text),
            "see \n```c\nint x;\n```\nafter\n> q1\n> q2");
}

TEST(MarkdownRenderTest, NestedSpansAndSpansPastTheEnd) {
  v1::RichText nested = Text(R"(text: "bold italic"
                                spans { kind: BOLD offset: 0 length: 11 }
                                spans { kind: ITALIC offset: 5 length: 6 })");
  EXPECT_EQ(RichTextToMarkdown(nested), "**bold _italic_**");
  // Crossing spans: see MarkdownRenderTest.CrossingSpansAreSplitSoMarkersNest.
  // Spans past the end are ignored.
  v1::RichText bad =
      Text(R"(text: "ab" spans { kind: BOLD offset: 1 length: 9 })");
  EXPECT_EQ(RichTextToMarkdown(bad), "ab");
}

}  // namespace
}  // namespace imbridge::adapters::markup
