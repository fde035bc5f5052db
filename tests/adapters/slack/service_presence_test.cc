// The service user's presence following other people's presence
// (ServicePresence), against the emulated Slack with an in-memory journal.

#include "adapters/slack/service_presence.h"

#include <memory>
#include <string>
#include <vector>

#include "common/http/http_client.h"
#include "emulators/slack/fake_slack.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::slack {
namespace {

constexpr char kUserToken[] = "xoxp-support";

v1::Delivery PresenceOf(const std::string& link, const std::string& user,
                        v1::Presence presence) {
  v1::Delivery d;
  d.set_link(link);
  d.mutable_event()->mutable_channel()->set_platform("teamspirit");
  d.mutable_event()->mutable_channel()->set_account("corp");
  v1::PresenceChanged* p = d.mutable_event()->mutable_presence();
  p->mutable_user()->set_platform("teamspirit");
  p->mutable_user()->set_id(user);
  p->set_presence(presence);
  return d;
}

class ServicePresenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(slack_.Start().ok());
    slack_.AddUserToken("USUPPORT", kUserToken);
    SlackApi::Options o;
    o.base_url = slack_.api_base_url();
    o.bot_token = kUserToken;
    api_ = std::make_unique<SlackApi>(o, &http_);
    auto journal = DeliveryJournal::Open(DeliveryJournal::Options());
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = *std::move(journal);
  }

  std::unique_ptr<ServicePresence> Make(std::vector<std::string> links,
                                        std::vector<std::string> people = {}) {
    v1::SlackServicePresence config;
    for (auto& l : links) config.add_links(l);
    for (auto& p : people) config.add_people(p);
    return std::make_unique<ServicePresence>("work", config, api_.get(),
                                             journal_.get());
  }

  std::vector<std::string> Calls() {
    std::vector<std::string> out;
    for (const auto& c : slack_.Calls("users.setPresence")) {
      out.push_back(c.args.value("presence", ""));
    }
    return out;
  }

  fakes::FakeSlack slack_{fakes::FakeSlack::Options()};
  HttpClient http_;
  std::unique_ptr<SlackApi> api_;
  std::unique_ptr<DeliveryJournal> journal_;
};

TEST_F(ServicePresenceTest, FollowsNamedLinksAndPrefixes) {
  auto presence = Make({"support", "chatlio-*"});
  EXPECT_TRUE(presence->Follows("support"));
  EXPECT_TRUE(presence->Follows("chatlio-e3d1800d"));
  EXPECT_TRUE(presence->Follows("chatlio-"));
  EXPECT_FALSE(presence->Follows("support2"));
  EXPECT_FALSE(presence->Follows("ops"));
}

TEST_F(ServicePresenceTest, AutoWhileSomeoneCanAnswerAwayOtherwise) {
  auto presence = Make({"support"});
  ASSERT_TRUE(presence->Start().ok());
  EXPECT_EQ(slack_.Presence("USUPPORT"), "away");
  ASSERT_TRUE(presence->Apply(PresenceOf("support", "u-7", v1::ONLINE)).ok());
  EXPECT_EQ(slack_.Presence("USUPPORT"), "active");
  ASSERT_TRUE(presence->Apply(PresenceOf("support", "u-8", v1::DND)).ok());
  ASSERT_TRUE(presence->Apply(PresenceOf("support", "u-7", v1::OFFLINE)).ok());
  EXPECT_EQ(presence->Wanted(), "auto");
  ASSERT_TRUE(presence->Apply(PresenceOf("support", "u-8", v1::AWAY)).ok());
  EXPECT_EQ(slack_.Presence("USUPPORT"), "away");
  // Slack is called only when the result changes.
  EXPECT_EQ(Calls(), (std::vector<std::string>{"away", "auto", "away"}));
}

TEST_F(ServicePresenceTest, OnlyThePeopleNamedCount) {
  auto presence = Make({"support"}, {"teamspirit/u-7"});
  ASSERT_TRUE(presence->Start().ok());
  ASSERT_TRUE(presence->Apply(PresenceOf("support", "u-bot", v1::ONLINE)).ok());
  EXPECT_EQ(presence->Wanted(), "away");
  ASSERT_TRUE(presence->Apply(PresenceOf("support", "u-7", v1::ONLINE)).ok());
  EXPECT_EQ(presence->Wanted(), "auto");
}

// The people's state is in the journal: a new object (a restarted adapter)
// starts from it and tells Slack again.
TEST_F(ServicePresenceTest, RestartStartsFromTheJournal) {
  {
    auto presence = Make({"support"});
    ASSERT_TRUE(presence->Start().ok());
    ASSERT_TRUE(presence->Apply(PresenceOf("support", "u-7", v1::ONLINE)).ok());
  }
  slack_.SetPresence("USUPPORT", "away");
  auto restarted = Make({"support"});
  EXPECT_EQ(restarted->Wanted(), "away");  // Not read before Start().
  ASSERT_TRUE(restarted->Start().ok());
  EXPECT_EQ(restarted->Wanted(), "auto");
  EXPECT_EQ(slack_.Presence("USUPPORT"), "active");
}

// A failed users.setPresence is returned (the router retries the delivery)
// and made again on the next change or retry.
TEST_F(ServicePresenceTest, FailureIsReturnedAndTriedAgain) {
  auto presence = Make({"support"});
  slack_.FailNext("users.setPresence", 1, 500, "internal_error");
  absl::Status first = presence->Start();
  EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(presence->Apply(PresenceOf("support", "u-7", v1::ONLINE)).ok());
  EXPECT_EQ(slack_.Presence("USUPPORT"), "active");
  slack_.FailNext("users.setPresence", 1, 429, "ratelimited", 3);
  absl::Status limited =
      presence->Apply(PresenceOf("support", "u-7", v1::AWAY));
  EXPECT_EQ(limited.code(), absl::StatusCode::kUnavailable);
  // The router's retry of the same delivery sets it.
  ASSERT_TRUE(presence->Apply(PresenceOf("support", "u-7", v1::AWAY)).ok());
  EXPECT_EQ(slack_.Presence("USUPPORT"), "away");
}

}  // namespace
}  // namespace imbridge::adapters::slack
