// Outbound against the fake Bot API: what Telegram receives for each kind
// of delivery, and how its errors become delivery results.

#include "adapters/telegram/outbound.h"

#include <map>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "emulators/telegram/fake_telegram.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::telegram {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class OutboundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fake_.Start().ok());
    api_ = std::make_unique<BotApi>(
        BotApi::Options{fake_.base_url(), fake_.token(), absl::Seconds(10)},
        http_);
    RateLimiter::Options rate;
    rate.per_chat_per_second = 1000;
    rate.per_chat_burst = 1000;
    rate.per_group_per_minute = 60000;
    rate.per_bot_per_second = 1000;
    MakeOutbound(rate);
    group_ = fake_.CreateChat("supergroup", "Team");
  }

  // outbound_ on a limiter of `rate`.
  void MakeOutbound(const RateLimiter::Options& rate) {
    outbound_.reset();
    limiter_ = std::make_unique<RateLimiter>(rate);
    OutboundAccount account;
    account.name = "main";
    account.api = api_.get();
    account.max_upload_bytes = 1000;
    outbound_ = std::make_unique<Outbound>(
        std::vector<OutboundAccount>{account}, &aliases_, limiter_.get(),
        [this](const std::string& id,
               uint64_t max) -> absl::StatusOr<std::string> {
          auto it = blobs_.find(id);
          if (it == blobs_.end()) return absl::NotFoundError("no blob");
          if (it->second.size() > max) return absl::OutOfRangeError("too big");
          return it->second;
        },
        journal_.get(), OpenSendPolicy::kAtLeastOnce);
  }

  v1::Delivery Posted(const std::string& text, const std::string& key = "") {
    v1::Delivery d;
    d.set_id(++next_id_);
    d.mutable_target()->set_platform("telegram");
    d.mutable_target()->set_account("main");
    d.mutable_target()->set_chat_id(absl::StrCat(group_));
    d.set_sender_name("Alice (slack)");
    d.set_idempotency_key(key.empty() ? absl::StrCat("k", next_id_) : key);
    v1::Event* e = d.mutable_event();
    e->set_key(absl::StrCat("slack:T:", next_id_));
    e->mutable_channel()->set_platform("slack");
    e->mutable_posted()->set_message_id("1.2");
    e->mutable_posted()->mutable_text()->set_text(text);
    return d;
  }

  fakes::FakeTelegram fake_;
  std::shared_ptr<HttpClient> http_ = std::make_shared<HttpClient>();
  std::unique_ptr<BotApi> api_;
  std::unique_ptr<DeliveryJournal> journal_ =
      *DeliveryJournal::Open(DeliveryJournal::Options());
  ChatAliases aliases_{journal_.get(), ""};
  std::unique_ptr<RateLimiter> limiter_;
  std::unique_ptr<Outbound> outbound_;
  std::map<std::string, std::string> blobs_;
  int64_t group_ = 0;
  uint64_t next_id_ = 0;
};

TEST_F(OutboundTest, TextWithEntitiesAndSenderName) {
  v1::Delivery d = Posted("hi 😀 bold");
  v1::Span* s =
      d.mutable_event()->mutable_posted()->mutable_text()->add_spans();
  s->set_kind(v1::Span::BOLD);
  s->set_offset(8);  // "bold": after "hi " (3) + emoji (4) + " " (1)
  s->set_length(4);
  absl::StatusOr<std::vector<std::string>> ids = outbound_->SendMessage(d);
  ASSERT_TRUE(ids.ok()) << ids.status();
  std::vector<fakes::FakeTelegram::Message> sent = fake_.bot_messages(group_);
  ASSERT_THAT(sent, SizeIs(1));
  EXPECT_THAT(*ids, ElementsAre(absl::StrCat(sent[0].message_id)));
  EXPECT_EQ(sent[0].text(), "Alice (slack): hi 😀 bold");
  EXPECT_EQ(sent[0].json["entities"], json::parse(R"([
      {"type":"bold","offset":0,"length":13},
      {"type":"bold","offset":21,"length":4}])"));
  // No parse mode: the text is sent as is.
  EXPECT_FALSE(fake_.calls("sendMessage")[0].params.contains("parse_mode"));
}

