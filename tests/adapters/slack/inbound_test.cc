// Events API callbacks -> bridge events (the Slack adapter's inbound
// conversion), fed with literal payloads.

#include "adapters/slack/inbound.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::slack {
namespace {

using nlohmann::json;

BotIdentity Self() {
  BotIdentity id;
  id.team_id = "T1";
  id.user_id = "UBOT";
  id.bot_id = "BBOT";
  id.app_id = "AAPP";
  return id;
}

SlackUser Lookup(absl::string_view id) {
  SlackUser u;
  u.id = std::string(id);
  if (id == "U1") {
    u.display_name = "Ann";
    u.avatar_url = "https://avatars.example/ann.png";
  } else {
    u.display_name = std::string(id);
  }
  return u;
}

InboundConversion Convert(const std::string& payload) {
  return ConvertEventCallback(json::parse(payload), "work", Self(), Lookup);
}

v1::Event Parse(const std::string& text) {
  v1::Event e;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &e)) << text;
  return e;
}

void ExpectEvent(const InboundConversion& c, const std::string& expected) {
  ASSERT_TRUE(c.event.has_value()) << c.ignored;
  std::string diff;
  google::protobuf::util::MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  EXPECT_TRUE(d.Compare(Parse(expected), *c.event)) << diff;
}

TEST(SlackInbound, EventsRequestTypeIsAStringOrAbsent) {
  EXPECT_EQ(*EventsRequestType(json::parse(R"({"type":"event_callback"})")),
            "event_callback");
  EXPECT_EQ(*EventsRequestType(json::parse(R"({"token":"x"})")), "");
  for (const char* bad : {R"({"type":1})", R"({"type":null})",
                          R"({"type":["url_verification"]})", "[1]", "\"x\""}) {
    absl::StatusOr<std::string> type = EventsRequestType(json::parse(bad));
    EXPECT_TRUE(absl::IsInvalidArgument(type.status())) << bad;
  }
}

TEST(SlackInbound, PlainMessage) {
  auto c = Convert(R"({"type":"event_callback","team_id":"T1","event_id":"Ev1",
    "event_time":1700000000,
    "event":{"type":"message","channel":"C1","user":"U1",
             "text":"hi *all* &amp; <@U1>","ts":"1700000000.000100"}})");
  ExpectEvent(c, R"pb(
    key: "slack:work:Ev1"
    channel { platform: "slack" account: "work" chat_id: "C1" }
    occurred_at_ms: 1700000000000
    posted {
      message_id: "1700000000.000100"
      sender {
        platform: "slack"
        id: "U1"
        display_name: "Ann"
        avatar_url: "https://avatars.example/ann.png"
      }
      text {
        text: "hi all & @Ann"
        spans { kind: BOLD offset: 3 length: 3 }
        spans { kind: MENTION offset: 9 length: 4 user_id: "U1" }
      }
    })pb");
}

// Found by fuzz_slack_events: an event_time whose milliseconds do not fit
// in 64 bits overflowed (undefined behaviour). A time outside 1970-9999, or
// an event_ts that is not a finite number in that range, is unknown (0).
TEST(SlackInbound, TimesOutOfRangeAreUnknown) {
  for (const char* time :
       {R"("event_time":13555175235517523)", R"("event_time":-1)",
        R"("event_time":9223372036854775807)",
        R"("event":{"type":"message","channel":"C1",
                              "user":"U1","text":"x","ts":"1.0",
                              "event_ts":"1e300"})",
        R"("event":{"type":"message","channel":"C1",
                              "user":"U1","text":"x","ts":"1.0",
                              "event_ts":"nan"})"}) {
    std::string payload =
        absl::StrCat(R"({"type":"event_callback","event_id":"Ev9",)", time);
    if (!absl::StrContains(time, "\"event\"")) {
      absl::StrAppend(&payload, R"(,"event":{"type":"message","channel":"C1",
          "user":"U1","text":"x","ts":"1.0"})");
    }
    absl::StrAppend(&payload, "}");
    InboundConversion c = Convert(payload);
    ASSERT_TRUE(c.event.has_value()) << payload << " " << c.ignored;
    EXPECT_EQ(c.event->occurred_at_ms(), 0) << payload;
  }
  // The last second of year 9999 still counts.
  InboundConversion last = Convert(R"({"type":"event_callback",
      "event_id":"Ev10","event_time":253402300799,
      "event":{"type":"message","channel":"C1","user":"U1","text":"x",
               "ts":"1.0"}})");
  ASSERT_TRUE(last.event.has_value());
  EXPECT_EQ(last.event->occurred_at_ms(), 253402300799000);
}

