// Deliveries rendered on the fake TeamSpirit server: bot mode, send-only
// mode, and the bot's health presence.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/common/delivery_journal.h"
#include "adapters/teamspirit/bot_presence.h"
#include "adapters/teamspirit/outbound.h"
#include "adapters/teamspirit/rate_limiter.h"
#include "emulators/teamspirit/fake_teamspirit.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::teamspirit {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kKey[] = "bot-key";

v1::Delivery Posted(uint64_t id, const std::string& text,
                    const std::string& platform = "slack") {
  v1::Delivery d;
  d.set_id(id);
  d.mutable_target()->set_platform("teamspirit");
  d.mutable_target()->set_account("corp");
  d.mutable_target()->set_chat_id("c-1");
  v1::Event* e = d.mutable_event();
  e->set_key(absl::StrCat(platform, ":T1:ev", id));
  e->mutable_channel()->set_platform(platform);
  e->mutable_channel()->set_account("T1");
  e->mutable_channel()->set_chat_id("C1");
  v1::MessagePosted* p = e->mutable_posted();
  p->set_message_id(absl::StrCat("s-", id));
  p->mutable_sender()->set_id("U1");
  p->mutable_sender()->set_display_name("Anna");
  p->mutable_sender()->set_avatar_url("https://slack/anna.png");
  p->mutable_text()->set_text(text);
  d.set_link("support");
  d.set_sender_name("Anna (slack)");
  d.set_idempotency_key(absl::StrCat("router-1:", id));
  d.set_attempt(1);
  return d;
}

class TeamSpiritDelivererTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fakes::FakeTeamSpirit::Options o;
    o.rate_limit_per_second = 0;
    fake_ = std::make_unique<fakes::FakeTeamSpirit>(o);
    fake_->AddBot("u-bot", "Bridge", kKey);
    fake_->AddUser("u-7", "Ivan");
    fake_->AddChat("c-1", "Support", {"u-bot", "u-7"});
    ASSERT_TRUE(fake_->Start().ok());
    TeamSpiritApi::Options api;
    api.base_url = fake_->api_base_url();
    api.api_key = kKey;
    api_ = std::make_unique<TeamSpiritApi>(api, &http_, &limiter_);
    auto journal = DeliveryJournal::Open(DeliveryJournal::Options());
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = *std::move(journal);
    deliverer_ = Make(TeamSpiritDeliverer::Options());
  }

  std::unique_ptr<TeamSpiritDeliverer> Make(TeamSpiritDeliverer::Options o) {
    return std::make_unique<TeamSpiritDeliverer>(
        o, api_.get(),
        [this](absl::string_view id,
               const std::function<absl::Status(absl::string_view)>& write)
            -> absl::StatusOr<v1::BlobMeta> {
          auto it = blobs_.find(std::string(id));
          if (it == blobs_.end()) return absl::NotFoundError("no blob");
          if (blob_outage_) return absl::UnavailableError("router down");
          absl::Status s = write(it->second);
          if (!s.ok()) return s;
          v1::BlobMeta meta;
          meta.set_size(it->second.size());
          return meta;
        },
        journal_.get(),
        [this](const absl::Status& s) { outcomes_.push_back(s.ok()); });
  }

  HttpClient http_;
  RateLimiter limiter_{1000, 1000};
  std::unique_ptr<fakes::FakeTeamSpirit> fake_;
  std::unique_ptr<TeamSpiritApi> api_;
  std::unique_ptr<DeliveryJournal> journal_;
  std::unique_ptr<TeamSpiritDeliverer> deliverer_;
  std::map<std::string, std::string> blobs_;
  bool blob_outage_ = false;
  std::vector<bool> outcomes_;
};

