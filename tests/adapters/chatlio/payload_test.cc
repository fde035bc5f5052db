// Chatlio's webhook payloads (the seed's literal JSON, ../shared/seeds/003_*
// and platforms.md §5) parsed and turned into the bridge's notices.

#include "adapters/chatlio/payload.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/chatlio/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::chatlio {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The transcript example of Chatlio's documentation, as the seed quotes it
// (the "// We use ..." comment removed: it is not JSON).
constexpr char kTranscript[] = R"json({
"agentEmail": "someone@example.com",
"agentName": "Some One",
"archiveUrl": "https://yourcompany.slack.com/archives/cl-tiger128",
"extraData": ["extra", "stuff", "here"],
"channelId": "C03FVS2UR",
"channelName": "costa-mesa-california-us-133",
"conversationUUID": "e3d1800d-2d9e-4966-4500-9ff986cfa197",
"endedAt": "2018-05-19T18:14:32.000026941+02:00",
"htmlBody": "<HTML output of transcript will be in here, useful for simply display chat conversation in external system that accepts HTML>",
"textBody": "<Text output of transcript will be in here, useful for simply display chat conversation in external system that accepts plain text messages>",
"messages": [
{"text": "Hi! I love your webhooks!", "ts": "1469725409.000005",
 "sentAt": "2016-07-28T19:03:29.000005006+02:00", "userId": "",
 "username": "costa-mesa-california-us", "isVisitorMsg": true},
{"text": "Great, thanks for letting us know!", "ts": "1469725427.000007",
 "sentAt": "2016-07-28T19:03:47.000006914+02:00", "userId": "U0N2GKA2G",
 "username": "Some O.", "isVisitorMsg": false}
],
"startedAt": "2015-07-19T14:38:15.560106+02:00",
"visitorEmail": "",
"replyToEmail": "someone@example.com",
"visitorName": "costa-mesa-california-us-133",
"visitorTraits": {"current_page": "http://yourcompany.com/the-shop",
                  "time_on_page": "30min", "logged_in": "false"},
"visitor": {
"email": "", "UUID": "2b959179-d06f-4fec-9c6e-1c98468d1d63", "name": "",
"identUserId": "", "identTraits": "",
"userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/54.0.2809.0 Safari/537.36",
"handle": "costa-mesa-california-us-133",
"currentPage": "http://chatlio.com/docs", "referrerURL": "",
"createdAt": "2016-07-28T19:03:11.080407+02:00", "IPAddress": "64.145.94.51",
"location": "Costa Mesa, California, United States"
},
"slackTeamID": "T0N1FQTOD"
})json";

// An event (new conversation, feedback, not answered) in the fields
// platforms.md lists, with the visitor of the seed.
constexpr char kEvent[] = R"json({
"visitor": {
"email": "ann@example.com", "UUID": "2b959179-d06f-4fec-9c6e-1c98468d1d63",
"name": "Ann Lee", "identUserId": "", "identTraits": "",
"userAgent": "Mozilla/5.0", "handle": "costa-mesa-california-us-133",
"currentPage": "http://chatlio.com/docs", "referrerURL": "https://www.google.com/",
"createdAt": "2016-07-28T19:03:11.080407+02:00", "IPAddress": "64.145.94.51",
"location": "Costa Mesa, California, United States"
},
"message": "Hi! I love your webhooks!",
"conversationUUID": "e3d1800d-2d9e-4966-4500-9ff986cfa197",
"channelId": "C03FVS2UR",
"slackChannelName": "costa-mesa-california-us-133",
"slackChannelId": "C03FVS2UR"
})json";

// An offline message: name, email, emailPretty, message, visitor.
constexpr char kOffline[] = R"json({
"name": "Bob Stone", "email": "bob@example.com",
"emailPretty": "Bob Stone <bob@example.com>",
"message": "Please call me back tomorrow.",
"visitor": {"UUID": "9c0b3a4e-0000-4000-8000-000000000001", "name": "",
            "handle": "berlin-de-7", "currentPage": "https://shop.example/cart",
            "referrerURL": "", "location": "Berlin, Germany"}
})json";

ChatlioWebhook Parse(const std::string& body,
                     WebhookKind named = WebhookKind::kUnknown) {
  ChatlioWebhook w;
  std::string error;
  EXPECT_EQ(ParseChatlioWebhook(body, named, &w, &error), ParseOutcome::kParsed)
      << error;
  return w;
}

TEST(ChatlioPayloadTest, TranscriptOfTheSeed) {
  ChatlioWebhook w = Parse(kTranscript);
  EXPECT_EQ(w.kind, WebhookKind::kTranscript);
  EXPECT_EQ(w.conversation_uuid, "e3d1800d-2d9e-4966-4500-9ff986cfa197");
  EXPECT_EQ(w.channel_id, "C03FVS2UR");
  EXPECT_EQ(w.channel_name, "costa-mesa-california-us-133");
  EXPECT_EQ(w.agent_name, "Some One");
  EXPECT_EQ(w.archive_url,
            "https://yourcompany.slack.com/archives/cl-tiger128");
  EXPECT_EQ(w.message_count, 2);
  EXPECT_THAT(w.html_body, HasSubstr("<HTML output"));
  EXPECT_EQ(w.visitor.location, "Costa Mesa, California, United States");
  // No name given: the handle Chatlio made.
  EXPECT_EQ(VisitorDisplayName(w), "costa-mesa-california-us-133");
  // The URL may name it too.
  EXPECT_EQ(Parse(kTranscript, WebhookKind::kTranscript).kind,
            WebhookKind::kTranscript);
}

