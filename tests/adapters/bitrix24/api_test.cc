// The Bitrix24 REST client against the emulated portal: envelopes, error
// mapping, retries, token refresh and file downloads.

#include <string>
#include <thread>
#include <vector>

#include "adapters/bitrix24/bitrix24_api.h"
#include "adapters/common/delivery_handler.h"
#include "emulators/bitrix24/fake_bitrix24.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::bitrix24 {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;
using json = nlohmann::json;
using Fake = emulators::FakeBitrix24;

class Bitrix24RestClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fake_.Start().ok());
    fake_.SetBucket(1000, 1000);
  }

  RestClient::Options WebhookOptions() {
    RestClient::Options o;
    o.account = "main";
    o.webhook_url = fake_.webhook_url();
    o.requests_per_second = 0;  // Unpaced.
    o.initial_backoff = absl::Milliseconds(10);
    o.max_backoff = absl::Milliseconds(40);
    o.max_attempts = 4;
    return o;
  }

  int64_t RegisterBot(RestClient& api) {
    auto r = api.Call("imbot.v2.Bot.register",
                      {{"fields", {{"code", "b"}, {"type", "supervisor"}}}});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? (*r)["bot"]["id"].get<int64_t>() : 0;
  }

  emulators::FakeBitrix24 fake_;
  HttpClient http_;
};

TEST_F(Bitrix24RestClientTest, QueryLimitIsRetriedThenSucceeds) {
  RestClient api(WebhookOptions(), &http_, nullptr);
  fake_.FailNext("imbot.v2.Bot.list", 2, 503, "QUERY_LIMIT_EXCEEDED");
  auto r = api.Call("imbot.v2.Bot.list", json::object());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE((*r)["bots"].is_array());
  EXPECT_THAT(fake_.calls("imbot.v2.Bot.list"), SizeIs(3));
}

TEST_F(Bitrix24RestClientTest, ExhaustedRetriesAreRetryable) {
  RestClient api(WebhookOptions(), &http_, nullptr);
  fake_.FailNext("imbot.v2.Bot.list", 10, 429, "OPERATION_TIME_LIMIT");
  auto r = api.Call("imbot.v2.Bot.list", json::object());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsRetryable(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("OPERATION_TIME_LIMIT"));
  EXPECT_THAT(fake_.calls("imbot.v2.Bot.list"), SizeIs(4));
}

// With the portal failing, a call waited out its whole backoff (15 s with
// the defaults) however the adapter was stopping; Stop() ends the wait, and
// later calls are answered at once, without a request.
TEST_F(Bitrix24RestClientTest, StopEndsACallInItsBackoff) {
  RestClient::Options o = WebhookOptions();
  o.initial_backoff = absl::Seconds(30);
  o.max_backoff = absl::Seconds(30);
  RestClient api(o, &http_, nullptr);
  fake_.FailNext("imbot.v2.Bot.list", 10, 503, "QUERY_LIMIT_EXCEEDED");
  absl::StatusOr<json> r;
  std::thread call([&] { r = api.Call("imbot.v2.Bot.list", json::object()); });
  ASSERT_TRUE(fake_.WaitFor(
      [&] { return fake_.calls("imbot.v2.Bot.list").size() == 1; }));
  api.Stop();
  call.join();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsRetryable(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("the adapter is stopping"));
  auto later = api.Call("imbot.v2.Bot.list", json::object());
  EXPECT_TRUE(IsRetryable(later.status())) << later.status();
  EXPECT_THAT(fake_.calls("imbot.v2.Bot.list"), SizeIs(1));
}

