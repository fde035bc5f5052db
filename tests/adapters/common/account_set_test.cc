#include "adapters/common/account_set.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters {
namespace {

using ::testing::ElementsAre;

struct Bot {
  std::string token;
};

std::unique_ptr<Bot> NewBot(std::string token) {
  return std::make_unique<Bot>(Bot{std::move(token)});
}

TEST(AccountSetTest, NamesAndIterationKeepTheConfigOrder) {
  AccountSet<Bot> accounts("Telegram");
  accounts.Add("zeta", NewBot("z"));
  accounts.Add("alpha", NewBot("a"));
  accounts.Add("mid", NewBot("m"));
  EXPECT_THAT(accounts.names(), ElementsAre("zeta", "alpha", "mid"));
  std::string tokens;
  for (const auto& bot : accounts) tokens += bot->token;
  EXPECT_EQ(tokens, "zam");
  EXPECT_EQ(accounts.size(), 3u);
  EXPECT_EQ(accounts.front()->token, "z");
}

TEST(AccountSetTest, FindReturnsTheAddedAccountOrNull) {
  AccountSet<Bot> accounts("Telegram");
  Bot* main = accounts.Add("main", NewBot("t1"));
  accounts.Add("support", NewBot("t2"));
  EXPECT_EQ(accounts.Find("main"), main);
  EXPECT_EQ(accounts.Find("support")->token, "t2");
  EXPECT_EQ(accounts.Find("other"), nullptr);
  EXPECT_EQ(accounts.Find(""), nullptr);
}

TEST(AccountSetTest, GetSaysWhichAccountIsMissingWithTheCallersCode) {
  AccountSet<Bot> accounts("Bitrix24");
  accounts.Add("portal", NewBot("t"));
  absl::StatusOr<Bot*> found =
      accounts.Get("portal", absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ((*found)->token, "t");

  absl::StatusOr<Bot*> missing =
      accounts.Get("other", absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(missing.status().message(), "no Bitrix24 account 'other'");
  EXPECT_EQ(
      accounts.Get("x", absl::StatusCode::kInvalidArgument).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(AccountSetTest, AccountsKeepTheirAddressesAsMoreAreAdded) {
  AccountSet<Bot> accounts("Slack");
  Bot* first = accounts.Add("a0", NewBot("0"));
  for (int i = 1; i < 100; ++i) {
    accounts.Add("a" + std::to_string(i), NewBot(std::to_string(i)));
  }
  EXPECT_EQ(accounts.Find("a0"), first);
  EXPECT_EQ(first->token, "0");
  EXPECT_EQ(accounts.Find("a99")->token, "99");
}

TEST(AccountSetTest, ANameAddedTwiceKeepsFindingTheFirst) {
  AccountSet<Bot> accounts("Slack");
  Bot* first = accounts.Add("same", NewBot("1"));
  accounts.Add("same", NewBot("2"));
  EXPECT_EQ(accounts.Find("same"), first);
  EXPECT_THAT(accounts.names(), ElementsAre("same", "same"));
}

}  // namespace
}  // namespace imbridge::adapters