TEST(ChatlioPayloadTest, EventsTakeTheTypeTheUrlNames) {
  EXPECT_EQ(Parse(kEvent).kind, WebhookKind::kNewConversation);
  EXPECT_EQ(Parse(kEvent, WebhookKind::kNewConversation).kind,
            WebhookKind::kNewConversation);
  EXPECT_EQ(Parse(kEvent, WebhookKind::kFeedback).kind, WebhookKind::kFeedback);
  ChatlioWebhook w = Parse(kEvent, WebhookKind::kNotAnswered);
  EXPECT_EQ(w.kind, WebhookKind::kNotAnswered);
  EXPECT_EQ(w.channel_id, "C03FVS2UR");
  EXPECT_EQ(w.channel_name, "costa-mesa-california-us-133");
  EXPECT_EQ(w.message, "Hi! I love your webhooks!");
  EXPECT_EQ(w.visitor.referrer, "https://www.google.com/");
  EXPECT_EQ(VisitorDisplayName(w), "Ann Lee");
}

TEST(ChatlioPayloadTest, OfflineMessage) {
  ChatlioWebhook w = Parse(kOffline);
  EXPECT_EQ(w.kind, WebhookKind::kOfflineMessage);
  EXPECT_EQ(w.sender_name, "Bob Stone");
  EXPECT_EQ(w.sender_email, "bob@example.com");
  EXPECT_EQ(w.message, "Please call me back tomorrow.");
  EXPECT_EQ(w.conversation_uuid, "");
  EXPECT_EQ(VisitorDisplayName(w), "Bob Stone");
  EXPECT_EQ(Parse(kOffline, WebhookKind::kOfflineMessage).kind,
            WebhookKind::kOfflineMessage);
}

TEST(ChatlioPayloadTest, MalformedAndUnknownShapes) {
  ChatlioWebhook w;
  std::string error;
  for (const char* bad : {"", "{", "[1,2]", "\"text\"", "{\"a\":}"}) {
    EXPECT_EQ(ParseChatlioWebhook(bad, WebhookKind::kUnknown, &w, &error),
              ParseOutcome::kMalformed)
        << bad;
  }
  for (const char* unknown :
       {"{}", R"({"hello": "world"})", R"({"conversationUUID": "x"})",
        R"({"textBody": "no conversation"})"}) {
    EXPECT_EQ(ParseChatlioWebhook(unknown, WebhookKind::kUnknown, &w, &error),
              ParseOutcome::kUnknown)
        << unknown;
  }
  // A URL naming another type than the body is.
  EXPECT_EQ(ParseChatlioWebhook(kEvent, WebhookKind::kTranscript, &w, &error),
            ParseOutcome::kUnknown);
  EXPECT_EQ(
      ParseChatlioWebhook(kTranscript, WebhookKind::kFeedback, &w, &error),
      ParseOutcome::kUnknown);
  // Fields of other types are taken as absent, not thrown on.
  EXPECT_EQ(
      ParseChatlioWebhook(absl::StrReplaceAll(kEvent, {{"\"Ann Lee\"", "42"}}),
                          WebhookKind::kUnknown, &w, &error),
      ParseOutcome::kParsed);
  EXPECT_EQ(VisitorDisplayName(w), "costa-mesa-california-us-133");
}

TEST(ChatlioPayloadTest, KindNamesRoundTrip) {
  for (WebhookKind kind :
       {WebhookKind::kNewConversation, WebhookKind::kOfflineMessage,
        WebhookKind::kFeedback, WebhookKind::kNotAnswered,
        WebhookKind::kTranscript}) {
    EXPECT_EQ(WebhookKindFromName(WebhookKindName(kind)), kind);
  }
  EXPECT_EQ(WebhookKindFromName("transcripts"), WebhookKind::kUnknown);
}

TEST(ChatlioFormatTest, NewConversationNotice) {
  ChatlioWebhook w = Parse(kEvent);
  v1::RichText text = NoticeText(w, "https://acme.slack.com/");
  EXPECT_EQ(text.text(),
            "New website conversation with Ann Lee\n"
            "Location: Costa Mesa, California, United States\n"
            "Page: http://chatlio.com/docs\n"
            "Referrer: https://www.google.com/\n"
            "Email: ann@example.com\n"
            "First message: Hi! I love your webhooks!\n"
            "Slack channel: #costa-mesa-california-us-133");
  ASSERT_EQ(text.spans_size(), 4);
  EXPECT_EQ(text.spans(0).kind(), v1::Span::BOLD);
  EXPECT_EQ(text.spans(0).length(),
            std::string("New website conversation with Ann Lee").size());
  EXPECT_EQ(text.spans(1).kind(), v1::Span::LINK);
  EXPECT_EQ(text.spans(1).url(), "http://chatlio.com/docs");
  const v1::Span& channel = text.spans(3);
  EXPECT_EQ(channel.kind(), v1::Span::LINK);
  EXPECT_EQ(channel.url(), "https://acme.slack.com/archives/C03FVS2UR");
  EXPECT_EQ(text.text().substr(channel.offset(), channel.length()),
            "#costa-mesa-california-us-133");
}

