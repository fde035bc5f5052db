// Incoming webhooks: Slack-compatible payloads, the event they become, and
// the HTTP answers for good and bad requests, with the key check served by
// a fake directory (GrpcWebhookDirectory is tested in
// webhook_directory_test.cc).

#include "adapters/webhook/inbound.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/http/http_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::webhook {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

IncomingMessage ParseOk(const std::string& content_type,
                        const std::string& body) {
  IncomingMessage message;
  PayloadError error;
  EXPECT_TRUE(ParseIncomingPayload(content_type, body, &message, &error))
      << error.reason << ": " << error.message;
  return message;
}

PayloadError ParseError(const std::string& content_type,
                        const std::string& body) {
  IncomingMessage message;
  PayloadError error;
  EXPECT_FALSE(ParseIncomingPayload(content_type, body, &message, &error));
  return error;
}

TEST(ParseIncomingPayloadTest, SlackJson) {
  IncomingMessage m = ParseOk(
      "application/json; charset=utf-8",
      R"({"text": "Deploy *done*", "username": "ci", "icon_url": "https://i/x.png",
          "channel": "#ignored", "icon_emoji": ":ghost:"})");
  EXPECT_EQ(m.text.text(), "Deploy done");
  ASSERT_EQ(m.text.spans_size(), 1);
  EXPECT_EQ(m.text.spans(0).kind(), v1::Span::BOLD);
  EXPECT_EQ(m.username, "ci");
  EXPECT_EQ(m.icon_url, "https://i/x.png");
}

TEST(ParseIncomingPayloadTest, MrkdwnFalseKeepsMarkersAsText) {
  IncomingMessage m = ParseOk("", R"({"text": "*a*", "mrkdwn": false})");
  EXPECT_EQ(m.text.text(), "*a*");
  EXPECT_EQ(m.text.spans_size(), 0);
}

TEST(ParseIncomingPayloadTest, AttachmentsAloneAreEnough) {
  IncomingMessage m = ParseOk(
      "application/json",
      R"({"attachments": [{"fallback": "fb", "title": "T", "text": "body"}]})");
  EXPECT_EQ(m.text.text(), "T\nbody");
  EXPECT_EQ(m.username, "");
}

TEST(ParseIncomingPayloadTest, FormPostWithPayload) {
  IncomingMessage m = ParseOk(
      "application/x-www-form-urlencoded",
      "other=1&payload=%7B%22text%22%3A+%22hello+%26+bye%22%2C%22username%22"
      "%3A%22bot%22%7D");
  EXPECT_EQ(m.text.text(), "hello & bye");
  EXPECT_EQ(m.username, "bot");
}

TEST(ParseIncomingPayloadTest, BadInput) {
  EXPECT_EQ(ParseError("application/json", "{not json").reason, "bad_json");
  EXPECT_EQ(ParseError("application/json", "[1,2]").reason, "bad_json");
  EXPECT_THAT(ParseError("", R"({"text": 5})").message, HasSubstr("'text'"));
  EXPECT_THAT(ParseError("", R"({"text": "x", "username": []})").message,
              HasSubstr("'username'"));
  EXPECT_THAT(ParseError("", R"({"attachments": {}})").message,
              HasSubstr("'attachments' must be an array"));
  EXPECT_THAT(
      ParseError("application/x-www-form-urlencoded", "text=hi").message,
      HasSubstr("'payload'"));
  PayloadError empty = ParseError("", R"({"username": "x"})");
  EXPECT_EQ(empty.reason, "no_text");
  EXPECT_EQ(ParseError("", R"({"text": "  ", "attachments": [{"color": "x"}]})")
                .reason,
            "no_text");
}

