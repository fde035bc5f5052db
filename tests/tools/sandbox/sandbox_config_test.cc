#include "tools/sandbox/sandbox_config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::sandbox {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kMinimal[] = R"(
teamspirit: {api_key: ts-key-SEKRIT, webhook_secret: ts-hook-SEKRIT,
             webhook_url: "http://127.0.0.1:7711/teamspirit/events"}
slack: {bot_token: xoxb-SEKRIT, signing_secret: slack-SEKRIT,
        events_url: "http://127.0.0.1:7712/slack/sandbox/events"}
telegram: {bot_token: "123:tg-SEKRIT"}
)";

TEST(SandboxConfigTest, FillsTheDocumentedDefaults) {
  absl::StatusOr<v1::SandboxConfig> c = ParseSandboxConfig(kMinimal, "s.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen(), "127.0.0.1:8080");
  EXPECT_EQ(c->teamspirit().chat_id(), "c-sandbox");
  EXPECT_EQ(c->teamspirit().bot_name(), "Bridge");
  ASSERT_EQ(c->teamspirit().people_size(), 2);
  EXPECT_EQ(c->teamspirit().people(0).name(), "Yuki Tanaka");
  EXPECT_EQ(c->slack().channel_id(), "C0SANDBOX");
  EXPECT_EQ(c->slack().team_id(), "T0SANDBOX");
  ASSERT_EQ(c->slack().people_size(), 2);
  EXPECT_EQ(c->slack().people(0).id(), "U0ANN");
  ASSERT_EQ(c->telegram().people_size(), 2);
  EXPECT_EQ(c->telegram().people(0).name(), "Carla Diaz");
  EXPECT_FALSE(c->has_botsplash());  // Optional: no customer pane.
  // Bitrix24 is optional, and gets its defaults when present.
  EXPECT_FALSE(c->has_bitrix24());
  c = ParseSandboxConfig(
      std::string(kMinimal) +
          "bitrix24: {webhook_code: code1234, bot_token: b}\n",
      "s.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->bitrix24().chat_title(), "Sandbox");
  EXPECT_EQ(c->bitrix24().bot_name(), "Bridge");
  ASSERT_EQ(c->bitrix24().people_size(), 2);
  EXPECT_EQ(c->bitrix24().people(1).name(), "Felix Braun");
}

TEST(SandboxConfigTest, BotsplashCustomerPaneDefaultsAndRules) {
  absl::StatusOr<v1::SandboxConfig> c = ParseSandboxConfig(
      std::string(kMinimal) +
          "botsplash: {api_key: bsp-SEKRIT, reply_secret: reply-SEKRIT,\n"
          "            reply_url: "
          "\"http://127.0.0.1:7717/botsplash/s/replies\"}\n",
      "s.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->botsplash().app_id(), "sandbox");
  EXPECT_EQ(c->botsplash().listener_id(), "sandbox");
  EXPECT_EQ(c->botsplash().direct_message_path(), "/message/visitor");
  ASSERT_EQ(c->botsplash().customers_size(), 1);
  EXPECT_EQ(c->botsplash().customers(0).id(), "crm-jane");
  for (const auto& [yaml, field] :
       std::vector<std::pair<std::string, std::string>>{
           {"botsplash: {reply_secret: r, reply_url: \"http://h/p\"}\n",
            "botsplash.api_key"},
           {"botsplash: {api_key: bsp-SEKRIT, reply_url: \"http://h/p\"}\n",
            "botsplash.reply_secret"},
           {"botsplash: {api_key: bsp-SEKRIT, reply_secret: r}\n",
            "botsplash.reply_url"}}) {
    absl::StatusOr<v1::SandboxConfig> bad =
        ParseSandboxConfig(std::string(kMinimal) + yaml, "s.yaml");
    ASSERT_FALSE(bad.ok()) << yaml;
    EXPECT_THAT(bad.status().message(), HasSubstr(field));
    EXPECT_THAT(bad.status().message(), Not(HasSubstr("SEKRIT")));
  }
}

TEST(SandboxConfigTest, RefusesUnknownFieldsAndKeepsConfiguredPeople) {
  std::string yaml = std::string(kMinimal) +
                     "slack_extra: 1\n";  // Unknown fields are refused.
  absl::StatusOr<v1::SandboxConfig> bad = ParseSandboxConfig(yaml, "s.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("slack_extra"));

  absl::StatusOr<v1::SandboxConfig> c = ParseSandboxConfig(
      R"(
teamspirit: {api_key: k, webhook_secret: s, webhook_url: "http://h/p",
             people: [{id: u-1, name: Ivan}]}
slack: {bot_token: t, signing_secret: s, events_url: "http://h/p"}
telegram: {bot_token: "1:x", people: [{name: Olga}]}
)",
      "s.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->teamspirit().people_size(), 1);
  EXPECT_EQ(c->teamspirit().people(0).id(), "u-1");
  ASSERT_EQ(c->telegram().people_size(), 1);
}

struct BadCase {
  std::string yaml;
  std::string field;
};

TEST(SandboxConfigTest, NamesTheFieldOfEachMistakeAndNoSecret) {
  const std::vector<BadCase> cases = {
      {R"(teamspirit: {webhook_secret: s, webhook_url: "http://h/p"}
slack: {bot_token: xoxb-SEKRIT, signing_secret: s, events_url: "http://h/p"}
telegram: {bot_token: "1:x"})",
       "teamspirit.api_key"},
      {R"(teamspirit: {api_key: ts-key-SEKRIT, webhook_secret: s, webhook_url: "ftp://h"}
slack: {bot_token: xoxb-SEKRIT, signing_secret: s, events_url: "http://h/p"}
telegram: {bot_token: "1:x"})",
       "teamspirit.webhook_url"},
      {R"(teamspirit: {api_key: ts-key-SEKRIT, webhook_secret: s, webhook_url: "http://h/p"}
slack: {bot_token: xoxb-SEKRIT, events_url: "http://h/p"}
telegram: {bot_token: "1:x"})",
       "slack.signing_secret"},
      {R"(teamspirit: {api_key: ts-key-SEKRIT, webhook_secret: s, webhook_url: "http://h/p"}
slack: {bot_token: xoxb-SEKRIT, signing_secret: s, events_url: "http://h/p",
        people: [{id: U1, name: A}, {id: U1, name: B}]}
telegram: {bot_token: "1:x"})",
       "slack.people[1].id"},
      {R"(teamspirit: {api_key: ts-key-SEKRIT, webhook_secret: s, webhook_url: "http://h/p"}
slack: {bot_token: xoxb-SEKRIT, signing_secret: s, events_url: "http://h/p"}
telegram: {bot_token: "bot-tg-SEKRIT"})",
       "telegram.bot_token"},
      {std::string(kMinimal) + "log_level: loud\n", "log_level"},
      {std::string(kMinimal) +
           "bitrix24: {webhook_code: short, bot_token: b24-SEKRIT}\n",
       "bitrix24.webhook_code"},
      {std::string(kMinimal) +
           "bitrix24: {webhook_code: \"has/slash-SEKRIT\", bot_token: b}\n",
       "bitrix24.webhook_code"},
      {std::string(kMinimal) + "bitrix24: {webhook_code: code1234-SEKRIT}\n",
       "bitrix24.webhook_code"},
      {std::string(kMinimal) + "bitrix24: {webhook_code: code1234}\n",
       "bitrix24.bot_token"},
      {std::string(kMinimal) + "listen: nowhere\n", "listen"},
      {R"(teamspirit: {api_key: ts-key-SEKRIT, webhook_secret: s, webhook_url: "http://h/p"}
slack: {bot_token: xoxb-SEKRIT, signing_secret: s, events_url: "http://h/p",
        api_port: 70000}
telegram: {bot_token: "1:x"})",
       "slack.api_port"},
  };
  for (const BadCase& c : cases) {
    absl::StatusOr<v1::SandboxConfig> config =
        ParseSandboxConfig(c.yaml, "s.yaml");
    ASSERT_FALSE(config.ok()) << c.yaml;
    EXPECT_THAT(config.status().message(), HasSubstr("s.yaml"));
    EXPECT_THAT(config.status().message(), HasSubstr(c.field)) << c.yaml;
    EXPECT_THAT(config.status().message(), Not(HasSubstr("SEKRIT")));
  }
}

}  // namespace
}  // namespace imbridge::sandbox