// A send waiting for the chat's rate limit when the adapter stops gives up
// (retryable: the router sends it again) and is not made.
TEST_F(OutboundTest, StopEndsAWaitForTheRateLimit) {
  RateLimiter::Options slow;
  slow.per_chat_per_second = 1.0 / 3600;  // one send an hour
  slow.per_chat_burst = 1;
  slow.max_wait = absl::Hours(2);
  MakeOutbound(slow);
  ASSERT_TRUE(outbound_->SendMessage(Posted("first")).ok());
  absl::Status waited;
  std::thread sender(
      [&] { waited = outbound_->SendMessage(Posted("second")).status(); });
  absl::SleepFor(absl::Milliseconds(50));
  outbound_->Stop();
  sender.join();  // without the stop's end of the wait: an hour (timeout)
  EXPECT_TRUE(IsRetryable(waited)) << waited;
  EXPECT_THAT(std::string(waited.message()), HasSubstr("stopping"));
  EXPECT_THAT(fake_.bot_messages(group_), SizeIs(1));
}

TEST_F(OutboundTest, LongTextIsSplitAndEveryPartIdReturned) {
  std::string text(5000, 'x');
  absl::StatusOr<std::vector<std::string>> ids =
      outbound_->SendMessage(Posted(text));
  ASSERT_TRUE(ids.ok()) << ids.status();
  std::vector<fakes::FakeTelegram::Message> sent = fake_.bot_messages(group_);
  ASSERT_THAT(sent, SizeIs(2));
  EXPECT_THAT(*ids, ElementsAre(absl::StrCat(sent[0].message_id),
                                absl::StrCat(sent[1].message_id)));
  EXPECT_EQ(sent[0].text().size(), 4096u);
  EXPECT_EQ(sent[1].text(), "Alice (slack): " + std::string(5000 - 4081, 'x'));
}

TEST_F(OutboundTest, ReplyAndTopic) {
  int64_t forum = fake_.CreateChat("supergroup", "Forum", true);
  int64_t topic = fake_.CreateTopic(forum, "Ops");
  fakes::FakeTelegram::User bob = fake_.NewUser("Bob");
  int64_t original =
      fake_.PostMessage(forum, bob, "question", {0, topic, json()});
  v1::Delivery d = Posted("answer");
  d.mutable_target()->set_chat_id(absl::StrCat(forum));
  d.mutable_target()->set_thread_id(absl::StrCat(topic));
  d.set_reply_to_target_id(absl::StrCat(original));
  ASSERT_TRUE(outbound_->SendMessage(d).ok());
  auto call = fake_.calls("sendMessage").back();
  EXPECT_EQ(call.params["message_thread_id"], topic);
  EXPECT_EQ(call.params["reply_parameters"]["message_id"], original);
  std::vector<fakes::FakeTelegram::Message> sent = fake_.bot_messages(forum);
  ASSERT_THAT(sent, SizeIs(1));
  EXPECT_EQ(sent[0].json["reply_to_message"]["message_id"], original);
  EXPECT_EQ(sent[0].json["message_thread_id"], topic);
}

TEST_F(OutboundTest, EditAndDelete) {
  absl::StatusOr<std::vector<std::string>> ids =
      outbound_->SendMessage(Posted("first"));
  ASSERT_TRUE(ids.ok());
  v1::Delivery edit = Posted("");
  edit.mutable_event()->clear_posted();
  edit.mutable_event()->mutable_edited()->mutable_text()->set_text("second");
  for (const std::string& id : *ids) edit.add_target_message_ids(id);
  ASSERT_TRUE(outbound_->EditMessage(edit).ok());
  std::vector<fakes::FakeTelegram::Message> sent = fake_.bot_messages(group_);
  ASSERT_THAT(sent, SizeIs(1));
  EXPECT_EQ(sent[0].text(), "Alice (slack): second");
  // The same text again is "not modified" for Telegram: fine for us.
  EXPECT_TRUE(outbound_->EditMessage(edit).ok());

  v1::Delivery del = Posted("");
  del.mutable_event()->clear_posted();
  del.mutable_event()->mutable_deleted()->set_message_id("1.2");
  for (const std::string& id : *ids) del.add_target_message_ids(id);
  ASSERT_TRUE(outbound_->DeleteMessage(del).ok());
  EXPECT_THAT(fake_.bot_messages(group_), SizeIs(0));
  // Already gone: still fine.
  EXPECT_TRUE(outbound_->DeleteMessage(del).ok());
}

