// Outgoing webhooks: the JSON body, its signature, and how the receiver's
// answers become delivery results, against a local receiver on port 0.

#include "adapters/webhook/outbound.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "adapters/common/signature.h"
#include "common/http/hmac.h"
#include "common/http/http_server.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::webhook {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::Delivery ParseDelivery(const std::string& textproto) {
  v1::Delivery d;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(textproto, &d))
      << textproto;
  return d;
}

const char kPosted[] = R"pb(
  id: 77
  link: "support"
  sender_name: "Ivan Petrov (teamspirit)"
  idempotency_key: "d-77"
  attempt: 2
  target { platform: "webhook" account: "default" chat_id: "out1" }
  reply_to_target_id: "r-1"
  event {
    key: "teamspirit:corp:evt-1"
    occurred_at_ms: 1763719200123
    channel { platform: "teamspirit" account: "corp" chat_id: "c-42" }
    posted {
      message_id: "m-1001"
      sender {
        platform: "teamspirit"
        id: "u-7"
        display_name: "Ivan Petrov"
        avatar_url: "https://ts/a.png"
      }
      text {
        text: "Hello team"
        spans { kind: BOLD offset: 6 length: 4 }
      }
      attachments {
        name: "report.pdf"
        mime_type: "application/pdf"
        size: 48213
        blob_id: "abc"
      }
    }
  })pb";

TEST(OutgoingBodyTest, PostedMessage) {
  nlohmann::json body =
      nlohmann::json::parse(OutgoingBody(ParseDelivery(kPosted), "out1"));
  EXPECT_EQ(body["type"], "message.posted");
  EXPECT_EQ(body["webhook_id"], "out1");
  EXPECT_EQ(body["link"], "support");
  EXPECT_EQ(body["event_key"], "teamspirit:corp:evt-1");
  EXPECT_EQ(body["delivery_id"], 77);
  EXPECT_EQ(body["idempotency_key"], "d-77");
  EXPECT_EQ(body["attempt"], 2);
  EXPECT_EQ(body["origin"]["platform"], "teamspirit");
  EXPECT_EQ(body["origin"]["chat_id"], "c-42");
  EXPECT_TRUE(body["origin"]["thread_id"].is_null());
  EXPECT_EQ(body["sender"]["name"], "Ivan Petrov (teamspirit)");
  EXPECT_EQ(body["sender"]["display_name"], "Ivan Petrov");
  EXPECT_EQ(body["sender"]["platform"], "teamspirit");
  EXPECT_EQ(body["sender"]["id"], "u-7");
  EXPECT_EQ(body["sender"]["avatar_url"], "https://ts/a.png");
  EXPECT_EQ(body["text"], "Hello team");
  EXPECT_EQ(body["markdown"], "Hello **team**");
  EXPECT_EQ(body["message_id"], "m-1001");
  EXPECT_EQ(body["target_message_ids"], nlohmann::json::array());
  EXPECT_EQ(body["reply_to"], "r-1");
  EXPECT_TRUE(body["thread_root"].is_null());
  EXPECT_EQ(body["attachments"], nlohmann::json::parse(R"([{"name":"report.pdf",
                "mime_type":"application/pdf","size":48213,"kind":"file"}])"));
  EXPECT_EQ(body["occurred_at"], "2025-11-21T10:00:00.123Z");
}

TEST(OutgoingBodyTest, EditDeleteAndPresence) {
  nlohmann::json edit = nlohmann::json::parse(OutgoingBody(ParseDelivery(R"(
      id: 1 target_message_ids: "n-1" target_message_ids: "n-2"
      event { key: "k" channel { platform: "slack" }
              edited { message_id: "m" text { text: "plain" } } })"),
                                                           "out1"));
  EXPECT_EQ(edit["type"], "message.edited");
  EXPECT_EQ(edit["text"], "plain");
  EXPECT_FALSE(edit.contains("markdown"));
  EXPECT_EQ(edit["target_message_ids"], nlohmann::json({"n-1", "n-2"}));
  EXPECT_TRUE(edit["occurred_at"].is_null());

  nlohmann::json del = nlohmann::json::parse(OutgoingBody(ParseDelivery(R"(
      id: 2 event { key: "k" deleted { message_id: "m" } })"),
                                                          "out1"));
  EXPECT_EQ(del["type"], "message.deleted");
  EXPECT_EQ(del["text"], "");

  nlohmann::json presence = nlohmann::json::parse(OutgoingBody(ParseDelivery(R"(
      id: 3 event { key: "k" presence { user { id: "u" display_name: "U" }
                                        presence: AWAY status_text: "lunch" } })"),
                                                               "out1"));
  EXPECT_EQ(presence["type"], "presence.changed");
  EXPECT_EQ(presence["presence"]["status"], "away");
  EXPECT_EQ(presence["presence"]["text"], "lunch");
  EXPECT_EQ(presence["sender"]["name"], "U");

  EXPECT_EQ(
      OutgoingType(
          ParseDelivery(R"(event { membership { joined: false } })").event()),
      "member.left");
}