TEST_F(TeamSpiritDelivererTest, PostsUnderTheExternalUserWithClientToken) {
  v1::Delivery d = Posted(1, "hello team");
  v1::Span* bold =
      d.mutable_event()->mutable_posted()->mutable_text()->add_spans();
  bold->set_kind(v1::Span::BOLD);
  bold->set_offset(6);
  bold->set_length(4);
  absl::StatusOr<std::vector<std::string>> ids = deliverer_->Deliver(d);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_THAT(*ids, SizeIs(1));

  auto user = fake_->GetExternalUser("imb-slack-T1-U1");
  ASSERT_TRUE(user.has_value());
  EXPECT_EQ(user->name, "Anna (slack)");
  EXPECT_EQ(user->avatar_url, "https://slack/anna.png");
  auto m = fake_->GetMessage((*ids)[0]);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->text, "hello **team**");
  EXPECT_EQ(m->format, "markdown");
  EXPECT_EQ(m->client_token, "router-1:1");
  ASSERT_TRUE(m->author.has_value());
  EXPECT_EQ(m->author->external_id, "imb-slack-T1-U1");
  EXPECT_EQ(m->author->name, "Anna (slack)");

  // The same delivery again (a retry after a crash): the same message.
  absl::StatusOr<std::vector<std::string>> again = deliverer_->Deliver(d);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *ids);
  EXPECT_THAT(fake_->Messages("c-1"), SizeIs(1));
  // The external user is refreshed at most hourly, not per message.
  deliverer_->Deliver(Posted(2, "second")).IgnoreError();
  EXPECT_EQ(fake_->GetExternalUser("imb-slack-T1-U1")->updates, 1);
  EXPECT_THAT(outcomes_, ElementsAre(true, true, true));
}

TEST_F(TeamSpiritDelivererTest, RepliesThreadsEditsDeletes) {
  auto root = deliverer_->Deliver(Posted(1, "root"));
  ASSERT_TRUE(root.ok());
  v1::Delivery reply = Posted(2, "reply");
  reply.set_reply_to_target_id((*root)[0]);
  reply.set_thread_root_target_id((*root)[0]);
  auto reply_ids = deliverer_->Deliver(reply);
  ASSERT_TRUE(reply_ids.ok()) << reply_ids.status();
  auto m = fake_->GetMessage((*reply_ids)[0]);
  EXPECT_EQ(m->reply_to, (*root)[0]);
  EXPECT_EQ(m->thread_id, (*root)[0]);

  // A target narrowed to the thread (a link member with thread_id) posts
  // into it without a thread root of its own.
  v1::Delivery in_thread = Posted(4, "in the thread");
  in_thread.mutable_target()->set_thread_id((*root)[0]);
  auto in_thread_ids = deliverer_->Deliver(in_thread);
  ASSERT_TRUE(in_thread_ids.ok()) << in_thread_ids.status();
  EXPECT_EQ(fake_->GetMessage((*in_thread_ids)[0])->thread_id, (*root)[0]);

  v1::Delivery edit = Posted(3, "");
  edit.mutable_event()->clear_posted();
  edit.mutable_event()->mutable_edited()->set_message_id("s-1");
  edit.mutable_event()->mutable_edited()->mutable_text()->set_text(
      "root, edited");
  edit.add_target_message_ids((*root)[0]);
  auto edited = deliverer_->Deliver(edit);
  ASSERT_TRUE(edited.ok()) << edited.status();
  EXPECT_THAT(*edited, IsEmpty());
  EXPECT_EQ(fake_->GetMessage((*root)[0])->text, "root, edited");

  v1::Delivery del = Posted(4, "");
  del.mutable_event()->clear_posted();
  del.mutable_event()->mutable_deleted()->set_message_id("s-1");
  del.add_target_message_ids((*root)[0]);
  ASSERT_TRUE(deliverer_->Deliver(del).ok());
  EXPECT_TRUE(fake_->GetMessage((*root)[0])->deleted);
  // A copy that is already gone counts as deleted.
  ASSERT_TRUE(deliverer_->Deliver(del).ok());
}

TEST_F(TeamSpiritDelivererTest, FilesAreUploadedAndAttached) {
  blobs_["blob-1"] = std::string("\x89PNG\r\n image bytes", 18);
  v1::Delivery d = Posted(1, "see picture");
  v1::Attachment* a = d.mutable_event()->mutable_posted()->add_attachments();
  a->set_blob_id("blob-1");
  a->set_name("cat.png");
  a->set_mime_type("image/png");
  a->set_size(18);
  v1::Attachment* missing =
      d.mutable_event()->mutable_posted()->add_attachments();
  missing->set_name("big.iso");
  missing->set_size(5ull << 30);
  missing->set_unavailable_reason("over the limit");
  auto ids = deliverer_->Deliver(d);
  ASSERT_TRUE(ids.ok()) << ids.status();
  auto m = fake_->GetMessage((*ids)[0]);
  ASSERT_THAT(m->file_ids, SizeIs(1));
  auto f = fake_->GetFile(m->file_ids[0]);
  EXPECT_EQ(f->content, blobs_["blob-1"]);
  EXPECT_EQ(f->name, "cat.png");
  EXPECT_EQ(f->mime_type, "image/png");
  EXPECT_EQ(m->text,
            "see picture\n\\[file: big.iso, 5.0 GB: over the limit\\]");

  // The router's blob store being down is retryable.
  blob_outage_ = true;
  absl::Status s = deliverer_->Deliver(Posted(5, "x")).status();
  EXPECT_TRUE(s.ok());
  v1::Delivery again = d;
  again.set_idempotency_key("router-1:6");
  EXPECT_TRUE(IsRetryable(deliverer_->Deliver(again).status()));
}

