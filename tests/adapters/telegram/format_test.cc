// Converter tests: Telegram entities (UTF-16 offsets) <-> RichText (UTF-8
// byte offsets), the sender prefix and splitting at 4,096 code units.

#include "adapters/telegram/format.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::telegram {
namespace {

using ::testing::ElementsAre;
using ::testing::SizeIs;

// "😀" is U+1F600: 4 UTF-8 bytes, 2 UTF-16 units (a surrogate pair).
const std::string kGrin = "\xF0\x9F\x98\x80";
// "Ж" is U+0416: 2 UTF-8 bytes, 1 UTF-16 unit.
const std::string kZhe = "\xD0\x96";

v1::Span MakeSpan(v1::Span::Kind kind, uint32_t offset, uint32_t length,
                  const std::string& url = "") {
  v1::Span s;
  s.set_kind(kind);
  s.set_offset(offset);
  s.set_length(length);
  s.set_url(url);
  return s;
}

std::string Describe(const v1::RichText& r) {
  std::string out = r.text() + "|";
  for (const v1::Span& s : r.spans()) {
    out += v1::Span::Kind_Name(s.kind()) + "@" + std::to_string(s.offset()) +
           "+" + std::to_string(s.length());
    if (!s.url().empty()) out += "=" + s.url();
    if (!s.user_id().empty()) out += "#" + s.user_id();
    if (!s.language().empty()) out += "~" + s.language();
    out += ";";
  }
  return out;
}

TEST(Utf16LengthTest, CountsSurrogatePairsAsTwo) {
  EXPECT_EQ(Utf16Length(""), 0u);
  EXPECT_EQ(Utf16Length("abc"), 3u);
  EXPECT_EQ(Utf16Length(kZhe), 1u);
  EXPECT_EQ(Utf16Length(kGrin), 2u);
  EXPECT_EQ(Utf16Length("a" + kGrin + kZhe), 4u);
}

TEST(ToRichTextTest, EntitiesAfterEmojiMapToByteOffsets) {
  // "😀 hi Ж bold": the bold "bold" starts at UTF-16 offset 8.
  TelegramText t;
  t.text = kGrin + " hi " + kZhe + " bold";
  t.entities = EntitiesFromJson(nlohmann::json::parse(
      R"([{"type":"bold","offset":8,"length":4},
          {"type":"italic","offset":0,"length":2}])"));
  v1::RichText r = ToRichText(t);
  // Bytes: 4 (emoji) + 4 (" hi ") + 2 (Ж) + 1 (" ") = 11.
  EXPECT_EQ(Describe(r), t.text + "|ITALIC@0+4;BOLD@11+4;");
}

TEST(ToRichTextTest, EntityCoveringOnlyEmojiAndNestedAndAdjacent) {
  // "x😀y": bold over the emoji only; italic over all; code adjacent.
  TelegramText t;
  t.text = "x" + kGrin + "yz";
  t.entities = EntitiesFromJson(nlohmann::json::parse(
      R"([{"type":"italic","offset":0,"length":4},
          {"type":"bold","offset":1,"length":2},
          {"type":"code","offset":4,"length":1}])"));
  EXPECT_EQ(Describe(ToRichText(t)), t.text + "|ITALIC@0+6;BOLD@1+4;CODE@6+1;");
}

TEST(ToRichTextTest, LinksMentionsAndPre) {
  TelegramText t;
  t.text = "see site @alice Bob mail@x.io code";
  t.entities = EntitiesFromJson(nlohmann::json::parse(R"([
      {"type":"text_link","offset":4,"length":4,"url":"https://e.com/"},
      {"type":"mention","offset":9,"length":6},
      {"type":"text_mention","offset":16,"length":3,"user":{"id":42,"is_bot":false,"first_name":"Bob"}},
      {"type":"email","offset":20,"length":9},
      {"type":"pre","offset":30,"length":4,"language":"cpp"},
      {"type":"hashtag","offset":0,"length":3}])"));
  EXPECT_EQ(Describe(ToRichText(t)),
            t.text +
                "|LINK@4+4=https://e.com/;LINK@9+6=https://t.me/alice;"
                "MENTION@16+3#42;LINK@20+9=mailto:mail@x.io;PRE@30+4~cpp;");
}

TEST(ToRichTextTest, MalformedEntitiesAreClippedOrSkipped) {
  TelegramText t;
  t.text = "a" + kGrin;
  // Starts inside the surrogate pair and runs past the end; one lacks a type.
  t.entities = EntitiesFromJson(nlohmann::json::parse(
      R"([{"type":"bold","offset":2,"length":10},{"offset":0,"length":1}])"));
  ASSERT_THAT(t.entities, SizeIs(1));
  EXPECT_EQ(Describe(ToRichText(t)), t.text + "|BOLD@1+4;");
}

TEST(FromRichTextTest, SpansBecomeUtf16Entities) {
  v1::RichText r;
  r.set_text(kGrin + " bold " + kZhe + " link");
  // "bold" at bytes 5..9, "link" at bytes 13..17.
  *r.add_spans() = MakeSpan(v1::Span::BOLD, 5, 4);
  *r.add_spans() = MakeSpan(v1::Span::LINK, 13, 4, "https://x.org");
  TelegramText t = FromRichText(r, false);
  EXPECT_EQ(t.text, r.text());
  EXPECT_EQ(EntitiesToJson(t.entities), nlohmann::json::parse(R"([
      {"type":"bold","offset":3,"length":4},
      {"type":"text_link","offset":10,"length":4,"url":"https://x.org"}])"));
}

TEST(FromRichTextTest, RoundTripKeepsEveryKind) {
  TelegramText t;
  t.text = kGrin + "a b c d e f g h " + kGrin;
  t.entities = EntitiesFromJson(nlohmann::json::parse(R"([
      {"type":"bold","offset":0,"length":4},
      {"type":"italic","offset":2,"length":1},
      {"type":"underline","offset":4,"length":1},
      {"type":"strikethrough","offset":6,"length":1},
      {"type":"spoiler","offset":8,"length":1},
      {"type":"code","offset":10,"length":1},
      {"type":"pre","offset":12,"length":1,"language":"go"},
      {"type":"blockquote","offset":14,"length":1},
      {"type":"text_link","offset":16,"length":4,"url":"https://a.b/"}])"));
  TelegramText back = FromRichText(ToRichText(t), true);
  EXPECT_EQ(back.text, t.text);
  EXPECT_EQ(EntitiesToJson(back.entities), EntitiesToJson(t.entities));
}

TEST(FromRichTextTest, MentionsOnlyForTelegramUsers) {
  v1::RichText r;
  r.set_text("hi Bob");
  v1::Span s = MakeSpan(v1::Span::MENTION, 3, 3);
  s.set_user_id("42");
  *r.add_spans() = s;
  EXPECT_THAT(FromRichText(r, false).entities, SizeIs(0));
  TelegramText t = FromRichText(r, true);
  ASSERT_THAT(t.entities, SizeIs(1));
  EXPECT_EQ(t.entities[0].type, "text_mention");
  EXPECT_EQ(t.entities[0].user_id, 42);
  r.mutable_spans(0)->set_user_id("U123");  // not a Telegram id
  EXPECT_THAT(FromRichText(r, true).entities, SizeIs(0));
}

TEST(FromRichTextTest, DropsPartialOverlapsAndEntitiesInsideCode) {
  v1::RichText r;
  r.set_text("abcdefghij");
  *r.add_spans() = MakeSpan(v1::Span::BOLD, 0, 5);
  *r.add_spans() = MakeSpan(v1::Span::ITALIC, 3, 4);  // crosses bold's end
  *r.add_spans() = MakeSpan(v1::Span::CODE, 6, 4);
  *r.add_spans() = MakeSpan(v1::Span::BOLD, 7, 1);       // inside code
  *r.add_spans() = MakeSpan(v1::Span::UNDERLINE, 1, 2);  // nested in bold
  *r.add_spans() = MakeSpan(v1::Span::LINK, 2, 0, "https://x");  // empty
  TelegramText t = FromRichText(r, false);
  EXPECT_EQ(EntitiesToJson(t.entities), nlohmann::json::parse(R"([
      {"type":"bold","offset":0,"length":5},
      {"type":"underline","offset":1,"length":2},
      {"type":"code","offset":6,"length":4}])"));
}

TEST(SenderPrefixTest, BoldNameThenSeparator) {
  TelegramText inline_prefix =
      SenderPrefix(kGrin + "Alice (slack)", SenderStyle::kInline);
  EXPECT_EQ(inline_prefix.text, kGrin + "Alice (slack): ");
  EXPECT_EQ(
      EntitiesToJson(inline_prefix.entities),
      nlohmann::json::parse(R"([{"type":"bold","offset":0,"length":15}])"));
  EXPECT_EQ(SenderPrefix("Bob", SenderStyle::kOwnLine).text, "Bob\n");
  EXPECT_EQ(SenderPrefix("", SenderStyle::kInline).text, "");
}

TEST(SplitTest, ExactlyAtTheLimitIsOnePart) {
  TelegramText t;
  t.text = std::string(kMaxMessageLength, 'a');
  EXPECT_THAT(Split(t, kMaxMessageLength), SizeIs(1));
  // 2,048 emoji are 4,096 UTF-16 units (but 8,192 bytes): still one part.
  TelegramText e;
  for (int i = 0; i < 2048; ++i) e.text += kGrin;
  EXPECT_THAT(Split(e, kMaxMessageLength), SizeIs(1));
}

TEST(SplitTest, OneOverTheLimitIsTwoParts) {
  TelegramText t;
  t.text = std::string(kMaxMessageLength + 1, 'a');
  t.entities.push_back({"bold", 4090, 10, "", "", 0, ""});
  std::vector<TelegramText> parts = Split(t, kMaxMessageLength);
  ASSERT_THAT(parts, SizeIs(2));
  EXPECT_EQ(parts[0].text.size(), kMaxMessageLength);
  EXPECT_EQ(parts[1].text, "a");
  // The entity is cut in two and re-based.
  EXPECT_THAT(parts[0].entities,
              ElementsAre(TelegramEntity{"bold", 4090, 6, "", "", 0, ""}));
  EXPECT_THAT(parts[1].entities,
              ElementsAre(TelegramEntity{"bold", 0, 1, "", "", 0, ""}));
}

// Found by fuzz/fuzz_telegram_entities: a text within the limit came back
// as it was, with an entity past its end, where the header promises
// clipped ranges.
TEST(SplitTest, EntitiesOutOfRangeAreClippedInATextWithinTheLimit) {
  TelegramText t;
  t.text = "a" + kGrin + "b";  // 4 UTF-16 units.
  t.entities.push_back({"text_link", 0, 99, "https://x", "", 0, ""});
  t.entities.push_back({"bold", 7, 2, "", "", 0, ""});
  std::vector<TelegramText> parts = Split(t, 100);
  ASSERT_THAT(parts, SizeIs(1));
  EXPECT_EQ(parts[0].text, t.text);
  EXPECT_THAT(
      parts[0].entities,
      ElementsAre(TelegramEntity{"text_link", 0, 4, "https://x", "", 0, ""}));
  TelegramText cut = Truncate(t, 100);
  EXPECT_EQ(cut.text, t.text);
  EXPECT_THAT(cut.entities, ElementsAre(TelegramEntity{
                                "text_link", 0, 4, "https://x", "", 0, ""}));
}

TEST(SplitTest, NeverSplitsASurrogatePair) {
  // 4,095 'a' then an emoji: the emoji would straddle the limit.
  TelegramText t;
  t.text = std::string(kMaxMessageLength - 1, 'a') + kGrin;
  std::vector<TelegramText> parts = Split(t, kMaxMessageLength);
  ASSERT_THAT(parts, SizeIs(2));
  EXPECT_EQ(parts[0].text, std::string(kMaxMessageLength - 1, 'a'));
  EXPECT_EQ(parts[1].text, kGrin);
  for (const TelegramText& p : parts) {
    EXPECT_LE(Utf16Length(p.text), kMaxMessageLength);
  }
}

TEST(SplitTest, PrefersLineBreaksThenSpaces) {
  TelegramText t;
  t.text = std::string(3000, 'a') + "\n" + std::string(500, 'b') + " " +
           std::string(1000, 'c');
  std::vector<TelegramText> parts = Split(t, kMaxMessageLength);
  ASSERT_THAT(parts, SizeIs(2));
  EXPECT_EQ(parts[0].text, std::string(3000, 'a'));
  EXPECT_EQ(parts[1].text,
            std::string(500, 'b') + " " + std::string(1000, 'c'));

  TelegramText s;
  s.text = std::string(4000, 'a') + " " + std::string(200, 'b');
  parts = Split(s, kMaxMessageLength);
  ASSERT_THAT(parts, SizeIs(2));
  EXPECT_EQ(parts[0].text, std::string(4000, 'a'));
  EXPECT_EQ(parts[1].text, std::string(200, 'b'));
}

TEST(SplitTest, MaxPartsCutsTheLastWithEllipsis) {
  TelegramText t;
  t.text = std::string(10, 'a');
  std::vector<TelegramText> parts = Split(t, 4, 2);
  ASSERT_THAT(parts, SizeIs(2));
  EXPECT_EQ(parts[0].text, "aaaa");
  EXPECT_EQ(parts[1].text, "aaa\xE2\x80\xA6");
}

TEST(RenderPartsTest, PrefixRepeatedAndEveryPartWithinTheLimit) {
  TelegramText prefix = SenderPrefix("Alice (slack)", SenderStyle::kInline);
  TelegramText body;
  body.text = std::string(5000, 'x');
  body.entities.push_back({"italic", 0, 5000, "", "", 0, ""});
  std::vector<TelegramText> parts =
      RenderParts(prefix, body, kMaxMessageLength);
  ASSERT_THAT(parts, SizeIs(2));
  size_t total = 0;
  for (const TelegramText& p : parts) {
    EXPECT_LE(Utf16Length(p.text), kMaxMessageLength);
    EXPECT_EQ(p.text.substr(0, 15), "Alice (slack): ");
    ASSERT_THAT(p.entities, SizeIs(2));
    EXPECT_EQ(p.entities[0], (TelegramEntity{"bold", 0, 13, "", "", 0, ""}));
    EXPECT_EQ(p.entities[1].offset, 15u);
    total += p.entities[1].length;
  }
  EXPECT_EQ(total, 5000u);
  EXPECT_EQ(Utf16Length(parts[0].text), kMaxMessageLength);
}

TEST(TruncateTest, CutsWithEllipsisAndClipsEntities) {
  TelegramText t;
  t.text = "abcdef";
  t.entities.push_back({"bold", 2, 4, "", "", 0, ""});
  TelegramText cut = Truncate(t, 4);
  EXPECT_EQ(cut.text, "abc\xE2\x80\xA6");
  EXPECT_THAT(cut.entities,
              ElementsAre(TelegramEntity{"bold", 2, 1, "", "", 0, ""}));
  EXPECT_EQ(Truncate(t, 6).text, "abcdef");
}

TEST(FormatSizeTest, HumanUnits) {
  EXPECT_EQ(FormatSize(12), "12 B");
  EXPECT_EQ(FormatSize(2048), "2 KB");
  EXPECT_EQ(FormatSize(20ull << 20), "20.0 MB");
  EXPECT_EQ(FormatSize(52428801), "50.0 MB");
}

}  // namespace
}  // namespace imbridge::adapters::telegram
