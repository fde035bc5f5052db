// The outgoing-webhook receiver: authentication before parsing, bad input,
// echo filtering, answering only after the router's acknowledgement, files.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "adapters/teamspirit/inbound.h"
#include "adapters/teamspirit/rate_limiter.h"
#include "adapters/teamspirit/signature.h"
#include "emulators/teamspirit/fake_teamspirit.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/adapters/common/blob_reads.h"

namespace imbridge::adapters::teamspirit {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kSecret[] = "ts-webhook-secret-1";
constexpr int64_t kNow = 1763719200;

// Records what the receiver hands to the router; acknowledges on demand.
class FakeSink : public InboundRouter {
 public:
  void Publish(
      v1::Event event,
      std::function<void(absl::StatusOr<v1::PublishAck>)> done) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
    pending_.push_back(std::move(done));
  }

  absl::StatusOr<v1::BlobRef> PutBlob(
      const v1::BlobMeta& meta,
      const std::function<absl::StatusOr<size_t>(char*, size_t)>& read)
      override {
    absl::StatusOr<std::string> read_all =
        ReadWholeBlob(read, 7 /* small, to exercise many reads */);
    if (!read_all.ok()) return read_all.status();
    std::string data = *std::move(read_all);
    absl::MutexLock lock(&mu_);
    if (blob_error_.has_value()) return *blob_error_;
    v1::BlobRef ref;
    ref.set_blob_id(absl::StrCat("blob-", blobs_.size() + 1));
    ref.set_size(data.size());
    blobs_[ref.blob_id()] = data;
    blob_names_.push_back(meta.name());
    return ref;
  }

  void CountRejection(absl::string_view reason) {
    absl::MutexLock lock(&mu_);
    rejections_.emplace_back(reason);
  }

  // Acknowledges every publish so far with `outcome`.
  void AckAll(v1::PublishAck::Outcome outcome) {
    std::vector<std::function<void(absl::StatusOr<v1::PublishAck>)>> pending;
    {
      absl::MutexLock lock(&mu_);
      pending.swap(pending_);
    }
    v1::PublishAck ack;
    ack.set_outcome(outcome);
    for (auto& done : pending) done(ack);
  }

  bool WaitForEvents(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return events_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(20));
  }

  std::vector<v1::Event> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  std::vector<std::string> rejections() {
    absl::MutexLock lock(&mu_);
    return rejections_;
  }
  std::string blob(const std::string& id) {
    absl::MutexLock lock(&mu_);
    return blobs_[id];
  }
  void FailBlobs(absl::Status s) {
    absl::MutexLock lock(&mu_);
    blob_error_ = s;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::Event> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void(absl::StatusOr<v1::PublishAck>)>> pending_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> blobs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> blob_names_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> rejections_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> blob_error_ ABSL_GUARDED_BY(mu_);
};

// Keeps the first answer.
class RecordingResponder : public Responder {
 public:
  int status() const {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  std::string body() const {
    absl::MutexLock lock(&mu_);
    return body_;
  }
  bool WaitAnswered() const {
    absl::MutexLock lock(&mu_);
    auto answered = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return status_ != 0;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&answered), absl::Seconds(20));
  }

 protected:
  bool RespondImpl(int status, absl::string_view, std::string body,
                   HttpHeaderList) override {
    absl::MutexLock lock(&mu_);
    if (status_ != 0) return false;
    status_ = status;
    body_ = std::move(body);
    return true;
  }

 private:
  mutable absl::Mutex mu_;
  int status_ ABSL_GUARDED_BY(mu_) = 0;
  std::string body_ ABSL_GUARDED_BY(mu_);
};

HttpRequest Signed(const std::string& body, int64_t ts = kNow,
                   const std::string& secret = kSecret) {
  HttpRequest r;
  r.method = "POST";
  r.path = r.target = "/teamspirit/events";
  r.body = body;
  r.headers = {{"X-TeamSpirit-Timestamp", absl::StrCat(ts)},
               {"X-TeamSpirit-Signature",
                *SignTimestamped(kTeamSpiritSignature, secret, ts, body)}};
  return r;
}

