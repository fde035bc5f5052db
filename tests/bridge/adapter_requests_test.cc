// The pure parts of adapters' requests to the router: command words and
// their parsing, and which links an adapter may touch.

#include "absl/status/status.h"
#include "bridge/adapter_commands.h"
#include "bridge/adapter_links.h"
#include "gtest/gtest.h"

namespace imbridge::bridge {
namespace {

v1::Hello HelloOf(const std::string& platform,
                  std::vector<std::string> accounts,
                  std::vector<std::string> words = {}) {
  v1::Hello hello;
  hello.set_adapter_name(platform);
  hello.set_platform(platform);
  for (auto& a : accounts) hello.add_accounts(a);
  for (auto& w : words) hello.add_chat_commands(w);
  return hello;
}

v1::Link LinkOf(std::vector<std::pair<std::string, std::string>> members) {
  v1::Link link;
  link.set_name("l");
  for (auto& [platform, account] : members) {
    v1::LinkMember* m = link.add_members();
    m->set_platform(platform);
    m->set_account(account);
    m->set_chat_id("c");
  }
  return link;
}

TEST(SplitCommandTest, LowerCaseWordAndTrimmedRest) {
  EXPECT_EQ(SplitCommand("  Botsplash   start +15551234567 Ann Lee  "),
            std::make_pair(std::string("botsplash"),
                           std::string("start +15551234567 Ann Lee")));
  EXPECT_EQ(SplitCommand(" who"),
            std::make_pair(std::string("who"), std::string("")));
  EXPECT_EQ(SplitCommand(""), std::make_pair(std::string(""), std::string("")));
  // Arguments keep their case.
  EXPECT_EQ(SplitCommand("x\tAbC dEf").second, "AbC dEf");
}

TEST(ValidateCommandWordsTest, AcceptsWordsRefusesOthers) {
  EXPECT_TRUE(
      ValidateCommandWords(HelloOf("p", {"a"}, {"botsplash", "chat-lio_2"}))
          .ok());
  for (const char* bad :
       {"", "Botsplash", "two words", "who", "status", "help", "ü"}) {
    absl::Status s = ValidateCommandWords(HelloOf("p", {"a"}, {bad}));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(AdapterMayTouchLinkTest, NeedsAMemberOnItsOwnAccount) {
  v1::Hello hello = HelloOf("botsplash", {"main", "second"});
  EXPECT_TRUE(AdapterMayTouchLink(hello, LinkOf({{"teamspirit", "ts"},
                                                 {"botsplash", "second"}}))
                  .ok());
  // Same platform, another account.
  EXPECT_EQ(AdapterMayTouchLink(
                hello, LinkOf({{"teamspirit", "ts"}, {"botsplash", "other"}}))
                .code(),
            absl::StatusCode::kPermissionDenied);
  // Its account name on another platform.
  EXPECT_EQ(AdapterMayTouchLink(
                hello, LinkOf({{"teamspirit", "main"}, {"slack", "main"}}))
                .code(),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace imbridge::bridge
