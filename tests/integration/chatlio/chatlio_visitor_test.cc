// A website visitor answered from TeamSpirit, end to end (issue 13): the
// real router and the real Chatlio, Slack and TeamSpirit adapter binaries;
// the emulated Slack workspace, TeamSpirit server and Chatlio widget
// (emulators/). Chatlio's webhooks go to the Chatlio adapter, which links
// each visitor's Slack channel with the thread of the visitor's
// new-conversation notice in the TeamSpirit support chat; the Slack adapter
// posts the agents' replies in that thread to the visitor's channel as the
// service user "Support" (user token), so that Chatlio forwards them to the
// visitor, and sets the service user's presence from the agents' TeamSpirit
// presence.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/http/http_client.h"
#include "emulators/chatlio/fake_chatlio.h"
#include "emulators/slack/fake_slack.h"
#include "emulators/teamspirit/fake_teamspirit.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "imbridge/v1/admin.grpc.pb.h"
#include "tests/integration/adapter_process.h"
#include "tests/integration/router_process.h"

namespace imbridge::testing {
namespace {

using fakes::FakeChatlio;
using fakes::FakeSlack;
using fakes::FakeTeamSpirit;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kToken[] = "chatlio-visitor-token-0123456789";
constexpr char kAdminToken[] = "chatlio-visitor-admin-token-0123";
constexpr char kSecret[] = "chatlio-visitor-secret-0123";
constexpr char kTsKey[] = "ts-bot-api-key-chatlio";
constexpr char kTsSecret[] = "ts-webhook-secret-chatlio";
constexpr char kUserToken[] = "xoxp-support-user-token";
constexpr char kSupportChat[] = "c-web";
constexpr char kConnected[] = "CSUPPORT";
constexpr char kService[] = "USUPPORT";
constexpr char kAgent[] = "u-7";
constexpr absl::Duration kWait = absl::Seconds(60);

std::string RouterConfig() {
  return absl::StrCat("adapters:\n  - {name: tests, token: ", kToken, "}\n",
                      "admin_token: ", kAdminToken, "\n", R"(links:
  - name: web-support-notices
    members:
      - {platform: chatlio, account: site, chat_id: notices, direction: in}
      - {platform: teamspirit, account: corp, chat_id: c-web}
  - name: web-support-slack
    members:
      - {platform: teamspirit, account: corp, chat_id: c-web}
      - {platform: slack, account: work, chat_id: CSUPPORT}
store: {durability: normal}
dispatch: {initial_backoff_ms: 100, max_backoff_ms: 1000}
)");
}

class ChatlioVisitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Slack: the channel connected to Chatlio, with the service user.
    ASSERT_TRUE(slack_.Start().ok());
    slack_.AddChannel(kConnected, "support");
    slack_.AddUser(kService, "Support");
    slack_.AddUserToken(kService, kUserToken);
    slack_.AddMember(kConnected, kService);
    slack_.SetPresence(kService, "away");

    // TeamSpirit: the web support chat with an agent.
    FakeTeamSpirit::Options ts_options;
    ts_options.webhook_initial_backoff = absl::Milliseconds(100);
    ts_options.webhook_max_backoff = absl::Seconds(1);
    ts_ = std::make_unique<FakeTeamSpirit>(ts_options);
    ts_->AddBot("u-bot", "Bridge", kTsKey);
    ts_->AddUser(kAgent, "Ivan Petrov");
    ts_->AddChat(kSupportChat, "Web support", {"u-bot", kAgent});
    ASSERT_TRUE(ts_->Start().ok());

    router_ = std::make_unique<RouterProcess>(RouterConfig());
    ASSERT_TRUE(router_->Start().ok()) << router_->ReadLog();
    auto channel = grpc::CreateChannel(router_->address(),
                                       grpc::InsecureChannelCredentials());
    admin_ = v1::Admin::NewStub(channel);

    slack_adapter_ = std::make_unique<AdapterProcess>(
        "adapters/slack/imbridge-adapter-slack",
        absl::StrCat("router: {address: \"", router_->address(), "\", token: ",
                     kToken, "}\nlog_level: debug\naccounts:\n  - name: work\n",
                     "    bot_token: ", slack_.options().bot_token, "\n",
                     "    signing_secret: ", slack_.options().signing_secret,
                     "\n", "    api_base_url: \"", slack_.api_base_url(),
                     "\"\n", "    user_token: ", kUserToken, "\n",
                     "    post_as_user: {created_by: [",
                     chatlio_options().app.user_id, "]}\n",
                     "    service_presence: {links: [web-support-slack, "
                     "\"chatlio-*\"]}\n",
                     "    presence_poll_interval_seconds: 1\n",
                     "    messages_per_second: 20\n"));
    ASSERT_TRUE(slack_adapter_->Start().ok()) << slack_adapter_->ReadLog();
    slack_.SetEventsUrl(
        absl::StrCat(slack_adapter_->base_url(), "/slack/work/events"));