std::string MessageCreated(const std::string& event_id, const std::string& user,
                           const std::string& text,
                           const std::string& extra = "") {
  return absl::StrCat(
      R"({"event_id":")", event_id,
      R"(","type":"message.created","created_at":"2025-11-21T10:00:00Z",)",
      R"("chat":{"id":"c-42","title":"Support","type":"group"},)",
      R"("user":{"id":")", user,
      R"(","name":"Ivan Petrov","avatar_url":"https://ts/a.png","is_bot":false},)",
      R"("message":{"id":"m-1001","text":")", text,
      R"(","format":"markdown","reply_to":"m-0999","thread_id":"m-0900",)",
      R"("files":[)", extra, R"(],"author":null}})");
}

class TeamSpiritWebhookReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fakes::FakeTeamSpirit::Options o;
    o.rate_limit_per_second = 0;
    fake_ = std::make_unique<fakes::FakeTeamSpirit>(o);
    fake_->AddBot("u-bot", "Bridge", "key-1");
    fake_->AddUser("u-7", "Ivan");
    ASSERT_TRUE(fake_->Start().ok());
    TeamSpiritApi::Options api;
    api.base_url = fake_->api_base_url();
    api.api_key = "key-1";
    api_ = std::make_unique<TeamSpiritApi>(api, &http_, &limiter_);
    InboundPipeline::Options pipeline_options;
    pipeline_options.max_file_bytes = 1000;
    pipeline_ = std::make_unique<InboundPipeline>(pipeline_options, &sink_);
    WebhookReceiver::Options options;
    options.webhook_secret = kSecret;
    options.account = "corp";
    options.clock = [] { return absl::FromUnixSeconds(kNow + 120); };
    receiver_ = std::make_unique<WebhookReceiver>(
        options, api_.get(), pipeline_.get(),
        [this](absl::string_view reason) { sink_.CountRejection(reason); });
    receiver_->SetBotUserId("u-bot");
  }

  std::shared_ptr<RecordingResponder> Send(HttpRequest request) {
    auto responder = std::make_shared<RecordingResponder>();
    receiver_->Handle(std::move(request), responder);
    return responder;
  }

  void TearDown() override { pipeline_->Stop(); }

  // Sends and waits for the answer.
  int Answer(HttpRequest request) {
    auto responder = Send(std::move(request));
    EXPECT_TRUE(responder->WaitAnswered());
    return responder->status();
  }

  HttpClient http_;
  RateLimiter limiter_{1000, 1000};
  FakeSink sink_;
  std::unique_ptr<fakes::FakeTeamSpirit> fake_;
  std::unique_ptr<TeamSpiritApi> api_;
  std::unique_ptr<InboundPipeline> pipeline_;
  std::unique_ptr<WebhookReceiver> receiver_;
};

TEST_F(TeamSpiritWebhookReceiverTest, AnswersOnlyAfterTheRouterAcknowledged) {
  auto r = Send(Signed(MessageCreated("evt-1", "u-7", "Hello **team**")));
  ASSERT_TRUE(sink_.WaitForEvents(1));
  EXPECT_EQ(r->status(), 0) << "answered before the router had the event";
  sink_.AckAll(v1::PublishAck::ACCEPTED);
  EXPECT_EQ(r->status(), 200);

  v1::Event e = sink_.events()[0];
  EXPECT_EQ(e.key(), "teamspirit:corp:evt-1");
  EXPECT_EQ(e.channel().platform(), "teamspirit");
  EXPECT_EQ(e.channel().account(), "corp");
  EXPECT_EQ(e.channel().chat_id(), "c-42");
  // A message in a thread is in the thread's channel too, for link members
  // narrowed to the thread.
  EXPECT_EQ(e.channel().thread_id(), "m-0900");
  EXPECT_EQ(e.occurred_at_ms(), kNow * 1000);
  ASSERT_TRUE(e.has_posted());
  EXPECT_EQ(e.posted().message_id(), "m-1001");
  EXPECT_EQ(e.posted().sender().id(), "u-7");
  EXPECT_EQ(e.posted().sender().display_name(), "Ivan Petrov");
  EXPECT_EQ(e.posted().sender().avatar_url(), "https://ts/a.png");
  EXPECT_EQ(e.posted().text().text(), "Hello team");
  ASSERT_THAT(e.posted().text().spans(), SizeIs(1));
  EXPECT_EQ(e.posted().text().spans(0).kind(), v1::Span::BOLD);
  EXPECT_EQ(e.posted().reply_to_message_id(), "m-0999");
  EXPECT_EQ(e.posted().thread_root_id(), "m-0900");
}