TEST(SlackInbound, ThreadReplyCarriesRoot) {
  auto c = Convert(R"({"type":"event_callback","event_id":"Ev2",
    "event":{"type":"message","channel":"C1","user":"U2","text":"reply",
             "ts":"2.000","thread_ts":"1.000","parent_user_id":"U1"}})");
  ASSERT_TRUE(c.event.has_value()) << c.ignored;
  EXPECT_EQ(c.event->posted().message_id(), "2.000");
  EXPECT_EQ(c.event->posted().thread_root_id(), "1.000");
  // A thread root itself (thread_ts == ts) is not a reply.
  auto root = Convert(R"({"type":"event_callback","event_id":"Ev3",
    "event":{"type":"message","channel":"C1","user":"U2","text":"root",
             "ts":"1.000","thread_ts":"1.000"}})");
  ASSERT_TRUE(root.event.has_value());
  EXPECT_EQ(root.event->posted().thread_root_id(), "");
}

TEST(SlackInbound, MessageChangedIsAnEdit) {
  auto c = Convert(R"({"type":"event_callback","event_id":"Ev4",
    "event":{"type":"message","subtype":"message_changed","hidden":true,
             "channel":"C1","ts":"9.000",
             "message":{"type":"message","user":"U1","text":"new _text_",
                        "ts":"1.000","edited":{"user":"U1","ts":"9.000"}},
             "previous_message":{"type":"message","user":"U1",
                                 "text":"old","ts":"1.000"}}})");
  ExpectEvent(c, R"pb(
    key: "slack:work:Ev4"
    channel { platform: "slack" account: "work" chat_id: "C1" }
    edited {
      message_id: "1.000"
      editor {
        platform: "slack"
        id: "U1"
        display_name: "Ann"
        avatar_url: "https://avatars.example/ann.png"
      }
      text {
        text: "new text"
        spans { kind: ITALIC offset: 4 length: 4 }
      }
    })pb");
}

TEST(SlackInbound, MessageChangedWithSameTextIsIgnored) {
  // Reply counts and unfurls change the message but not its text.
  auto c = Convert(R"({"type":"event_callback","event_id":"Ev5",
    "event":{"type":"message","subtype":"message_changed","channel":"C1",
             "ts":"9.000",
             "message":{"type":"message","user":"U1","text":"same",
                        "ts":"1.000","reply_count":1},
             "previous_message":{"type":"message","user":"U1","text":"same",
                                 "ts":"1.000"}}})");
  EXPECT_FALSE(c.event.has_value());
  EXPECT_EQ(c.ignored, "text unchanged");
}

TEST(SlackInbound, MessageDeleted) {
  auto c = Convert(R"({"type":"event_callback","event_id":"Ev6",
    "event":{"type":"message","subtype":"message_deleted","hidden":true,
             "channel":"C1","ts":"9.000","deleted_ts":"1.000",
             "previous_message":{"type":"message","user":"U1","text":"x",
                                 "ts":"1.000"}}})");
  ASSERT_TRUE(c.event.has_value()) << c.ignored;
  EXPECT_EQ(c.event->deleted().message_id(), "1.000");
  EXPECT_EQ(c.event->key(), "slack:work:Ev6");
}

TEST(SlackInbound, OwnPostsAreNeverMirrored) {
  for (
      const char* payload : {
          R"({"type":"event_callback","event_id":"E1","event":{"type":"message",
              "channel":"C1","bot_id":"BBOT","text":"x","ts":"1.0"}})",
          R"({"type":"event_callback","event_id":"E2","event":{"type":"message",
              "subtype":"bot_message","channel":"C1","bot_id":"BOTHER",
              "app_id":"AAPP","username":"Ann - telegram","text":"x",
              "ts":"1.0"}})",
          R"({"type":"event_callback","event_id":"E3","event":{"type":"message",
              "channel":"C1","user":"UBOT","text":"x","ts":"1.0"}})",
          R"({"type":"event_callback","event_id":"E4","event":{"type":"message",
              "subtype":"message_changed","channel":"C1","ts":"2.0",
              "message":{"bot_id":"BBOT","text":"y","ts":"1.0"},
              "previous_message":{"bot_id":"BBOT","text":"x","ts":"1.0"}}})",
          R"({"type":"event_callback","event_id":"E5","event":{"type":"message",
              "subtype":"message_deleted","channel":"C1","ts":"2.0",
              "deleted_ts":"1.0",
              "previous_message":{"bot_id":"BBOT","text":"x","ts":"1.0",
              "bot_profile":{"app_id":"AAPP"}}}})",
      }) {
    auto c = Convert(payload);
    EXPECT_FALSE(c.event.has_value()) << payload;
    EXPECT_EQ(c.ignored, "own post") << payload;
  }
}

