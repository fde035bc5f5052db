// The Botsplash wire format: request bodies and the reply mapping, against
// literal JSON from the Open API's documentation (../shared/seeds/002).

#include "adapters/botsplash/mapping.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::botsplash {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

// Compares as JSON values (member order does not matter).
#define EXPECT_JSON_EQ(actual, literal) \
  EXPECT_EQ(actual, json::parse(literal)) << (actual).dump()

TEST(BotsplashBodiesTest, ListenerSubmitHasTheDocumentedShape) {
  Visitor v;
  v.client_visitor_id = "12345";
  v.agent_client_user_id = "12345";
  v.team_code = "333";
  v.first_name = "Jane";
  v.last_name = "Doe";
  v.phone_number = "3334445555";
  // The documented example without the fields the bridge does not fill
  // (participantAgentIds, email, state, tzName, deliveryStatus,
  // extendedAttributes).
  EXPECT_JSON_EQ(ListenerBody(v, "Welcome!"), R"({
    "visitor": {
      "clientVisitorId": "12345",
      "agentClientUserId": "12345",
      "teamCode": "333",
      "firstName": "Jane",
      "lastName": "Doe",
      "phoneNumber": "3334445555"
    },
    "args": {"message": "Welcome!"}
  })");
}

TEST(BotsplashBodiesTest,
     ListenerWithoutGreetingHasNoArgsAndEmptyFieldsAreLeftOut) {
  Visitor v;
  v.client_visitor_id = "imb-15551234567";
  v.first_name = "Ann";
  v.phone_number = "+15551234567";
  EXPECT_JSON_EQ(ListenerBody(v, ""), R"({
    "visitor": {"clientVisitorId": "imb-15551234567", "firstName": "Ann",
                "phoneNumber": "+15551234567"}
  })");
}

TEST(BotsplashBodiesTest, DirectMessageHasTextAndTheVisitorsCrmIdAndPhone) {
  Visitor v;
  v.client_visitor_id = "12345";
  v.phone_number = "3334445555";
  EXPECT_JSON_EQ(DirectMessageBody("Welcome!", v), R"({
    "text": "Welcome!",
    "visitor": {"clientVisitorId": "12345", "phoneNumber": "3334445555"}
  })");
  v.agent_client_user_id = "54321";
  EXPECT_JSON_EQ(DirectMessageBody("photo.jpg", v, "mk-7"), R"({
    "text": "photo.jpg",
    "mediaKey": "mk-7",
    "visitor": {"clientVisitorId": "12345", "phoneNumber": "3334445555",
                "agentClientUserId": "54321"}
  })");
}

TEST(BotsplashBodiesTest, UpdateVisitorAssignsTheAgentWithTheDocumentedFlags) {
  Visitor v;
  v.client_visitor_id = "12345";
  v.agent_client_user_id = "12345";
  EXPECT_JSON_EQ(UpdateVisitorBody(v), R"({
    "updateOnly": true,
    "agentUpdate": true,
    "retainAccess": true,
    "retainPhones": true,
    "visitor": {"clientVisitorId": "12345", "agentClientUserId": "12345"}
  })");
}

TEST(BotsplashBodiesTest, VisitorRoundTripsThroughTheDocumentedVisitorObject) {
  // The answer of "send direct message" / "update visitor", as documented.
  json answer = json::parse(R"({
    "id": "string", "clientVisitorId": "12345", "handle": "string",
    "agentId": "string", "agentClientUserId": "54321",
    "teamId": "a4ede8ba-7c0a-4485-8763-cbd9b282fbec", "teamCode": "string",
    "firstName": "string", "lastName": "string", "email": "string",
    "phoneNumber": "string", "pictureUrl": "string", "city": "string",
    "state": "NC", "milestone": "SUPER", "visitorStatus": "Contacted",
    "tzName": "America/New_York", "archived": true, "deliveryStatus": null
  })");
  Visitor v = VisitorFromJson(answer);
  EXPECT_EQ(v.client_visitor_id, "12345");
  EXPECT_EQ(v.agent_client_user_id, "54321");
  EXPECT_EQ(v.phone_number, "string");
  EXPECT_EQ(VisitorFromJson(VisitorJson(v)).agent_client_user_id, "54321");
}

TEST(BotsplashBodiesTest, MediaKeyFromEitherAnswer) {
  EXPECT_EQ(MediaKeyOf(json::parse(R"({"key": "Uploaded file key"})")),
            "Uploaded file key");
  EXPECT_EQ(MediaKeyOf(json::parse(R"({"mediaKey": "mk-1"})")), "mk-1");
  EXPECT_EQ(MediaKeyOf(json::parse(R"({"success": true})")), "");
  EXPECT_EQ(MediaKeyOf(json::parse(R"(["key"])")), "");
}