TEST_F(OutboundTest, DeletingAnOldMessageIsPermanentWithTheReason) {
  absl::StatusOr<std::vector<std::string>> ids =
      outbound_->SendMessage(Posted("old"));
  ASSERT_TRUE(ids.ok());
  int64_t id = std::stoll(ids->front());
  fake_.AgeMessage(group_, id, absl::Hours(49));
  v1::Delivery del = Posted("");
  del.mutable_event()->mutable_deleted()->set_message_id("1.2");
  del.add_target_message_ids(ids->front());
  absl::Status r = outbound_->DeleteMessage(del);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(IsRetryable(r));
  EXPECT_THAT(r.message(), HasSubstr("can't be deleted"));
  EXPECT_THAT(r.message(), HasSubstr("48 hours"));
  EXPECT_THAT(fake_.bot_messages(group_), SizeIs(1));
}

TEST_F(OutboundTest, ErrorsMapToRetryableOrPermanent) {
  fake_.FailNext("sendMessage", 1,
                 {429, "Too Many Requests: retry after 3", 3, 0});
  absl::StatusOr<std::vector<std::string>> r =
      outbound_->SendMessage(Posted("a"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsRetryable(r.status()));
  EXPECT_EQ(RetryAfter(r.status()), absl::Seconds(3));

  fake_.FailNext("sendMessage", 1, {502, "Bad Gateway", 0, 0});
  r = outbound_->SendMessage(Posted("b"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsRetryable(r.status()));

  fake_.FailNext(
      "sendMessage", 1,
      {403, "Forbidden: bot was kicked from the supergroup chat", 0, 0});
  r = outbound_->SendMessage(Posted("c"));
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(IsRetryable(r.status()));
  EXPECT_THAT(r.status().message(), HasSubstr("bot was kicked"));
  EXPECT_THAT(fake_.bot_messages(group_), SizeIs(0));
}

TEST_F(OutboundTest, RetryAfterAPartialSendDoesNotRepeatSentParts) {
  v1::Delivery d = Posted(std::string(5000, 'y'), "same-key");
  // The first part goes out, the second meets a flood wait.
  int calls_before = 0;
  fake_.Subscribe([&](const fakes::FakeTelegram::Change& c) {
    if (c.kind == "message" && calls_before++ == 0) {
      fake_.FailNext("sendMessage", 1,
                     {429, "Too Many Requests: retry after 1", 1, 0});
    }
  });
  absl::StatusOr<std::vector<std::string>> r = outbound_->SendMessage(d);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsRetryable(r.status()));
  ASSERT_THAT(fake_.bot_messages(group_), SizeIs(1));
  d.set_attempt(2);
  r = outbound_->SendMessage(d);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<fakes::FakeTelegram::Message> sent = fake_.bot_messages(group_);
  ASSERT_THAT(sent, SizeIs(2));
  EXPECT_THAT(*r, ElementsAre(absl::StrCat(sent[0].message_id),
                              absl::StrCat(sent[1].message_id)));
}

TEST_F(OutboundTest, MigratedGroupIsFollowedAndRemembered) {
  int64_t old_group = fake_.CreateChat("group", "Old");
  int64_t new_group = fake_.MigrateToSupergroup(old_group);
  v1::Delivery d = Posted("after migration");
  d.mutable_target()->set_chat_id(absl::StrCat(old_group));
  ASSERT_TRUE(outbound_->SendMessage(d).ok());
  EXPECT_THAT(fake_.bot_messages(new_group), SizeIs(1));
  EXPECT_EQ(aliases_.Current("main", absl::StrCat(old_group)),
            absl::StrCat(new_group));
  // The next one goes straight to the new id.
  size_t calls = fake_.calls("sendMessage").size();
  ASSERT_TRUE(outbound_->SendMessage(Posted("x")).ok());
  d = Posted("again");
  d.mutable_target()->set_chat_id(absl::StrCat(old_group));
  ASSERT_TRUE(outbound_->SendMessage(d).ok());
  EXPECT_EQ(fake_.calls("sendMessage").size(), calls + 2);
  EXPECT_THAT(fake_.bot_messages(new_group), SizeIs(2));
}

TEST_F(OutboundTest, FilesUploadedWithCaptionOrNotice) {
  blobs_["b1"] = "%PDF-1.4 content";
  v1::Delivery d = Posted("the report");
  v1::Attachment* a = d.mutable_event()->mutable_posted()->add_attachments();
  a->set_blob_id("b1");
  a->set_name("report.pdf");
  a->set_mime_type("application/pdf");
  a->set_size(blobs_["b1"].size());
  v1::Attachment* big = d.mutable_event()->mutable_posted()->add_attachments();
  big->set_blob_id("b2");
  big->set_name("movie.mkv");
  big->set_size(5000);  // over this test's 1000-byte upload limit
  v1::Attachment* gone = d.mutable_event()->mutable_posted()->add_attachments();
  gone->set_name("huge.iso");
  gone->set_size(30 << 20);
  gone->set_unavailable_reason("larger than the download limit");
  absl::StatusOr<std::vector<std::string>> ids = outbound_->SendMessage(d);
  ASSERT_TRUE(ids.ok()) << ids.status();
  auto calls = fake_.calls("sendDocument");
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_EQ(calls[0].files["document"], "%PDF-1.4 content");
  EXPECT_EQ(calls[0].params["document"]["filename"], "report.pdf");
  std::vector<fakes::FakeTelegram::Message> sent = fake_.bot_messages(group_);
  ASSERT_THAT(sent, SizeIs(1));
  EXPECT_THAT(*ids, ElementsAre(absl::StrCat(sent[0].message_id)));
  std::string caption = sent[0].text();
  EXPECT_THAT(caption, HasSubstr("Alice (slack): the report"));
  EXPECT_THAT(caption, HasSubstr("movie.mkv (5 KB)"));
  EXPECT_THAT(caption,
              HasSubstr("huge.iso (30.0 MB): larger than the download limit"));

  // Editing a file's text edits its caption.
  v1::Delivery edit = Posted("");
  edit.mutable_event()->clear_posted();
  edit.mutable_event()->mutable_edited()->mutable_text()->set_text(
      "new caption");
  edit.add_target_message_ids(ids->front());
  ASSERT_TRUE(outbound_->EditMessage(edit).ok());
  EXPECT_EQ(fake_.bot_messages(group_)[0].text(), "Alice (slack): new caption");
}

TEST_F(OutboundTest, AlbumSentAsMediaGroup) {
  blobs_["p1"] = "png-1";
  blobs_["p2"] = "png-2";
  v1::Delivery d = Posted("two photos");
  for (const char* id : {"p1", "p2"}) {
    v1::Attachment* a = d.mutable_event()->mutable_posted()->add_attachments();
    a->set_blob_id(id);
    a->set_name(absl::StrCat(id, ".png"));
    a->set_mime_type("image/png");
    a->set_size(5);
    a->set_kind(v1::Attachment::IMAGE);
    a->set_group_id("album-1");
  }
  absl::StatusOr<std::vector<std::string>> ids = outbound_->SendMessage(d);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, SizeIs(2));
  auto calls = fake_.calls("sendMediaGroup");
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_EQ(calls[0].files["file0"], "png-1");
  EXPECT_EQ(calls[0].files["file1"], "png-2");
  EXPECT_EQ(calls[0].params["media"][0]["caption"],
            "Alice (slack): two photos");
  std::vector<fakes::FakeTelegram::Message> sent = fake_.bot_messages(group_);
  ASSERT_THAT(sent, SizeIs(2));
  EXPECT_EQ(sent[0].json["media_group_id"], sent[1].json["media_group_id"]);
}