TEST(SlackInbound, OtherBotsAreMirrored) {
  auto c = Convert(R"({"type":"event_callback","event_id":"Ev7",
    "event":{"type":"message","subtype":"bot_message","channel":"C1",
             "bot_id":"BJIRA","username":"Jira","text":"ticket","ts":"1.0"}})");
  ASSERT_TRUE(c.event.has_value()) << c.ignored;
  EXPECT_EQ(c.event->posted().sender().display_name(), "Jira");
  EXPECT_TRUE(c.event->posted().sender().is_bot());
}

TEST(SlackInbound, FileShareListsFilesToDownload) {
  auto c = Convert(R"({"type":"event_callback","event_id":"Ev8",
    "event":{"type":"message","subtype":"file_share","channel":"C1",
             "user":"U1","text":"look","ts":"1.0",
             "files":[{"id":"F1","name":"cat.png","mimetype":"image/png",
                       "size":1234,
                       "url_private":"https://files.slack.com/files-pri/T-F1/cat.png",
                       "url_private_download":"https://files.slack.com/files-pri/T-F1/download/cat.png"},
                      {"id":"F2","mode":"tombstone"}]}})");
  ASSERT_TRUE(c.event.has_value()) << c.ignored;
  const auto& p = c.event->posted();
  ASSERT_EQ(p.attachments_size(), 2);
  EXPECT_EQ(p.attachments(0).name(), "cat.png");
  EXPECT_EQ(p.attachments(0).mime_type(), "image/png");
  EXPECT_EQ(p.attachments(0).size(), 1234u);
  EXPECT_EQ(p.attachments(0).kind(), v1::Attachment::IMAGE);
  EXPECT_EQ(p.attachments(0).unavailable_reason(), "");
  EXPECT_NE(p.attachments(1).unavailable_reason(), "");
  EXPECT_THAT(
      c.file_urls,
      ::testing::ElementsAre(
          "https://files.slack.com/files-pri/T-F1/download/cat.png", ""));
}

TEST(SlackInbound, Membership) {
  auto joined = Convert(R"({"type":"event_callback","event_id":"Ev9",
    "event":{"type":"member_joined_channel","user":"U1","channel":"C1",
             "channel_type":"C","team":"T1"}})");
  ASSERT_TRUE(joined.event.has_value()) << joined.ignored;
  EXPECT_TRUE(joined.event->membership().joined());
  EXPECT_EQ(joined.event->membership().user().display_name(), "Ann");
  EXPECT_EQ(joined.event->channel().chat_id(), "C1");
  auto left = Convert(R"({"type":"event_callback","event_id":"Ev10",
    "event":{"type":"member_left_channel","user":"U1","channel":"C1"}})");
  ASSERT_TRUE(left.event.has_value());
  EXPECT_FALSE(left.event->membership().joined());
  auto self = Convert(R"({"type":"event_callback","event_id":"Ev11",
    "event":{"type":"member_joined_channel","user":"UBOT","channel":"C1"}})");
  EXPECT_FALSE(self.event.has_value());
}

TEST(SlackInbound, UnsupportedEventsAreIgnored) {
  EXPECT_FALSE(Convert(R"({"type":"event_callback","event_id":"E",
    "event":{"type":"message","subtype":"channel_join","channel":"C1",
             "user":"U1","text":"joined","ts":"1.0"}})")
                   .event.has_value());
  EXPECT_FALSE(Convert(R"({"type":"event_callback","event_id":"E",
    "event":{"type":"reaction_added","user":"U1"}})")
                   .event.has_value());
  EXPECT_FALSE(Convert(R"({"type":"event_callback",
    "event":{"type":"message","channel":"C1","text":"no id","ts":"1.0"}})")
                   .event.has_value());
}

