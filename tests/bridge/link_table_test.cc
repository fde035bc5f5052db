#include "bridge/link_table.h"

#include "absl/strings/str_cat.h"
#include "common/config_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "imbridge/v1/config.pb.h"

namespace imbridge::bridge {
namespace {

using ::testing::ElementsAre;

std::shared_ptr<const LinkTable> Table(const std::string& yaml) {
  v1::RouterConfig config;
  absl::Status s = LoadConfigYaml(yaml, "test", &config);
  EXPECT_TRUE(s.ok()) << s;
  auto table = LinkTable::Build(config.links(), "test");
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? *table : nullptr;
}

v1::ChannelRef Chan(const std::string& p, const std::string& a,
                    const std::string& c, const std::string& t = "") {
  v1::ChannelRef ref;
  ref.set_platform(p);
  ref.set_account(a);
  ref.set_chat_id(c);
  ref.set_thread_id(t);
  return ref;
}

std::vector<std::string> Keys(const std::vector<LinkTarget>& targets) {
  std::vector<std::string> keys;
  for (const LinkTarget& t : targets)
    keys.push_back(t.link + ":" + t.target_key);
  return keys;
}

TEST(LinkTableTest, ThreeMembersReachEachOther) {
  auto t = Table(R"(links:
- name: support
  members:
  - {platform: slack, account: a, chat_id: C1}
  - {platform: telegram, account: b, chat_id: "-100"}
  - {platform: teamspirit, account: c, chat_id: c-42}
)");
  EXPECT_THAT(
      Keys(t->TargetsFor(Chan("slack", "a", "C1"), v1::Event::kPosted)),
      ElementsAre("support:telegram/b/-100", "support:teamspirit/c/c-42"));
  EXPECT_TRUE(
      t->TargetsFor(Chan("slack", "a", "C2"), v1::Event::kPosted).empty());
  EXPECT_TRUE(
      t->TargetsFor(Chan("slack", "other", "C1"), v1::Event::kPosted).empty());
}

TEST(LinkTableTest, DirectionsInAndOut) {
  auto t = Table(R"(links:
- name: l
  members:
  - {platform: slack, account: a, chat_id: IN, direction: in}
  - {platform: slack, account: a, chat_id: OUT, direction: out}
  - {platform: slack, account: a, chat_id: BOTH}
)");
  // `in` feeds but never receives; `out` receives but never feeds.
  EXPECT_THAT(Keys(t->TargetsFor(Chan("slack", "a", "IN"), v1::Event::kPosted)),
              ElementsAre("l:slack/a/OUT", "l:slack/a/BOTH"));
  EXPECT_TRUE(
      t->TargetsFor(Chan("slack", "a", "OUT"), v1::Event::kPosted).empty());
  EXPECT_THAT(
      Keys(t->TargetsFor(Chan("slack", "a", "BOTH"), v1::Event::kPosted)),
      ElementsAre("l:slack/a/OUT"));
}

TEST(LinkTableTest, OptionsFilterKinds) {
  auto t = Table(R"(links:
- name: l
  members:
  - {platform: slack, account: a, chat_id: C1}
  - {platform: tg, account: b, chat_id: "1", options: {edits: false, deletes: false, presence: false, membership: false}}
  - {platform: ts, account: c, chat_id: "2"}
)");
  v1::ChannelRef origin = Chan("slack", "a", "C1");
  EXPECT_THAT(Keys(t->TargetsFor(origin, v1::Event::kEdited)),
              ElementsAre("l:ts/c/2"));
  EXPECT_THAT(Keys(t->TargetsFor(origin, v1::Event::kDeleted)),
              ElementsAre("l:ts/c/2"));
  EXPECT_THAT(Keys(t->TargetsFor(origin, v1::Event::kPresence)),
              ElementsAre("l:ts/c/2"));
  EXPECT_THAT(Keys(t->TargetsFor(origin, v1::Event::kMembership)),
              ElementsAre("l:ts/c/2"));
  EXPECT_THAT(Keys(t->TargetsFor(origin, v1::Event::kPosted)),
              ElementsAre("l:tg/b/1", "l:ts/c/2"));
}

TEST(LinkTableTest, OneChannelInTwoLinks) {
  auto t = Table(R"(links:
- name: l1
  members:
  - {platform: p, account: a, chat_id: A}
  - {platform: p, account: a, chat_id: X}
- name: l2
  members:
  - {platform: p, account: a, chat_id: X}
  - {platform: p, account: a, chat_id: B}
  - {platform: p, account: a, chat_id: A}
)");
  // From X both links apply; A is reached once (the first link wins).
  EXPECT_THAT(Keys(t->TargetsFor(Chan("p", "a", "X"), v1::Event::kPosted)),
              ElementsAre("l1:p/a/A", "l2:p/a/B"));
  EXPECT_THAT(Keys(t->TargetsFor(Chan("p", "a", "B"), v1::Event::kPosted)),
              ElementsAre("l2:p/a/X", "l2:p/a/A"));
}

// The dispatcher finds a delivery's member (for its options) by link name
// and target queue key; a channel in two links is that link's member, and
// the member a target came from is the table's own.
TEST(LinkTableTest, FindMemberByLinkAndTargetKey) {
  auto t = Table(R"(links:
- name: l1
  members:
  - {platform: p, account: a, chat_id: A}
  - {platform: p, account: a, chat_id: X, options: {sender_format: "one"}}
- name: l2
  members:
  - {platform: p, account: a, chat_id: X, options: {sender_format: "two"}}
  - {platform: q, account: b, chat_id: T, thread_id: "7"}
)");
  const v1::LinkMember* x1 = t->FindMember("l1", "p/a/X");
  const v1::LinkMember* x2 = t->FindMember("l2", "p/a/X");
  ASSERT_NE(x1, nullptr);
  ASSERT_NE(x2, nullptr);
  EXPECT_EQ(x1->options().sender_format(), "one");
  EXPECT_EQ(x2->options().sender_format(), "two");
  ASSERT_NE(t->FindMember("l2", "q/b/T#7"), nullptr);
  EXPECT_EQ(t->FindMember("l2", "q/b/T#7")->thread_id(), "7");
  EXPECT_EQ(t->FindMember("l2", "q/b/T"), nullptr);  // the thread's member
  EXPECT_EQ(t->FindMember("l1", "q/b/T#7"), nullptr);
  EXPECT_EQ(t->FindMember("l3", "p/a/X"), nullptr);
  std::vector<LinkTarget> targets =
      t->TargetsFor(Chan("q", "b", "T", "7"), v1::Event::kPosted);
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0].member, x2);
}