    ts_adapter_ = std::make_unique<AdapterProcess>(
        "adapters/teamspirit/imbridge-adapter-teamspirit",
        absl::StrCat("router: {address: \"", router_->address(),
                     "\", token: ", kToken, "}\naccount: corp\napi_base_url: ",
                     ts_->api_base_url(), "\napi_key: ", kTsKey,
                     "\nwebhook_secret: ", kTsSecret, "\nlog_level: debug\n"));
    ASSERT_TRUE(ts_adapter_->Start().ok()) << ts_adapter_->ReadLog();
    ts_->SetOutgoingWebhook(
        absl::StrCat(ts_adapter_->base_url(), "/teamspirit/events"), kTsSecret);

    chatlio_adapter_ = std::make_unique<AdapterProcess>(
        "adapters/chatlio/imbridge-adapter-chatlio",
        absl::StrCat(
            "router: {address: \"", router_->address(), "\", token: ", kToken,
            "}\nlog_level: debug\nstate_dir: \"",
            MakeTempDir("chatlio-visitor"), "\"\naccounts:\n  - name: site\n",
            "    webhook_secret: ", kSecret, "\n",
            "    slack_workspace_url: https://fake.slack.com\n",
            "    slack_account: work\n",
            "    support: {platform: teamspirit, account: corp, chat_id: ",
            kSupportChat, "}\n"));
    ASSERT_TRUE(chatlio_adapter_->Start().ok()) << chatlio_adapter_->ReadLog();
    ASSERT_TRUE(router_->WaitForMetric("imbridge_router_attached_adapters", {},
                                       3, kWait));

    FakeChatlio::Options options = chatlio_options();
    options.webhook_url =
        absl::StrCat(chatlio_adapter_->base_url(), "/chatlio/site/", kSecret);
    chatlio_ = std::make_unique<FakeChatlio>(options, &slack_);
    ASSERT_TRUE(chatlio_->Start().ok());
  }

  static FakeChatlio::Options chatlio_options() {
    FakeChatlio::Options options;
    options.connected_channel = kConnected;
    options.online_check_interval = absl::Milliseconds(200);
    return options;
  }

  // The texts of the support chat's messages (the bridge's copies
  // included).
  std::vector<std::string> SupportTexts() {
    std::vector<std::string> out;
    for (const auto& m : ts_->Messages(kSupportChat, true)) {
      out.push_back(m.text);
    }
    return out;
  }
  bool WaitForSupportText(const std::string& part) {
    return FakeTeamSpirit::WaitUntil(
        [&] {
          for (const std::string& t : SupportTexts()) {
            if (absl::StrContains(t, part)) return true;
          }
          return false;
        },
        kWait);
  }
  int CountSupportTexts(const std::string& part) {
    int n = 0;
    for (const std::string& t : SupportTexts()) {
      if (absl::StrContains(t, part)) ++n;
    }
    return n;
  }

  // The support chat's copy of the new-conversation notice of visitor
  // `name` (its TeamSpirit message id): the root of the visitor's thread;
  // "" on timeout.
  std::string NoticeOf(const std::string& name) {
    std::string id;
    FakeTeamSpirit::WaitUntil(
        [&] {
          for (const auto& m : ts_->Messages(kSupportChat)) {
            if (absl::StrContains(
                    m.text,
                    absl::StrCat("New website conversation with ", name))) {
              id = m.id;
              return true;
            }
          }
          return false;
        },
        kWait);
    return id;
  }
  // The texts of the support chat's thread rooted at `root`.
  std::vector<std::string> ThreadTexts(const std::string& root) {
    std::vector<std::string> out;
    for (const auto& m : ts_->Messages(kSupportChat)) {
      if (m.thread_id == root) out.push_back(m.text);
    }
    return out;
  }
  // The texts the bridge posted in the thread rooted at `root` (the
  // visitor's messages), in order, without the first message.
  std::vector<std::string> VisitorTexts(const std::string& root) {
    std::vector<std::string> out;
    for (const auto& m : ts_->Messages(kSupportChat)) {
      if (m.thread_id != root || m.user_id == kAgent ||
          absl::StrContains(m.text, "Is anyone there?")) {
        continue;
      }
      out.push_back(m.text);
    }
    return out;
  }
  bool WaitForThreadText(const std::string& root, const std::string& part) {
    return FakeTeamSpirit::WaitUntil(
        [&] {
          for (const std::string& t : ThreadTexts(root)) {
            if (absl::StrContains(t, part)) return true;
          }
          return false;
        },
        kWait);
  }
  // The agent answers in the thread rooted at `root`.
  void AgentSaysInThread(const std::string& root, const std::string& text) {
    FakeTeamSpirit::PostOptions in_thread;
    in_thread.thread_id = root;
    ASSERT_TRUE(ts_->PostAsUser(kAgent, kSupportChat, text, in_thread).ok());
  }

