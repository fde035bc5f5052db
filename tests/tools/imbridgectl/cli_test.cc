// Command-line parsing of imbridgectl: members, global flags from flags,
// files and the environment, and every usage error a person can make.

#include "tools/imbridgectl/cli.h"

#include <fstream>
#include <map>

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/integration/router_process.h"

namespace imbridge::ctl {
namespace {

using ::testing::HasSubstr;

// An environment with only `vars`.
EnvLookup Env(std::map<std::string, std::string> vars = {}) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(vars);
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

ParseOutcome Parse(std::vector<std::string> args, EnvLookup env = Env()) {
  return ParseCommandLine(args, env);
}

std::string WriteFile(const std::string& name, const std::string& content) {
  std::string path = testing::MakeTempDir("cli_test") + "/" + name;
  std::ofstream(path) << content;
  return path;
}

TEST(ParseMemberSpecTest, PlatformAccountChat) {
  auto m = ParseMemberSpec("slack:acme:C0123");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->platform(), "slack");
  EXPECT_EQ(m->account(), "acme");
  EXPECT_EQ(m->chat_id(), "C0123");
  EXPECT_EQ(m->thread_id(), "");
  EXPECT_EQ(m->direction(), v1::BOTH);
}

TEST(ParseMemberSpecTest, ThreadAndDirection) {
  auto m = ParseMemberSpec("telegram:bot:-1001234#42:in");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->chat_id(), "-1001234");
  EXPECT_EQ(m->thread_id(), "42");
  EXPECT_EQ(m->direction(), v1::IN);
  EXPECT_EQ(ParseMemberSpec("a:b:c:OUT")->direction(), v1::OUT);
  EXPECT_EQ(ParseMemberSpec("a:b:c:both")->direction(), v1::BOTH);
}

TEST(ParseMemberSpecTest, ColonsInsideTheChatIdAreKept) {
  auto m = ParseMemberSpec("matrix:main:!room:example.org");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->chat_id(), "!room:example.org");
  EXPECT_EQ(m->direction(), v1::BOTH);
  auto with_direction = ParseMemberSpec("matrix:main:!room:example.org:out");
  ASSERT_TRUE(with_direction.ok());
  EXPECT_EQ(with_direction->chat_id(), "!room:example.org");
  EXPECT_EQ(with_direction->direction(), v1::OUT);
}

TEST(ParseMemberSpecTest, RejectsIncompleteSpecs) {
  EXPECT_THAT(ParseMemberSpec("slack").status().message(),
              HasSubstr("expected platform:account:chat_id"));
  EXPECT_THAT(ParseMemberSpec("slack:acme").status().message(),
              HasSubstr("expected platform:account:chat_id"));
  EXPECT_THAT(ParseMemberSpec(":acme:C1").status().message(),
              HasSubstr("empty platform"));
  EXPECT_THAT(ParseMemberSpec("slack::C1").status().message(),
              HasSubstr("empty account"));
  EXPECT_THAT(ParseMemberSpec("slack:acme:").status().message(),
              HasSubstr("empty chat id"));
  EXPECT_THAT(ParseMemberSpec("slack:acme::in").status().message(),
              HasSubstr("empty chat id"));
  EXPECT_THAT(ParseMemberSpec("slack:acme:C1#").status().message(),
              HasSubstr("empty thread"));
}

TEST(ParseMemberSpecTest, FormatIsTheInverse) {
  for (const char* spec :
       {"slack:acme:C1", "telegram:bot:-100#7:in", "webhook:default:abc:out"}) {
    auto m = ParseMemberSpec(spec);
    ASSERT_TRUE(m.ok()) << spec;
    EXPECT_EQ(FormatMemberSpec(*m), spec);
  }
}

