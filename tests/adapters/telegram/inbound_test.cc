// TranslateUpdate on literal Bot API updates.

#include "adapters/telegram/inbound.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::telegram {
namespace {

using ::testing::SizeIs;

constexpr int64_t kBotId = 777;

InboundContext Context() {
  InboundContext ctx;
  ctx.account = "main";
  ctx.bot_id = kBotId;
  ctx.max_download_bytes = 20 << 20;
  return ctx;
}

InboundUpdate Translate(const std::string& json,
                        const InboundContext& ctx = Context()) {
  absl::StatusOr<InboundUpdate> u =
      TranslateUpdate(nlohmann::json::parse(json), ctx);
  EXPECT_TRUE(u.ok()) << u.status();
  return u.ok() ? *u : InboundUpdate();
}

void ExpectEvent(const v1::Event& actual, const std::string& expected_text) {
  v1::Event expected;
  ASSERT_TRUE(
      google::protobuf::TextFormat::ParseFromString(expected_text, &expected));
  EXPECT_TRUE(
      google::protobuf::util::MessageDifferencer::Equals(actual, expected))
      << "actual:\n"
      << actual.DebugString() << "expected:\n"
      << expected.DebugString();
}

// A date whose milliseconds do not fit in 64 bits overflowed (undefined
// behaviour, as fuzz_slack_events found in Slack's event_time): a date
// outside 1970-9999 is unknown (0).
TEST(TranslateUpdateTest, DatesOutOfRangeAreUnknown) {
  for (const char* date : {"9223372036854775807", "-5", "253402300800"}) {
    InboundUpdate u = Translate(absl::StrCat(
        R"({"update_id": 7, "message": {"message_id": 1, "date": )", date,
        R"(, "from": {"id": 42, "is_bot": false, "first_name": "A"},
            "chat": {"id": -100, "type": "group"}, "text": "x"}})"));
    ASSERT_THAT(u.events, SizeIs(1)) << date;
    EXPECT_EQ(u.events[0].occurred_at_ms(), 0) << date;
  }
}

TEST(TranslateUpdateTest, TextMessageWithEntitiesAndReply) {
  InboundUpdate u = Translate(R"({"update_id": 1001, "message": {
      "message_id": 55, "date": 1700000000,
      "from": {"id": 42, "is_bot": false, "first_name": "Anna", "last_name": "K"},
      "chat": {"id": -1001234, "type": "supergroup", "title": "Team"},
      "text": "😀 bold", "entities": [{"type": "bold", "offset": 3, "length": 4}],
      "reply_to_message": {"message_id": 50, "date": 1699999999,
                           "chat": {"id": -1001234, "type": "supergroup"}, "text": "q"}}})");
  EXPECT_EQ(u.kind, InboundUpdate::Kind::kEvents);
  EXPECT_EQ(u.update_id, 1001);
  ASSERT_THAT(u.events, SizeIs(1));
  ExpectEvent(u.events[0], R"pb(
    key: "telegram:main:1001"
    channel { platform: "telegram" account: "main" chat_id: "-1001234" }
    occurred_at_ms: 1700000000000
    posted {
      message_id: "55"
      sender { platform: "telegram" id: "42" display_name: "Anna K" }
      text {
        text: "😀 bold"
        spans { kind: BOLD offset: 5 length: 4 }
      }
      reply_to_message_id: "50"
    })pb");
  EXPECT_THAT(u.files, SizeIs(0));
}

TEST(TranslateUpdateTest, ForumTopicIsTheThreadAndNotAReply) {
  InboundUpdate u = Translate(R"({"update_id": 7, "message": {
      "message_id": 90, "date": 1, "message_thread_id": 12, "is_topic_message": true,
      "from": {"id": 42, "is_bot": false, "first_name": "Anna"},
      "chat": {"id": -100555, "type": "supergroup", "is_forum": true},
      "text": "in topic",
      "reply_to_message": {"message_id": 12, "date": 1, "chat": {"id": -100555, "type": "supergroup"},
                           "forum_topic_created": {"name": "Ops"}}}})");
  ASSERT_THAT(u.events, SizeIs(1));
  EXPECT_EQ(u.events[0].channel().thread_id(), "12");
  EXPECT_EQ(u.events[0].posted().thread_root_id(), "12");
  EXPECT_EQ(u.events[0].posted().reply_to_message_id(), "");
}

