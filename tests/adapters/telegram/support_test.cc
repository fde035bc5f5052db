// Bot API envelope parsing, chat aliases and rate limiting.

#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/telegram/chat_aliases.h"
#include "adapters/telegram/rate_limiter.h"
#include "adapters/telegram/telegram_adapter.h"
#include "adapters/telegram/telegram_api.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::telegram {
namespace {

using ::testing::HasSubstr;

TEST(BotApiParseAnswerTest, OkEnvelopeReturnsResult) {
  BotApiError e;
  absl::StatusOr<nlohmann::json> r =
      BotApi::ParseAnswer(200, R"({"ok":true,"result":{"message_id":5}})", &e);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["message_id"], 5);
}

TEST(BotApiParseAnswerTest, FloodControlIsRetryableWithRetryAfter) {
  BotApiError e;
  absl::StatusOr<nlohmann::json> r = BotApi::ParseAnswer(
      429,
      R"({"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}})",
      &e);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsRetryable(r.status()));
  EXPECT_EQ(RetryAfter(r.status()), absl::Seconds(7));
  EXPECT_EQ(e.retry_after, absl::Seconds(7));
  EXPECT_THAT(r.status().message(), HasSubstr("Too Many Requests"));
}

TEST(BotApiParseAnswerTest, ClientErrorsArePermanentWithDescription) {
  BotApiError e;
  absl::StatusOr<nlohmann::json> r = BotApi::ParseAnswer(
      400,
      R"({"ok":false,"error_code":400,"description":"Bad Request: chat not found"})",
      &e);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(IsRetryable(r.status()));
  EXPECT_THAT(r.status().message(),
              HasSubstr("400 Bad Request: chat not found"));
}

TEST(BotApiParseAnswerTest, MigrationParameterIsReported) {
  BotApiError e;
  absl::StatusOr<nlohmann::json> r = BotApi::ParseAnswer(
      400,
      R"({"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234567890}})",
      &e);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(e.migrate_to_chat_id, -1001234567890);
}

TEST(BotApiParseAnswerTest, ServerErrorsAndGarbageAreRetryable) {
  BotApiError e;
  EXPECT_TRUE(IsRetryable(
      BotApi::ParseAnswer(502, "<html>bad gateway</html>", &e).status()));
  EXPECT_EQ(e.http_status, 502);
  EXPECT_TRUE(IsRetryable(
      BotApi::ParseAnswer(
          500, R"({"ok":false,"error_code":500,"description":"Internal"})", &e)
          .status()));
}

TEST(BotApiTest, BotIdComesFromTheToken) {
  auto http = std::make_shared<HttpClient>();
  EXPECT_EQ(
      BotApi({"http://127.0.0.1:1", "123456:ABC-def", absl::Seconds(1)}, http)
          .bot_id(),
      123456);
  EXPECT_EQ(BotApi({"http://127.0.0.1:1", "nonsense", absl::Seconds(1)}, http)
                .bot_id(),
            0);
}

TEST(BotApiTest, TransportErrorsNeverShowTheToken) {
  auto http = std::make_shared<HttpClient>();
  // Nothing listens on port 1.
  BotApi api(
      {"http://127.0.0.1:1", "123456:SECRET-token-value", absl::Seconds(2)},
      http);
  BotApiError e;
  absl::StatusOr<nlohmann::json> r =
      api.Call("getMe", nlohmann::json::object(), &e);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsRetryable(r.status()));
  EXPECT_THAT(std::string(r.status().message()),
              ::testing::Not(HasSubstr("SECRET")));
}

class ChatAliasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat(
               "tg-aliases-", ::getpid(), "-",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path() const { return (dir_ / "chat_aliases.json").string(); }
  std::filesystem::path dir_;
};

TEST_F(ChatAliasesTest, CurrentAndOriginalFollowTheChainAndPersist) {
  {
    auto journal = DeliveryJournal::OpenInStateDir(dir_.string());
    ASSERT_TRUE(journal.ok());
    ChatAliases aliases(journal->get(), path());
    ASSERT_TRUE(aliases.Load().ok());
    EXPECT_EQ(aliases.Current("a", "-100"), "-100");
    ASSERT_TRUE(aliases.Record("a", "-100", "-1001").ok());
    ASSERT_TRUE(aliases.Record("a", "-100", "-1001").ok());  // idempotent
    EXPECT_EQ(aliases.Current("a", "-100"), "-1001");
    EXPECT_EQ(aliases.Original("a", "-1001"), "-100");
    EXPECT_EQ(aliases.Current("b", "-100"), "-100");          // per account
    EXPECT_FALSE(aliases.Record("a", "-1001", "-100").ok());  // cycle
    EXPECT_FALSE(aliases.Record("a", "-5", "-5").ok());
  }
  // Kept in the journal, not in a file of their own.
  EXPECT_FALSE(std::filesystem::exists(path()));
  auto journal = DeliveryJournal::OpenInStateDir(dir_.string());
  ASSERT_TRUE(journal.ok());
  ChatAliases reloaded(journal->get(), path());
  ASSERT_TRUE(reloaded.Load().ok());
  EXPECT_EQ(reloaded.Current("a", "-100"), "-1001");
  EXPECT_EQ(reloaded.Original("a", "-1001"), "-100");
}

