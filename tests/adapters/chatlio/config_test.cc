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

}  // namespace
}  // namespace imbridge::adapters::chatlio
