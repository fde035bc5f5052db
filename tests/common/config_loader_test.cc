#include "common/config_loader.h"

#include <cstdlib>
#include <fstream>

#include "gtest/gtest.h"
#include "imbridge/v1/config.pb.h"

namespace imbridge {
namespace {

using v1::RouterConfig;

TEST(ConfigLoaderTest, LoadsNestedFieldsEnumsAndDefaults) {
  RouterConfig config;
  ASSERT_TRUE(LoadConfigYaml(R"(
listen: 127.0.0.1:0
data_dir: /tmp/x
adapters:
  - name: slack
    token: abc
links:
  - name: support
    members:
      - {platform: slack, account: acme, chat_id: C1, direction: in}
      - platform: teamspirit
        account: corp
        chat_id: c-42
        options: {edits: false, sender_format: "{name}"}
store: {durability: normal, max_batch: 10}
)",
                             "router.yaml", &config)
                  .ok());
  EXPECT_EQ(config.listen(), "127.0.0.1:0");
  ASSERT_EQ(config.links_size(), 1);
  EXPECT_EQ(config.links(0).members(0).direction(), v1::IN);
  EXPECT_EQ(config.links(0).members(1).direction(), v1::BOTH);
  EXPECT_TRUE(config.links(0).members(1).options().has_edits());
  EXPECT_FALSE(config.links(0).members(1).options().edits());
  EXPECT_FALSE(config.links(0).members(1).options().has_deletes());
  EXPECT_EQ(config.store().durability(), v1::NORMAL);
  EXPECT_EQ(config.store().max_batch(), 10u);
}

TEST(ConfigLoaderTest, UnknownFieldNamesPathAndLine) {
  RouterConfig config;
  absl::Status s =
      LoadConfigYaml("data_dir: /tmp\nlinks:\n  - name: a\n    membres: []\n",
                     "r.yaml", &config);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("r.yaml:4"), std::string::npos) << s;
  EXPECT_NE(s.message().find("links[0].membres: unknown field"),
            std::string::npos)
      << s;
}

TEST(ConfigLoaderTest, BadEnumValueListsChoices) {
  RouterConfig config;
  absl::Status s = LoadConfigYaml(
      "links:\n  - members:\n    - {direction: bth}\n", "r.yaml", &config);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("links[0].members[0].direction: unknown value "
                             "'bth' (expected one of both, in, out)"),
            std::string::npos)
      << s;
}

TEST(ConfigLoaderTest, BadNumberAndBool) {
  RouterConfig config;
  EXPECT_NE(LoadConfigYaml("store: {max_batch: -3}", "r", &config)
                .message()
                .find("store.max_batch: '-3' is not a non-negative integer"),
            std::string::npos);
  EXPECT_NE(LoadConfigYaml("links: [{members: [{options: {edits: maybe}}]}]",
                           "r", &config)
                .message()
                .find("options.edits: 'maybe' is not true or false"),
            std::string::npos);
}

TEST(ConfigLoaderTest, ExpandsEnvironmentVariables) {
  setenv("IMB_TEST_TOKEN", "s3cret", 1);
  RouterConfig config;
  ASSERT_TRUE(
      LoadConfigYaml("adapters: [{name: a, token: 'x-${IMB_TEST_TOKEN}'}]", "r",
                     &config)
          .ok());
  EXPECT_EQ(config.adapters(0).token(), "x-s3cret");
  absl::Status s = LoadConfigYaml(
      "adapters: [{name: a, token: '${IMB_TEST_UNSET_VAR}'}]", "r", &config);
  EXPECT_NE(
      s.message().find("environment variable IMB_TEST_UNSET_VAR is not set"),
      std::string::npos)
      << s;
}

TEST(ConfigLoaderTest, ReadsSecretFromFile) {
  std::string path = ::testing::TempDir() + "/token.txt";
  std::ofstream(path) << "from-file\n";
  RouterConfig config;
  ASSERT_TRUE(LoadConfigYaml("adapters: [{name: a, token_file: " + path + "}]",
                             "r", &config)
                  .ok());
  EXPECT_EQ(config.adapters(0).token(), "from-file");
  absl::Status both = LoadConfigYaml(
      "adapters: [{name: a, token: t, token_file: " + path + "}]", "r",
      &config);
  EXPECT_NE(both.message().find("set either token or token_file"),
            std::string::npos);
  absl::Status missing = LoadConfigYaml(
      "adapters: [{name: a, token_file: /nonexistent/t}]", "r", &config);
  EXPECT_NE(missing.message().find("adapters[0].token_file: cannot read"),
            std::string::npos)
      << missing;
}

TEST(ConfigLoaderTest, InvalidYamlIsAnError) {
  RouterConfig config;
  absl::Status s = LoadConfigYaml("links: [unclosed", "bad.yaml", &config);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("bad.yaml"), std::string::npos);
}

}  // namespace
}  // namespace imbridge