TEST(TranslateUpdateTest, ReplyThreadInPlainSupergroupIsNotATopic) {
  InboundUpdate u = Translate(R"({"update_id": 8, "message": {
      "message_id": 91, "date": 1, "message_thread_id": 80,
      "from": {"id": 42, "is_bot": false, "first_name": "Anna"},
      "chat": {"id": -100555, "type": "supergroup"}, "text": "re",
      "reply_to_message": {"message_id": 80, "date": 1, "chat": {"id": -100555, "type": "supergroup"}, "text": "x"}}})");
  ASSERT_THAT(u.events, SizeIs(1));
  EXPECT_EQ(u.events[0].channel().thread_id(), "");
  EXPECT_EQ(u.events[0].posted().reply_to_message_id(), "80");
}

TEST(TranslateUpdateTest, EditedMessage) {
  InboundUpdate u = Translate(R"({"update_id": 9, "edited_message": {
      "message_id": 55, "date": 1, "edit_date": 5,
      "from": {"id": 42, "is_bot": false, "first_name": "Anna"},
      "chat": {"id": -1001234, "type": "supergroup"},
      "text": "new", "entities": [{"type": "italic", "offset": 0, "length": 3}]}})");
  ASSERT_THAT(u.events, SizeIs(1));
  ExpectEvent(u.events[0], R"pb(
    key: "telegram:main:9"
    channel { platform: "telegram" account: "main" chat_id: "-1001234" }
    occurred_at_ms: 5000
    edited {
      message_id: "55"
      editor { platform: "telegram" id: "42" display_name: "Anna" }
      text {
        text: "new"
        spans { kind: ITALIC offset: 0 length: 3 }
      }
    })pb");
}

TEST(TranslateUpdateTest, ChannelPostSignedByAuthor) {
  InboundUpdate u = Translate(R"({"update_id": 10, "channel_post": {
      "message_id": 3, "date": 2, "author_signature": "Editor",
      "sender_chat": {"id": -100777, "type": "channel", "title": "News"},
      "chat": {"id": -100777, "type": "channel", "title": "News"}, "text": "post"}})");
  ASSERT_THAT(u.events, SizeIs(1));
  EXPECT_EQ(u.events[0].posted().sender().display_name(), "Editor");
  EXPECT_EQ(u.events[0].posted().sender().id(), "-100777");
  u = Translate(R"({"update_id": 11, "edited_channel_post": {
      "message_id": 3, "date": 2, "edit_date": 3,
      "sender_chat": {"id": -100777, "type": "channel", "title": "News"},
      "chat": {"id": -100777, "type": "channel", "title": "News"}, "text": "post!"}})");
  ASSERT_THAT(u.events, SizeIs(1));
  EXPECT_EQ(u.events[0].edited().editor().display_name(), "News");
  EXPECT_EQ(u.events[0].edited().text().text(), "post!");
}

TEST(TranslateUpdateTest, LargestPhotoWithCaptionAndAlbum) {
  InboundUpdate u = Translate(R"({"update_id": 12, "message": {
      "message_id": 60, "date": 1, "media_group_id": "13579",
      "from": {"id": 42, "is_bot": false, "first_name": "Anna"},
      "chat": {"id": -1001234, "type": "supergroup"},
      "photo": [{"file_id": "small", "file_unique_id": "s1", "file_size": 100, "width": 90, "height": 90},
                {"file_id": "big", "file_unique_id": "b1", "file_size": 90000, "width": 1280, "height": 960}],
      "caption": "look", "caption_entities": [{"type": "bold", "offset": 0, "length": 4}]}})");
  ASSERT_THAT(u.events, SizeIs(1));
  ExpectEvent(u.events[0], R"pb(
    key: "telegram:main:12"
    channel { platform: "telegram" account: "main" chat_id: "-1001234" }
    occurred_at_ms: 1000
    posted {
      message_id: "60"
      sender { platform: "telegram" id: "42" display_name: "Anna" }
      text {
        text: "look"
        spans { kind: BOLD offset: 0 length: 4 }
      }
      attachments {
        name: "photo_b1.jpg"
        mime_type: "image/jpeg"
        size: 90000
        kind: IMAGE
        group_id: "13579"
      }
    })pb");
  ASSERT_THAT(u.files, SizeIs(1));
  EXPECT_EQ(u.files[0].file_id, "big");
  EXPECT_EQ(u.files[0].file_unique_id, "b1");
  EXPECT_EQ(u.files[0].attachment_index, 0);
}

