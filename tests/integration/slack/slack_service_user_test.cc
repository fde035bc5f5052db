// End-to-end tests of the Slack adapter's service user (a Slack person whose
// user token posts the deliveries to chosen channels, for Chatlio): the real
// router, Slack and TeamSpirit adapter binaries against the emulated Slack
// and TeamSpirit servers.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/http/http_client.h"
#include "emulators/slack/fake_slack.h"
#include "emulators/teamspirit/fake_teamspirit.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/adapter_process.h"
#include "tests/integration/router_process.h"

namespace imbridge::testing {
namespace {

using fakes::FakeSlack;
using fakes::FakeSlackApp;
using fakes::FakeSlackMessage;
using fakes::FakeTeamSpirit;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kToken[] = "slack-service-user-token-0123456789";
constexpr char kSlackBinary[] = "adapters/slack/imbridge-adapter-slack";
constexpr char kTsBinary[] = "adapters/teamspirit/imbridge-adapter-teamspirit";
constexpr char kTsApiKey[] = "ts-bot-api-key-0123";
constexpr char kTsSecret[] = "ts-webhook-secret-1";
constexpr char kUserToken[] = "xoxp-support-user-token";
constexpr char kServiceUser[] = "USUPPORT";
// Chatlio's app in the workspace: it creates a channel per visitor and
// posts the visitor's messages there.
const FakeSlackApp kChatlio = {"UCHATLIO", "BCHATLIO", "ACHATLIO", "Chatlio"};

// support: the TeamSpirit support chat and the Slack channel Chatlio is
// connected to; visitor: c-43 and a visitor's channel; ops: c-44 and a
// channel the bot is not in.
std::string RouterConfig() {
  return absl::StrCat("adapters:\n  - {name: tests, token: ", kToken, "}\n",
                      R"(links:
  - name: support
    members:
      - {platform: teamspirit, account: corp, chat_id: c-42}
      - {platform: slack, account: work, chat_id: CSUP}
  - name: visitor
    members:
      - {platform: teamspirit, account: corp, chat_id: c-43}
      - {platform: slack, account: work, chat_id: CV1}
  - name: ops
    members:
      - {platform: teamspirit, account: corp, chat_id: c-44}
      - {platform: slack, account: work, chat_id: COPS}
store: {durability: normal}
dispatch: {initial_backoff_ms: 100, max_backoff_ms: 1000}
)");
}

// The TeamSpirit messages of `chat` whose text contains `text`.
std::vector<FakeTeamSpirit::Message> TsWithText(const FakeTeamSpirit& ts,
                                                const std::string& chat,
                                                const std::string& text) {
  std::vector<FakeTeamSpirit::Message> out;
  for (const auto& m : ts.Messages(chat)) {
    if (absl::StrContains(m.text, text)) out.push_back(m);
  }
  return out;
}

// The live messages of `messages` whose text contains `text`.
std::vector<FakeSlackMessage> WithText(
    const std::vector<FakeSlackMessage>& messages, const std::string& text) {
  std::vector<FakeSlackMessage> out;
  for (const auto& m : messages) {
    if (!m.deleted && absl::StrContains(m.text, text)) out.push_back(m);
  }
  return out;
}

class SlackServiceUserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(slack_.Start().ok());
    slack_.AddChannel("CSUP", "website-chat");
    slack_.AddUser("U1", "Ann");
    slack_.AddUserToken(kServiceUser, kUserToken);
    FakeTeamSpirit::Options ts;
    ts.webhook_initial_backoff = absl::Milliseconds(100);
    ts.webhook_max_backoff = absl::Seconds(1);
    ts_ = std::make_unique<FakeTeamSpirit>(ts);
    ts_->AddBot("u-bot", "Bridge", kTsApiKey);
    ts_->AddUser("u-7", "Ivan Petrov");
    ts_->AddUser("u-8", "Olga Ivanova");
    for (const char* chat : {"c-42", "c-43", "c-44"}) {
      ts_->AddChat(chat, chat, {"u-bot", "u-7", "u-8"});
    }
    ASSERT_TRUE(ts_->Start().ok());
    router_ = std::make_unique<RouterProcess>(RouterConfig());
    ASSERT_TRUE(router_->Start().ok()) << router_->ReadLog();
    state_dir_ = MakeTempDir("slack-service-user");
  }

