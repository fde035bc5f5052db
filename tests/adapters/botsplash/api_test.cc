// The Botsplash Open API client against the emulated Botsplash: both kinds
// of credentials, uploads, error mapping and retries.

#include <string>
#include <thread>

#include "adapters/botsplash/botsplash_api.h"
#include "adapters/botsplash/mapping.h"
#include "adapters/common/delivery_handler.h"
#include "emulators/botsplash/fake_botsplash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::botsplash {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;
using json = nlohmann::json;
using Fake = emulators::FakeBotsplash;

class BotsplashApiTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fake_.Start().ok()); }

  OpenApiClient::Options KeyOptions() {
    OpenApiClient::Options o;
    o.account = "sales";
    o.base_url = fake_.base_url() + "/" + fake_.options().app_id;
    o.api_key = fake_.options().api_key;
    o.requests_per_second = 0;  // Unpaced.
    o.initial_backoff = absl::Milliseconds(10);
    o.max_backoff = absl::Milliseconds(40);
    o.max_attempts = 3;
    return o;
  }

  json Message(const std::string& text) {
    Visitor v;
    v.client_visitor_id = "12345";
    v.phone_number = "3334445555";
    return DirectMessageBody(text, v);
  }

  Fake fake_;
  HttpClient http_;
};

TEST_F(BotsplashApiTest, ApiKeyAndBasicAuthBothWork) {
  OpenApiClient by_key(KeyOptions(), &http_);
  absl::StatusOr<json> r = by_key.PostJson("/message/visitor", Message("a"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["clientVisitorId"], "12345");

  OpenApiClient::Options o = KeyOptions();
  o.api_key.clear();
  o.username = fake_.options().username;
  o.password = fake_.options().password;
  OpenApiClient basic(o, &http_);
  r = basic.PostJson("/message/visitor", Message("b"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(fake_.ReceivedBy("12345"), SizeIs(2));
}

TEST_F(BotsplashApiTest, WrongCredentialsArePermanentWithBotsplashsMessage) {
  OpenApiClient::Options o = KeyOptions();
  o.api_key = "wrong-key";
  OpenApiClient api(o, &http_);
  absl::StatusOr<json> r = api.PostJson("/message/visitor", Message("a"));
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(IsRetryable(r.status()));
  EXPECT_THAT(r.status().message(), HasSubstr("HTTP 401"));
  EXPECT_THAT(r.status().message(), HasSubstr("Unauthorized"));
  EXPECT_THAT(std::string(r.status().message()),
              ::testing::Not(HasSubstr("wrong-key")));
  EXPECT_THAT(fake_.Calls(), SizeIs(1));  // Not retried.
}

TEST_F(BotsplashApiTest, BadRequestIsPermanentWithTheReason) {
  OpenApiClient api(KeyOptions(), &http_);
  absl::StatusOr<json> r = api.PostJson(
      "/message/visitor", {{"visitor", {{"clientVisitorId", "1"}}}});
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(IsRetryable(r.status()));
  EXPECT_THAT(r.status().message(), HasSubstr("text is required"));
}

TEST_F(BotsplashApiTest, TooManyRequestsIsRetriedThenSucceeds) {
  OpenApiClient api(KeyOptions(), &http_);
  fake_.FailNext("/message", 2, 429, "rate limited", 0);
  absl::StatusOr<json> r = api.PostJson("/message/visitor", Message("a"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(fake_.Calls("/message"), SizeIs(3));
  EXPECT_THAT(fake_.ReceivedBy("12345"), SizeIs(1));
}

TEST_F(BotsplashApiTest, RetryAfterIsHonoured) {
  OpenApiClient::Options o = KeyOptions();
  o.max_backoff = absl::Seconds(5);
  OpenApiClient api(o, &http_);
  fake_.FailNext("/message", 1, 429, "slow down", 1);
  absl::Time start = absl::Now();
  ASSERT_TRUE(api.PostJson("/message/visitor", Message("a")).ok());
  // The second call waited for Retry-After (1 s), not the 10 ms backoff.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(900));
}

TEST_F(BotsplashApiTest, ServerErrorsExhaustedAreRetryable) {
  OpenApiClient api(KeyOptions(), &http_);
  fake_.FailNext("/message", 10, 503, "maintenance");
  absl::StatusOr<json> r = api.PostJson("/message/visitor", Message("a"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsRetryable(r.status()));
  EXPECT_THAT(r.status().message(), HasSubstr("maintenance"));
  EXPECT_THAT(fake_.Calls("/message"), SizeIs(3));
  EXPECT_THAT(fake_.ReceivedBy(""), SizeIs(0));
}

// With Botsplash failing, a call waited out its whole backoff however the
// adapter was stopping; Stop() ends the wait, and later calls are answered
// at once, without a request.
TEST_F(BotsplashApiTest, StopEndsACallInItsBackoff) {
  OpenApiClient::Options o = KeyOptions();
  o.initial_backoff = absl::Seconds(30);
  o.max_backoff = absl::Seconds(30);
  OpenApiClient api(o, &http_);
  fake_.FailNext("/message", 10, 503, "maintenance");
  absl::StatusOr<json> r;
  std::thread call([&] { r = api.PostJson("/message/visitor", Message("a")); });
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (fake_.Calls("/message").empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_THAT(fake_.Calls("/message"), SizeIs(1));
  api.Stop();
  call.join();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsRetryable(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("the adapter is stopping"));
  EXPECT_TRUE(
      IsRetryable(api.PostJson("/message/visitor", Message("b")).status()));
  EXPECT_THAT(fake_.Calls("/message"), SizeIs(1));
}

TEST_F(BotsplashApiTest, UploadAnswersAMediaKeyThatSendsTheFile) {
  OpenApiClient api(KeyOptions(), &http_);
  absl::StatusOr<json> up = api.Upload("/upload", "photo.png", "image/png",
                                       std::string("\x89PNG..", 6));
  ASSERT_TRUE(up.ok()) << up.status();
  std::string key = MediaKeyOf(*up);
  ASSERT_FALSE(key.empty()) << up->dump();
  std::optional<Fake::Media> media = fake_.GetMedia(key);
  ASSERT_TRUE(media.has_value());
  EXPECT_EQ(media->name, "photo.png");
  EXPECT_EQ(media->bytes, std::string("\x89PNG..", 6));
  Visitor v;
  v.client_visitor_id = "12345";
  v.phone_number = "3334445555";
  ASSERT_TRUE(
      api.PostJson("/message/visitor", DirectMessageBody("photo.png", v, key))
          .ok());
  ASSERT_THAT(fake_.ReceivedBy("12345"), SizeIs(1));
  EXPECT_EQ(fake_.ReceivedBy("12345")[0].media_name, "photo.png");
}

TEST_F(BotsplashApiTest, ListenerAndUpdateVisitor) {
  OpenApiClient api(KeyOptions(), &http_);
  Visitor v;
  v.client_visitor_id = "imb-15551234567";
  v.first_name = "Ann";
  v.phone_number = "+15551234567";
  ASSERT_TRUE(
      api.PostJson("/listener/botsplash/lst-1", ListenerBody(v, "Hi")).ok());
  absl::StatusOr<json> missing =
      api.PostJson("/listener/botsplash/nope", ListenerBody(v, ""));
  EXPECT_THAT(missing.status().message(),
              HasSubstr("listener 'nope' not found"));
  Visitor agent;
  agent.client_visitor_id = v.client_visitor_id;
  agent.agent_client_user_id = "agent-9";
  ASSERT_TRUE(api.PostJson("/visitor/clientVisitorId/imb-15551234567",
                           UpdateVisitorBody(agent))
                  .ok());
  std::optional<Fake::Visitor> got = fake_.GetVisitor("imb-15551234567");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->first_name, "Ann");
  EXPECT_EQ(got->agent_client_user_id, "agent-9");
  EXPECT_EQ(got->listener_id, "lst-1");
}

}  // namespace
}  // namespace imbridge::adapters::botsplash