TEST(TranslateUpdateTest, EveryFileKind) {
  struct Case {
    std::string field;
    std::string object;
    v1::Attachment::Kind kind;
    std::string name;
    std::string mime;
  };
  const Case cases[] = {
      {"document",
       R"({"file_id":"f","file_unique_id":"u","file_name":"a.pdf","mime_type":"application/pdf","file_size":5})",
       v1::Attachment::FILE, "a.pdf", "application/pdf"},
      {"video",
       R"({"file_id":"f","file_unique_id":"u","file_size":5,"width":1,"height":1,"duration":1})",
       v1::Attachment::VIDEO, "video_u.mp4", "video/mp4"},
      {"audio",
       R"({"file_id":"f","file_unique_id":"u","file_size":5,"duration":1,"performer":"P","title":"T"})",
       v1::Attachment::AUDIO, "P - T.mp3", "audio/mpeg"},
      {"voice",
       R"({"file_id":"f","file_unique_id":"u","file_size":5,"duration":1,"mime_type":"audio/ogg"})",
       v1::Attachment::VOICE, "voice_u.ogg", "audio/ogg"},
      {"animation",
       R"({"file_id":"f","file_unique_id":"u","file_size":5,"width":1,"height":1,"duration":1,"file_name":"x.gif.mp4","mime_type":"video/mp4"})",
       v1::Attachment::ANIMATION, "x.gif.mp4", "video/mp4"},
      {"sticker",
       R"({"file_id":"f","file_unique_id":"u","file_size":5,"width":1,"height":1,"is_animated":false,"is_video":false,"type":"regular"})",
       v1::Attachment::STICKER, "sticker_u.webp", "image/webp"},
  };
  for (const Case& c : cases) {
    InboundUpdate u =
        Translate(R"({"update_id": 13, "message": {"message_id": 1, "date": 1,
        "from": {"id": 42, "is_bot": false, "first_name": "A"},
        "chat": {"id": 5, "type": "private"}, ")" +
                  c.field + "\": " + c.object + "}}");
    ASSERT_THAT(u.events, SizeIs(1)) << c.field;
    ASSERT_EQ(u.events[0].posted().attachments_size(), 1) << c.field;
    const v1::Attachment& a = u.events[0].posted().attachments(0);
    EXPECT_EQ(a.kind(), c.kind) << c.field;
    EXPECT_EQ(a.name(), c.name) << c.field;
    EXPECT_EQ(a.mime_type(), c.mime) << c.field;
    EXPECT_EQ(a.size(), 5u) << c.field;
    ASSERT_THAT(u.files, SizeIs(1)) << c.field;
    EXPECT_EQ(u.files[0].file_id, "f");
  }
}

TEST(TranslateUpdateTest, FileOverTheDownloadLimitBecomesANotice) {
  InboundUpdate u =
      Translate(R"({"update_id": 14, "message": {"message_id": 1, "date": 1,
      "from": {"id": 42, "is_bot": false, "first_name": "A"},
      "chat": {"id": 5, "type": "private"},
      "document": {"file_id": "f", "file_unique_id": "u", "file_name": "big.iso", "file_size": 20971521}}})");
  ASSERT_THAT(u.events, SizeIs(1));
  const v1::Attachment& a = u.events[0].posted().attachments(0);
  EXPECT_EQ(a.name(), "big.iso");
  EXPECT_EQ(a.size(), 20971521u);
  EXPECT_EQ(a.blob_id(), "");
  EXPECT_THAT(a.unavailable_reason(), ::testing::HasSubstr("20.0 MB"));
  EXPECT_THAT(u.files, SizeIs(0));
}