TEST_F(TeamSpiritWebhookReceiverTest, DuplicateAndDroppedAreOkFailedIs500) {
  auto dup = Send(Signed(MessageCreated("evt-1", "u-7", "x")));
  ASSERT_TRUE(sink_.WaitForEvents(1));
  sink_.AckAll(v1::PublishAck::DUPLICATE);
  EXPECT_EQ(dup->status(), 200);
  auto failed = Send(Signed(MessageCreated("evt-2", "u-7", "x")));
  ASSERT_TRUE(sink_.WaitForEvents(2));
  sink_.AckAll(v1::PublishAck::FAILED);
  EXPECT_EQ(failed->status(), 500);
}

TEST_F(TeamSpiritWebhookReceiverTest, TamperedBodyIs401AndNothingPublished) {
  HttpRequest r = Signed(MessageCreated("evt-1", "u-7", "original"));
  r.body = MessageCreated("evt-1", "u-7", "tampered");
  EXPECT_EQ(Send(r)->status(), 401);
  HttpRequest wrong_secret =
      Signed(MessageCreated("evt-1", "u-7", "x"), kNow, "another-secret");
  EXPECT_EQ(Send(wrong_secret)->status(), 401);
  EXPECT_THAT(sink_.events(), IsEmpty());
  EXPECT_THAT(sink_.rejections(),
              ElementsAre("bad_signature", "bad_signature"));
}

TEST_F(TeamSpiritWebhookReceiverTest, StaleTimestampIs401) {
  // Signed correctly, but 301 s (and 10 min) away from the receiver's clock.
  std::string body = MessageCreated("evt-1", "u-7", "x");
  EXPECT_EQ(Send(Signed(body, kNow + 120 - 301))->status(), 401);
  EXPECT_EQ(Send(Signed(body, kNow + 120 + 600))->status(), 401);
  // Within the window it passes.
  auto ok = Send(Signed(body, kNow + 120 - 299));
  ASSERT_TRUE(sink_.WaitForEvents(1));
  sink_.AckAll(v1::PublishAck::ACCEPTED);
  EXPECT_EQ(ok->status(), 200);
  EXPECT_THAT(sink_.rejections(),
              ElementsAre("stale_timestamp", "stale_timestamp"));
}

TEST_F(TeamSpiritWebhookReceiverTest, MissingHeadersAre401) {
  HttpRequest r = Signed(MessageCreated("evt-1", "u-7", "x"));
  HttpRequest no_signature = r;
  no_signature.headers = {r.headers[0]};
  HttpRequest no_timestamp = r;
  no_timestamp.headers = {r.headers[1]};
  HttpRequest bare = r;
  bare.headers.clear();
  HttpRequest garbage = r;
  garbage.headers = {{"X-TeamSpirit-Timestamp", "soon"}, r.headers[1]};
  for (const HttpRequest& request : {no_signature, no_timestamp, bare}) {
    EXPECT_EQ(Send(request)->status(), 401);
  }
  EXPECT_EQ(Send(garbage)->status(), 401);
  EXPECT_THAT(sink_.events(), IsEmpty());
  EXPECT_THAT(sink_.rejections(),
              ElementsAre("missing_signature", "missing_signature",
                          "missing_signature", "bad_signature"));
}

TEST_F(TeamSpiritWebhookReceiverTest, MalformedAndUnknownEvents) {
  EXPECT_EQ(Send(Signed("{not json"))->status(), 400);
  EXPECT_EQ(
      Send(Signed(R"({"event_id":"e","type":"message.created"})"))->status(),
      400);
  auto unknown = Send(Signed(R"({"event_id":"e","type":"reaction.added"})"));
  EXPECT_EQ(unknown->status(), 200);
  HttpRequest mismatch = Signed(MessageCreated("evt-1", "u-7", "x"));
  mismatch.headers.emplace_back("X-TeamSpirit-Event-Id", "evt-2");
  EXPECT_EQ(Send(mismatch)->status(), 400);
  EXPECT_THAT(sink_.events(), IsEmpty());
  EXPECT_THAT(sink_.rejections(), ElementsAre("bad_json", "bad_json",
                                              "unknown_type", "bad_event_id"));
}