TEST(IncomingEventTest, PostedInTheWebhooksChannel) {
  IncomingMessage m;
  m.text.set_text("hi");
  m.username = "grafana";
  m.icon_url = "https://g/icon.png";
  v1::Event e = IncomingEvent("ops", "wh1", "abc", m,
                              absl::FromUnixMillis(1763719200123));
  EXPECT_EQ(e.key(), "webhook:ops:wh1:abc");
  EXPECT_EQ(e.channel().platform(), "webhook");
  EXPECT_EQ(e.channel().account(), "ops");
  EXPECT_EQ(e.channel().chat_id(), "wh1");
  EXPECT_EQ(e.occurred_at_ms(), 1763719200123);
  EXPECT_EQ(e.posted().message_id(), "abc");
  EXPECT_EQ(e.posted().sender().display_name(), "grafana");
  EXPECT_EQ(e.posted().sender().avatar_url(), "https://g/icon.png");
  EXPECT_TRUE(e.posted().sender().is_bot());
  EXPECT_EQ(e.posted().text().text(), "hi");

  m.username.clear();
  EXPECT_EQ(IncomingEvent("ops", "wh1", "x", m, absl::Now())
                .posted()
                .sender()
                .display_name(),
            "webhook");
}

// A post goes to its webhook's lane, under its event's key, and is converted
// on the HTTP thread.
TEST(IncomingRouteTest, TheWebhooksLaneAndItsEventsKey) {
  IncomingPost post;
  post.account = "ops";
  post.webhook_id = "wh1";
  post.unique = "abc";
  post.message.text.set_text("hi");
  post.received = absl::FromUnixMillis(1763719200123);
  InboundRoute route = IncomingRoute(post);
  EXPECT_EQ(route.chat, "wh1");
  EXPECT_EQ(route.key, "webhook:ops:wh1:abc");
  EXPECT_TRUE(route.convert_here);
  InboundConversion conversion = IncomingConversion(post);
  ASSERT_EQ(conversion.events.size(), 1u);
  EXPECT_EQ(conversion.events[0].key(), route.key);
  EXPECT_EQ(conversion.events[0].occurred_at_ms(), 1763719200123);
  EXPECT_EQ(conversion.events[0].posted().text().text(), "hi");
  EXPECT_TRUE(conversion.files.empty());
}

// Knows one incoming webhook "wh1" with key "good-key" (account "default")
// and one of account "other"; can pretend the router is down. Answers on its
// own thread like the gRPC client does.
class FakeDirectory : public WebhookDirectory {
 public:
  ~FakeDirectory() override { Join(); }

