// The TeamSpirit adapter as a connector: the accounts and capabilities it
// announces follow its configured accounts.

#include "adapters/teamspirit/teamspirit_adapter.h"

#include <memory>
#include <string>
#include <vector>

#include "adapters/common/adapter_runtime.h"
#include "adapters/common/connector.h"
#include "adapters/common/delivery_journal.h"
#include "common/config_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::teamspirit {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// What an adapter of the accounts in `yaml` announces: its accounts, then
// its capabilities.
struct Announced {
  std::vector<std::string> accounts;
  std::vector<std::string> capabilities;
};

Announced Announce(const std::string& yaml) {
  v1::TeamSpiritAdapterConfig config;
  absl::Status loaded = LoadConfigYaml(yaml, "ts.yaml", &config);
  EXPECT_TRUE(loaded.ok()) << loaded;
  auto accounts = AccountsFromConfig("ts.yaml", config);
  EXPECT_TRUE(accounts.ok()) << accounts.status();
  if (!accounts.ok()) return {};
  v1::RouterConnection router;
  router.set_address("127.0.0.1:1");  // Never started.
  router.set_token("teamspirit-adapter-test-token");
  v1::HttpServerOptions http;
  http.set_listen("127.0.0.1:0");
  AdapterRuntime runtime(router, http, TeamSpiritProgram().identity);
  auto journal = DeliveryJournal::Open(DeliveryJournal::Options());
  EXPECT_TRUE(journal.ok());
  TeamSpiritAdapter adapter(*std::move(accounts), &runtime, journal->get());
  return {adapter.Accounts(), ConnectorCapabilities(adapter)};
}

constexpr char kBot[] =
    "    api_base_url: http://127.0.0.1:1/api/v1\n"
    "    api_key: k\n"
    "    webhook_secret: s\n";

TEST(TeamSpiritAdapterTest, OnlySendOnlyAccountsAnnounceNoCapability) {
  Announced a = Announce(
      "accounts:\n"
      "  - {name: news, incoming_webhook_url: http://127.0.0.1:1/hooks/a}\n"
      "  - {name: alerts, incoming_webhook_url: http://127.0.0.1:1/hooks/b}\n");
  EXPECT_THAT(a.accounts, ElementsAre("news", "alerts"));
  EXPECT_THAT(a.capabilities, IsEmpty());
}

TEST(TeamSpiritAdapterTest, ABotAnnouncesWhatItRenders) {
  Announced a = Announce(std::string("accounts:\n  - name: corp\n") + kBot +
                         "  - {name: news, incoming_webhook_url: "
                         "http://127.0.0.1:1/hooks/a}\n");
  EXPECT_THAT(a.accounts, ElementsAre("corp", "news"));
  EXPECT_THAT(a.capabilities,
              ElementsAre("edits", "deletes", "threads", "files", "presence"));
}

TEST(TeamSpiritAdapterTest, MembershipWhenABotPostsNotices) {
  Announced a = Announce(std::string("accounts:\n  - name: corp\n") + kBot +
                         "  - name: partner\n" + kBot +
                         "    webhook_path: /partner\n"
                         "    membership_notices: true\n");
  EXPECT_THAT(a.accounts, ElementsAre("corp", "partner"));
  EXPECT_THAT(a.capabilities, ElementsAre("edits", "deletes", "threads",
                                          "files", "presence", "membership"));
}

TEST(TeamSpiritAdapterTest, TheSingleTopLevelAccountIsServed) {
  Announced a = Announce(std::string("account: corp\n") +
                         "api_base_url: http://127.0.0.1:1/api/v1\n"
                         "api_key: k\nwebhook_secret: s\n");
  EXPECT_THAT(a.accounts, ElementsAre("corp"));
  EXPECT_THAT(a.capabilities,
              ElementsAre("edits", "deletes", "threads", "files", "presence"));
}

}  // namespace
}  // namespace imbridge::adapters::teamspirit
