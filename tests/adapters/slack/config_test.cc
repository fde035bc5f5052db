// The Slack adapter's config checks of the service user's fields.

#include <string>

#include "adapters/slack/slack_adapter.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::slack {
namespace {

using ::testing::HasSubstr;

absl::Status Check(const std::string& account_fields) {
  v1::SlackAdapterConfig config;
  std::string text =
      R"pb(
        router { address: "127.0.0.1:7700" token: "router-token" }
        accounts { name: "work" bot_token: "xoxb-1" signing_secret: "secret"
      )pb" +
      account_fields + "}";
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config))
      << text;
  return ValidateSlackConfig("slack.yaml", config);
}

TEST(SlackConfig, ServiceUserFields) {
  EXPECT_TRUE(Check("").ok()) << Check("");
  EXPECT_TRUE(Check(R"pb(user_token: "xoxp-1"
                         post_as_user { created_by: "UCHATLIO" }
                         service_presence {
                           links: "support"
                           links: "chatlio-*"
                           people: "teamspirit/u-7"
                         })pb")
                  .ok());

  absl::Status no_token = Check(R"pb(post_as_user { channels: "C1" })pb");
  EXPECT_EQ(no_token.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_token.message(), HasSubstr("accounts[0].post_as_user"));
  EXPECT_THAT(no_token.message(), HasSubstr("user_token"));

  EXPECT_THAT(Check(R"pb(service_presence { links: "support" })pb").message(),
              HasSubstr("accounts[0].service_presence"));
  EXPECT_THAT(Check(R"pb(user_token: "xoxp-1"
                         post_as_user { name_prefixes: "" })pb")
                  .message(),
              HasSubstr("accounts[0].post_as_user.name_prefixes[0]"));
  EXPECT_THAT(Check(R"pb(user_token: "xoxp-1"
                         service_presence { people: "teamspirit/u-7" })pb")
                  .message(),
              HasSubstr("accounts[0].service_presence.links"));
  EXPECT_THAT(Check(R"pb(user_token: "xoxp-1"
                         service_presence { links: "*" })pb")
                  .message(),
              HasSubstr("accounts[0].service_presence.links[0]"));
  EXPECT_THAT(Check(R"pb(user_token: "xoxp-1"
                         service_presence { links: "s" people: "u-7" })pb")
                  .message(),
              HasSubstr("accounts[0].service_presence.people[0]"));
}

}  // namespace
}  // namespace imbridge::adapters::slack
