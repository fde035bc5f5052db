// A website visitor answered from TeamSpirit, end to end (issue 13): the
// real router and the real Chatlio, Slack and TeamSpirit adapter binaries;
// the emulated Slack workspace, TeamSpirit server and Chatlio widget
// (emulators/). Chatlio's webhooks go to the Chatlio adapter, which links
// each visitor's Slack channel with the TeamSpirit support chat; the Slack
// adapter posts the agents' replies there as the service user "Support"
// (user token), so that Chatlio forwards them to the visitor, and sets the
// service user's presence from the agents' TeamSpirit presence.

#include <memory>
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

  std::vector<std::string> RuntimeLinks() {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kAdminToken));
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(20));
    v1::ListLinksResponse resp;
    std::vector<std::string> out;
    if (!admin_->ListLinks(&ctx, v1::ListLinksRequest(), &resp).ok()) {
      out.push_back("<ListLinks failed>");
      return out;
    }
    for (const auto& l : resp.links()) {
      if (l.source() == v1::RUNTIME) out.push_back(l.link().name());
    }
    return out;
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

  // The visitor's first message: the notice in the support chat, and the
  // visitor's channel linked with it.
  auto channel =
      chatlio_->VisitorSays("v1", "Hello, do you ship to Canada?", "Ann Lee");
  ASSERT_TRUE(channel.ok()) << channel.status();
  ASSERT_TRUE(WaitForSupportText("New website conversation with Ann Lee"))
      << chatlio_adapter_->ReadLog();
  const std::string link =
      absl::StrCat("chatlio-", chatlio_->ConversationOf("v1"));
  EXPECT_THAT(RuntimeLinks(), Contains(link));
  // The Slack side joins the visitor's channel.
  ASSERT_TRUE(FakeTeamSpirit::WaitUntil(
      [&] {
        auto c = slack_.Channel(*channel);
        return c.has_value() &&
               c->members.count(slack_.options().bot_user_id) > 0;
      },
      kWait))
      << slack_adapter_->ReadLog();

  // The visitor's next message (posted by Chatlio's bot) reaches
  // TeamSpirit.
  ASSERT_TRUE(chatlio_->VisitorSays("v1", "I need 3 boxes").ok());
  ASSERT_TRUE(WaitForSupportText("I need 3 boxes"))
      << slack_adapter_->ReadLog();

  // The agent's reply reaches the visitor (posted by the service user).
  ASSERT_TRUE(
      ts_->PostAsUser(kAgent, kSupportChat, "Yes, we ship to Canada").ok());
  ASSERT_TRUE(chatlio_->WaitForReceived("v1", 1, kWait))
      << slack_adapter_->ReadLog();
  EXPECT_THAT(chatlio_->Received("v1")[0], HasSubstr("Yes, we ship to Canada"));
  // A copy posted by the bridge's bot would not reach the visitor.
  auto bot_post = HttpClient().PostJson(
      absl::StrCat(slack_.api_base_url(), "/chat.postMessage"),
      absl::StrCat(R"({"channel": ")", *channel,
                   R"(", "text": "posted by the bot"})"),
      {{"Authorization", absl::StrCat("Bearer ", slack_.options().bot_token)}});
  ASSERT_TRUE(bot_post.ok());
  ASSERT_THAT(bot_post->body, HasSubstr("\"ok\":true"));
  ASSERT_TRUE(ts_->PostAsUser(kAgent, kSupportChat, "Anything else?").ok());
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

}  // namespace
}  // namespace imbridge::testing