TEST_F(OutboundTest, MembershipNotice) {
  v1::Delivery d = Posted("");
  d.mutable_event()->clear_posted();
  d.mutable_event()->mutable_membership()->set_joined(true);
  ASSERT_TRUE(outbound_->SendMembership(d).ok());
  std::vector<fakes::FakeTelegram::Message> sent = fake_.bot_messages(group_);
  ASSERT_THAT(sent, SizeIs(1));
  EXPECT_EQ(sent[0].text(), "Alice (slack) joined the chat");
  EXPECT_EQ(sent[0].json["entities"][0]["type"], "italic");
}

// A re-sent membership delivery (same idempotency key) is answered from the
// journal: the notice is not posted twice.
TEST_F(OutboundTest, AResentMembershipNoticeIsPostedOnce) {
  v1::Delivery d = Posted("", "k-join");
  d.mutable_event()->clear_posted();
  d.mutable_event()->mutable_membership()->set_joined(true);
  absl::StatusOr<std::vector<std::string>> first = outbound_->SendMembership(d);
  ASSERT_TRUE(first.ok()) << first.status();
  d.set_attempt(2);
  absl::StatusOr<std::vector<std::string>> again = outbound_->SendMembership(d);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *first);
  EXPECT_THAT(fake_.bot_messages(group_), SizeIs(1));
}

TEST_F(OutboundTest, UnknownAccountIsPermanent) {
  v1::Delivery d = Posted("x");
  d.mutable_target()->set_account("nobody");
  absl::StatusOr<std::vector<std::string>> r = outbound_->SendMessage(d);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(IsRetryable(r.status()));
}

}  // namespace
}  // namespace imbridge::adapters::telegram