TEST(LinkTableTest, ThreadMembersAndPresenceWithoutChat) {
  auto t = Table(R"(links:
- name: topic
  members:
  - {platform: telegram, account: b, chat_id: "-100", thread_id: "7"}
  - {platform: slack, account: a, chat_id: C1}
)");
  EXPECT_THAT(Keys(t->TargetsFor(Chan("telegram", "b", "-100", "7"),
                                 v1::Event::kPosted)),
              ElementsAre("topic:slack/a/C1"));
  EXPECT_TRUE(
      t->TargetsFor(Chan("telegram", "b", "-100", "8"), v1::Event::kPosted)
          .empty());
  EXPECT_THAT(Keys(t->TargetsFor(Chan("slack", "a", "C1"), v1::Event::kPosted)),
              ElementsAre("topic:telegram/b/-100#7"));
  // Presence belongs to the account, not a chat.
  EXPECT_THAT(Keys(t->TargetsFor(Chan("slack", "a", ""), v1::Event::kPresence)),
              ElementsAre("topic:telegram/b/-100#7"));
}

// Targets come from the index of links by origin chat: only the links with
// the origin in them, in table order, among many that do not.
TEST(LinkTableTest, ManyLinksOnlyTheOriginsLinksInTableOrder) {
  std::string yaml = "links:\n";
  for (int i = 0; i < 200; ++i) {
    bool mine = i == 3 || i == 150;
    absl::StrAppend(&yaml, "- name: l", i, "\n  members:\n",
                    "  - {platform: slack, account: acme, chat_id: ",
                    mine ? "C-MINE" : absl::StrCat("C", i), "}\n",
                    "  - {platform: tg, account: bot, chat_id: T", i, "}\n");
  }
  auto t = Table(yaml);
  ASSERT_NE(t, nullptr);
  EXPECT_THAT(
      Keys(t->TargetsFor(Chan("slack", "acme", "C-MINE"), v1::Event::kPosted)),
      ElementsAre("l3:tg/bot/T3", "l150:tg/bot/T150"));
  EXPECT_THAT(
      Keys(t->TargetsFor(Chan("tg", "bot", "T150"), v1::Event::kPosted)),
      ElementsAre("l150:slack/acme/C-MINE"));
  // Same chat id on another account or platform is another chat.
  EXPECT_TRUE(
      t->TargetsFor(Chan("slack", "other", "C-MINE"), v1::Event::kPosted)
          .empty());
  EXPECT_TRUE(t->TargetsFor(Chan("teams", "acme", "C-MINE"), v1::Event::kPosted)
                  .empty());
  EXPECT_EQ(t->LinksOf(Chan("slack", "acme", "C-MINE")).size(), 2u);
  // Presence (no chat): every link of the account.
  EXPECT_EQ(
      t->TargetsFor(Chan("slack", "acme", ""), v1::Event::kPresence).size(),
      200u);
}