  // Waits until runtime link `name` exists, with its support member's
  // thread resolved unless `pending_too` (the router narrows the member to
  // the notice's thread once the notice's copy is made); std::nullopt on
  // timeout.
  std::optional<v1::Link> WaitForRuntimeLink(const std::string& name,
                                             bool pending_too = false) {
    absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      for (const v1::Link& link : RuntimeLinkDefinitions()) {
        if (link.name() != name || link.members_size() < 2) continue;
        if (pending_too || link.members(1).pending_thread_root() == 0) {
          return link;
        }
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return std::nullopt;
  }
  // Starts the visitor's conversation: the first message, the notice's
  // thread root in TeamSpirit and the link narrowed to it. Returns the root
  // ("" on failure, reported).
  std::string StartConversation(const std::string& visitor,
                                const std::string& name,
                                const std::string& text) {
    auto channel = chatlio_->VisitorSays(visitor, text, name);
    if (!channel.ok()) {
      ADD_FAILURE() << channel.status();
      return "";
    }
    const std::string root = NoticeOf(name);
    if (root.empty()) {
      ADD_FAILURE() << "no notice for " << name << "\n"
                    << chatlio_adapter_->ReadLog();
      return "";
    }
    std::optional<v1::Link> link = WaitForRuntimeLink(
        absl::StrCat("chatlio-", chatlio_->ConversationOf(visitor)));
    if (!link.has_value()) {
      ADD_FAILURE() << "no link for " << name << "\n"
                    << chatlio_adapter_->ReadLog();
      return "";
    }
    EXPECT_EQ(link->members(1).chat_id(), kSupportChat);
    EXPECT_EQ(link->members(1).thread_id(), root);
    // The Slack side joins the visitor's channel.
    EXPECT_TRUE(FakeTeamSpirit::WaitUntil(
        [&] {
          auto c = slack_.Channel(*channel);
          return c.has_value() &&
                 c->members.count(slack_.options().bot_user_id) > 0;
        },
        kWait))
        << slack_adapter_->ReadLog();
    return root;
  }

  // The router's runtime links.
  std::vector<v1::Link> RuntimeLinkDefinitions() {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kAdminToken));
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(20));
    v1::ListLinksResponse resp;
    std::vector<v1::Link> out;
    grpc::Status status =
        admin_->ListLinks(&ctx, v1::ListLinksRequest(), &resp);
    if (!status.ok()) {
      ADD_FAILURE() << "ListLinks failed: " << status.error_message();
      return out;
    }
    for (const auto& l : resp.links()) {
      if (l.source() == v1::RUNTIME) out.push_back(l.link());
    }
    return out;
  }
  // The names of the router's runtime links.
  std::vector<std::string> RuntimeLinks() {
    std::vector<std::string> names;
    for (const v1::Link& link : RuntimeLinkDefinitions()) {
      names.push_back(link.name());
    }
    return names;
  }

  int PostWebhook(const std::string& path, const std::string& body) {
    auto r = HttpClient().PostJson(
        absl::StrCat(chatlio_adapter_->base_url(), "/chatlio/", path), body);
    return r.ok() ? r->status : 0;
  }

  FakeSlack slack_{FakeSlack::Options()};
  std::unique_ptr<FakeTeamSpirit> ts_;
  std::unique_ptr<RouterProcess> router_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::unique_ptr<AdapterProcess> slack_adapter_;
  std::unique_ptr<AdapterProcess> ts_adapter_;
  std::unique_ptr<AdapterProcess> chatlio_adapter_;
  std::unique_ptr<FakeChatlio> chatlio_;
};