TEST_F(TeamSpiritDelivererTest, RateLimitsAndOutagesAreRetryable) {
  fake_->FailNext(1, 500, 0, "PUT", "/external-users");
  EXPECT_TRUE(IsRetryable(deliverer_->Deliver(Posted(1, "x")).status()));
  fake_->FailNext(1, 429, 1, "POST", "/messages");
  absl::Status limited = deliverer_->Deliver(Posted(2, "x")).status();
  EXPECT_TRUE(IsRetryable(limited)) << limited;
  EXPECT_EQ(RetryAfter(limited), absl::Seconds(1));
  // A chat the bot is not in: permanent.
  v1::Delivery elsewhere = Posted(3, "x");
  elsewhere.mutable_target()->set_chat_id("c-none");
  absl::Status gone = deliverer_->Deliver(elsewhere).status();
  EXPECT_FALSE(gone.ok());
  EXPECT_FALSE(IsRetryable(gone));
  EXPECT_THAT(outcomes_, ElementsAre(false, false, false));
}

TEST_F(TeamSpiritDelivererTest, LongTextBecomesSeveralMessages) {
  std::string text = std::string(9000, 'a') + "\n" + std::string(3000, 'b');
  auto ids = deliverer_->Deliver(Posted(1, text));
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_THAT(*ids, SizeIs(2));
  EXPECT_EQ(fake_->GetMessage((*ids)[0])->text, std::string(9000, 'a') + "\n");
  EXPECT_EQ(fake_->GetMessage((*ids)[1])->text, std::string(3000, 'b'));
  EXPECT_EQ(fake_->GetMessage((*ids)[1])->client_token, "router-1:1#2");
}

// API calls of `method` whose path ends with `suffix`.
size_t CountCalls(const fakes::FakeTeamSpirit& fake, const std::string& method,
                  const std::string& suffix) {
  size_t n = 0;
  for (const auto& c : fake.Calls()) {
    if (c.method == method && absl::EndsWith(c.path, suffix)) ++n;
  }
  return n;
}

TEST_F(TeamSpiritDelivererTest, ARetryResumesAfterTheLastRecordedStep) {
  blobs_["blob-1"] = "report bytes";
  v1::Delivery d =
      Posted(1, std::string(9000, 'a') + "\n" + std::string(3000, 'b'));
  v1::Attachment* a = d.mutable_event()->mutable_posted()->add_attachments();
  a->set_blob_id("blob-1");
  a->set_name("report.pdf");
  a->set_size(12);
  v1::Attachment* gone = d.mutable_event()->mutable_posted()->add_attachments();
  gone->set_blob_id("blob-gone");
  gone->set_name("old.txt");
  // The file is copied (and the other one becomes a notice); the post
  // fails.
  fake_->FailNext(1, 503, 0, "POST", "/messages");
  absl::Status first = deliverer_->Deliver(d).status();
  ASSERT_TRUE(IsRetryable(first)) << first;
  EXPECT_THAT(fake_->Messages("c-1"), IsEmpty());
  EXPECT_EQ(CountCalls(*fake_, "POST", "/files"), 1u);

  // The retry does not copy the file again.
  auto ids = deliverer_->Deliver(d);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_THAT(*ids, SizeIs(2));
  EXPECT_EQ(CountCalls(*fake_, "POST", "/files"), 1u);
  auto messages = fake_->Messages("c-1");
  ASSERT_THAT(messages, SizeIs(2));
  ASSERT_THAT(messages[0].file_ids, SizeIs(1));
  EXPECT_EQ(fake_->GetFile(messages[0].file_ids[0])->content, "report bytes");
  // The notice of the file that could not be copied ends the text.
  EXPECT_THAT(messages[1].text, HasSubstr("old.txt"));

  // A completed delivery answers its ids without a call.
  size_t calls = fake_->Calls().size();
  auto again = deliverer_->Deliver(d);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *ids);
  EXPECT_EQ(fake_->Calls().size(), calls);

  // A part recorded as posted (by a process that died before the next) is
  // not posted again.
  v1::Delivery split =
      Posted(2, std::string(9000, 'c') + "\n" + std::string(3000, 'd'));
  ASSERT_TRUE(
      journal_->RecordResult(split.idempotency_key(), 0, {"m-posted-before"})
          .ok());
  auto resumed = deliverer_->Deliver(split);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ASSERT_THAT(*resumed, SizeIs(2));
  EXPECT_EQ((*resumed)[0], "m-posted-before");
  EXPECT_EQ(fake_->GetMessage((*resumed)[1])->text, std::string(3000, 'd'));
  EXPECT_THAT(fake_->Messages("c-1"), SizeIs(3));
}