// A member waiting on a thread root feeds nothing; the targets it would
// feed once the root turns out to be the origin's thread are apart, per
// root, without those the origin reaches anyway.
TEST(LinkTableTest, TargetsOncePendingMembersAreRooted) {
  auto t = Table(R"(links:
- name: notices
  members:
  - {platform: chatlio, account: m, chat_id: notices, direction: in}
  - {platform: ts, account: m, chat_id: c42}
- name: visitor-1
  members:
  - {platform: slack, account: m, chat_id: C1}
  - {platform: ts, account: m, chat_id: c42, pending_thread_root: 5}
  - {platform: chatlio, account: m, chat_id: "conversation:1", direction: out}
- name: visitor-2
  members:
  - {platform: slack, account: m, chat_id: C2}
  - {platform: ts, account: m, chat_id: c42, pending_thread_root: 6}
- name: everywhere
  members:
  - {platform: ts, account: m, chat_id: c42}
  - {platform: slack, account: m, chat_id: C1}
)");
  ASSERT_NE(t, nullptr);
  const v1::ChannelRef origin = Chan("ts", "m", "c42", "m-77");
  std::vector<LinkTarget> targets = t->TargetsFor(origin, v1::Event::kPosted);
  EXPECT_THAT(Keys(targets), ElementsAre("everywhere:slack/m/C1"));
  std::vector<RootedTargets> rooted =
      t->TargetsOnceRooted(origin, v1::Event::kPosted, targets);
  ASSERT_EQ(rooted.size(), 2u);
  EXPECT_EQ(rooted[0].root_key, "~parked/5/ts/m/c42");
  EXPECT_THAT(Keys(rooted[0].targets),
              ElementsAre("visitor-1:chatlio/m/conversation:1"));
  EXPECT_EQ(rooted[1].root_key, "~parked/6/ts/m/c42");
  EXPECT_THAT(Keys(rooted[1].targets), ElementsAre("visitor-2:slack/m/C2"));
  EXPECT_TRUE(t->WaitsOnThreadRoot("~parked/5/ts/m/c42"));
  EXPECT_FALSE(t->WaitsOnThreadRoot("~parked/7/ts/m/c42"));

  // Other chats, and presence: nothing.
  EXPECT_TRUE(t->TargetsOnceRooted(
                   Chan("slack", "m", "C1"), v1::Event::kPosted,
                   t->TargetsFor(Chan("slack", "m", "C1"), v1::Event::kPosted))
                  .empty());
  EXPECT_TRUE(
      t->TargetsOnceRooted(Chan("ts", "m", ""), v1::Event::kPresence, {})
          .empty());
  // A waiting member is parked as a receiver.
  EXPECT_THAT(Keys(t->TargetsFor(Chan("slack", "m", "C2"), v1::Event::kPosted)),
              ElementsAre("visitor-2:~parked/6/ts/m/c42"));
}

TEST(LinkTableTest, ValidationNamesTheField) {
  v1::RouterConfig config;
  ASSERT_TRUE(LoadConfigYaml(R"(links:
- name: l
  members:
  - {platform: slack, account: a, chat_id: C1}
  - {platform: slack, account: a}
)",
                             "r.yaml", &config)
                  .ok());
  auto t = LinkTable::Build(config.links(), "r.yaml");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "r.yaml: links[0].members[1].chat_id: required");

  ASSERT_TRUE(LoadConfigYaml("links: [{name: l, members: [{platform: s, "
                             "account: a, chat_id: c}]}]",
                             "r.yaml", &config)
                  .ok());
  EXPECT_EQ(LinkTable::Build(config.links(), "r.yaml").status().message(),
            "r.yaml: links[0].members: a link needs at least two members");
  ASSERT_TRUE(LoadConfigYaml(R"(links:
- {name: l, members: [{platform: s, account: a, chat_id: c}, {platform: s, account: a, chat_id: d}]}
- {name: l, members: [{platform: s, account: a, chat_id: c}, {platform: s, account: a, chat_id: d}]}
)",
                             "r.yaml", &config)
                  .ok());
  EXPECT_EQ(LinkTable::Build(config.links(), "r.yaml").status().message(),
            "r.yaml: links[1].name: duplicate link name 'l'");
}

TEST(LinkTableTest, SenderNameFormat) {
  v1::UserRef user;
  user.set_id("U1");
  user.set_display_name("Ivan Petrov");
  v1::MemberOptions options;
  EXPECT_EQ(RenderSenderName(options, user, Chan("teamspirit", "corp", "c")),
            "Ivan Petrov (teamspirit)");
  options.set_sender_format("[{platform}/{account}] {name} <{user_id}>");
  EXPECT_EQ(RenderSenderName(options, user, Chan("slack", "acme", "c")),
            "[slack/acme] Ivan Petrov <U1>");
  user.clear_display_name();
  options.clear_sender_format();
  EXPECT_EQ(RenderSenderName(options, user, Chan("slack", "acme", "c")),
            "U1 (slack)");
}

}  // namespace
}  // namespace imbridge::bridge