TEST(BotsplashBodiesTest, ErrorMessageIsBotsplashsReason) {
  EXPECT_EQ(ErrorMessageOf(R"({"message": "visitor not found"})"),
            "visitor not found");
  EXPECT_EQ(ErrorMessageOf(R"({"error": "Unauthorized"})"), "Unauthorized");
  EXPECT_EQ(ErrorMessageOf(R"({"error": {"message": "bad phone"}})"),
            "bad phone");
  EXPECT_EQ(ErrorMessageOf(R"({"errors": [{"message": "text is required"}]})"),
            "text is required");
  EXPECT_EQ(ErrorMessageOf("<html>502 Bad Gateway</html>"),
            "<html>502 Bad Gateway</html>");
  EXPECT_EQ(ErrorMessageOf(""), "no reason given");
  // Found by fuzz_botsplash_reply: an empty reason is no reason; the body
  // is given instead.
  EXPECT_EQ(ErrorMessageOf(R"({"error":""})"), R"({"error":""})");
  EXPECT_EQ(ErrorMessageOf(R"({"errors":[""]})"), R"({"errors":[""]})");
}

TEST(BotsplashChannelTest, VisitorChats) {
  EXPECT_EQ(VisitorChat("12345"), "visitor:12345");
  EXPECT_EQ(VisitorOfChat("visitor:12345"), "12345");
  EXPECT_EQ(VisitorOfChat("visitor:"), "");
  EXPECT_EQ(VisitorOfChat("chat12"), "");
}

// A reply as a partner webhook might send it: the documented visitor
// object nested in an envelope.
constexpr char kNestedReply[] = R"({
  "event": "message.received",
  "message": {
    "messageId": 98765,
    "body": "Yes, tomorrow works",
    "attachments": [{"url": "https://cdn.example/p.jpg"}],
    "sentAt": 1765000000,
    "visitor": {"clientVisitorId": 12345, "firstName": "Jane",
                "lastName": "Doe", "phoneNumber": "3334445555"}
  }
})";

TEST(BotsplashReplyMappingTest, DefaultsReadTheFlatReply) {
  json body = json::parse(R"({
    "id": "bsm-1", "text": "Hello", "createdAt": "2026-12-06T05:00:00Z",
    "visitor": {"clientVisitorId": "12345", "firstName": "Jane",
                "lastName": "Doe", "phoneNumber": "3334445555"}
  })");
  absl::StatusOr<Reply> r = MapReply(body, ReplyMapping());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->visitor_id, "12345");
  EXPECT_EQ(r->message_id, "bsm-1");
  EXPECT_EQ(r->text, "Hello");
  EXPECT_EQ(r->media_url, "");
  EXPECT_EQ(r->time_ms, 1796533200000);
  EXPECT_EQ(r->name, "Jane Doe");
}

TEST(BotsplashReplyMappingTest, ConfiguredPathsReadANestedReply) {
  v1::BotsplashReplyMapping config;
  config.set_visitor_id("message.visitor.clientVisitorId");
  config.set_text("message.body");
  config.set_message_id("message.messageId");
  config.set_media_url("message.attachments.0.url");
  config.set_time("message.sentAt");
  config.set_name("message.visitor.firstName");
  absl::StatusOr<Reply> r =
      MapReply(json::parse(kNestedReply), MappingOf(config));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->visitor_id, "12345");  // A number, read as its digits.
  EXPECT_EQ(r->message_id, "98765");
  EXPECT_EQ(r->text, "Yes, tomorrow works");
  EXPECT_EQ(r->media_url, "https://cdn.example/p.jpg");
  EXPECT_EQ(r->time_ms, 1765000000000);  // Seconds, as milliseconds.
  EXPECT_EQ(r->name, "Jane");
}

TEST(BotsplashReplyMappingTest, MissingFieldsAreNamedWithTheirPaths) {
  json no_visitor = json::parse(R"({"id": "1", "text": "hi"})");
  absl::StatusOr<Reply> r = MapReply(no_visitor, ReplyMapping());
  ASSERT_TRUE(absl::IsInvalidArgument(r.status()));
  EXPECT_THAT(r.status().message(),
              HasSubstr("visitor_id (visitor.clientVisitorId) is missing"));

  json no_id =
      json::parse(R"({"text": "hi", "visitor": {"clientVisitorId": "7"}})");
  r = MapReply(no_id, ReplyMapping());
  EXPECT_THAT(r.status().message(), HasSubstr("message_id (id) is missing"));

  json empty = json::parse(
      R"({"id": "1", "text": "", "visitor": {"clientVisitorId": "7"}})");
  r = MapReply(empty, ReplyMapping());
  EXPECT_THAT(r.status().message(), HasSubstr("text (text) is missing"));

  json object_id = json::parse(
      R"({"id": {"a": 1}, "text": "x", "visitor": {"clientVisitorId": "7"}})");
  r = MapReply(object_id, ReplyMapping());
  EXPECT_THAT(r.status().message(), HasSubstr("message_id (id)"));

  json bad_time = json::parse(
      R"({"id": "1", "text": "x", "createdAt": "yesterday", "visitor": {"clientVisitorId": "7"}})");
  r = MapReply(bad_time, ReplyMapping());
  EXPECT_THAT(r.status().message(), HasSubstr("time (createdAt)"));
}