TEST_F(ChatAliasesTest, AFileOfEarlierVersionsIsImportedOnce) {
  std::ofstream(path()) << R"({"a": {"-1": "-1001"}, "b": {"-2": "-1002"}})";
  {
    auto journal = DeliveryJournal::OpenInStateDir(dir_.string());
    ASSERT_TRUE(journal.ok());
    ChatAliases aliases(journal->get(), path());
    ASSERT_TRUE(aliases.Load().ok());
    EXPECT_EQ(aliases.Current("a", "-1"), "-1001");
    EXPECT_EQ(aliases.Original("b", "-1002"), "-2");
  }
  EXPECT_FALSE(std::filesystem::exists(path()));
  EXPECT_TRUE(std::filesystem::exists(path() + ".imported"));
  auto journal = DeliveryJournal::OpenInStateDir(dir_.string());
  ASSERT_TRUE(journal.ok());
  ChatAliases reloaded(journal->get(), path());
  ASSERT_TRUE(reloaded.Load().ok());
  EXPECT_EQ(reloaded.Current("b", "-2"), "-1002");
}

TEST_F(ChatAliasesTest, MalformedFileIsRefusedAndNothingLoaded) {
  std::ofstream(path()) << "{\"a\": {\"-1\": 5}}";
  auto journal = DeliveryJournal::OpenInStateDir(dir_.string());
  ASSERT_TRUE(journal.ok());
  ChatAliases aliases(journal->get(), path());
  EXPECT_EQ(aliases.Load().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(aliases.Current("a", "-1"), "-1");
  // Left where it is for the operator to fix.
  EXPECT_TRUE(std::filesystem::exists(path()));
}

TEST_F(ChatAliasesTest, MemoryOnlyWithoutJournal) {
  ChatAliases aliases(nullptr, "");
  ASSERT_TRUE(aliases.Load().ok());
  ASSERT_TRUE(aliases.Record("a", "1", "2").ok());
  EXPECT_EQ(aliases.Current("a", "1"), "2");
}

TEST(RateLimiterTest, PerChatBurstThenOnePerSecond) {
  RateLimiter::Options o;
  o.per_chat_per_second = 1;
  o.per_chat_burst = 3;
  o.per_bot_per_second = 1000;
  o.max_wait = absl::Seconds(5);
  RateLimiter limiter(o);
  absl::Time t = absl::FromUnixSeconds(1000);
  bool granted = false;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(limiter.Reserve("bot", "5", false, t, &granted),
              absl::ZeroDuration());
    EXPECT_TRUE(granted);
  }
  EXPECT_EQ(limiter.Reserve("bot", "5", false, t, &granted), absl::Seconds(1));
  EXPECT_TRUE(granted);
  EXPECT_EQ(limiter.Reserve("bot", "5", false, t, &granted), absl::Seconds(2));
  // Another chat is independent.
  EXPECT_EQ(limiter.Reserve("bot", "6", false, t, &granted),
            absl::ZeroDuration());
  // Later the bucket refills.
  EXPECT_EQ(limiter.Reserve("bot", "5", false, t + absl::Seconds(10), &granted),
            absl::ZeroDuration());
}

TEST(RateLimiterTest, GroupsGetTwentyPerMinuteAndLongWaitsAreRefused) {
  RateLimiter::Options o;
  o.per_chat_per_second = 1000;
  o.per_chat_burst = 1000;
  o.per_group_per_minute = 20;
  o.per_bot_per_second = 1000;
  o.max_wait = absl::Seconds(5);
  RateLimiter limiter(o);
  absl::Time t = absl::FromUnixSeconds(1000);
  bool granted = false;
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(limiter.Reserve("bot", "-100", true, t, &granted),
              absl::ZeroDuration());
  }
  EXPECT_EQ(limiter.Reserve("bot", "-100", true, t, &granted),
            absl::Seconds(3));
  EXPECT_TRUE(granted);
  // The next would wait 6 s > max_wait: refused, nothing reserved.
  EXPECT_EQ(limiter.Reserve("bot", "-100", true, t, &granted),
            absl::Seconds(6));
  EXPECT_FALSE(granted);
  EXPECT_EQ(limiter.Reserve("bot", "-100", true, t, &granted),
            absl::Seconds(6));
  // Private chats are not groups.
  EXPECT_EQ(limiter.Reserve("bot", "77", false, t, &granted),
            absl::ZeroDuration());
}

TEST(RateLimiterTest, PerBotLimitSpansChats) {
  RateLimiter::Options o;
  o.per_chat_per_second = 1000;
  o.per_chat_burst = 1000;
  o.per_bot_per_second = 2;
  RateLimiter limiter(o);
  absl::Time t = absl::FromUnixSeconds(1000);
  bool granted = false;
  EXPECT_EQ(limiter.Reserve("bot", "1", false, t, &granted),
            absl::ZeroDuration());
  EXPECT_EQ(limiter.Reserve("bot", "2", false, t, &granted),
            absl::ZeroDuration());
  EXPECT_EQ(limiter.Reserve("bot", "3", false, t, &granted),
            absl::Milliseconds(500));
  EXPECT_EQ(limiter.Reserve("other", "3", false, t, &granted),
            absl::ZeroDuration());
}

TEST(OpenSendPolicy, OnlyTheTwoPoliciesAreAccepted) {
  v1::TelegramAdapterConfig config;
  config.mutable_router()->set_address("127.0.0.1:7700");
  config.mutable_router()->set_token("router-token-0123456789");
  v1::TelegramAccount* account = config.add_accounts();
  account->set_name("main");
  account->set_token("123456:secret-part");
  account->set_mode(v1::TelegramAccount::POLLING);
  EXPECT_TRUE(ValidateTelegramConfig("t.yaml", config).ok());
  for (const char* policy : {"at_least_once", "at_most_once"}) {
    config.set_open_send_policy(policy);
    EXPECT_TRUE(ValidateTelegramConfig("t.yaml", config).ok()) << policy;
  }
  config.set_open_send_policy("exactly_once");
  absl::Status bad = ValidateTelegramConfig("t.yaml", config);
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.message()), HasSubstr("open_send_policy"));
}

}  // namespace
}  // namespace imbridge::adapters::telegram
