// Which channels the Slack adapter posts in as its service user
// (UserChannels: listed ids, channels created by someone, name prefixes).

#include "adapters/slack/user_channels.h"

#include <string>

#include "common/http/http_client.h"
#include "emulators/slack/fake_slack.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::slack {
namespace {

v1::SlackUserChannels Rule(std::vector<std::string> channels,
                           std::vector<std::string> created_by,
                           std::vector<std::string> prefixes) {
  v1::SlackUserChannels rule;
  for (auto& c : channels) rule.add_channels(c);
  for (auto& c : created_by) rule.add_created_by(c);
  for (auto& p : prefixes) rule.add_name_prefixes(p);
  return rule;
}

SlackChannel Channel(std::string id, std::string name, std::string creator) {
  SlackChannel c;
  c.id = std::move(id);
  c.name = std::move(name);
  c.creator = std::move(creator);
  return c;
}

TEST(UserChannels, SelectsListedCreatedByOrPrefixedChannels) {
  UserChannels rule(Rule({"C1"}, {"UCHATLIO"}, {"cl-", "visitor-"}), nullptr);
  EXPECT_FALSE(rule.empty());
  EXPECT_TRUE(rule.Selects(Channel("C1", "general", "U1")));
  EXPECT_TRUE(rule.Selects(Channel("C2", "costa-mesa-133", "UCHATLIO")));
  EXPECT_TRUE(rule.Selects(Channel("C3", "cl-tiger128", "U1")));
  EXPECT_TRUE(rule.Selects(Channel("C4", "visitor-7", "")));
  EXPECT_FALSE(rule.Selects(Channel("C5", "general", "U1")));
  // A prefix is a prefix, a creator the exact id.
  EXPECT_FALSE(rule.Selects(Channel("C6", "my-cl-room", "UCHATLIO2")));
  // No creator known: never matches an empty created_by entry.
  UserChannels by_nobody(Rule({}, {""}, {}), nullptr);
  EXPECT_FALSE(by_nobody.Selects(Channel("C7", "x", "")));
}

TEST(UserChannels, EmptyRuleSelectsNothingWithoutAskingSlack) {
  UserChannels rule(Rule({}, {}, {}), nullptr);
  EXPECT_TRUE(rule.empty());
  auto as_user = rule.PostsAsUser("C1");
  ASSERT_TRUE(as_user.ok());
  EXPECT_FALSE(*as_user);
  UserChannels listed(Rule({"C1"}, {}, {}), nullptr);
  EXPECT_TRUE(*listed.PostsAsUser("C1"));
  EXPECT_FALSE(*listed.PostsAsUser("C2"));
}

// The creator and name come from conversations.info, once per channel; a
// channel_created event (Learn) saves the call.
TEST(UserChannels, AsksConversationsInfoOncePerChannel) {
  fakes::FakeSlack slack{fakes::FakeSlack::Options()};
  ASSERT_TRUE(slack.Start().ok());
  slack.AddChannel("C1", "general");
  slack.CreateChannel("C2", "costa-mesa-133", "UCHATLIO");
  slack.CreateChannel("C3", "cl-tiger128", "U1");
  HttpClient http;
  SlackApi::Options o;
  o.base_url = slack.api_base_url();
  o.bot_token = slack.options().bot_token;
  SlackApi api(o, &http);
  UserChannels rule(Rule({}, {"UCHATLIO"}, {"cl-"}), &api);

  EXPECT_FALSE(*rule.PostsAsUser("C1"));
  EXPECT_TRUE(*rule.PostsAsUser("C2"));
  EXPECT_TRUE(*rule.PostsAsUser("C3"));
  EXPECT_TRUE(*rule.PostsAsUser("C2"));
  EXPECT_EQ(slack.Calls("conversations.info").size(), 3u);

  EXPECT_TRUE(rule.Learn(Channel("C4", "x", "UCHATLIO")));
  EXPECT_TRUE(*rule.PostsAsUser("C4"));
  EXPECT_EQ(slack.Calls("conversations.info").size(), 3u);

  // Slack's errors come back as they are, and nothing is remembered.
  auto missing = rule.PostsAsUser("C9");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  slack.FailNext("conversations.info", 1, 500, "internal_error");
  slack.CreateChannel("C5", "cl-x", "U1");
  auto down = rule.PostsAsUser("C5");
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(*rule.PostsAsUser("C5"));
}

}  // namespace
}  // namespace imbridge::adapters::slack