// A time past what milliseconds since 1970 can hold (a huge number, or
// "inf" and "nan", which read as numbers) was cast to int64_t, which is
// undefined (UBSan: float-cast-overflow; GCC on x86 gave INT64_MIN and the
// reply was accepted). Found while writing fuzz_botsplash_reply. Times
// after the year 9999 are refused like any unreadable time.
TEST(BotsplashReplyMappingTest, TimesOutOfRangeAreRefused) {
  for (const char* time :
       {"1e300", "-1e300", R"("1e300")", R"("inf")", R"("nan")", R"("-nan")",
        "253402300800000", R"("10000-01-01T00:00:00Z")"}) {
    SCOPED_TRACE(time);
    json body = json::parse(absl::StrCat(
        R"({"id": "1", "text": "x", "visitor": {"clientVisitorId": "7"},)",
        R"( "createdAt": )", time, "}"));
    absl::StatusOr<Reply> r = MapReply(body, ReplyMapping());
    ASSERT_TRUE(absl::IsInvalidArgument(r.status()))
        << (r.ok() ? r->time_ms : 0);
    EXPECT_THAT(r.status().message(), HasSubstr("time (createdAt)"));
  }
  // The last millisecond of 9999 is a time.
  json body = json::parse(
      R"({"id": "1", "text": "x", "visitor": {"clientVisitorId": "7"},
          "createdAt": 253402300799999})");
  absl::StatusOr<Reply> r = MapReply(body, ReplyMapping());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->time_ms, 253402300799999);
}

// An id above INT64_MAX was read as a signed number ("-1" for
// 18446744073709551615), so two visitors could share an id.
TEST(BotsplashReplyMappingTest, LargeUnsignedIdsKeepTheirDigits) {
  json body = json::parse(
      R"({"id": 18446744073709551615, "text": "x",
          "visitor": {"clientVisitorId": 9223372036854775808}})");
  absl::StatusOr<Reply> r = MapReply(body, ReplyMapping());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->message_id, "18446744073709551615");
  EXPECT_EQ(r->visitor_id, "9223372036854775808");
}

TEST(BotsplashReplyMappingTest, MediaOnlyReplyIsAReply) {
  json body = json::parse(R"({"id": "2", "mediaUrl": "https://x/y.png",
                              "visitor": {"clientVisitorId": "7"}})");
  absl::StatusOr<Reply> r = MapReply(body, ReplyMapping());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "");
  EXPECT_EQ(r->media_url, "https://x/y.png");
  EXPECT_EQ(r->time_ms, 0);
  EXPECT_EQ(r->name, "");
}

TEST(BotsplashReplyMappingTest, JsonPaths) {
  json j = json::parse(R"({"a": {"b": [10, {"c": "x"}]}})");
  ASSERT_NE(FindJsonPath(j, "a.b.1.c"), nullptr);
  EXPECT_EQ(*FindJsonPath(j, "a.b.1.c"), "x");
  EXPECT_EQ(FindJsonPath(j, "a.b.2"), nullptr);
  EXPECT_EQ(FindJsonPath(j, "a.b.x"), nullptr);
  EXPECT_EQ(FindJsonPath(j, "a.z"), nullptr);
  EXPECT_TRUE(CheckJsonPath("message.visitor.clientVisitorId").ok());
  EXPECT_FALSE(CheckJsonPath("").ok());
  EXPECT_FALSE(CheckJsonPath("a..b").ok());
  EXPECT_FALSE(CheckJsonPath("a[0]").ok());
}

TEST(BotsplashStartTest, ParsesPhoneAndNames) {
  // Words come split at spaces from the chat: a phone is one word.
  absl::StatusOr<StartRequest> s =
      ParseStart({"+1(555)123-4567", "Ann", "van", "Lee"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phone, "+15551234567");
  EXPECT_EQ(s->first_name, "Ann");
  EXPECT_EQ(s->last_name, "van Lee");
  EXPECT_EQ(VisitorIdForPhone(s->phone), "imb-15551234567");
  s = ParseStart({"5551234567", "Bob"});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->last_name, "");
}

TEST(BotsplashStartTest, BadWordsGetTheUsage) {
  EXPECT_THAT(ParseStart({"5551234567"}).status().message(),
              HasSubstr("usage: !bridge botsplash start <phone>"));
  EXPECT_THAT(ParseStart({"call-me", "Ann"}).status().message(),
              HasSubstr("'call-me' is not a phone number"));
  EXPECT_THAT(ParseStart({"12345", "Ann"}).status().message(),
              HasSubstr("7-15 digits"));
}

}  // namespace
}  // namespace imbridge::adapters::botsplash