// The service user's messages (user token, no bot_id) are the bridge's
// copies only where the copy check says so; anyone else's never ask it.
TEST(SlackInbound, ServiceUserCopiesAreAskedAboutAndIgnored) {
  BotIdentity self = Self();
  self.service_user_id = "USUPPORT";
  std::vector<std::string> asked;
  CopyCheck copies = [&](absl::string_view channel,
                         const json& message) -> absl::StatusOr<bool> {
    asked.push_back(absl::StrCat(channel, "/", message.value("ts", "")));
    return message.value("ts", "") == "1.000001";
  };
  auto convert = [&](const std::string& payload) {
    return ConvertEventCallback(json::parse(payload), "work", self, Lookup,
                                copies);
  };
  auto copy = convert(R"({"event_id":"Ev1","event":{"type":"message",
    "channel":"C7","user":"USUPPORT","text":"*Ann*: hi","ts":"1.000001"}})");
  EXPECT_FALSE(copy.event.has_value());
  EXPECT_TRUE(copy.status.ok());
  EXPECT_EQ(copy.ignored, "own post");
  // Typed by a person signed in as the service user: relayed.
  auto typed = convert(R"({"event_id":"Ev2","event":{"type":"message",
    "channel":"C7","user":"USUPPORT","text":"by hand","ts":"1.000002"}})");
  ASSERT_TRUE(typed.event.has_value()) << typed.ignored;
  EXPECT_EQ(typed.event->posted().sender().id(), "USUPPORT");
  // Edits and deletes of a copy are the bridge's too.
  auto edited = convert(R"({"event_id":"Ev3","event":{"type":"message",
    "subtype":"message_changed","channel":"C7","ts":"2.0",
    "message":{"user":"USUPPORT","text":"*Ann*: hello","ts":"1.000001"},
    "previous_message":{"user":"USUPPORT","text":"*Ann*: hi",
                        "ts":"1.000001"}}})");
  EXPECT_FALSE(edited.event.has_value());
  auto deleted = convert(R"({"event_id":"Ev4","event":{"type":"message",
    "subtype":"message_deleted","channel":"C7","ts":"3.0",
    "deleted_ts":"1.000001",
    "previous_message":{"user":"USUPPORT","text":"x","ts":"1.000001"}}})");
  EXPECT_FALSE(deleted.event.has_value());
  // Other people and other apps' bots are never asked about.
  auto other = convert(R"({"event_id":"Ev5","event":{"type":"message",
    "channel":"C7","user":"U1","text":"hi","ts":"1.000001"}})");
  EXPECT_TRUE(other.event.has_value());
  auto app = convert(R"({"event_id":"Ev6","event":{"type":"message",
    "channel":"C7","user":"USUPPORT","bot_id":"BOTHER","text":"hi",
    "ts":"1.000001"}})");
  EXPECT_TRUE(app.event.has_value());
  EXPECT_EQ(asked, (std::vector<std::string>{"C7/1.000001", "C7/1.000002",
                                             "C7/1.000001", "C7/1.000001"}));
  // The service user joining a channel is the bridge's doing.
  auto joined = convert(R"({"event_id":"Ev7","event":{
    "type":"member_joined_channel","channel":"C7","user":"USUPPORT"}})");
  EXPECT_EQ(joined.ignored, "own membership");
}

TEST(SlackInbound, CopyCheckFailureAsksForARetry) {
  BotIdentity self = Self();
  self.service_user_id = "USUPPORT";
  CopyCheck broken = [](absl::string_view,
                        const json&) -> absl::StatusOr<bool> {
    return absl::UnavailableError("journal locked");
  };
  auto c = ConvertEventCallback(
      json::parse(R"({"event_id":"Ev1","event":{"type":"message",
        "channel":"C7","user":"USUPPORT","text":"hi","ts":"1.0"}})"),
      "work", self, Lookup, broken);
  EXPECT_FALSE(c.event.has_value());
  EXPECT_EQ(c.status.code(), absl::StatusCode::kUnavailable);
}

TEST(SlackInbound, ChannelCreatedDescribesTheChannel) {
  auto c = Convert(R"({"event_id":"Ev1","event":{"type":"channel_created",
    "channel":{"id":"CV1","name":"costa-mesa-133","created":1700000000,
               "creator":"UCHATLIO"},"event_ts":"1700000000.000100"}})");
  EXPECT_FALSE(c.event.has_value());
  ASSERT_TRUE(c.created_channel.has_value());
  EXPECT_EQ(c.created_channel->id, "CV1");
  EXPECT_EQ(c.created_channel->name, "costa-mesa-133");
  EXPECT_EQ(c.created_channel->creator, "UCHATLIO");
}

TEST(SlackInbound, ChannelArchiveBecomesANotice) {
  auto c = Convert(R"({"event_id":"Ev2","event_time":1700000000,
    "event":{"type":"channel_archive","channel":"CV1","user":"U1",
             "event_ts":"1700000000.000200"}})");
  ExpectEvent(c, R"pb(
    key: "slack:work:Ev2"
    channel { platform: "slack" account: "work" chat_id: "CV1" }
    occurred_at_ms: 1700000000000
    posted {
      message_id: "channel_archive:1700000000.000200"
      sender {
        platform: "slack"
        id: "U1"
        display_name: "Ann"
        avatar_url: "https://avatars.example/ann.png"
      }
      text { text: "archived this channel" }
    })pb");
}

}  // namespace
}  // namespace imbridge::adapters::slack