  // Waits for every answer given so far to finish.
  void Join() {
    absl::MutexLock lock(&threads_mu_);
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  void CheckIncomingKey(const std::string& id, const std::string& key,
                        CheckDone done) override {
    absl::StatusOr<v1::WebhookInfo> answer;
    {
      absl::MutexLock lock(&mu_);
      checks_.push_back(absl::StrCat(id, "/", key));
      if (down_) {
        answer = absl::UnavailableError("connection refused");
      } else if (key == "good-key" && (id == "wh1" || id == "wh-other")) {
        v1::WebhookInfo info;
        info.set_id(id);
        info.set_direction(v1::INCOMING);
        info.set_account(id == "wh1" ? "default" : "other");
        answer = info;
      } else {
        answer = absl::PermissionDeniedError("no");
      }
    }
    absl::MutexLock lock(&threads_mu_);
    threads_.emplace_back([done = std::move(done), answer] { done(answer); });
  }

  absl::StatusOr<v1::OutgoingWebhook> GetOutgoing(const std::string&) override {
    return absl::NotFoundError("none");
  }

  void set_down(bool down) {
    absl::MutexLock lock(&mu_);
    down_ = down;
  }
  std::vector<std::string> checks() {
    absl::MutexLock lock(&mu_);
    return checks_;
  }

 private:
  absl::Mutex mu_;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> checks_ ABSL_GUARDED_BY(mu_);
  absl::Mutex threads_mu_;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(threads_mu_);
};

// A router that records each event and accepts it at once.
class AcceptingRouter : public InboundRouter {
 public:
  void Publish(
      v1::Event event,
      std::function<void(absl::StatusOr<v1::PublishAck>)> done) override {
    {
      absl::MutexLock lock(&mu_);
      events_.push_back(std::move(event));
    }
    v1::PublishAck ack;
    ack.set_outcome(v1::PublishAck::ACCEPTED);
    done(ack);
  }
  absl::StatusOr<v1::BlobRef> PutBlob(
      const v1::BlobMeta&,
      const std::function<absl::StatusOr<size_t>(char*, size_t)>&) override {
    return absl::UnimplementedError("incoming webhooks carry no files");
  }
  std::vector<v1::Event> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::Event> events_ ABSL_GUARDED_BY(mu_);
};

// The webhook adapter's inbound connector, without the adapter.
class PostConnector : public InboundConnector<IncomingPost> {
 public:
  absl::StatusOr<InboundRoute> Route(const IncomingPost& post) override {
    return IncomingRoute(post);
  }
  absl::StatusOr<InboundConversion> Convert(const IncomingPost& post) override {
    return IncomingConversion(post);
  }
};

class IncomingWebhooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServer::Options options;
    options.max_body_bytes = 1 << 20;
    server_ = std::make_unique<HttpServer>(options);
    pipeline_ =
        std::make_unique<InboundPipeline>(InboundPipeline::Options(), &router_);
    incoming_ = std::make_unique<IncomingWebhooks>(
        Accounts(), &directory_, pipeline_.get(), &connector_,
        [this](absl::string_view reason) {
          absl::MutexLock lock(&mu_);
          rejections_.emplace_back(reason);
        });
    incoming_->Register(*server_);
    ASSERT_TRUE(server_->Start().ok());
  }
  // The accounts the adapter serves.
  virtual std::vector<std::string> Accounts() const { return {"default"}; }
  void TearDown() override {
    server_->Stop();
    directory_.Join();
    pipeline_->Stop();
  }

  HttpResponse Post(const std::string& path, const std::string& body,
                    HttpHeaderList headers = {}) {
    if (headers.empty())
      headers.push_back({"Content-Type", "application/json"});
    HttpClientRequest request;
    request.method = "POST";
    request.url = absl::StrCat("http://127.0.0.1:", server_->port(), path);
    request.headers = std::move(headers);
    request.body = body;
    absl::StatusOr<HttpResponse> response = client_.Send(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : HttpResponse();
  }

  std::vector<v1::Event> events() { return router_.events(); }
  std::vector<std::string> rejections() {
    absl::MutexLock lock(&mu_);
    return rejections_;
  }

  FakeDirectory directory_;
  AcceptingRouter router_;
  PostConnector connector_;
  std::unique_ptr<InboundPipeline> pipeline_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<IncomingWebhooks> incoming_;
  HttpClient client_;
  absl::Mutex mu_;
  std::vector<std::string> rejections_ ABSL_GUARDED_BY(mu_);
};