TEST_F(ChatlioVisitorTest, AVisitorIsAnsweredFromTeamSpirit) {
  // Online follows the agents: nobody is online in TeamSpirit yet.
  EXPECT_FALSE(chatlio_->online());
  ts_->SetUserPresence(kAgent, "online");
  ASSERT_TRUE(chatlio_->WaitForOnline(true, kWait))
      << slack_adapter_->ReadLog() << "\n--- TeamSpirit adapter\n"
      << ts_adapter_->ReadLog() << "\n--- router\n"
      << router_->ReadLog();

  // The visitor's first message: the notice in the support chat (with the
  // first message, telling agents to answer in its thread), and the
  // visitor's channel linked with the notice's thread.
  const std::string root =
      StartConversation("v1", "Ann Lee", "Hello, do you ship to Canada?");
  ASSERT_FALSE(root.empty());
  const std::string link =
      absl::StrCat("chatlio-", chatlio_->ConversationOf("v1"));
  const auto notice = ts_->GetMessage(root);
  ASSERT_TRUE(notice.has_value());
  EXPECT_THAT(notice->text, HasSubstr("Hello, do you ship to Canada?"));
  EXPECT_THAT(notice->text, HasSubstr("Answer in this message's thread"));

  // The visitor's next message (posted by Chatlio's bot) reaches
  // TeamSpirit, in the notice's thread.
  ASSERT_TRUE(chatlio_->VisitorSays("v1", "I need 3 boxes").ok());
  ASSERT_TRUE(WaitForThreadText(root, "I need 3 boxes"))
      << slack_adapter_->ReadLog();

  // The agent's reply in the thread reaches the visitor (posted by the
  // service user), as the widget shows it: the sender's name without
  // Slack's markup.
  AgentSaysInThread(root, "Yes, we ship to Canada");
  ASSERT_TRUE(chatlio_->WaitForReceived("v1", 1, kWait))
      << slack_adapter_->ReadLog();
  EXPECT_EQ(chatlio_->Received("v1")[0],
            "Ivan Petrov (teamspirit): Yes, we ship to Canada");
  // A copy posted by the bridge's bot would not reach the visitor.
  auto bot_post = HttpClient().PostJson(
      absl::StrCat(slack_.api_base_url(), "/chat.postMessage"),
      absl::StrCat(R"({"channel": ")", chatlio_->ChannelOf("v1"),
                   R"(", "text": "posted by the bot"})"),
      {{"Authorization", absl::StrCat("Bearer ", slack_.options().bot_token)}});
  ASSERT_TRUE(bot_post.ok());
  ASSERT_THAT(bot_post->body, HasSubstr("\"ok\":true"));
  AgentSaysInThread(root, "Anything else?");
  ASSERT_TRUE(chatlio_->WaitForReceived("v1", 2, kWait));
  for (const std::string& text : chatlio_->Received("v1")) {
    EXPECT_THAT(text, Not(HasSubstr("posted by the bot")));
  }

  // Online status follows TeamSpirit presence.
  ts_->SetUserPresence(kAgent, "offline");
  EXPECT_TRUE(chatlio_->WaitForOnline(false, kWait));
  ts_->SetUserPresence(kAgent, "online");
  EXPECT_TRUE(chatlio_->WaitForOnline(true, kWait));

  // The end: the transcript once, with its file, and the link removed.
  ASSERT_TRUE(chatlio_->EndConversation("v1").ok());
  ASSERT_TRUE(
      WaitForSupportText("Transcript of the conversation with Ann Lee"));
  EXPECT_THAT(RuntimeLinks(), Not(Contains(link)));
  bool has_file = false;
  for (const auto& m : ts_->Messages(kSupportChat, true)) {
    if (absl::StrContains(m.text, "Transcript of the conversation")) {
      has_file = !m.file_ids.empty();
    }
  }
  EXPECT_TRUE(has_file);

  // Forged and duplicate webhooks change nothing: the transcript and the
  // new-conversation webhooks again, and a transcript with a wrong secret.
  std::string transcript, started;
  for (const auto& w : chatlio_->webhooks()) {
    if (w.type == "transcript") transcript = w.body;
    if (w.type == "new-conversation") started = w.body;
  }
  EXPECT_EQ(
      PostWebhook(absl::StrCat("site/", kSecret, "/transcript"), transcript),
      200);
  EXPECT_EQ(
      PostWebhook(absl::StrCat("site/", kSecret, "/new-conversation"), started),
      200);
  EXPECT_EQ(
      PostWebhook("site/not-the-secret-0123456789/transcript", transcript),
      404);
  // A message after them shows that everything before it was delivered.
  ASSERT_TRUE(ts_->PostAsUser(kAgent, kSupportChat, "end of the day").ok());
  ASSERT_TRUE(FakeTeamSpirit::WaitUntil(
      [&] {
        for (const auto& m : slack_.Messages(kConnected)) {
          if (absl::StrContains(m.text, "end of the day")) return true;
        }
        return false;
      },
      kWait));
  EXPECT_EQ(CountSupportTexts("Transcript of the conversation"), 1);
  EXPECT_EQ(CountSupportTexts("New website conversation with Ann Lee"), 1);
  EXPECT_THAT(RuntimeLinks(), Not(Contains(link)));
}

