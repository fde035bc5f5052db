// The Botsplash adapter's config rules, one case per rule.

#include <string>

#include "absl/strings/str_cat.h"
#include "adapters/botsplash/botsplash_adapter.h"
#include "common/config_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::botsplash {
namespace {

using ::testing::HasSubstr;

constexpr char kBase[] =
    R"(router: {address: "127.0.0.1:7700", token: tok-0123456789}
accounts:
  - name: sales
    app_id: acme
    api_key: key-0123
    listener_id: lst-1
    paths: {direct_message: /message/visitor}
    replies: {secret: s3cret-0123}
)";

absl::Status Check(const std::string& yaml) {
  v1::BotsplashAdapterConfig config;
  absl::Status s = LoadConfigYaml(yaml, "b.yaml", &config);
  if (!s.ok()) return s;
  return ValidateBotsplashConfig("b.yaml", config);
}

// kBase with `from` replaced by `to`.
std::string With(const std::string& from, const std::string& to) {
  std::string yaml = kBase;
  size_t at = yaml.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return yaml.replace(at, from.size(), to);
}

TEST(BotsplashConfigTest, TheMinimalConfigIsValid) {
  EXPECT_TRUE(Check(kBase).ok()) << Check(kBase);
}

TEST(BotsplashConfigTest, DefaultsOfTheClient) {
  v1::BotsplashAccount a;
  a.set_name("sales");
  a.set_app_id("acme");
  a.set_api_key("k");
  OpenApiClient::Options o = ClientOptions(a);
  EXPECT_EQ(o.base_url, "https://api.botsplash.com/open/v1/acme");
  EXPECT_EQ(o.requests_per_second, 5);
  a.set_base_url("http://127.0.0.1:9/open/v1/");
  EXPECT_EQ(ClientOptions(a).base_url, "http://127.0.0.1:9/open/v1/acme");
}

TEST(BotsplashConfigTest, EachRule) {
  struct Case {
    std::string from, to, field;
  };
  const Case cases[] = {
      {"  - name: sales", "  - name: Sales", "accounts[0].name"},
      {"    app_id: acme\n", "", "accounts[0].app_id"},
      {"    app_id: acme", "    app_id: a/b", "accounts[0].app_id"},
      {"    api_key: key-0123\n", "", "exactly one of api_key and basic"},
      {"    api_key: key-0123",
       "    api_key: key-0123\n    basic: {username: u, password: p}",
       "exactly one of api_key and basic"},
      {"    api_key: key-0123", "    basic: {username: u}",
       "accounts[0].basic"},
      {"paths: {direct_message: /message/visitor}", "paths: {}",
       "accounts[0].paths.direct_message: required"},
      {"paths: {direct_message: /message/visitor}",
       "paths: {direct_message: message}", "must start with /"},
      {"    listener_id: lst-1",
       "    listener_id: lst-1\n    agents: [{user_id: u-7, "
       "agent_client_user_id: a-1}]",
       "accounts[0].paths.update_visitor: required with agents"},
      {"paths: {direct_message: /message/visitor}",
       "paths: {direct_message: /m, update_visitor: '/v/{idType}/{idValue}'}\n"
       "    agents: [{user_id: u-7}]",
       "accounts[0].agents[0]"},
      {"replies: {secret: s3cret-0123}", "replies: {}",
       "accounts[0].replies.secret"},
      {"replies: {secret: s3cret-0123}",
       "replies: {secret: s3cret-0123, mapping: {text: 'a..b'}}",
       "accounts[0].replies.mapping.text"},
      {"replies: {secret: s3cret-0123}",
       "replies: {secret: s3cret-0123, path: replies}",
       "accounts[0].replies.path"},
      {"    listener_id: lst-1",
       "    listener_id: lst-1\n    public_url: bridge.example",
       "accounts[0].public_url"},
      {"    listener_id: lst-1",
       "    listener_id: lst-1\n    requests_per_second: -1",
       "accounts[0].requests_per_second"},
  };
  for (const Case& c : cases) {
    absl::Status s = Check(With(c.from, c.to));
    EXPECT_FALSE(s.ok()) << c.to;
    EXPECT_THAT(s.message(), HasSubstr(c.field)) << c.to;
  }
}

TEST(BotsplashConfigTest, NamesAndReplyPathsAreUnique) {
  std::string second = R"(  - name: sales
    app_id: other
    api_key: key-2
    paths: {direct_message: /m}
    replies: {secret: other-secret}
)";
  absl::Status s = Check(absl::StrCat(kBase, second));
  EXPECT_THAT(s.message(),
              HasSubstr("accounts[1].name: 'sales' is used twice"));
  std::string same_path = R"(  - name: support
    app_id: other
    api_key: key-2
    paths: {direct_message: /m}
    replies: {secret: other-secret, path: /botsplash/sales/replies}
)";
  s = Check(absl::StrCat(kBase, same_path));
  EXPECT_THAT(s.message(), HasSubstr("accounts[1].replies.path: used by two"));
}

TEST(BotsplashConfigTest, NoAccounts) {
  EXPECT_THAT(
      Check(R"(router: {address: "127.0.0.1:7700", token: tok-0123456789})")
          .message(),
      HasSubstr("accounts: at least one account"));
}

}  // namespace
}  // namespace imbridge::adapters::botsplash