TEST_F(TeamSpiritWebhookReceiverTest, OwnPostsAreNeverMirroredBack) {
  // The bot's own post.
  EXPECT_EQ(Answer(Signed(MessageCreated("evt-1", "u-bot", "copy"))), 200);
  // A post under an external user the bridge created (by its id prefix),
  // even if another bot made it.
  std::string authored = absl::StrCat(
      R"({"event_id":"evt-2","type":"message.created","chat":{"id":"c-42"},)",
      R"("user":{"id":"u-other-bot","is_bot":true},"message":{"id":"m-9",)",
      R"("text":"x","author":{"external_id":"imb-slack-T1-U1","name":"A"}}})");
  EXPECT_EQ(Answer(Signed(authored)), 200);
  // The bot's own presence and edits.
  EXPECT_EQ(Answer(Signed(R"({"event_id":"evt-3","type":"presence.changed",)"
                          R"("user":{"id":"u-bot"},"presence":)"
                          R"({"status":"away"}})")),
            200);
  EXPECT_THAT(sink_.events(), IsEmpty());
  EXPECT_THAT(sink_.rejections(),
              ElementsAre("own_post", "own_post", "own_post"));

  // Another integration's post with an author of its own is mirrored.
  std::string foreign = absl::StrCat(
      R"({"event_id":"evt-4","type":"message.created","chat":{"id":"c-42"},)",
      R"("user":{"id":"u-jira","is_bot":true},"message":{"id":"m-10",)",
      R"("text":"x","author":{"external_id":"jira-42","name":"Jira"}}})");
  auto mirrored = Send(Signed(foreign));
  EXPECT_TRUE(sink_.WaitForEvents(1));
  sink_.AckAll(v1::PublishAck::ACCEPTED);
  EXPECT_EQ(mirrored->status(), 200);
}

TEST_F(TeamSpiritWebhookReceiverTest, UnknownBotIdentityAsksForARetry) {
  receiver_->SetBotUserId("");
  EXPECT_EQ(Send(Signed(MessageCreated("evt-1", "u-7", "x")))->status(), 503);
  EXPECT_THAT(sink_.events(), IsEmpty());
}

TEST_F(TeamSpiritWebhookReceiverTest, OtherEventKinds) {
  // Events of one chat are published one after another, each once the
  // previous one was acknowledged.
  std::vector<std::string> bodies = {
      R"({"event_id":"e1","type":"message.updated","chat":{"id":"c"},)"
      R"("user":{"id":"u-7"},"message":{"id":"m-1","text":"_new_"}})",
      R"({"event_id":"e2","type":"message.deleted","chat":{"id":"c"},)"
      R"("user":{"id":"u-7"},"message":{"id":"m-1"}})",
      R"({"event_id":"e3","type":"presence.changed","user":)"
      R"({"id":"u-7","name":"Ivan"},"presence":{"status":"dnd",)"
      R"("text":"In a meeting"}})",
      R"({"event_id":"e4","type":"member.left","chat":{"id":"c"},)"
      R"("user":{"id":"u-7"}})"};
  for (size_t i = 0; i < bodies.size(); ++i) {
    auto r = Send(Signed(bodies[i]));
    ASSERT_TRUE(sink_.WaitForEvents(i + 1));
    sink_.AckAll(v1::PublishAck::ACCEPTED);
    ASSERT_TRUE(r->WaitAnswered());
    EXPECT_EQ(r->status(), 200);
  }
  std::vector<v1::Event> e = sink_.events();
  ASSERT_TRUE(e[0].has_edited());
  EXPECT_EQ(e[0].edited().message_id(), "m-1");
  EXPECT_EQ(e[0].edited().text().text(), "new");
  EXPECT_EQ(e[0].edited().editor().id(), "u-7");
  ASSERT_TRUE(e[1].has_deleted());
  EXPECT_EQ(e[1].deleted().message_id(), "m-1");
  ASSERT_TRUE(e[2].has_presence());
  EXPECT_EQ(e[2].channel().chat_id(), "");
  EXPECT_EQ(e[2].presence().presence(), v1::DND);
  EXPECT_EQ(e[2].presence().status_text(), "In a meeting");
  EXPECT_EQ(e[2].presence().user().display_name(), "Ivan");
  ASSERT_TRUE(e[3].has_membership());
  EXPECT_FALSE(e[3].membership().joined());
  EXPECT_EQ(e[3].channel().chat_id(), "c");
}