TEST_F(ChatlioVisitorTest, TwoVisitorsAreAnsweredEachInTheirThread) {
  ts_->SetUserPresence(kAgent, "online");
  ASSERT_TRUE(chatlio_->WaitForOnline(true, kWait))
      << slack_adapter_->ReadLog();
  const std::string ann = StartConversation("v1", "Ann Lee", "Hi, I am Ann");
  const std::string bob = StartConversation("v2", "Bob Stone", "Hi, I am Bob");
  ASSERT_FALSE(ann.empty());
  ASSERT_FALSE(bob.empty());
  ASSERT_NE(ann, bob);

  // Each visitor's messages go under their own notice.
  ASSERT_TRUE(chatlio_->VisitorSays("v1", "Ann needs a refund").ok());
  ASSERT_TRUE(chatlio_->VisitorSays("v2", "Bob needs a box").ok());
  ASSERT_TRUE(WaitForThreadText(ann, "Ann needs a refund"))
      << slack_adapter_->ReadLog();
  ASSERT_TRUE(WaitForThreadText(bob, "Bob needs a box"));
  EXPECT_THAT(ThreadTexts(ann), Not(Contains(HasSubstr("Bob"))));
  EXPECT_THAT(ThreadTexts(bob), Not(Contains(HasSubstr("Ann"))));

  // An answer in a visitor's thread reaches that visitor only; a message
  // outside the threads reaches no visitor (it goes to Slack's connected
  // channel, as every message of the support chat).
  AgentSaysInThread(ann, "Refund sent, Ann");
  AgentSaysInThread(bob, "Box shipped, Bob");
  ASSERT_TRUE(
      ts_->PostAsUser(kAgent, kSupportChat, "Lunch break at noon").ok());
  AgentSaysInThread(ann, "Anything else, Ann?");
  ASSERT_TRUE(chatlio_->WaitForReceived("v1", 2, kWait))
      << slack_adapter_->ReadLog();
  ASSERT_TRUE(chatlio_->WaitForReceived("v2", 1, kWait));
  ASSERT_TRUE(FakeTeamSpirit::WaitUntil(
      [&] {
        for (const auto& m : slack_.Messages(kConnected)) {
          if (absl::StrContains(m.text, "Lunch break at noon")) return true;
        }
        return false;
      },
      kWait));
  EXPECT_THAT(
      chatlio_->Received("v1"),
      ::testing::ElementsAre("Ivan Petrov (teamspirit): Refund sent, Ann",
                             "Ivan Petrov (teamspirit): Anything else, Ann?"));
  EXPECT_THAT(
      chatlio_->Received("v2"),
      ::testing::ElementsAre("Ivan Petrov (teamspirit): Box shipped, Bob"));

  // Ann's transcript removes her link only; Bob is still answered.
  const std::string ann_link =
      absl::StrCat("chatlio-", chatlio_->ConversationOf("v1"));
  const std::string bob_link =
      absl::StrCat("chatlio-", chatlio_->ConversationOf("v2"));
  ASSERT_TRUE(chatlio_->EndConversation("v1").ok());
  ASSERT_TRUE(
      WaitForSupportText("Transcript of the conversation with Ann Lee"));
  EXPECT_THAT(RuntimeLinks(), Not(Contains(ann_link)));
  EXPECT_THAT(RuntimeLinks(), Contains(bob_link));
  AgentSaysInThread(bob, "Still there, Bob?");
  ASSERT_TRUE(chatlio_->WaitForReceived("v2", 2, kWait));
  EXPECT_THAT(chatlio_->Received("v1"), SizeIs(2));
  ASSERT_TRUE(chatlio_->EndConversation("v2").ok());
  ASSERT_TRUE(
      WaitForSupportText("Transcript of the conversation with Bob Stone"));
  EXPECT_THAT(RuntimeLinks(), Not(Contains(bob_link)));
}

