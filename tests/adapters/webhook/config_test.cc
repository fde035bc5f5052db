// The webhook adapter's config and what it announces: its accounts (the
// `accounts` list, or the single `account` of older configs) and the
// capabilities that follow relay_presence / relay_membership.

#include <string>
#include <type_traits>
#include <vector>

#include "adapters/common/adapter_runtime.h"
#include "adapters/common/connector.h"
#include "adapters/webhook/webhook_adapter.h"
#include "common/config_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::webhook {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::WebhookAdapterConfig Load(const std::string& yaml) {
  v1::WebhookAdapterConfig config;
  absl::Status loaded = LoadConfigYaml(
      absl::StrCat("router: {token: webhook-config-test-token}\n", yaml),
      "webhook.yaml", &config);
  EXPECT_TRUE(loaded.ok()) << loaded;
  return config;
}

TEST(WebhookConfigTest, AccountsOrTheSingleAccount) {
  EXPECT_THAT(WebhookAccounts(Load("")), ElementsAre("default"));
  EXPECT_THAT(WebhookAccounts(Load("account: ops\n")), ElementsAre("ops"));
  v1::WebhookAdapterConfig several =
      Load("accounts:\n  - {name: ci}\n  - {name: ops}\n");
  EXPECT_TRUE(ValidateWebhookConfig("webhook.yaml", several).ok());
  EXPECT_THAT(WebhookAccounts(several), ElementsAre("ci", "ops"));
}

TEST(WebhookConfigTest, BadAccountsNameTheField) {
  struct Case {
    const char* yaml;
    const char* field;
  };
  for (const Case& c : std::vector<Case>{
           {"account: a:b\n", "account"},
           {"accounts: [{name: ci}]\naccount: ops\n", "account"},
           {"accounts: [{name: ci}, {name: ''}]\n", "accounts[1].name"},
           {"accounts: [{name: ci}, {name: 'o p'}]\n", "accounts[1].name"},
           {"accounts: [{name: ci}, {name: ci}]\n", "accounts[1].name"},
       }) {
    absl::Status s = ValidateWebhookConfig("webhook.yaml", Load(c.yaml));
    EXPECT_FALSE(s.ok()) << c.yaml;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr(absl::StrCat("webhook.yaml: ", c.field, ":")))
        << c.yaml;
  }
}

std::vector<std::string> Capabilities(const std::string& yaml) {
  v1::WebhookAdapterConfig config = Load(yaml);
  config.mutable_router()->set_address("127.0.0.1:1");  // Never started.
  config.mutable_http()->set_listen("127.0.0.1:0");
  AdapterRuntime runtime(config.router(), config.http(),
                         WebhookProgram().identity);
  WebhookAdapter adapter(config, &runtime);
  return ConnectorCapabilities(adapter);
}

// The adapter is on the connector interfaces of issue 11 point 2: its
// inbound side is the InboundConnector of its IncomingPost.
static_assert(
    std::is_base_of_v<MessengerConnector<IncomingPost>, WebhookAdapter>);

TEST(WebhookAdapterTest, CapabilitiesFollowTheRelaySettings) {
  EXPECT_THAT(Capabilities(""),
              ElementsAre("edits", "deletes", "threads", "files"));
  EXPECT_THAT(Capabilities("relay_presence: true\nrelay_membership: true\n"),
              ElementsAre("edits", "deletes", "threads", "files", "presence",
                          "membership"));
}

}  // namespace
}  // namespace imbridge::adapters::webhook