// The body is written straight into a string: it is compact JSON with its
// keys in alphabetical order, byte for byte what parsing it and dumping it
// again gives, and strings with quotes, backslashes, control characters and
// non-ASCII UTF-8 come back as they were.
TEST(OutgoingBodyTest, IsCompactSortedJsonThatKeepsEveryString) {
  const std::string tricky =
      "quote \" back\\slash /slash tab\t nl\n cr\r \x01\x1f\x7f "
      "\xc3\xbc \xe2\x82\xac \xf0\x9f\x98\x80";
  v1::Delivery posted = ParseDelivery(kPosted);
  posted.mutable_event()->mutable_posted()->mutable_text()->set_text(tricky);
  posted.mutable_event()->mutable_posted()->mutable_text()->clear_spans();
  posted.mutable_event()->mutable_channel()->set_thread_id("t\"1");
  posted.set_sender_name(tricky);
  posted.add_target_message_ids("n-1");
  posted.add_target_message_ids("");
  v1::Attachment* gone =
      posted.mutable_event()->mutable_posted()->add_attachments();
  gone->set_name("a\"b.png");
  gone->set_kind(v1::Attachment::IMAGE);
  gone->set_unavailable_reason("too big");
  v1::Delivery membership = ParseDelivery(R"(
      id: 18446744073709551615 attempt: 4294967295
      event { key: "k" membership { user { id: "u" is_bot: true } joined: true } })");
  v1::Delivery empty = ParseDelivery("");
  for (const v1::Delivery& delivery :
       {ParseDelivery(kPosted), posted, membership, empty}) {
    std::string body = OutgoingBody(delivery, "out\"1");
    nlohmann::json parsed = nlohmann::json::parse(body);
    EXPECT_EQ(parsed.dump(), body);
  }
  nlohmann::json body = nlohmann::json::parse(OutgoingBody(posted, "out1"));
  EXPECT_EQ(body["text"], tricky);
  EXPECT_EQ(body["sender"]["name"], tricky);
  EXPECT_EQ(body["origin"]["thread_id"], "t\"1");
  EXPECT_EQ(body["target_message_ids"], nlohmann::json({"n-1", ""}));
  EXPECT_EQ(body["attachments"][1], nlohmann::json::parse(R"({"name":"a\"b.png",
                "mime_type":"","size":0,"kind":"image",
                "unavailable_reason":"too big"})"));
  nlohmann::json joined =
      nlohmann::json::parse(OutgoingBody(membership, "out1"));
  EXPECT_EQ(joined["delivery_id"], 18446744073709551615ull);
  EXPECT_EQ(joined["attempt"], 4294967295u);
  EXPECT_EQ(joined["type"], "member.joined");
  EXPECT_EQ(joined["sender"]["is_bot"], true);
  EXPECT_TRUE(joined["message_id"].is_null());
  EXPECT_EQ(nlohmann::json::parse(OutgoingBody(empty, "out1"))["sender"],
            nlohmann::json::object());
}

// A directory with outgoing webhook "out1" posting to `url`, and "gone"
// revoked.
class FakeDirectory : public WebhookDirectory {
 public:
  explicit FakeDirectory(std::string url) : url_(std::move(url)) {}
  void CheckIncomingKey(const std::string&, const std::string&,
                        CheckDone done) override {
    done(absl::PermissionDeniedError("no"));
  }
  absl::StatusOr<v1::OutgoingWebhook> GetOutgoing(
      const std::string& id) override {
    if (id == "gone") return absl::FailedPreconditionError("revoked");
    if (id == "down") return absl::UnavailableError("router down");
    if (id != "out1") return absl::NotFoundError("unknown webhook");
    v1::OutgoingWebhook hook;
    hook.mutable_webhook()->set_id(id);
    hook.mutable_webhook()->set_direction(v1::OUTGOING);
    hook.mutable_webhook()->set_url(url_);
    hook.set_secret("out-secret");
    return hook;
  }

 private:
  std::string url_;
};

// A receiver whose next answers are scripted; records what it got.
class Receiver {
 public:
  struct Answer {
    int status;
    std::string body;
    HttpHeaderList headers;
  };

  Receiver() : server_(HttpServer::Options()) {
    server_.Handle("POST", "/in",
                   [this](HttpRequest request, std::shared_ptr<Responder> r) {
                     Answer answer{200, "ok", {}};
                     {
                       absl::MutexLock lock(&mu_);
                       requests_.push_back(request);
                       if (!answers_.empty()) {
                         answer = answers_.front();
                         answers_.erase(answers_.begin());
                       }
                     }
                     r->Respond(answer.status, "application/json", answer.body,
                                answer.headers);
                   });
    EXPECT_TRUE(server_.Start().ok());
  }

  std::string url() const {
    return absl::StrCat("http://127.0.0.1:", server_.port(), "/in");
  }
  void Queue(Answer answer) {
    absl::MutexLock lock(&mu_);
    answers_.push_back(std::move(answer));
  }
  std::vector<HttpRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  HttpServer server_;
  absl::Mutex mu_;
  std::vector<Answer> answers_ ABSL_GUARDED_BY(mu_);
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
};