TEST_F(Bitrix24RestClientTest, OtherErrorsArePermanentWithTheirCode) {
  RestClient api(WebhookOptions(), &http_, nullptr);
  auto r = api.Call("imbot.v2.Chat.Message.send", {{"botId", 999}});
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(IsRetryable(r.status()));
  EXPECT_EQ(ErrorCode(r.status()), "BOT_NOT_FOUND");
  EXPECT_THAT(r.status().message(),
              HasSubstr("imbot.v2.Chat.Message.send: BOT_NOT_FOUND"));
  EXPECT_THAT(fake_.calls("imbot.v2.Chat.Message.send"), SizeIs(1));

  RestClient::Options wrong = WebhookOptions();
  wrong.webhook_url = fake_.base_url() + "/rest/1/wrongcode/";
  RestClient bad(wrong, &http_, nullptr);
  auto denied = bad.Call("imbot.v2.Bot.list", json::object());
  EXPECT_EQ(ErrorCode(denied.status()), "NO_AUTH_FOUND");
}

TEST_F(Bitrix24RestClientTest, ExpiredTokenRefreshesOnceAndRepeats) {
  RestClient::Options o = WebhookOptions();
  o.webhook_url.clear();
  o.rest_url = fake_.rest_url();
  o.token_url = fake_.oauth_url();
  o.client_id = fake_.options().client_id;
  o.client_secret = fake_.options().client_secret;
  o.access_token = fake_.access_token();
  o.refresh_token = fake_.refresh_token();
  RestClient api(o, &http_, nullptr);
  ASSERT_TRUE(api.Call("imbot.v2.Bot.list", json::object()).ok());
  fake_.ExpireAccessToken();
  auto r = api.Call("imbot.v2.Bot.list", json::object());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(fake_.refreshes(), 1);
  EXPECT_TRUE(api.health().ok());

  // A refresh token that no longer works: unhealthy, with the reason.
  o.access_token = "stale";
  o.refresh_token = "revoked";
  RestClient revoked(o, &http_, nullptr);
  auto failed = revoked.Call("imbot.v2.Bot.list", json::object());
  EXPECT_FALSE(failed.ok());
  EXPECT_TRUE(api.health().ok());
  EXPECT_TRUE(revoked.health().ok());  // invalid_token is not expired_token.
  EXPECT_EQ(ErrorCode(failed.status()), "invalid_token");
  fake_.ExpireAccessToken();
  o.access_token = fake_.access_token();
  RestClient expired(o, &http_, nullptr);
  failed = expired.Call("imbot.v2.Bot.list", json::object());
  EXPECT_TRUE(IsRetryable(failed.status()));
  EXPECT_THAT(expired.health().message(), HasSubstr("invalid_grant"));
  EXPECT_THAT(expired.health().message(), ::testing::Not(HasSubstr("revoked")));
}

TEST_F(Bitrix24RestClientTest, DownloadSendsTheRequiredHeaders) {
  RestClient api(WebhookOptions(), &http_, nullptr);
  int64_t bot = RegisterBot(api);
  int64_t chat = fake_.CreateChat("c");
  fake_.AddToChat(chat, bot);
  int64_t msg = fake_.PostFile(chat, fake_.NewUser("A"), "a.txt", "content");
  int64_t file = fake_.message(msg)->file_ids.at(0);
  auto link =
      api.Call("imbot.v2.File.download", {{"botId", bot}, {"fileId", file}});
  ASSERT_TRUE(link.ok()) << link.status();
  std::string url = (*link)["downloadUrl"];
  // Without Bitrix24's headers the portal answers 404.
  auto plain = http_.Get(url);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->status, 404);
  std::string got;
  absl::Status s = api.Download(url, 1000, [&](absl::string_view chunk) {
    got.append(chunk.data(), chunk.size());
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, "content");
  EXPECT_TRUE(absl::IsOutOfRange(api.Download(
      url, 3, [](absl::string_view) { return absl::OkStatus(); })));
}