TEST(TranslateUpdateTest, MembersJoiningAndLeaving) {
  InboundUpdate u =
      Translate(R"({"update_id": 15, "message": {"message_id": 2, "date": 3,
      "from": {"id": 42, "is_bot": false, "first_name": "A"},
      "chat": {"id": -100, "type": "group"},
      "new_chat_members": [{"id": 43, "is_bot": false, "first_name": "B"},
                           {"id": 777, "is_bot": true, "first_name": "Bridge"},
                           {"id": 44, "is_bot": false, "first_name": "C", "username": "c"}]}})");
  ASSERT_THAT(u.events, SizeIs(2));  // Not the bot itself.
  EXPECT_EQ(u.events[0].key(), "telegram:main:15:43");
  EXPECT_TRUE(u.events[0].membership().joined());
  EXPECT_EQ(u.events[0].membership().user().display_name(), "B");
  EXPECT_EQ(u.events[1].key(), "telegram:main:15:44");
  u = Translate(R"({"update_id": 16, "message": {"message_id": 3, "date": 3,
      "from": {"id": 43, "is_bot": false, "first_name": "B"},
      "chat": {"id": -100, "type": "group"},
      "left_chat_member": {"id": 43, "is_bot": false, "first_name": "B"}}})");
  ASSERT_THAT(u.events, SizeIs(1));
  EXPECT_EQ(u.events[0].key(), "telegram:main:16");
  EXPECT_FALSE(u.events[0].membership().joined());
}

TEST(TranslateUpdateTest, OwnMessagesAreIgnored) {
  InboundUpdate u =
      Translate(R"({"update_id": 17, "message": {"message_id": 4, "date": 3,
      "from": {"id": 777, "is_bot": true, "first_name": "Bridge"},
      "chat": {"id": -100, "type": "group"}, "text": "copy"}})");
  EXPECT_EQ(u.kind, InboundUpdate::Kind::kIgnored);
  EXPECT_THAT(u.events, SizeIs(0));
}

TEST(TranslateUpdateTest, MigrationBothDirectionsAndAliasOnLaterMessages) {
  InboundUpdate u =
      Translate(R"({"update_id": 18, "message": {"message_id": 5, "date": 3,
      "from": {"id": 1, "is_bot": false, "first_name": "Admin"},
      "chat": {"id": -100, "type": "group"}, "migrate_to_chat_id": -1009999}})");
  EXPECT_EQ(u.kind, InboundUpdate::Kind::kMigration);
  EXPECT_EQ(u.migration.old_chat_id, "-100");
  EXPECT_EQ(u.migration.new_chat_id, "-1009999");
  u = Translate(R"({"update_id": 19, "message": {"message_id": 1, "date": 3,
      "from": {"id": 1, "is_bot": false, "first_name": "Admin"},
      "chat": {"id": -1009999, "type": "supergroup"}, "migrate_from_chat_id": -100}})");
  EXPECT_EQ(u.kind, InboundUpdate::Kind::kMigration);
  EXPECT_EQ(u.migration.old_chat_id, "-100");
  EXPECT_EQ(u.migration.new_chat_id, "-1009999");

  InboundContext ctx = Context();
  ctx.original_chat_id = [](const std::string& id) {
    return id == "-1009999" ? std::string("-100") : id;
  };
  u = Translate(R"({"update_id": 20, "message": {"message_id": 2, "date": 3,
      "from": {"id": 42, "is_bot": false, "first_name": "A"},
      "chat": {"id": -1009999, "type": "supergroup"}, "text": "after"}})",
                ctx);
  ASSERT_THAT(u.events, SizeIs(1));
  EXPECT_EQ(u.events[0].channel().chat_id(), "-100");
}

TEST(TranslateUpdateTest, UnknownTypesAndServiceMessages) {
  InboundUpdate u =
      Translate(R"({"update_id": 21, "callback_query": {"id": "x"}})");
  EXPECT_EQ(u.kind, InboundUpdate::Kind::kUnknown);
  EXPECT_EQ(u.reason, "callback_query");
  u = Translate(R"({"update_id": 22, "message": {"message_id": 6, "date": 3,
      "from": {"id": 1, "is_bot": false, "first_name": "Admin"},
      "chat": {"id": -100, "type": "group"}, "new_chat_title": "Renamed"}})");
  EXPECT_EQ(u.kind, InboundUpdate::Kind::kIgnored);
}

TEST(TranslateUpdateTest, MalformedUpdatesAreErrors) {
  for (const char* bad :
       {R"([1,2])", R"({"message": {}})", R"({"update_id": "x"})",
        R"({"update_id": 1, "message": {"text": "no chat"}})",
        R"({"update_id": 1, "message": "str"})"}) {
    EXPECT_FALSE(TranslateUpdate(nlohmann::json::parse(bad), Context()).ok())
        << bad;
  }
}

}  // namespace
}  // namespace imbridge::adapters::telegram