TEST_F(TeamSpiritDelivererTest, APostLeftOpenIsMadeAgainWithItsClientToken) {
  v1::Delivery d = Posted(1, "hello once");
  auto ids = deliverer_->Deliver(d);
  ASSERT_TRUE(ids.ok()) << ids.status();
  // Another process's journal recorded the intent, and died before the
  // answer: the post is made again with the same client_token, and
  // TeamSpirit answers with the first message.
  auto journal = DeliveryJournal::Open(DeliveryJournal::Options());
  ASSERT_TRUE(journal.ok());
  ASSERT_TRUE((*journal)
                  ->RecordIntent(d.idempotency_key(), "teamspirit/corp/c-1", 0)
                  .ok());
  journal_ = *std::move(journal);
  deliverer_ = Make(TeamSpiritDeliverer::Options());
  auto after = deliverer_->Deliver(d);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, *ids);
  EXPECT_THAT(fake_->Messages("c-1"), SizeIs(1));
  EXPECT_EQ(CountCalls(*fake_, "POST", "/messages"), 2u);
}

TEST_F(TeamSpiritDelivererTest, PresenceUpdatesTheExternalUser) {
  v1::Delivery d = Posted(1, "");
  d.mutable_event()->clear_posted();
  d.mutable_event()->mutable_channel()->clear_chat_id();
  v1::PresenceChanged* p = d.mutable_event()->mutable_presence();
  p->mutable_user()->set_id("U1");
  p->mutable_user()->set_display_name("Anna");
  p->set_presence(v1::DND);
  p->set_status_text("focus");
  ASSERT_TRUE(deliverer_->Deliver(d).ok());
  auto user = fake_->GetExternalUser("imb-slack-T1-U1");
  ASSERT_TRUE(user.has_value());
  EXPECT_EQ(user->name, "Anna (slack)");
  EXPECT_EQ(user->presence.status, "dnd");
  EXPECT_EQ(user->presence.text, "focus");
  p->set_presence(v1::OFFLINE);
  ASSERT_TRUE(deliverer_->Deliver(d).ok());
  EXPECT_EQ(fake_->GetExternalUser("imb-slack-T1-U1")->presence.status,
            "offline");
}

TEST_F(TeamSpiritDelivererTest, PostAsBotAndMembershipNotices) {
  TeamSpiritDeliverer::Options o;
  o.post_as_bot = true;
  o.membership_notices = true;
  auto deliverer = Make(o);
  auto ids = deliverer->Deliver(Posted(1, "hi *there*"));
  ASSERT_TRUE(ids.ok()) << ids.status();
  auto m = fake_->GetMessage((*ids)[0]);
  EXPECT_EQ(m->text, "**Anna (slack)**: hi \\*there\\*");
  EXPECT_FALSE(m->author.has_value());
  EXPECT_THAT(fake_->ExternalUsers(), IsEmpty());

  v1::Delivery joined = Posted(2, "");
  joined.mutable_event()->clear_posted();
  joined.mutable_event()->mutable_membership()->set_joined(true);
  auto notice = deliverer->Deliver(joined);
  ASSERT_TRUE(notice.ok()) << notice.status();
  EXPECT_EQ(fake_->GetMessage((*notice)[0])->text, "_Anna (slack) joined_");
}

TEST_F(TeamSpiritDelivererTest, NativeMentionsOnlyFromTeamSpirit) {
  v1::Delivery d = Posted(1, "ping @Ivan", "teamspirit");
  v1::Span* mention =
      d.mutable_event()->mutable_posted()->mutable_text()->add_spans();
  mention->set_kind(v1::Span::MENTION);
  mention->set_offset(5);
  mention->set_length(5);
  mention->set_user_id("u-7");
  auto ids = deliverer_->Deliver(d);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(fake_->GetMessage((*ids)[0])->text, "ping @[Ivan](user:u-7)");
  v1::Span span = *mention;
  d = Posted(2, "ping @Ivan", "slack");
  *d.mutable_event()->mutable_posted()->mutable_text()->add_spans() = span;
  ids = deliverer_->Deliver(d);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(fake_->GetMessage((*ids)[0])->text, "ping @Ivan");
}