  void StartTeamSpirit() {
    ts_adapter_ = std::make_unique<AdapterProcess>(
        kTsBinary,
        absl::StrCat("router: {address: \"", router_->address(),
                     "\", token: ", kToken, "}\naccount: corp\napi_base_url: ",
                     ts_->api_base_url(), "\napi_key: ", kTsApiKey,
                     "\nwebhook_secret: ", kTsSecret, "\nlog_level: debug\n"));
    absl::Status s = ts_adapter_->Start();
    ASSERT_TRUE(s.ok()) << s;
    ts_->SetOutgoingWebhook(
        absl::StrCat(ts_adapter_->base_url(), "/teamspirit/events"), kTsSecret);
    ASSERT_TRUE(FakeTeamSpirit::WaitUntil([&] {
      return ts_->BotPresence("u-bot").status == "online";
    })) << ts_adapter_->ReadLog();
  }

  // Starts (or restarts) the Slack adapter and waits until it is ready.
  void StartSlack() {
    if (slack_adapter_ == nullptr) {
      slack_adapter_ = std::make_unique<AdapterProcess>(
          kSlackBinary,
          absl::StrCat("router: {address: \"", router_->address(),
                       "\", token: ", kToken, "}\nstate_dir: \"", state_dir_,
                       "\"\nlog_level: debug\naccounts:\n  - name: work\n",
                       "    bot_token: ", slack_.options().bot_token, "\n",
                       "    signing_secret: ", slack_.options().signing_secret,
                       "\n", "    api_base_url: \"", slack_.api_base_url(),
                       "\"\n", "    disable_presence: true\n",
                       "    messages_per_second: 20\n",
                       "    user_token: ", kUserToken, "\n",
                       "    post_as_user: {created_by: [", kChatlio.user_id,
                       "]}\n", "    service_presence: {links: [support]}\n"));
    }
    absl::Status s = slack_adapter_->Start();
    ASSERT_TRUE(s.ok()) << s;
    slack_.SetEventsUrl(
        absl::StrCat(slack_adapter_->base_url(), "/slack/work/events"));
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (true) {
      auto r = http_.Get(absl::StrCat(slack_adapter_->base_url(), "/readyz"));
      if (r.ok() && r->status == 200) break;
      ASSERT_LT(absl::Now(), deadline) << slack_adapter_->ReadLog();
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  // The visitor says `text` (Chatlio's bot posts it in CV1) and it reaches
  // TeamSpirit's c-43. Events of a channel are relayed in order, so
  // everything Slack sent about CV1 before has been decided by then.
  void VisitorSaysAndItArrives(const std::string& text) {
    FakeSlack::Sent sent = slack_.PostAsApp("CV1", kChatlio, text);
    ASSERT_FALSE(sent.ts.empty());
    ASSERT_TRUE(FakeTeamSpirit::WaitUntil([&] {
      return !TsWithText(*ts_, "c-43", text).empty();
    })) << slack_adapter_->ReadLog();
  }

  // The values users.setPresence was called with, in order.
  std::vector<std::string> PresenceCalls() {
    std::vector<std::string> out;
    for (const auto& c : slack_.Calls("users.setPresence")) {
      EXPECT_EQ(c.token, kUserToken);
      out.push_back(c.args.value("presence", ""));
    }
    return out;
  }

  bool WaitForServicePresence(const std::string& presence) {
    return FakeTeamSpirit::WaitUntil(
        [&] { return slack_.Presence(kServiceUser) == presence; });
  }

  FakeSlack slack_{FakeSlack::Options()};
  std::unique_ptr<FakeTeamSpirit> ts_;
  std::unique_ptr<RouterProcess> router_;
  std::unique_ptr<AdapterProcess> ts_adapter_;
  std::unique_ptr<AdapterProcess> slack_adapter_;
  std::string state_dir_;
  HttpClient http_;
};

// An agent's reply to a visitor's channel (created by Chatlio) is posted
// with the user token, as the service user, with the agent's name in the
// text; Slack's report of that post (and of its edit) is not mirrored back,
// also after the adapter restarted; a message the service user's account
// types by hand is.
TEST_F(SlackServiceUserTest, AgentRepliesArePostedAsTheServiceUser) {
  slack_.CreateChannel("CV1", "costa-mesa-california-us-133", kChatlio.user_id);
  slack_.AddMember("CV1", slack_.options().bot_user_id);
  StartTeamSpirit();
  StartSlack();

  VisitorSaysAndItArrives("Hi! Can I get a quote?");
  auto reply = ts_->PostAsUser("u-7", "c-43", "Sure, what for?");
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_TRUE(slack_.WaitForMessages("CV1", [](const auto& ms) {
    return !WithText(ms, "Sure, what for?").empty();
  })) << slack_adapter_->ReadLog();
  FakeSlackMessage copy = WithText(slack_.Messages("CV1"), "Sure")[0];
  EXPECT_EQ(copy.user, kServiceUser);
  EXPECT_EQ(copy.bot_id, "");
  EXPECT_EQ(copy.username, "");
  EXPECT_EQ(copy.text, "*Ivan Petrov (teamspirit)*: Sure, what for?");
  // The service user was not in the channel: it joined, then posted.
  auto joins = slack_.Calls("conversations.join");
  ASSERT_THAT(joins, SizeIs(1));
  EXPECT_EQ(joins[0].token, kUserToken);
  EXPECT_EQ(joins[0].args["channel"], "CV1");
  for (const auto& call : slack_.Calls("chat.postMessage")) {
    EXPECT_EQ(call.token, kUserToken);
  }

  // The agent edits the reply: the copy follows, with the user token.
  ASSERT_TRUE(ts_->EditAsUser("u-7", *reply, "Sure! What for?").ok());
  ASSERT_TRUE(slack_.WaitForMessages("CV1", [](const auto& ms) {
    return !WithText(ms, "*Ivan Petrov (teamspirit)*: Sure! What for?").empty();
  })) << slack_adapter_->ReadLog();
  EXPECT_EQ(slack_.Calls("chat.update")[0].token, kUserToken);

  // Slack reported the post and the edit; neither came back to TeamSpirit.
  VisitorSaysAndItArrives("A quote for 10 widgets.");
  EXPECT_THAT(TsWithText(*ts_, "c-43", "Sure"), SizeIs(1));

  // After a restart the journal still knows the copy: Slack sending its
  // event again changes nothing.
  EXPECT_EQ(slack_adapter_->Terminate(), 0);
  StartSlack();
  const std::string echo = slack_.PostedEventId("CV1", copy.ts);
  ASSERT_FALSE(echo.empty());
  EXPECT_EQ(slack_.Redeliver(echo, 1), 200);
  VisitorSaysAndItArrives("Hello?");
  EXPECT_THAT(TsWithText(*ts_, "c-43", "Sure"), SizeIs(1));

  // A file from the agent goes up with the user token too, and Slack's
  // report of the file share is not mirrored back either.
  FakeTeamSpirit::PostOptions with_file;
  with_file.file_ids = {
      ts_->UploadAsUser("u-7", "price-list.pdf", "application/pdf", "%PDF-1")};
  ASSERT_TRUE(ts_->PostAsUser("u-7", "c-43", "Our prices", with_file).ok());
  ASSERT_TRUE(slack_.WaitForCalls("files.completeUploadExternal", 1))
      << slack_adapter_->ReadLog();
  EXPECT_EQ(slack_.Calls("files.completeUploadExternal")[0].token, kUserToken);
  ASSERT_TRUE(slack_.WaitForMessages("CV1", [](const auto& ms) {
    for (const auto& m : ms) {
      if (!m.file_ids.empty()) return m.user == kServiceUser;
    }
    return false;
  }));
  VisitorSaysAndItArrives("Thanks, got it.");
  EXPECT_THAT(TsWithText(*ts_, "c-43", "Our prices"), SizeIs(1));
  for (const auto& m : ts_->Messages("c-43")) {
    EXPECT_EQ(m.file_ids.size(), m.text == "Our prices" ? 1u : 0u) << m.text;
  }

  // The agent deletes the reply: the copy goes, with the user token.
  ASSERT_TRUE(ts_->DeleteAsUser("u-7", *reply).ok());
  ASSERT_TRUE(slack_.WaitForMessages("CV1", [](const auto& ms) {
    return WithText(ms, "Sure").empty();
  })) << slack_adapter_->ReadLog();
  EXPECT_EQ(slack_.Calls("chat.delete")[0].token, kUserToken);

  // Someone signed in as the service user types in the channel: that is a
  // person's message, and it is relayed.
  slack_.PostMessage("CV1", kServiceUser, "typed by hand");
  ASSERT_TRUE(FakeTeamSpirit::WaitUntil([&] {
    return !TsWithText(*ts_, "c-43", "typed by hand").empty();
  })) << slack_adapter_->ReadLog();
  EXPECT_EQ(ts_adapter_->Terminate(), 0);
  EXPECT_EQ(slack_adapter_->Terminate(), 0);
}

// Slack reports the service user's post before it answers
// chat.postMessage (its answer is slow): the echo check waits for the
// delivery in flight, and the copy is still not mirrored back.
TEST_F(SlackServiceUserTest, AnEchoBeforeSlacksAnswerIsRecognised) {
  slack_.CreateChannel("CV1", "costa-mesa-california-us-133", kChatlio.user_id);
  slack_.AddMember("CV1", slack_.options().bot_user_id);
  slack_.AddMember("CV1", kServiceUser);
  StartTeamSpirit();
  StartSlack();
  slack_.DelayAnswers("chat.postMessage", absl::Seconds(5));
  ASSERT_TRUE(ts_->PostAsUser("u-7", "c-43", "One moment please").ok());
  ASSERT_TRUE(slack_.WaitForMessages("CV1", [](const auto& ms) {
    return !WithText(ms, "One moment please").empty();
  })) << slack_adapter_->ReadLog();
  // The echo has been sent while the answer is still held back.
  ASSERT_GT(slack_.delayed_answers_pending(), 0);
  slack_.DelayAnswers("chat.postMessage", absl::ZeroDuration());
  VisitorSaysAndItArrives("ok");
  EXPECT_THAT(TsWithText(*ts_, "c-43", "One moment please"), SizeIs(1));
}

// A delivery to a channel the bot is not in: Slack answers not_in_channel,
// the bot joins the channel and posts.
TEST_F(SlackServiceUserTest, TheBotJoinsAChannelItIsNotIn) {
  slack_.CreateChannel("COPS", "ops", "U1");
  StartTeamSpirit();
  StartSlack();
  ASSERT_TRUE(ts_->PostAsUser("u-8", "c-44", "deploy at noon").ok());
  ASSERT_TRUE(slack_.WaitForMessages("COPS", [](const auto& ms) {
    return !WithText(ms, "deploy at noon").empty();
  })) << slack_adapter_->ReadLog();
  FakeSlackMessage copy = WithText(slack_.Messages("COPS"), "deploy")[0];
  EXPECT_EQ(copy.bot_id, slack_.options().bot_id);
  EXPECT_EQ(copy.username, "Olga Ivanova (teamspirit)");
  EXPECT_EQ(copy.text, "deploy at noon");
  auto joins = slack_.Calls("conversations.join");
  ASSERT_THAT(joins, SizeIs(1));
  EXPECT_EQ(joins[0].token, slack_.options().bot_token);
  EXPECT_EQ(slack_.Channel("COPS")->members.count("UBOT"), 1u);
  EXPECT_THAT(slack_adapter_->ReadLog(), HasSubstr("joining"));
}

// A channel Chatlio's bot creates is joined by the bot, so that the
// visitor's messages reach the bridge; its archiving is announced in the
// linked chats. A channel someone else creates is left alone.
TEST_F(SlackServiceUserTest, ChatlioChannelsAreJoinedAndTheirArchiveAnnounced) {
  StartTeamSpirit();
  StartSlack();
  FakeSlack::Sent other = slack_.CreateChannel("CX", "random", "U1");
  EXPECT_EQ(other.http_status, 200);
  FakeSlack::Sent created = slack_.CreateChannel(
      "CV1", "costa-mesa-california-us-133", kChatlio.user_id);
  EXPECT_EQ(created.http_status, 200);
  auto joins = slack_.Calls("conversations.join");
  ASSERT_THAT(joins, SizeIs(1));
  EXPECT_EQ(joins[0].args["channel"], "CV1");
  EXPECT_EQ(joins[0].token, slack_.options().bot_token);
  // The rule was decided from the event: no conversations.info needed.
  EXPECT_THAT(slack_.Calls("conversations.info"), IsEmpty());

  VisitorSaysAndItArrives("Is anyone there?");
  FakeSlack::Sent archived = slack_.ArchiveChannel("CV1", "U1");
  EXPECT_EQ(archived.http_status, 200);
  ASSERT_TRUE(FakeTeamSpirit::WaitUntil([&] {
    return !TsWithText(*ts_, "c-43", "archived this channel").empty();
  })) << slack_adapter_->ReadLog();
  // Shown as said by the person who archived it.
  FakeTeamSpirit::Message notice =
      TsWithText(*ts_, "c-43", "archived this channel")[0];
  ASSERT_TRUE(notice.author.has_value()) << notice.text;
  EXPECT_THAT(notice.author->name, HasSubstr("Ann"));
}

// The service user's Slack presence is "auto" while at least one agent of
// the support link is online on TeamSpirit and "away" otherwise; after a
// restart the adapter tells Slack again from what it knew.
TEST_F(SlackServiceUserTest, ServiceUserPresenceFollowsTheAgents) {
  StartTeamSpirit();
  StartSlack();
  // Nobody is known to be online: away.
  ASSERT_TRUE(FakeTeamSpirit::WaitUntil([&] {
    return PresenceCalls().size() == 1;
  })) << slack_adapter_->ReadLog();
  EXPECT_EQ(PresenceCalls()[0], "away");

  ts_->SetUserPresence("u-7", "online");
  ASSERT_TRUE(WaitForServicePresence("active")) << slack_adapter_->ReadLog();
  // Olga comes online, Ivan goes offline: still someone to answer. (Each
  // change reaches Slack's three linked channels; only "support" counts.)
  // A message in the support chat afterwards is delivered to CSUP after
  // those changes (one target's deliveries go in order).
  ts_->SetUserPresence("u-8", "online");
  ts_->SetUserPresence("u-7", "offline");
  ASSERT_TRUE(ts_->PostAsUser("u-8", "c-42", "after the changes").ok());
  ASSERT_TRUE(slack_.WaitForMessages("CSUP", [](const auto& ms) {
    return !WithText(ms, "after the changes").empty();
  })) << slack_adapter_->ReadLog();
  EXPECT_EQ(slack_.Presence(kServiceUser), "active");
  EXPECT_EQ(PresenceCalls(), (std::vector<std::string>{"away", "auto"}));
  // Olga goes away too: nobody.
  ts_->SetUserPresence("u-8", "away");
  ASSERT_TRUE(WaitForServicePresence("away")) << slack_adapter_->ReadLog();
  EXPECT_EQ(PresenceCalls(),
            (std::vector<std::string>{"away", "auto", "away"}));

  // Ivan is online again when the adapter restarts; meanwhile someone set
  // the service user away by hand: the restarted adapter sets it back.
  ts_->SetUserPresence("u-7", "dnd");
  ASSERT_TRUE(WaitForServicePresence("active")) << slack_adapter_->ReadLog();
  EXPECT_EQ(slack_adapter_->Terminate(), 0);
  slack_.SetPresence(kServiceUser, "away");
  StartSlack();
  ASSERT_TRUE(WaitForServicePresence("active")) << slack_adapter_->ReadLog();
  EXPECT_EQ(PresenceCalls().back(), "auto");
}

}  // namespace
}  // namespace imbridge::testing