TEST_F(TeamSpiritWebhookReceiverTest, FilesAreCopiedIntoTheBlobStore) {
  std::string file = fake_->UploadAsUser("u-7", "report.pdf", "application/pdf",
                                         "%PDF report bytes");
  std::string huge = fake_->UploadAsUser("u-7", "huge.bin", "application/x",
                                         std::string(5000, 'x'));
  std::string files = absl::StrCat(
      R"({"id":")", file,
      R"(","name":"report.pdf","mime_type":"application/pdf","size":17},)",
      R"({"id":")", huge,
      R"(","name":"huge.bin","mime_type":"application/x","size":5000},)",
      R"({"id":"f-gone","name":"gone.png","mime_type":"image/png","size":3})");
  auto r = Send(Signed(MessageCreated("evt-1", "u-7", "", files)));
  ASSERT_TRUE(sink_.WaitForEvents(1));
  sink_.AckAll(v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(r->WaitAnswered());
  EXPECT_EQ(r->status(), 200);
  std::vector<v1::Event> events = sink_.events();
  const v1::MessagePosted& p = events[0].posted();
  ASSERT_THAT(p.attachments(), SizeIs(3));
  EXPECT_EQ(p.attachments(0).name(), "report.pdf");
  EXPECT_EQ(p.attachments(0).kind(), v1::Attachment::FILE);
  EXPECT_EQ(sink_.blob(p.attachments(0).blob_id()), "%PDF report bytes");
  EXPECT_EQ(p.attachments(0).size(), 17u);
  // Over max_file_bytes (1000) and missing on the server: a notice.
  EXPECT_EQ(p.attachments(1).blob_id(), "");
  EXPECT_THAT(p.attachments(1).unavailable_reason(),
              ::testing::HasSubstr("larger"));
  EXPECT_EQ(p.attachments(2).blob_id(), "");
  EXPECT_EQ(p.attachments(2).kind(), v1::Attachment::IMAGE);
  EXPECT_THAT(p.attachments(2).unavailable_reason(),
              ::testing::HasSubstr("404"));
}

TEST_F(TeamSpiritWebhookReceiverTest,
       RetryableFileFailureAsksTeamSpiritToRetry) {
  std::string file = fake_->UploadAsUser("u-7", "a.txt", "text/plain", "abc");
  std::string files =
      absl::StrCat(R"({"id":")", file, R"(","name":"a.txt","size":3})");
  fake_->FailNext(1, 503, 0, "GET", "/content");
  auto first = Send(Signed(MessageCreated("evt-1", "u-7", "x", files)));
  ASSERT_TRUE(first->WaitAnswered());
  EXPECT_EQ(first->status(), 503);
  EXPECT_THAT(sink_.events(), IsEmpty());

  sink_.FailBlobs(absl::UnavailableError("router gone"));
  auto second = Send(Signed(MessageCreated("evt-1", "u-7", "x", files)));
  ASSERT_TRUE(second->WaitAnswered());
  EXPECT_EQ(second->status(), 503);
  EXPECT_THAT(sink_.events(), IsEmpty());
}

TEST_F(TeamSpiritWebhookReceiverTest, RetryOfAnEventInProgressJoinsIt) {
  auto first = Send(Signed(MessageCreated("evt-1", "u-7", "x")));
  auto retry = Send(Signed(MessageCreated("evt-1", "u-7", "x")));
  ASSERT_TRUE(sink_.WaitForEvents(1));
  sink_.AckAll(v1::PublishAck::ACCEPTED);
  EXPECT_EQ(first->status(), 200);
  EXPECT_EQ(retry->status(), 200);
  EXPECT_THAT(sink_.events(), SizeIs(1));
}

}  // namespace
}  // namespace imbridge::adapters::teamspirit