// Several commands in one `batch` request: each gets its own answer; with
// halt the commands after a failure are not made; the limit codes of a
// command are retryable, others permanent with their code.
TEST_F(Bitrix24RestClientTest, BatchMakesSeveralCallsInOneRequest) {
  RestClient api(WebhookOptions(), &http_, nullptr);
  int64_t bot = RegisterBot(api);
  int64_t chat = fake_.CreateChat("c");
  fake_.AddToChat(chat, bot);
  const std::string dialog = absl::StrCat("chat", chat);
  auto send = [&](const std::string& text) {
    return RestClient::Command{"imbot.v2.Chat.Message.send",
                               {{"botId", bot},
                                {"dialogId", dialog},
                                {"fields", {{"message", text}}}}};
  };
  const size_t batches_before = fake_.calls("batch").size();
  auto r = api.CallBatch(
      {send("one [b]&[/b] ✓"),
       send("two"),
       {"imbot.v2.Chat.Message.update", {{"botId", bot}, {"messageId", 1}}},
       send("three")},
      /*halt=*/false);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_THAT(*r, SizeIs(4));
  ASSERT_TRUE((*r)[0].ok()) << (*r)[0].status();
  ASSERT_TRUE((*r)[1].ok());
  EXPECT_EQ(ErrorCode((*r)[2].status()), "MESSAGE_NOT_FOUND");
  EXPECT_FALSE(IsRetryable((*r)[2].status()));
  ASSERT_TRUE((*r)[3].ok());
  std::vector<Fake::Message> sent = fake_.messages(chat, bot);
  ASSERT_THAT(sent, SizeIs(3));
  EXPECT_EQ(sent[0].id, (*(*r)[0])["id"].get<int64_t>());
  EXPECT_EQ(sent[0].text, "one [b]&[/b] ✓");
  EXPECT_EQ(sent[2].text, "three");
  EXPECT_THAT(fake_.calls("batch"), SizeIs(batches_before + 1));
  for (const Fake::Call& c : fake_.calls("imbot.v2.Chat.Message.send")) {
    EXPECT_TRUE(c.batched);
  }

  // halt: the second command fails (a limit code: retryable), the third
  // is not made.
  fake_.FailNext("imbot.v2.Chat.Message.send", 1, 503, "QUERY_LIMIT_EXCEEDED",
                 /*after=*/1);
  r = api.CallBatch({send("four"), send("five"), send("six")}, /*halt=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_THAT(*r, SizeIs(3));
  EXPECT_TRUE((*r)[0].ok());
  EXPECT_TRUE(IsRetryable((*r)[1].status())) << (*r)[1].status();
  EXPECT_THAT((*r)[1].status().message(), HasSubstr("QUERY_LIMIT_EXCEEDED"));
  EXPECT_TRUE(absl::IsAborted((*r)[2].status())) << (*r)[2].status();
  EXPECT_THAT(fake_.messages(chat, bot), SizeIs(4));

  // The batch request itself is retried like any call.
  fake_.FailNext("batch", 1, 503, "QUERY_LIMIT_EXCEEDED");
  r = api.CallBatch({send("seven"), send("eight")}, /*halt=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(fake_.messages(chat, bot), SizeIs(6));
  EXPECT_TRUE(absl::IsInvalidArgument(api.CallBatch({}, true).status()));
}

TEST(Bitrix24BatchesTest, CommandsAreCutIntoBatchesOfFiftyInOrder) {
  std::vector<RestClient::Command> commands;
  for (int i = 0; i < 120; ++i) commands.push_back({"m", {{"i", i}}});
  auto batches = InBatches(commands);
  ASSERT_THAT(batches, SizeIs(3));
  EXPECT_THAT(batches[0], SizeIs(50));
  EXPECT_THAT(batches[1], SizeIs(50));
  ASSERT_THAT(batches[2], SizeIs(20));
  EXPECT_EQ(batches[1][0].params["i"], 50);
  EXPECT_EQ(batches[2][19].params["i"], 119);
  EXPECT_THAT(InBatches({}), SizeIs(0));
}

}  // namespace
}  // namespace imbridge::adapters::bitrix24