TEST_F(ChatlioVisitorTest, AVisitorWritingWhileTeamSpiritIsDownIsNotLost) {
  ts_->SetUserPresence(kAgent, "online");
  ASSERT_TRUE(chatlio_->WaitForOnline(true, kWait))
      << slack_adapter_->ReadLog();
  // TeamSpirit's adapter is down: the notice is stored but its copy is not
  // made. The visitor's link is made at once, its support member waiting
  // for the thread of the notice's copy.
  ts_adapter_->Kill();
  auto channel = chatlio_->VisitorSays("v1", "Is anyone there?", "Ann Lee");
  ASSERT_TRUE(channel.ok()) << channel.status();
  const std::string link =
      absl::StrCat("chatlio-", chatlio_->ConversationOf("v1"));
  std::optional<v1::Link> pending = WaitForRuntimeLink(link, true);
  ASSERT_TRUE(pending.has_value()) << chatlio_adapter_->ReadLog();
  EXPECT_GT(pending->members(1).pending_thread_root(), 0);
  EXPECT_EQ(pending->members(1).thread_id(), "");
  ASSERT_TRUE(FakeTeamSpirit::WaitUntil(
      [&] {
        auto c = slack_.Channel(*channel);
        return c.has_value() &&
               c->members.count(slack_.options().bot_user_id) > 0;
      },
      kWait))
      << slack_adapter_->ReadLog();

  // The visitor writes twice; both are stored (parked) by the router.
  ASSERT_TRUE(chatlio_->VisitorSays("v1", "First, the order number").ok());
  ASSERT_TRUE(chatlio_->VisitorSays("v1", "Second, the address").ok());
  ASSERT_TRUE(router_->WaitForMetric("imbridge_router_link_events_total",
                                     {{"link", link}, {"kind", "message"}}, 2,
                                     kWait))
      << slack_adapter_->ReadLog() << "\n--- router\n"
      << router_->ReadLog();

  // The router crashes (kill -9) with the messages parked, and starts again;
  // then TeamSpirit's adapter comes back: the notice, then both messages in
  // order in its thread, each once.
  router_->Kill();
  ASSERT_TRUE(router_->Start().ok()) << router_->ReadLog();
  admin_ = v1::Admin::NewStub(grpc::CreateChannel(
      router_->address(), grpc::InsecureChannelCredentials()));
  ASSERT_TRUE(ts_adapter_->Start().ok()) << ts_adapter_->ReadLog();
  const std::string root = NoticeOf("Ann Lee");
  ASSERT_FALSE(root.empty()) << router_->ReadLog();
  ASSERT_TRUE(WaitForThreadText(root, "Second, the address"))
      << router_->ReadLog();
  // (The first message is in the notice; it is in the thread too if the
  // Slack side was in the channel before Chatlio posted it there.)
  EXPECT_THAT(VisitorTexts(root),
              ::testing::ElementsAre(HasSubstr("First, the order number"),
                                     HasSubstr("Second, the address")));
  std::optional<v1::Link> resolved = WaitForRuntimeLink(link);
  ASSERT_TRUE(resolved.has_value()) << router_->ReadLog();
  EXPECT_EQ(resolved->members(1).thread_id(), root);

  // The agent's answer in the thread reaches the visitor.
  AgentSaysInThread(root, "Sorry for the wait");
  ASSERT_TRUE(chatlio_->WaitForReceived("v1", 1, kWait))
      << slack_adapter_->ReadLog();
  EXPECT_EQ(chatlio_->Received("v1")[0],
            "Ivan Petrov (teamspirit): Sorry for the wait");
  ASSERT_TRUE(chatlio_->VisitorSays("v1", "Thanks").ok());
  ASSERT_TRUE(WaitForThreadText(root, "Thanks"));
  EXPECT_THAT(VisitorTexts(root),
              ::testing::ElementsAre(HasSubstr("First, the order number"),
                                     HasSubstr("Second, the address"),
                                     HasSubstr("Thanks")));
}

}  // namespace
}  // namespace imbridge::testing
