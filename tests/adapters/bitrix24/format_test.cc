// BB-code <-> RichText conversion and splitting at 20,000 characters.

#include "adapters/bitrix24/format.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::bitrix24 {
namespace {

using ::testing::ElementsAre;
using ::testing::SizeIs;

using v1::Span;

const std::string kZwsp = "\xE2\x80\x8B";
// "😀" is U+1F600: 4 UTF-8 bytes, one character.
const std::string kGrin = "\xF0\x9F\x98\x80";

// "KIND[text]" per span, in span order; with "=url" and "#user".
std::vector<std::string> SpansOf(const v1::RichText& r) {
  std::vector<std::string> out;
  for (const Span& s : r.spans()) {
    std::string d = Span::Kind_Name(s.kind()) + "[" +
                    r.text().substr(s.offset(), s.length()) + "]";
    if (!s.url().empty()) d += "=" + s.url();
    if (!s.user_id().empty()) d += "#" + s.user_id();
    out.push_back(d);
  }
  return out;
}

Span MakeSpan(Span::Kind kind, uint32_t offset, uint32_t length) {
  Span s;
  s.set_kind(kind);
  s.set_offset(offset);
  s.set_length(length);
  return s;
}

TEST(Bitrix24BbCodeToRichTextTest, SimpleStyles) {
  v1::RichText r =
      BbCodeToRichText("[b]bold[/b] [i]it[/i] [U]under[/U] [s]gone[/s]");
  EXPECT_EQ(r.text(), "bold it under gone");
  EXPECT_THAT(SpansOf(r), ElementsAre("BOLD[bold]", "ITALIC[it]",
                                      "UNDERLINE[under]", "STRIKE[gone]"));
}

TEST(Bitrix24BbCodeToRichTextTest, NestedTagsNest) {
  v1::RichText r = BbCodeToRichText("[b]a [i]b [b]c[/b][/i] d[/b]");
  EXPECT_EQ(r.text(), "a b c d");
  EXPECT_THAT(SpansOf(r),
              ElementsAre("BOLD[a b c d]", "ITALIC[b c]", "BOLD[c]"));
}

TEST(Bitrix24BbCodeToRichTextTest, UnclosedAndStrayTagsStayLiteral) {
  v1::RichText r = BbCodeToRichText("[b]open [i]x[/i] and [/u] stray");
  EXPECT_EQ(r.text(), "[b]open x and [/u] stray");
  EXPECT_THAT(SpansOf(r), ElementsAre("ITALIC[x]"));
}

// Each opening tag used to search the rest of the text for its closing tag,
// and each "[" the rest of the text for its "]": a text of a million
// unclosed tags took days (found by fuzz_bbcode, docs/fuzzing.md). Read in
// one pass, they take milliseconds.
TEST(Bitrix24BbCodeToRichTextTest, AMillionUnclosedTagsAreReadInOnePass) {
  std::string opened;
  for (int i = 0; i < 1000000; ++i) opened += "[b]";
  v1::RichText r = BbCodeToRichText(opened + "x[/b]");
  EXPECT_EQ(r.text(), opened.substr(3) + "x");
  EXPECT_THAT(SpansOf(r), ElementsAre("BOLD[x]"));

  std::string code;
  for (int i = 0; i < 1000000; ++i) code += "[code]";
  r = BbCodeToRichText(code + "[/code]");
  EXPECT_EQ(r.text(), code.substr(6));
  ASSERT_THAT(r.spans(), SizeIs(1));
  EXPECT_EQ(r.spans(0).kind(), v1::Span::CODE);

  const std::string brackets(4000000, '[');
  EXPECT_EQ(BbCodeToRichText(brackets).text(), brackets);
}

TEST(Bitrix24BbCodeToRichTextTest, LiteralBracketsAndUnknownTags) {
  v1::RichText r = BbCodeToRichText("a[1] = [foo]bar[/foo] [x");
  EXPECT_EQ(r.text(), "a[1] = [foo]bar[/foo] [x");
  EXPECT_THAT(r.spans(), SizeIs(0));
}

TEST(Bitrix24BbCodeToRichTextTest, Links) {
  v1::RichText r = BbCodeToRichText(
      "[url]https://a.example/x[/url] and [url=https://b.example]the "
      "[b]site[/b][/url]");
  EXPECT_EQ(r.text(), "https://a.example/x and the site");
  EXPECT_THAT(SpansOf(r),
              ElementsAre("LINK[https://a.example/x]=https://a.example/x",
                          "LINK[the site]=https://b.example", "BOLD[site]"));
}

TEST(Bitrix24BbCodeToRichTextTest, CodeKeepsTagsLiteral) {
  v1::RichText r =
      BbCodeToRichText("x [code][b]no[/b][/code] [code]a\nb[/code]");
  EXPECT_EQ(r.text(), "x [b]no[/b] a\nb");
  EXPECT_THAT(SpansOf(r), ElementsAre("CODE[[b]no[/b]]", "PRE[a\nb]"));
}

TEST(Bitrix24BbCodeToRichTextTest, Mentions) {
  v1::RichText r = BbCodeToRichText(
      "hi [USER=27]Anna Smith[/USER] and [user=all]all[/user], see "
      "[CHAT=5]Sales[/CHAT]");
  EXPECT_EQ(r.text(), "hi @Anna Smith and @all, see #Sales");
  EXPECT_THAT(SpansOf(r), ElementsAre("MENTION[@Anna Smith]#27",
                                      "CHANNEL_MENTION[#Sales]"));
}

TEST(Bitrix24BbCodeToRichTextTest, QuoteLinesAndQuoteTag) {
  v1::RichText r =
      BbCodeToRichText(">>first\n>> second\nafter\n[quote]q[b]b[/b][/quote]");
  EXPECT_EQ(r.text(), "first\nsecond\nafter\nqb");
  EXPECT_THAT(SpansOf(r),
              ElementsAre("QUOTE[first\nsecond]", "QUOTE[qb]", "BOLD[b]"));
}

TEST(Bitrix24BbCodeToRichTextTest, LineBreakTagAndEmoji) {
  v1::RichText r = BbCodeToRichText(kGrin + "[br][b]" + kGrin + "x[/b]");
  EXPECT_EQ(r.text(), kGrin + "\n" + kGrin + "x");
  ASSERT_THAT(r.spans(), SizeIs(1));
  EXPECT_EQ(r.spans(0).offset(), 5u);
  EXPECT_EQ(r.spans(0).length(), 5u);
}

TEST(Bitrix24RichTextToBbCodeTest, StylesLinksAndMentions) {
  v1::RichText r;
  r.set_text("bold link @Anna code");
  *r.add_spans() = MakeSpan(Span::BOLD, 0, 4);
  Span link = MakeSpan(Span::LINK, 5, 4);
  link.set_url("https://x.example");
  *r.add_spans() = link;
  Span mention = MakeSpan(Span::MENTION, 10, 5);
  mention.set_user_id("27");
  *r.add_spans() = mention;
  *r.add_spans() = MakeSpan(Span::CODE, 16, 4);
  EXPECT_EQ(RichTextToBbCode(r, {.native_mentions = true}),
            "[b]bold[/b] [url=https://x.example]link[/url] "
            "[USER=27]Anna[/USER] [code]code[/code]");
  EXPECT_EQ(RichTextToBbCode(r, {.native_mentions = false}),
            "[b]bold[/b] [url=https://x.example]link[/url] @Anna "
            "[code]code[/code]");
}

TEST(Bitrix24RichTextToBbCodeTest, OverlappingSpansAreReopenedToNest) {
  v1::RichText r;
  r.set_text("abcdef");
  *r.add_spans() = MakeSpan(Span::BOLD, 0, 4);
  *r.add_spans() = MakeSpan(Span::ITALIC, 2, 4);
  std::string bb = RichTextToBbCode(r);
  EXPECT_EQ(bb, "[b]ab[i]cd[/i][/b][i]ef[/i]");
  v1::RichText back = BbCodeToRichText(bb);
  EXPECT_EQ(back.text(), "abcdef");
}

TEST(Bitrix24RichTextToBbCodeTest, QuotesBecomeLinePrefixes) {
  v1::RichText r;
  r.set_text("one\ntwo\nplain");
  *r.add_spans() = MakeSpan(Span::QUOTE, 0, 7);
  std::string bb = RichTextToBbCode(r);
  EXPECT_EQ(bb, ">>one\n>>two\nplain");
  EXPECT_THAT(SpansOf(BbCodeToRichText(bb)), ElementsAre("QUOTE[one\ntwo]"));
}

TEST(Bitrix24RichTextToBbCodeTest, LiteralTagsAndQuotesRoundTrip) {
  v1::RichText r;
  r.set_text(">> not a quote\nuse [b] and [/URL] or [USER=1] but a[1] [x]");
  std::string bb = RichTextToBbCode(r);
  EXPECT_EQ(bb, ">" + kZwsp + "> not a quote\nuse [" + kZwsp + "b] and [" +
                    kZwsp + "/URL] or [" + kZwsp + "USER=1] but a[1] [x]");
  v1::RichText back = BbCodeToRichText(bb);
  EXPECT_EQ(back.text(), r.text());
  EXPECT_THAT(back.spans(), SizeIs(0));
}

TEST(Bitrix24RichTextToBbCodeTest, CodeProtectsOnlyItsClosingTag) {
  v1::RichText r;
  r.set_text("[b][/code]");
  *r.add_spans() = MakeSpan(Span::CODE, 0, 10);
  std::string bb = RichTextToBbCode(r);
  EXPECT_EQ(bb, "[code][b][" + kZwsp + "/code][/code]");
  EXPECT_EQ(BbCodeToRichText(bb).text(), "[b][/code]");
}

TEST(Bitrix24RichTextToBbCodeTest, BadSpansAreIgnored) {
  v1::RichText r;
  r.set_text(kGrin + "x");
  *r.add_spans() = MakeSpan(Span::BOLD, 1, 2);    // Inside the emoji.
  *r.add_spans() = MakeSpan(Span::ITALIC, 3, 9);  // Past the end.
  EXPECT_EQ(RichTextToBbCode(r), kGrin + "x");
}

TEST(Bitrix24SenderPrefixTest, BoldNameProtected) {
  EXPECT_EQ(SenderPrefix(""), "");
  EXPECT_EQ(SenderPrefix("Bob [i] (slack)"),
            "[b]Bob [" + kZwsp + "i] (slack)[/b]: ");
}

TEST(Bitrix24SplitTest, CountsCharactersNotBytes) {
  EXPECT_EQ(CharCount(kGrin + "ab"), 3u);
  v1::RichText r;
  std::string text;
  for (int i = 0; i < 25000; ++i) text += kGrin;
  r.set_text(text);
  std::vector<v1::RichText> parts = SplitRichText(r, kMaxMessageChars);
  ASSERT_THAT(parts, SizeIs(2));
  EXPECT_EQ(CharCount(parts[0].text()), 20000u);
  EXPECT_EQ(CharCount(parts[1].text()), 5000u);
  EXPECT_EQ(parts[0].text() + parts[1].text(), text);
}

TEST(Bitrix24SplitTest, PrefersLineBreaksAndClipsSpans) {
  v1::RichText r;
  r.set_text(std::string(15000, 'a') + "\n" + std::string(10000, 'b'));
  *r.add_spans() = MakeSpan(Span::BOLD, 14000, 2000);
  std::vector<v1::RichText> parts = SplitRichText(r, kMaxMessageChars);
  ASSERT_THAT(parts, SizeIs(2));
  EXPECT_EQ(parts[0].text(), std::string(15000, 'a'));
  EXPECT_EQ(parts[1].text(), std::string(10000, 'b'));
  ASSERT_THAT(parts[0].spans(), SizeIs(1));
  EXPECT_EQ(parts[0].spans(0).offset(), 14000u);
  EXPECT_EQ(parts[0].spans(0).length(), 1000u);
  ASSERT_THAT(parts[1].spans(), SizeIs(1));
  EXPECT_EQ(parts[1].spans(0).offset(), 0u);
  EXPECT_EQ(parts[1].spans(0).length(), 999u);
}

TEST(Bitrix24SplitTest, ShortTextIsOnePart) {
  v1::RichText r;
  EXPECT_THAT(SplitRichText(r, 10), SizeIs(1));
  r.set_text("short");
  EXPECT_THAT(SplitRichText(r, 10), SizeIs(1));
}

TEST(Bitrix24RenderMessagesTest, EveryMessageWithinTheLimitWithTagsAndPrefix) {
  // Every other character bold: the tags take far more room than the text.
  v1::RichText r;
  std::string text;
  for (int i = 0; i < 30000; ++i) text += kGrin;
  r.set_text(text);
  for (uint32_t i = 0; i < 30000; i += 2) {
    *r.add_spans() = MakeSpan(Span::BOLD, i * 4, 4);
  }
  std::string prefix = SenderPrefix("Alice (slack)");
  std::vector<std::string> messages = RenderMessages(prefix, r, {});
  ASSERT_GE(messages.size(), 2u);
  std::string joined;
  for (const std::string& m : messages) {
    EXPECT_LE(CharCount(m), kMaxMessageChars);
    ASSERT_EQ(m.substr(0, prefix.size()), prefix);
    joined += BbCodeToRichText(m.substr(prefix.size())).text();
  }
  EXPECT_EQ(joined, text);
}

}  // namespace
}  // namespace imbridge::adapters::bitrix24
