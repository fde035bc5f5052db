// Slack mrkdwn and legacy attachments to RichText.

#include "adapters/webhook/format.h"

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::webhook {
namespace {

v1::RichText Text(const std::string& textproto) {
  v1::RichText out;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(textproto, &out))
      << textproto;
  return out;
}

MATCHER_P(EqualsProto, expected, "") {
  std::string diff;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  if (differencer.Compare(expected, arg)) return true;
  *result_listener << diff << "\nactual: " << arg.ShortDebugString();
  return false;
}

v1::RichText Mrkdwn(const std::string& text, bool formatting = true) {
  v1::RichText out;
  AppendMrkdwn(text, formatting, &out);
  return out;
}

TEST(MrkdwnTest, PlainTextAndEntities) {
  EXPECT_THAT(Mrkdwn("a &lt;b&gt; &amp; c &quot;"),
              EqualsProto(Text(R"(text: "a <b> & c &quot;")")));
}

TEST(MrkdwnTest, BoldItalicStrikeCode) {
  EXPECT_THAT(Mrkdwn("*Deploy* _done_ ~old~ `v1.2`"),
              EqualsProto(Text(R"(text: "Deploy done old v1.2"
                          spans { kind: BOLD offset: 0 length: 6 }
                          spans { kind: ITALIC offset: 7 length: 4 }
                          spans { kind: STRIKE offset: 12 length: 3 }
                          spans { kind: CODE offset: 16 length: 4 })")));
}

TEST(MrkdwnTest, MarkersInsideWordsAreText) {
  EXPECT_THAT(Mrkdwn("snake_case_name 2*3*4 a * b *"),
              EqualsProto(Text(R"(text: "snake_case_name 2*3*4 a * b *")")));
}

TEST(MrkdwnTest, NestedFormattingAndUtf8Offsets) {
  EXPECT_THAT(Mrkdwn("Привет *жирный _курсив_*"),
              EqualsProto(Text(R"(text: "Привет жирный курсив"
                                  spans { kind: BOLD offset: 13 length: 25 }
                                  spans { kind: ITALIC offset: 26 length: 12 })")));
}

TEST(MrkdwnTest, LinksMentionsAndSpecials) {
  EXPECT_THAT(
      Mrkdwn("see <https://ex.com/a?b=1&amp;c=2|the doc> or <https://x.org> "
             "<@U123> <#C1|general> <!here> <!date^1392734382^{date}|Feb 18>"),
      EqualsProto(Text(
          R"(text: "see the doc or https://x.org @U123 #general @here Feb 18"
                          spans { kind: LINK offset: 4 length: 7
                                  url: "https://ex.com/a?b=1&c=2" }
                          spans { kind: LINK offset: 15 length: 13
                                  url: "https://x.org" })")));
  // Angle brackets without a scheme stay text.
  EXPECT_THAT(Mrkdwn("x <not a link> y"),
              EqualsProto(Text(R"(text: "x <not a link> y")")));
}

TEST(MrkdwnTest, PreBlocksAndQuotes) {
  EXPECT_THAT(
      Mrkdwn("before\n```\nint *p = 0;\n```\n> quoted *line*\nafter"),
      EqualsProto(Text(R"(text: "before\nint *p = 0;\nquoted line\nafter"
                                  spans { kind: PRE offset: 7 length: 11 }
                                  spans { kind: QUOTE offset: 19 length: 11 }
                                  spans { kind: BOLD offset: 26 length: 4 })")));
}

TEST(MrkdwnTest, WithoutFormattingOnlyLinksAreConverted) {
  EXPECT_THAT(Mrkdwn("*a* <https://x.org|b> > c", false),
              EqualsProto(Text(R"(text: "*a* b > c"
                                  spans { kind: LINK offset: 4 length: 1
                                          url: "https://x.org" })")));
}

TEST(AttachmentsTest, RenderedLikeSlackWithTitleLink) {
  nlohmann::json attachments = nlohmann::json::parse(R"([
    {"fallback": "Build 12 failed", "pretext": "CI report",
     "title": "Build 12", "title_link": "https://ci.example/12",
     "text": "*failed* on main", "mrkdwn_in": ["text"],
     "fields": [{"title": "Branch", "value": "main", "short": true}],
     "footer": "ci", "color": "danger"}
  ])");
  v1::RichText out = Mrkdwn("Heads up");
  AppendSlackAttachments(attachments, &out);
  EXPECT_THAT(out, EqualsProto(Text(R"(
      text: "Heads up\nCI report\nBuild 12\nfailed on main\nBranch: main\nci"
      spans { kind: LINK offset: 19 length: 8 url: "https://ci.example/12" }
      spans { kind: BOLD offset: 19 length: 8 }
      spans { kind: BOLD offset: 28 length: 6 }
      spans { kind: BOLD offset: 43 length: 6 })")));
}

TEST(AttachmentsTest, FallbackWhenNothingElseAndMrkdwnOnlyWhereAsked) {
  nlohmann::json attachments = nlohmann::json::parse(R"([
    {"fallback": "only *fallback*", "color": "good"},
    {"text": "*not bold* <https://x.org|link>"},
    "not an object",
    {"title": 5}
  ])");
  v1::RichText out;
  AppendSlackAttachments(attachments, &out);
  EXPECT_THAT(out, EqualsProto(Text(R"(
      text: "only *fallback*\n*not bold* link"
      spans { kind: LINK offset: 27 length: 4 url: "https://x.org" })")));
}

}  // namespace
}  // namespace imbridge::adapters::webhook
