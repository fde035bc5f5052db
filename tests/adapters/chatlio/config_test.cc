// The Chatlio adapter's config checks, one case per rule.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/chatlio/chatlio_adapter.h"
#include "common/config_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::chatlio {
namespace {

using ::testing::HasSubstr;

v1::ChatlioAdapterConfig Load(const std::string& yaml) {
  v1::ChatlioAdapterConfig config;
  absl::Status loaded = LoadConfigYaml(
      absl::StrCat("router: {token: chatlio-config-test-token}\n", yaml),
      "chatlio.yaml", &config);
  EXPECT_TRUE(loaded.ok()) << loaded;
  return config;
}

constexpr char kSecret[] = "s3cret-0123456789_abc";

TEST(ChatlioConfigTest, AValidConfig) {
  absl::Status s = ValidateChatlioConfig(
      "chatlio.yaml",
      Load(absl::StrCat("accounts:\n  - {name: site, webhook_secret: ", kSecret,
                        ", slack_workspace_url: 'https://acme.slack.com'}\n",
                        "  - {name: shop.eu, webhook_secret: ", kSecret,
                        "}\n")));
  EXPECT_TRUE(s.ok()) << s;
}

TEST(ChatlioConfigTest, EachRuleNamesItsField) {
  struct Case {
    std::string yaml;
    const char* field;
  };
  const std::string ok = absl::StrCat("webhook_secret: ", kSecret);
  for (const Case& c : std::vector<Case>{
           {"log_level: loud\naccounts: [{name: a, " + ok + "}]\n",
            "log_level"},
           {"", "accounts"},
           {"accounts: [{" + ok + "}]\n", "accounts[0].name"},
           {"accounts: [{name: 'a b', " + ok + "}]\n", "accounts[0].name"},
           {"accounts: [{name: a/b, " + ok + "}]\n", "accounts[0].name"},
           {"accounts: [{name: a, " + ok + "}, {name: a, " + ok + "}]\n",
            "accounts[1].name"},
           {"accounts: [{name: a}]\n", "accounts[0].webhook_secret"},
           {"accounts: [{name: a, webhook_secret: short-secret}]\n",
            "accounts[0].webhook_secret"},
           {"accounts: [{name: a, webhook_secret: 'has/slash/0123456789'}]\n",
            "accounts[0].webhook_secret"},
           {"accounts: [{name: a, " + ok +
                ", slack_workspace_url: acme.slack.com}]\n",
            "accounts[0].slack_workspace_url"},
           {"accounts: [{name: a, " + ok + ", slack_account: work}]\n",
            "accounts[0].support"},
           {"accounts: [{name: a, " + ok +
                ", support: {platform: teamspirit, account: m, chat_id: c}}]\n",
            "accounts[0].slack_account"},
           {"accounts: [{name: a, " + ok +
                ", slack_account: work, support: {platform: teamspirit}}]\n",
            "accounts[0].support"},
           {"accounts: [{name: a, " + ok + ", link_prefix: 'web/'}]\n",
            "accounts[0].link_prefix"},
       }) {
    absl::Status s = ValidateChatlioConfig("chatlio.yaml", Load(c.yaml));
    EXPECT_FALSE(s.ok()) << c.yaml;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr(absl::StrCat("chatlio.yaml: ", c.field, ":")))
        << c.yaml << " -> " << s;
    // The secret is never part of an error.
    EXPECT_THAT(std::string(s.message()), ::testing::Not(HasSubstr(kSecret)));
  }
}

TEST(ChatlioConfigTest, VisitorLinkJoinsSlackSupportAndTheConversation) {
  v1::ChatlioAdapterConfig config = Load(absl::StrCat(
      "accounts:\n  - {name: site, webhook_secret: ", kSecret,
      ", slack_account: work, support: {platform: teamspirit, account: main, "
      "chat_id: c42, direction: both}}\n"));
  ASSERT_TRUE(ValidateChatlioConfig("chatlio.yaml", config).ok());
  ChatlioWebhook w;
  w.kind = WebhookKind::kNewConversation;
  w.conversation_uuid = "e3d1800d";
  w.channel_id = "C03FVS2UR";
  v1::Link link = VisitorLink(config.accounts(0), w);
  EXPECT_EQ(link.name(), "chatlio-e3d1800d");
  ASSERT_EQ(link.members_size(), 3);
  EXPECT_EQ(link.members(0).platform(), "slack");
  EXPECT_EQ(link.members(0).account(), "work");
  EXPECT_EQ(link.members(0).chat_id(), "C03FVS2UR");
  EXPECT_EQ(link.members(0).direction(), v1::BOTH);
  EXPECT_EQ(link.members(1).platform(), "teamspirit");
  EXPECT_EQ(link.members(1).chat_id(), "c42");
  EXPECT_EQ(link.members(2).platform(), "chatlio");
  EXPECT_EQ(link.members(2).account(), "site");
  EXPECT_EQ(link.members(2).chat_id(), "conversation:e3d1800d");
  EXPECT_EQ(link.members(2).direction(), v1::IN);

  config.mutable_accounts(0)->set_link_prefix("web-");
  EXPECT_EQ(VisitorLink(config.accounts(0), w).name(), "web-e3d1800d");
}

}  // namespace
}  // namespace imbridge::adapters::chatlio