TEST(ParseTimeoutTest, DurationsAndSeconds) {
  EXPECT_EQ(*ParseTimeout("10s"), absl::Seconds(10));
  EXPECT_EQ(*ParseTimeout("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseTimeout("3"), absl::Seconds(3));
  EXPECT_FALSE(ParseTimeout("0").ok());
  EXPECT_FALSE(ParseTimeout("-1s").ok());
  EXPECT_FALSE(ParseTimeout("soon").ok());
}

TEST(ParseCommandLineTest, DefaultsAndEnvironment) {
  ParseOutcome p = Parse({"stats"});
  ASSERT_EQ(p.kind, ParseOutcome::kRun) << p.error;
  EXPECT_EQ(p.invocation.command, "stats");
  EXPECT_EQ(p.invocation.global.router, "127.0.0.1:7700");
  EXPECT_EQ(p.invocation.global.token, "");
  EXPECT_FALSE(p.invocation.global.json);
  EXPECT_EQ(p.invocation.global.timeout, absl::Seconds(10));

  p = Parse({"stats"}, Env({{"IMBRIDGE_ROUTER", "10.0.0.1:7000"},
                            {"IMBRIDGE_ADMIN_TOKEN", "env-token"}}));
  ASSERT_EQ(p.kind, ParseOutcome::kRun) << p.error;
  EXPECT_EQ(p.invocation.global.router, "10.0.0.1:7000");
  EXPECT_EQ(p.invocation.global.token, "env-token");
}

TEST(ParseCommandLineTest, GlobalFlagsAnywhereAndOverrideTheEnvironment) {
  ParseOutcome p = Parse({"queue", "--json", "list", "--router=h:1", "--token",
                          "flag-token", "--timeout", "2s"},
                         Env({{"IMBRIDGE_ROUTER", "env:2"},
                              {"IMBRIDGE_ADMIN_TOKEN", "env-token"}}));
  ASSERT_EQ(p.kind, ParseOutcome::kRun) << p.error;
  EXPECT_EQ(p.invocation.command, "queue list");
  EXPECT_EQ(p.invocation.global.router, "h:1");
  EXPECT_EQ(p.invocation.global.token, "flag-token");
  EXPECT_TRUE(p.invocation.global.json);
  EXPECT_EQ(p.invocation.global.timeout, absl::Seconds(2));
}

TEST(ParseCommandLineTest, TokenFileIsReadWithoutTrailingNewline) {
  std::string path = WriteFile("token", "file-token\n");
  ParseOutcome p = Parse({"--token-file", path, "stats"},
                         Env({{"IMBRIDGE_ADMIN_TOKEN", "env-token"}}));
  ASSERT_EQ(p.kind, ParseOutcome::kRun) << p.error;
  EXPECT_EQ(p.invocation.global.token, "file-token");

  p = Parse({"--token-file", "/nonexistent/token", "stats"});
  EXPECT_EQ(p.kind, ParseOutcome::kError);
  EXPECT_THAT(p.error, HasSubstr("cannot read /nonexistent/token"));

  p = Parse({"--token-file", WriteFile("empty", "\n"), "stats"});
  EXPECT_EQ(p.kind, ParseOutcome::kError);
  EXPECT_THAT(p.error, HasSubstr("is empty"));

  p = Parse({"--token", "a", "--token-file", path, "stats"});
  EXPECT_EQ(p.kind, ParseOutcome::kError);
  EXPECT_THAT(p.error, HasSubstr("either --token or --token-file"));
}

TEST(ParseCommandLineTest, LinkCreateWithMembers) {
  ParseOutcome p = Parse({"link", "create", "support", "--member",
                          "slack:acme:C1", "--member=telegram:bot:-100#5:out"});
  ASSERT_EQ(p.kind, ParseOutcome::kRun) << p.error;
  EXPECT_EQ(p.invocation.command, "link create");
  const v1::Link& link = p.invocation.link;
  EXPECT_EQ(link.name(), "support");
  ASSERT_EQ(link.members_size(), 2);
  EXPECT_EQ(link.members(0).chat_id(), "C1");
  EXPECT_EQ(link.members(1).platform(), "telegram");
  EXPECT_EQ(link.members(1).thread_id(), "5");
  EXPECT_EQ(link.members(1).direction(), v1::OUT);
}

TEST(ParseCommandLineTest, LinkFromFile) {
  std::string path = WriteFile("link.yaml", R"(name: support
members:
  - {platform: slack, account: acme, chat_id: C1}
  - platform: telegram
    account: bot
    chat_id: "-100"
    direction: in
    options: {edits: false, sender_format: "{name}"}
)");
  ParseOutcome p = Parse({"link", "update", "--file", path});
  ASSERT_EQ(p.kind, ParseOutcome::kRun) << p.error;
  EXPECT_EQ(p.invocation.command, "link update");
  const v1::Link& link = p.invocation.link;
  EXPECT_EQ(link.name(), "support");
  ASSERT_EQ(link.members_size(), 2);
  EXPECT_EQ(link.members(1).direction(), v1::IN);
  EXPECT_TRUE(link.members(1).options().has_edits());
  EXPECT_FALSE(link.members(1).options().edits());
  EXPECT_EQ(link.members(1).options().sender_format(), "{name}");

  // The same name on the command line is fine; another one is not.
  EXPECT_EQ(Parse({"link", "create", "support", "--file", path}).kind,
            ParseOutcome::kRun);
  p = Parse({"link", "create", "other", "--file", path});
  EXPECT_EQ(p.kind, ParseOutcome::kError);
  EXPECT_THAT(p.error, HasSubstr("differs from the file's name 'support'"));

  // A nameless file takes the name from the command line.
  std::string nameless = WriteFile("nameless.yaml", R"(members:
  - {platform: slack, account: acme, chat_id: C1}
)");
  p = Parse({"link", "create", "given", "--file", nameless});
  ASSERT_EQ(p.kind, ParseOutcome::kRun) << p.error;
  EXPECT_EQ(p.invocation.link.name(), "given");
  p = Parse({"link", "create", "--file", nameless});
  EXPECT_EQ(p.kind, ParseOutcome::kError);
  EXPECT_THAT(p.error, HasSubstr("needs a name"));
}

TEST(ParseCommandLineTest, BadLinkFileNamesTheFieldAndChangesNothing) {
  std::string path = WriteFile("bad.yaml", R"(name: x
members:
  - {platform: slack, account: acme, chat_id: C1, direction: sideways}
)");
  ParseOutcome p = Parse({"link", "create", "--file", path});
  EXPECT_EQ(p.kind, ParseOutcome::kError);
  EXPECT_THAT(p.error, HasSubstr("members[0].direction"));
  EXPECT_THAT(p.usage, HasSubstr("usage: imbridgectl link create"));

  p = Parse({"link", "create", "--file", "/nonexistent.yaml"});
  EXPECT_EQ(p.kind, ParseOutcome::kError);
  EXPECT_THAT(p.error, HasSubstr("/nonexistent.yaml"));
}

TEST(ParseCommandLineTest, LinkCreateUsageErrors) {
  EXPECT_THAT(Parse({"link", "create", "x"}).error, HasSubstr("--member SPEC"));
  EXPECT_THAT(Parse({"link", "create", "--member", "a:b:c"}).error,
              HasSubstr("needs NAME"));
  EXPECT_THAT(Parse({"link", "create", "x", "--member", "a:b"}).error,
              HasSubstr("member 'a:b'"));
  EXPECT_THAT(
      Parse({"link", "create", "x", "--member", "a:b:c", "--file", "f"}).error,
      HasSubstr("either --member or --file"));
  EXPECT_THAT(Parse({"link", "create", "x", "y", "--member", "a:b:c"}).error,
              HasSubstr("unexpected argument 'y'"));
}

TEST(ParseCommandLineTest, ShowDeleteRevokeTakeOneName) {
  ParseOutcome p = Parse({"link", "show", "support"});
  ASSERT_EQ(p.kind, ParseOutcome::kRun);
  EXPECT_EQ(p.invocation.name, "support");
  EXPECT_THAT(Parse({"link", "delete"}).error, HasSubstr("the link name"));
  EXPECT_THAT(Parse({"webhook", "revoke"}).error, HasSubstr("the webhook id"));
  EXPECT_THAT(Parse({"link", "show", "a", "b"}).error,
              HasSubstr("unexpected argument 'b'"));
  EXPECT_THAT(Parse({"link", "list", "extra"}).error,
              HasSubstr("unexpected argument 'extra'"));
}

TEST(ParseCommandLineTest, DeadLetterSelections) {
  ParseOutcome p = Parse({"deadletter", "retry", "12", "7"});
  ASSERT_EQ(p.kind, ParseOutcome::kRun) << p.error;
  EXPECT_THAT(p.invocation.dead_letters.ids(), ::testing::ElementsAre(12, 7));
  EXPECT_FALSE(p.invocation.dead_letters.all());

  p = Parse({"deadletter", "drop", "--all"});
  ASSERT_EQ(p.kind, ParseOutcome::kRun) << p.error;
  EXPECT_EQ(p.invocation.command, "deadletter drop");
  EXPECT_TRUE(p.invocation.dead_letters.all());
  EXPECT_EQ(p.invocation.dead_letters.ids_size(), 0);

  EXPECT_THAT(Parse({"deadletter", "retry"}).error, HasSubstr("--all"));
  EXPECT_THAT(Parse({"deadletter", "retry", "1", "--all"}).error,
              HasSubstr("not both"));
  EXPECT_THAT(Parse({"deadletter", "drop", "x1"}).error,
              HasSubstr("'x1' is not a dead letter id"));
  EXPECT_THAT(Parse({"deadletter", "drop", "-3"}).error,
              HasSubstr("'-3' is not a dead letter id"));

  p = Parse({"deadletter", "list", "--limit", "5"});
  ASSERT_EQ(p.kind, ParseOutcome::kRun) << p.error;
  EXPECT_EQ(p.invocation.limit, 5u);
  EXPECT_THAT(Parse({"deadletter", "list", "--limit", "lots"}).error,
              HasSubstr("--limit 'lots'"));
  EXPECT_THAT(Parse({"deadletter", "list", "--limit", "1001"}).error,
              HasSubstr("--limit '1001': expected a number from 1 to 1000"));
  p = Parse({"deadletter", "list", "--before", "812"});
  ASSERT_EQ(p.kind, ParseOutcome::kRun) << p.error;
  EXPECT_EQ(p.invocation.before_id, 812u);
  EXPECT_THAT(Parse({"deadletter", "list", "--before", "0"}).error,
              HasSubstr("--before '0' is not a dead letter id"));
}

TEST(ParseCommandLineTest, WebhookCreate) {
  ParseOutcome p = Parse({"webhook", "create", "--link", "support", "--account",
                          "ops", "--description", "grafana"});
  ASSERT_EQ(p.kind, ParseOutcome::kRun) << p.error;
  EXPECT_EQ(p.invocation.webhook.link(), "support");
  EXPECT_EQ(p.invocation.webhook.direction(), v1::INCOMING);
  EXPECT_EQ(p.invocation.webhook.account(), "ops");
  EXPECT_EQ(p.invocation.webhook.description(), "grafana");

  p = Parse({"webhook", "create", "--link", "support", "--outgoing", "--url",
             "https://example.com/hook"});
  ASSERT_EQ(p.kind, ParseOutcome::kRun) << p.error;
  EXPECT_EQ(p.invocation.webhook.direction(), v1::OUTGOING);
  EXPECT_EQ(p.invocation.webhook.url(), "https://example.com/hook");

  EXPECT_THAT(Parse({"webhook", "create"}).error, HasSubstr("--link LINK"));
  EXPECT_THAT(Parse({"webhook", "create", "--link", "s", "--outgoing"}).error,
              HasSubstr("--outgoing needs --url"));
  EXPECT_THAT(
      Parse({"webhook", "create", "--link", "s", "--url", "http://x"}).error,
      HasSubstr("only for --outgoing"));
  EXPECT_THAT(Parse({"webhook", "create", "--link", "s", "--outgoing", "--url",
                     "ftp://x"})
                  .error,
              HasSubstr("expected an http:// or https:// URL"));
}

TEST(ParseCommandLineTest, UsageErrors) {
  ParseOutcome p = Parse({});
  EXPECT_EQ(p.kind, ParseOutcome::kError);
  EXPECT_EQ(p.error, "no command given");
  EXPECT_THAT(p.usage, HasSubstr("commands:"));

  p = Parse({"link", "frobnicate"});
  EXPECT_EQ(p.kind, ParseOutcome::kError);
  EXPECT_EQ(p.error, "unknown command 'link frobnicate'");

  p = Parse({"stats", "--bogus"});
  EXPECT_EQ(p.error, "unknown flag '--bogus'");
  p = Parse({"stats", "--all"});
  EXPECT_EQ(p.error, "'stats' has no flag --all");
  p = Parse({"stats", "--router"});
  EXPECT_THAT(p.error, HasSubstr("--router needs a value"));
  p = Parse({"stats", "--json=yes"});
  EXPECT_EQ(p.error, "--json takes no value");
  p = Parse({"stats", "--timeout", "0"});
  EXPECT_EQ(p.error, "--timeout must be positive");
  p = Parse({"link", "show", "a", "-x"});
  EXPECT_EQ(p.error, "unknown flag '-x'");
  p = Parse({"webhook", "create", "--link", "a", "--link", "b"});
  EXPECT_EQ(p.error, "--link given twice");
}

TEST(ParseCommandLineTest, HelpShowsTheCommandsUsage) {
  ParseOutcome p = Parse({"deadletter", "retry", "--help"});
  EXPECT_EQ(p.kind, ParseOutcome::kHelp);
  EXPECT_THAT(p.usage, HasSubstr("usage: imbridgectl deadletter retry ID..."));
  EXPECT_THAT(p.usage, HasSubstr("--all"));
  EXPECT_THAT(p.usage, HasSubstr("--token-file FILE"));

  p = Parse({"help", "webhook", "create"});
  EXPECT_EQ(p.kind, ParseOutcome::kHelp);
  EXPECT_THAT(p.usage, HasSubstr("--outgoing"));

  p = Parse({"-h"});
  EXPECT_EQ(p.kind, ParseOutcome::kHelp);
  EXPECT_EQ(p.usage, OverviewUsage());
  // Help wins over errors elsewhere on the line.
  EXPECT_EQ(Parse({"link", "create", "--help", "--bogus"}).kind,
            ParseOutcome::kHelp);
}

}  // namespace
}  // namespace imbridge::ctl