TEST(ChatlioFormatTest, OtherNoticesAndSlackLinks) {
  EXPECT_THAT(NoticeText(Parse(kEvent, WebhookKind::kFeedback), "").text(),
              HasSubstr("Feedback from Ann Lee\n"));
  EXPECT_THAT(NoticeText(Parse(kEvent, WebhookKind::kFeedback), "").text(),
              HasSubstr("\nFeedback: Hi! I love your webhooks!"));
  EXPECT_THAT(NoticeText(Parse(kEvent, WebhookKind::kNotAnswered), "").text(),
              HasSubstr("Ann Lee was not answered in time\n"));
  v1::RichText offline = NoticeText(Parse(kOffline), "");
  EXPECT_EQ(offline.text(),
            "Offline message from Bob Stone\n"
            "Location: Berlin, Germany\n"
            "Page: https://shop.example/cart\n"
            "Email: bob@example.com\n"
            "Message: Please call me back tomorrow.");
  EXPECT_EQ(SlackChannelUrl("", "C1"),
            "https://slack.com/app_redirect?channel=C1");
  EXPECT_EQ(SlackChannelUrl("https://acme.slack.com", "C1"),
            "https://acme.slack.com/archives/C1");
  EXPECT_EQ(SlackChannelUrl("https://acme.slack.com", ""), "");
}

TEST(ChatlioFormatTest, TranscriptEventCarriesTheHtmlFile) {
  ChatlioWebhook w = Parse(kTranscript);
  v1::Event e = WebhookEvent("site", w, "", absl::FromUnixSeconds(1700000000));
  EXPECT_EQ(e.key(),
            "chatlio:site:e3d1800d-2d9e-4966-4500-9ff986cfa197:transcript");
  EXPECT_EQ(e.channel().platform(), "chatlio");
  EXPECT_EQ(e.channel().account(), "site");
  EXPECT_EQ(e.channel().chat_id(), "notices");
  EXPECT_EQ(e.occurred_at_ms(), 1700000000000);
  const v1::MessagePosted& p = e.posted();
  EXPECT_EQ(p.message_id(), "transcript:e3d1800d-2d9e-4966-4500-9ff986cfa197");
  EXPECT_EQ(p.sender().display_name(), "Chatlio");
  EXPECT_TRUE(p.sender().is_bot());
  EXPECT_EQ(p.text().text(),
            "Transcript of the conversation with costa-mesa-california-us-133 "
            "(agent Some One)\n"
            "Messages: 2\n"
            "Slack channel: #costa-mesa-california-us-133\n\n"
            "<Text output of transcript will be in here, useful for simply "
            "display chat conversation in external system that accepts plain "
            "text messages>");
  ASSERT_EQ(p.attachments_size(), 1);
  EXPECT_EQ(p.attachments(0).name(),
            "chatlio-transcript-costa-mesa-california-us-133.html");
  EXPECT_EQ(p.attachments(0).mime_type(), "text/html");
  EXPECT_EQ(p.attachments(0).size(), w.html_body.size());
  EXPECT_EQ(p.attachments(0).blob_id(), "");
}

TEST(ChatlioFormatTest, KeysSayConversationAndType) {
  EXPECT_EQ(WebhookEventKey("site", Parse(kEvent)),
            "chatlio:site:e3d1800d-2d9e-4966-4500-9ff986cfa197:"
            "new-conversation");
  EXPECT_EQ(WebhookEventKey("site", Parse(kEvent, WebhookKind::kFeedback)),
            "chatlio:site:e3d1800d-2d9e-4966-4500-9ff986cfa197:feedback");
  // Offline messages: by visitor and message.
  std::string offline = WebhookEventKey("site", Parse(kOffline));
  EXPECT_THAT(offline, HasSubstr("chatlio:site:offline-message:"
                                 "9c0b3a4e-0000-4000-8000-000000000001:"));
  EXPECT_EQ(offline, WebhookEventKey("site", Parse(kOffline)));
  EXPECT_NE(offline,
            WebhookEventKey("site", Parse(absl::StrReplaceAll(
                                        kOffline, {{"tomorrow", "today"}}))));
  v1::Event e = WebhookEvent("site", Parse(kOffline), "", absl::Now());
  EXPECT_THAT(e.posted().message_id(), HasSubstr("offline-message:"));
  EXPECT_THAT(e.posted().message_id(), Not(HasSubstr("chatlio:site")));
}

}  // namespace
}  // namespace imbridge::adapters::chatlio