class OutgoingWebhooksTest : public ::testing::Test {
 protected:
  OutgoingWebhooksTest() : directory_(receiver_.url()) {
    OutgoingWebhooks::Options options;
    options.timeout = absl::Seconds(5);
    outgoing_ = std::make_unique<OutgoingWebhooks>(options, &directory_);
  }

  Receiver receiver_;
  FakeDirectory directory_;
  std::unique_ptr<OutgoingWebhooks> outgoing_;
};

TEST_F(OutgoingWebhooksTest, PostsSignedJsonAndUsesTheIdempotencyKey) {
  absl::StatusOr<std::vector<std::string>> ids =
      outgoing_->Deliver(ParseDelivery(kPosted));
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre("d-77"));
  ASSERT_EQ(receiver_.requests().size(), 1u);
  HttpRequest r = receiver_.requests()[0];
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("x-imbridge-event"), "message.posted");
  EXPECT_EQ(r.Header("idempotency-key"), "d-77");
  EXPECT_EQ(r.Header("x-imbridge-webhook-id"), "out1");
  // The signature is what docs/webhook.md tells a receiver to compute, over
  // a timestamp of now.
  int64_t timestamp = 0;
  ASSERT_TRUE(absl::SimpleAtoi(r.Header("x-imbridge-timestamp"), &timestamp));
  EXPECT_LE(absl::AbsDuration(absl::Now() - absl::FromUnixSeconds(timestamp)),
            absl::Minutes(5));
  std::string manual = absl::StrCat(
      "v1=",
      HmacSha256Hex("out-secret", absl::StrCat(r.Header("x-imbridge-timestamp"),
                                               ".", r.body)));
  EXPECT_EQ(r.Header("x-imbridge-signature"), manual);
  EXPECT_EQ(nlohmann::json::parse(r.body)["text"], "Hello team");
}

TEST_F(OutgoingWebhooksTest, MessageIdFromTheAnswerIsTheNativeId) {
  receiver_.Queue({200, R"({"message_id":"ext-5"})", {}});
  auto ids = outgoing_->Deliver(ParseDelivery(kPosted));
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre("ext-5"));
  receiver_.Queue({201, R"({"message_id":12})", {}});
  ids = outgoing_->Deliver(ParseDelivery(kPosted));
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre("12"));
}

TEST_F(OutgoingWebhooksTest, EditsReturnNoIds) {
  auto ids = outgoing_->Deliver(ParseDelivery(R"(
      id: 5 idempotency_key: "d-5" target_message_ids: "d-77"
      target { platform: "webhook" account: "default" chat_id: "out1" }
      event { key: "k" edited { message_id: "m" text { text: "x" } } })"));
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_TRUE(ids->empty());
}

TEST_F(OutgoingWebhooksTest, ServerErrorsAndRateLimitsAreRetryable) {
  receiver_.Queue({500, "boom", {}});
  absl::Status s = outgoing_->Deliver(ParseDelivery(kPosted)).status();
  EXPECT_TRUE(IsRetryable(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("HTTP 500"));
  EXPECT_THAT(s.message(), HasSubstr("boom"));

  receiver_.Queue({429, "slow down", {{"Retry-After", "7"}}});
  s = outgoing_->Deliver(ParseDelivery(kPosted)).status();
  EXPECT_TRUE(IsRetryable(s)) << s;
  EXPECT_EQ(RetryAfter(s), absl::Seconds(7));
}

TEST_F(OutgoingWebhooksTest, ClientErrorsRevokedAndUnknownArePermanent) {
  receiver_.Queue({404, "no such hook", {}});
  absl::Status s = outgoing_->Deliver(ParseDelivery(kPosted)).status();
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(IsRetryable(s)) << s;

  v1::Delivery gone = ParseDelivery(kPosted);
  gone.mutable_target()->set_chat_id("gone");
  s = outgoing_->Deliver(gone).status();
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(IsRetryable(s));
  EXPECT_THAT(s.message(), HasSubstr("revoked"));

  gone.mutable_target()->set_chat_id("nope");
  EXPECT_FALSE(IsRetryable(outgoing_->Deliver(gone).status()));

  // The router being unreachable is worth retrying.
  gone.mutable_target()->set_chat_id("down");
  EXPECT_TRUE(IsRetryable(outgoing_->Deliver(gone).status()));

  // Another account is not ours.
  v1::Delivery foreign = ParseDelivery(kPosted);
  foreign.mutable_target()->set_account("ops");
  EXPECT_FALSE(IsRetryable(outgoing_->Deliver(foreign).status()));
  EXPECT_EQ(receiver_.requests().size(), 1u);
}

TEST(OutgoingWebhooksUnreachableTest, ConnectionFailuresAreRetryable) {
  FakeDirectory directory("http://127.0.0.1:1/in");
  OutgoingWebhooks::Options options;
  options.timeout = absl::Seconds(5);
  OutgoingWebhooks outgoing(options, &directory);
  absl::Status s = outgoing.Deliver(ParseDelivery(kPosted)).status();
  EXPECT_TRUE(IsRetryable(s)) << s;
}

}  // namespace
}  // namespace imbridge::adapters::webhook