TEST_F(TeamSpiritDelivererTest, SendOnlyPostsToTheIncomingWebhook) {
  TsIncomingWebhook hook(fake_->AddIncomingWebhook("c-1", "tok"), &http_,
                         &limiter_);
  std::vector<bool> outcomes;
  SendOnlyDeliverer deliverer(
      &hook, journal_.get(),
      [&](const absl::Status& s) { outcomes.push_back(s.ok()); });
  v1::Delivery d = Posted(1, "hello");
  v1::Attachment* a = d.mutable_event()->mutable_posted()->add_attachments();
  a->set_blob_id("blob-1");
  a->set_name("doc.pdf");
  auto ids = deliverer.Deliver(d);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, IsEmpty());
  auto messages = fake_->Messages("c-1");
  ASSERT_THAT(messages, SizeIs(1));
  EXPECT_EQ(messages[0].username, "Anna (slack)");
  EXPECT_EQ(messages[0].icon_url, "https://slack/anna.png");
  EXPECT_THAT(messages[0].text, HasSubstr("hello\n\\[file: doc.pdf"));
  fake_->FailNext(1, 502, 0, "", "/hooks/tok");
  EXPECT_TRUE(IsRetryable(deliverer.Deliver(Posted(2, "x")).status()));
  EXPECT_THAT(outcomes, ElementsAre(true, false));
}

TEST_F(TeamSpiritDelivererTest, BotPresenceFollowsHealth) {
  bool attached = false;
  BotPresence::Options o;
  o.degraded_after_failures = 3;
  o.degraded_after_detached = absl::Seconds(30);
  BotPresence presence(o, api_.get(), [&] { return attached; });
  absl::Time t = absl::FromUnixSeconds(1000);
  presence.Tick(t);
  EXPECT_EQ(presence.published(), "") << "nothing before the first attach";
  attached = true;
  presence.Tick(t);
  EXPECT_EQ(presence.published(), "online");
  EXPECT_EQ(fake_->BotPresence("u-bot").status, "online");
  for (int i = 0; i < 3; ++i)
    presence.RecordDelivery(absl::UnavailableError("x"));
  presence.Tick(t);
  EXPECT_EQ(presence.published(), "away");
  EXPECT_THAT(fake_->BotPresence("u-bot").text, HasSubstr("deliveries"));
  presence.RecordDelivery(absl::OkStatus());
  presence.Tick(t);
  EXPECT_EQ(presence.published(), "online");
  attached = false;
  presence.Tick(t + absl::Seconds(10));
  EXPECT_EQ(presence.published(), "online") << "a short disconnect is fine";
  presence.Tick(t + absl::Seconds(31));
  EXPECT_EQ(presence.published(), "away");
  EXPECT_THAT(fake_->BotPresence("u-bot").text, HasSubstr("router"));
  presence.Stop();
  EXPECT_EQ(presence.published(), "offline");
  EXPECT_THAT(fake_->BotPresenceHistory("u-bot"),
              ElementsAre("online", "away", "online", "away", "offline"));
  presence.Tick(t);  // Nothing after Stop().
  EXPECT_EQ(fake_->BotPresence("u-bot").status, "offline");
}

TEST_F(TeamSpiritDelivererTest, BotPresenceIsAwayWhileDeadLettersGrow) {
  BotPresence::Options o;
  o.dead_letter_window = absl::Minutes(10);
  BotPresence presence(o, api_.get(), [] { return true; });
  absl::Time t = absl::FromUnixSeconds(1000);
  presence.Tick(t);
  EXPECT_EQ(presence.published(), "online");
  // One permanent failure: the router dead-letters it.
  presence.RecordDelivery(absl::PermissionDeniedError("not a member"), t);
  presence.RecordDelivery(absl::OkStatus(), t);
  presence.Tick(t + absl::Minutes(1));
  EXPECT_EQ(presence.published(), "away");
  EXPECT_THAT(fake_->BotPresence("u-bot").text, HasSubstr("dead-lettered"));
  presence.Tick(t + absl::Minutes(11));
  EXPECT_EQ(presence.published(), "online");
  presence.Stop();
}

}  // namespace
}  // namespace imbridge::adapters::teamspirit