TEST_F(IncomingWebhooksTest, BearerKeyPublishesAndAnswersOk) {
  HttpResponse r = Post("/hooks/wh1", R"({"text":"hello","username":"ci"})",
                        {{"Content-Type", "application/json"},
                         {"Authorization", "Bearer good-key"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"ok":true})");
  ASSERT_EQ(events().size(), 1u);
  v1::Event e = events()[0];
  EXPECT_EQ(e.channel().chat_id(), "wh1");
  EXPECT_EQ(e.channel().account(), "default");
  EXPECT_THAT(e.key(), StartsWith("webhook:default:wh1:"));
  EXPECT_EQ(e.key().size(), std::string("webhook:default:wh1:").size() + 32);
  EXPECT_EQ(e.posted().text().text(), "hello");
  EXPECT_EQ(e.posted().sender().display_name(), "ci");
  EXPECT_THAT(directory_.checks(), ElementsAre("wh1/good-key"));
}

TEST_F(IncomingWebhooksTest, KeyInThePathAndEveryRequestIsChecked) {
  EXPECT_EQ(Post("/hooks/wh1/good-key", R"({"text":"a"})").status, 200);
  EXPECT_EQ(Post("/hooks/wh1/good-key/", R"({"text":"b"})").status, 200);
  ASSERT_EQ(events().size(), 2u);
  // Two requests, two different keys (events), two checks: nothing cached.
  EXPECT_NE(events()[0].key(), events()[1].key());
  EXPECT_EQ(directory_.checks().size(), 2u);
}

TEST_F(IncomingWebhooksTest, IdempotencyKeyMakesARetryTheSameEvent) {
  HttpHeaderList headers = {{"Content-Type", "application/json"},
                            {"Authorization", "Bearer good-key"},
                            {"Idempotency-Key", "req-1"}};
  EXPECT_EQ(Post("/hooks/wh1", R"({"text":"a"})", headers).status, 200);
  EXPECT_EQ(Post("/hooks/wh1", R"({"text":"a"})", headers).status, 200);
  ASSERT_EQ(events().size(), 2u);
  EXPECT_EQ(events()[0].key(), events()[1].key());
}

TEST_F(IncomingWebhooksTest, WrongMissingOrForeignKeysAre401) {
  HttpResponse r = Post("/hooks/wh1/bad-key", R"({"text":"x"})");
  EXPECT_EQ(r.status, 401);
  nlohmann::json body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["ok"], false);
  EXPECT_EQ(body["error"], "invalid_key");
  EXPECT_THAT(r.body, ::testing::Not(HasSubstr("bad-key")));

  EXPECT_EQ(Post("/hooks/unknown/good-key", R"({"text":"x"})").status, 401);
  // A webhook of another account is not this adapter's.
  EXPECT_EQ(Post("/hooks/wh-other/good-key", R"({"text":"x"})").status, 401);
  r = Post("/hooks/wh1", R"({"text":"x"})");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "missing_key");
  EXPECT_EQ(Post("/hooks/wh1", R"({"text":"x"})",
                 {{"Authorization", "Basic Z29vZC1rZXk="}})
                .status,
            401);
  EXPECT_TRUE(events().empty());
  EXPECT_THAT(rejections(),
              ElementsAre("invalid_key", "invalid_key", "invalid_key",
                          "missing_key", "missing_key"));
}

class IncomingWebhooksSeveralAccountsTest : public IncomingWebhooksTest {
 protected:
  std::vector<std::string> Accounts() const override {
    return {"default", "other"};
  }
};

TEST_F(IncomingWebhooksSeveralAccountsTest, ServesTheWebhooksOfEveryAccount) {
  EXPECT_EQ(Post("/hooks/wh1/good-key", R"({"text":"a"})").status, 200);
  EXPECT_EQ(Post("/hooks/wh-other/good-key", R"({"text":"b"})").status, 200);
  ASSERT_EQ(events().size(), 2u);
  EXPECT_EQ(events()[0].channel().account(), "default");
  EXPECT_EQ(events()[1].channel().account(), "other");
  EXPECT_THAT(events()[1].key(), StartsWith("webhook:other:wh-other:"));
}

TEST_F(IncomingWebhooksTest, BadBodiesAre400AfterTheKeyCheck) {
  HttpResponse r = Post("/hooks/wh1/good-key", "{oops");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "bad_json");
  r = Post("/hooks/wh1/good-key", R"({"username":"x"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "no_text");
  // A bad key is refused before the body is looked at.
  EXPECT_EQ(Post("/hooks/wh1/bad-key", "{oops").status, 401);
  EXPECT_TRUE(events().empty());
  EXPECT_THAT(rejections(), ElementsAre("bad_json", "no_text", "invalid_key"));
}

TEST_F(IncomingWebhooksTest, BadPathsAre404AndOversizedBodies413) {
  EXPECT_EQ(Post("/hooks/", R"({"text":"x"})").status, 404);
  EXPECT_EQ(Post("/hooks/a/b/c", R"({"text":"x"})").status, 404);
  HttpResponse r =
      Post("/hooks/wh1/good-key",
           absl::StrCat(R"({"text":")", std::string(1 << 20, 'x'), R"("})"));
  EXPECT_EQ(r.status, 413);
  EXPECT_TRUE(events().empty());
  EXPECT_TRUE(directory_.checks().empty());
}

TEST_F(IncomingWebhooksTest, RouterDownIs503) {
  directory_.set_down(true);
  HttpResponse r = Post("/hooks/wh1/good-key", R"({"text":"x"})");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "router_unavailable");
  EXPECT_TRUE(events().empty());
}

}  // namespace
}  // namespace imbridge::adapters::webhook
