// End-to-end tests of imbridge-adapter-botsplash: the real router, the real
// TeamSpirit and Botsplash adapter binaries, the emulated TeamSpirit (where
// the agents work) and the emulated Botsplash (where the customer is).

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/http/http_client.h"
#include "emulators/botsplash/fake_botsplash.h"
#include "emulators/teamspirit/fake_teamspirit.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/adapter_process.h"
#include "tests/integration/router_process.h"

namespace imbridge::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;
using Bsp = emulators::FakeBotsplash;
using Ts = fakes::FakeTeamSpirit;

constexpr char kToken[] = "botsplash-integration-token-0123";
constexpr char kTsApiKey[] = "ts-bot-api-key-0123";
constexpr char kTsSecret[] = "ts-webhook-secret-1";
constexpr char kReplySecret[] = "reply-secret-0123456789";
constexpr char kChat[] = "c-42";
constexpr char kVisitor[] = "crm-1";

class BotsplashIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Ts::Options options;
    options.webhook_initial_backoff = absl::Milliseconds(100);
    options.webhook_max_backoff = absl::Seconds(1);
    ts_ = std::make_unique<Ts>(options);
    ts_->AddBot("u-bot", "Bridge", kTsApiKey);
    ts_->AddUser("u-7", "Ivan Petrov");
    ts_->AddUser("u-8", "Olga Sidorova");
    ts_->AddChat(kChat, "Customers", {"u-bot", "u-7", "u-8"});
    ts_->AddChat("c-other", "Team", {"u-bot", "u-7"});
    ASSERT_TRUE(ts_->Start().ok());
    ASSERT_TRUE(bsp_.Start().ok());
    Bsp::Visitor v;
    v.client_visitor_id = kVisitor;
    v.first_name = "Jane";
    v.last_name = "Doe";
    v.phone_number = "3334445555";
    bsp_.AddVisitor(v);
  }

  void TearDown() override {
    if (HasFailure()) {
      if (botsplash_ != nullptr) {
        std::cerr << "botsplash adapter log:\n" << botsplash_->ReadLog();
      }
      if (router_ != nullptr)
        std::cerr << "router log:\n" << router_->ReadLog();
    }
  }

  // The default link: the TeamSpirit chat with the customer crm-1.
  static std::string CustomerLink() {
    return absl::StrCat(
        "  - name: jane\n    members:\n"
        "      - {platform: teamspirit, account: corp, chat_id: ",
        kChat, "}\n      - {platform: botsplash, account: sales, chat_id: ",
        "'visitor:", kVisitor, "'}\n");
  }

  void StartRouter(const std::string& links) {
    router_ = std::make_unique<RouterProcess>(absl::StrCat(
        "adapters:\n  - {name: tests, token: ", kToken, "}\n", "links:\n",
        links,
        "store: {durability: normal}\nlog_level: debug\n"
        "dispatch: {initial_backoff_ms: 100, max_backoff_ms: 1000}\n"));
    ASSERT_TRUE(router_->Start().ok());
  }

  std::string BotsplashConfig(const std::string& extra = "") {
    return absl::StrCat(
        "router: {address: \"", router_->address(), "\", token: ", kToken,
        "}\nlog_level: debug\nstate_dir: ", state_dir_,
        "\naccounts:\n  - name: sales\n    base_url: ", bsp_.base_url(),
        "\n    app_id: ", bsp_.options().app_id,
        "\n    api_key: ", bsp_.options().api_key,
        "\n    listener_id: lst-1\n    requests_per_second: 50\n"
        "    max_attempts: 3\n"
        "    paths: {direct_message: /message/visitor, update_visitor: "
        "'/visitor/{idType}/{idValue}'}\n"
        "    carrier_limit_bytes: 1000\n"
        "    replies: {secret: ",
        kReplySecret, "}\n", extra);
  }

  void StartAdapters(const std::string& extra = "",
                     const std::string& links = CustomerLink()) {
    StartRouter(links);
    teamspirit_ = std::make_unique<AdapterProcess>(
        "adapters/teamspirit/imbridge-adapter-teamspirit",
        absl::StrCat(
            "router: {address: \"", router_->address(), "\", token: ", kToken,
            "}\naccount: corp\napi_base_url: ", ts_->api_base_url(),
            "\napi_key: ", kTsApiKey, "\nwebhook_secret: ", kTsSecret, "\n"));
    absl::Status s = teamspirit_->Start();
    ASSERT_TRUE(s.ok()) << s;
    ts_->SetOutgoingWebhook(
        absl::StrCat(teamspirit_->base_url(), "/teamspirit/events"), kTsSecret);
    botsplash_ = std::make_unique<AdapterProcess>(
        "adapters/botsplash/imbridge-adapter-botsplash",
        BotsplashConfig(extra));
    s = botsplash_->Start();
    ASSERT_TRUE(s.ok()) << s;
    bsp_.SetReplyWebhook(ReplyUrl(), "X-Botsplash-Secret", kReplySecret);
    ASSERT_TRUE(Ts::WaitUntil([&] {
      return ts_->BotPresence("u-bot").status == "online";
    })) << teamspirit_->ReadLog();
    WaitReady();
  }

  std::string ReplyUrl() const {
    return absl::StrCat(botsplash_->base_url(), "/botsplash/sales/replies");
  }

  void WaitReady() {
    HttpClient http;
    ASSERT_TRUE(Bsp::WaitFor([&] {
      auto r = http.Get(botsplash_->base_url() + "/readyz");
      return r.ok() && r->status == 200;
    })) << "botsplash adapter not ready";
  }

  // The bridge's posts in the TeamSpirit chat (the bot's), in `thread`
  // only when it is not empty.
  std::vector<Ts::Message> BridgePosts(const std::string& thread = "") const {
    std::vector<Ts::Message> out;
    for (const Ts::Message& m : ts_->Messages(kChat)) {
      if (m.user_id == "u-bot" && (thread.empty() || m.thread_id == thread)) {
        out.push_back(m);
      }
    }
    return out;
  }

  // POSTs `body` to the reply webhook with `headers`; the HTTP status.
  int PostReply(const std::string& body, HttpHeaderList headers) {
    HttpClient http;
    HttpClientRequest r;
    r.method = "POST";
    r.url = ReplyUrl();
    r.body = body;
    r.timeout = absl::Seconds(30);
    headers.emplace_back("Content-Type", "application/json");
    r.headers = std::move(headers);
    auto answer = http.Send(r);
    return answer.ok() ? answer->status : -1;
  }

  std::unique_ptr<Ts> ts_;
  Bsp bsp_;
  const std::string state_dir_ = MakeTempDir("imbridge-bsp-state");
  std::unique_ptr<RouterProcess> router_;
  std::unique_ptr<AdapterProcess> teamspirit_;
  std::unique_ptr<AdapterProcess> botsplash_;
};

TEST_F(BotsplashIntegrationTest, MessageAndFilesReachTheCustomer) {
  StartAdapters();
  ASSERT_TRUE(ts_->PostAsUser("u-7", kChat, "Your order has shipped").ok());
  ASSERT_TRUE(
      Bsp::WaitFor([&] { return bsp_.ReceivedBy(kVisitor).size() == 1; },
                   absl::Seconds(60)));
  Bsp::Received text = bsp_.ReceivedBy(kVisitor)[0];
  EXPECT_EQ(text.text, "Your order has shipped");
  EXPECT_EQ(text.phone_number, "3334445555");

  // A small file is uploaded and sent with its media key; one over the
  // carrier limit (1000 bytes here) becomes a link without public_url: a
  // notice.
  std::string small(600, 'p');
  Ts::PostOptions with_file;
  with_file.file_ids = {
      ts_->UploadAsUser("u-7", "label.png", "image/png", small)};
  ASSERT_TRUE(ts_->PostAsUser("u-7", kChat, "", with_file).ok());
  ASSERT_TRUE(
      Bsp::WaitFor([&] { return bsp_.ReceivedBy(kVisitor).size() == 2; },
                   absl::Seconds(60)));
  Bsp::Received file = bsp_.ReceivedBy(kVisitor)[1];
  ASSERT_FALSE(file.media_key.empty());
  EXPECT_EQ(file.media_name, "label.png");
  EXPECT_EQ(bsp_.GetMedia(file.media_key)->bytes, small);

  Ts::PostOptions big;
  big.file_ids = {ts_->UploadAsUser("u-7", "manual.pdf", "application/pdf",
                                    std::string(5000, 'm'))};
  ASSERT_TRUE(ts_->PostAsUser("u-7", kChat, "The manual", big).ok());
  ASSERT_TRUE(
      Bsp::WaitFor([&] { return bsp_.ReceivedBy(kVisitor).size() == 4; },
                   absl::Seconds(60)));
  EXPECT_EQ(bsp_.ReceivedBy(kVisitor)[2].text, "The manual");
  EXPECT_THAT(bsp_.ReceivedBy(kVisitor)[3].text,
              HasSubstr("📎 manual.pdf (5 KB): too large for a text message"));
  EXPECT_TRUE(bsp_.ReceivedBy(kVisitor)[3].media_key.empty());
}

TEST_F(BotsplashIntegrationTest,
       FileOverTheCarrierLimitIsALinkServedByTheAdapter) {
  // public_url: the adapter's own address (as a reverse proxy would expose
  // it); the port is the adapter's, known after it started, so the link is
  // checked by its path.
  StartAdapters("    public_url: 'https://bridge.example'\n");
  std::string content(3000, 'z');
  Ts::PostOptions big;
  big.file_ids = {
      ts_->UploadAsUser("u-7", "big.bin", "application/octet-stream", content)};
  ASSERT_TRUE(ts_->PostAsUser("u-7", kChat, "", big).ok());
  ASSERT_TRUE(
      Bsp::WaitFor([&] { return bsp_.ReceivedBy(kVisitor).size() == 1; },
                   absl::Seconds(60)));
  std::string text = bsp_.ReceivedBy(kVisitor)[0].text;
  const std::string prefix = "https://bridge.example/botsplash/sales/files/";
  size_t at = text.find(prefix);
  ASSERT_NE(at, std::string::npos) << text;
  std::string path =
      text.substr(at + std::string("https://bridge.example").size());
  HttpClient http;
  auto r = http.Get(botsplash_->base_url() + path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, content);
  // A link with a forged signature serves nothing.
  std::string forged = path.substr(0, path.size() - 4) + "0000";
  r = http.Get(botsplash_->base_url() + forged);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
}

TEST_F(BotsplashIntegrationTest, CustomerReplyComesBackInTheChat) {
  StartAdapters();
  absl::StatusOr<int> status =
      bsp_.ReplyAsCustomer(kVisitor, "Thanks, when will it arrive?");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 200);
  ASSERT_TRUE(Ts::WaitUntil([&] { return BridgePosts().size() == 1; },
                            absl::Seconds(60)));
  Ts::Message m = BridgePosts()[0];
  EXPECT_THAT(m.text, HasSubstr("Thanks, when will it arrive?"));
  std::string shown = m.author.has_value() ? m.author->name : m.text;
  EXPECT_THAT(shown, HasSubstr("Jane Doe"));

  // A photo from the customer comes as a file.
  std::string url =
      bsp_.AddCustomerMedia("photo.jpg", "image/jpeg", "JPEGDATA");
  status = bsp_.ReplyAsCustomer(kVisitor, "", url);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(*status, 200);
  ASSERT_TRUE(Ts::WaitUntil([&] { return BridgePosts().size() >= 2; },
                            absl::Seconds(60)));
  ASSERT_THAT(BridgePosts()[1].file_ids, SizeIs(1));
  EXPECT_EQ(ts_->GetFile(BridgePosts()[1].file_ids[0])->content, "JPEGDATA");
}

TEST_F(BotsplashIntegrationTest, TooManyRequestsThenSuccess) {
  StartAdapters();
  bsp_.FailNext("/message", 2, 429, "Too many requests", 1);
  ASSERT_TRUE(ts_->PostAsUser("u-7", kChat, "after the rate limit").ok());
  ASSERT_TRUE(
      Bsp::WaitFor([&] { return bsp_.ReceivedBy(kVisitor).size() == 1; },
                   absl::Seconds(60)));
  EXPECT_EQ(bsp_.ReceivedBy(kVisitor)[0].text, "after the rate limit");
  std::vector<Bsp::Call> calls = bsp_.Calls("/message");
  ASSERT_THAT(calls, SizeIs(3));
  EXPECT_EQ(calls[0].status, 429);
  EXPECT_EQ(calls[1].status, 429);
  EXPECT_EQ(calls[2].status, 200);
}

TEST_F(BotsplashIntegrationTest, PermanentErrorIsNotRetried) {
  StartAdapters();
  bsp_.FailNext("/message", 1, 400, "phone number is not textable");
  ASSERT_TRUE(ts_->PostAsUser("u-7", kChat, "lost").ok());
  ASSERT_TRUE(router_->WaitForMetric("imbridge_router_deliveries_total",
                                     {{"result", "dead_letter"}}, 1,
                                     absl::Seconds(60)))
      << router_->ReadLog();
  EXPECT_THAT(bsp_.Calls("/message"), SizeIs(1));
  EXPECT_THAT(router_->ReadLog(), HasSubstr("phone number is not textable"));
}

TEST_F(BotsplashIntegrationTest, EditsAndDeletesAreSkippedWithALogNote) {
  StartAdapters();
  absl::StatusOr<std::string> id = ts_->PostAsUser("u-7", kChat, "first");
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(
      Bsp::WaitFor([&] { return bsp_.ReceivedBy(kVisitor).size() == 1; },
                   absl::Seconds(60)));
  ASSERT_TRUE(ts_->EditAsUser("u-7", *id, "first, edited").ok());
  ASSERT_TRUE(ts_->DeleteAsUser("u-7", *id).ok());
  ASSERT_TRUE(ts_->PostAsUser("u-7", kChat, "second").ok());
  ASSERT_TRUE(
      Bsp::WaitFor([&] { return bsp_.ReceivedBy(kVisitor).size() == 2; },
                   absl::Seconds(60)));
  // The customer got only the two messages; the router said why.
  EXPECT_EQ(bsp_.ReceivedBy(kVisitor)[1].text, "second");
  ASSERT_TRUE(Bsp::WaitFor([&] {
    std::string log = router_->ReadLog();
    return absl::StrContains(log, "adapter cannot do edits") &&
           absl::StrContains(log, "adapter cannot do deletes");
  }));
  EXPECT_THAT(botsplash_->ReadLog(),
              HasSubstr("Botsplash cannot edit or delete a text message"));
  EXPECT_THAT(bsp_.ReceivedBy(kVisitor), SizeIs(2));
}

// Until it has attached, the adapter cannot tell a customer linked in the
// router's config from a stranger: it answers 503, so that the reply is sent
// again, instead of 200 and a dropped reply.
TEST_F(BotsplashIntegrationTest, AReplyBeforeTheFirstAttachIsRefusedRetryably) {
  StartRouter(CustomerLink());
  const std::string config = BotsplashConfig();
  router_->Kill();
  botsplash_ = std::make_unique<AdapterProcess>(
      "adapters/botsplash/imbridge-adapter-botsplash", config);
  absl::Status s = botsplash_->Start();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(PostReply(R"({"id": "m-1", "text": "early",
                          "visitor": {"clientVisitorId": "crm-1"}})",
                      {{"X-Botsplash-Secret", kReplySecret}}),
            503);
}

TEST_F(BotsplashIntegrationTest, ForgedAndBadRepliesAreRefused) {
  StartAdapters();
  const std::string good =
      R"({"id": "m-1", "text": "forged", "visitor": {"clientVisitorId": "crm-1"}})";
  EXPECT_EQ(PostReply(good, {}), 401);
  EXPECT_EQ(PostReply(good, {{"X-Botsplash-Secret", "wrong-secret"}}), 401);
  EXPECT_EQ(PostReply(good, {{"X-Other", kReplySecret}}), 401);
  const HttpHeaderList signed_ = {{"X-Botsplash-Secret", kReplySecret}};
  EXPECT_EQ(PostReply("{not json", signed_), 400);
  EXPECT_EQ(PostReply(R"({"id": "m-2", "text": "x"})", signed_), 400);
  EXPECT_EQ(PostReply(std::string(1100000, ' '), signed_), 413);
  // An unknown visitor: 200, counted, dropped.
  EXPECT_EQ(PostReply(R"({"id": "m-3", "text": "who?",
                          "visitor": {"clientVisitorId": "stranger"}})",
                      signed_),
            200);
  HttpClient http;
  auto metrics = http.Get(botsplash_->base_url() + "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body,
              HasSubstr("imbridge_botsplash_unknown_visitor_replies_total{"
                        "account=\"sales\"} 1"));
  // The one good reply comes through, and only it.
  EXPECT_EQ(PostReply(R"({"id": "m-4", "text": "real",
                          "visitor": {"clientVisitorId": "crm-1"}})",
                      signed_),
            200);
  ASSERT_TRUE(
      Ts::WaitUntil([&] { return !BridgePosts().empty(); }, absl::Seconds(60)));
  // The refused ones were answered before it was sent: nothing else came.
  ASSERT_THAT(BridgePosts(), SizeIs(1));
  EXPECT_THAT(BridgePosts()[0].text, HasSubstr("real"));
}

TEST_F(BotsplashIntegrationTest, MissingFieldIsNamedInTheAnswer) {
  StartAdapters();
  HttpClient http;
  HttpClientRequest r;
  r.method = "POST";
  r.url = ReplyUrl();
  r.body = R"({"text": "no id", "visitor": {"clientVisitorId": "crm-1"}})";
  r.headers = {{"Content-Type", "application/json"},
               {"X-Botsplash-Secret", kReplySecret}};
  auto answer = http.Send(r);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->status, 400);
  EXPECT_THAT(answer->body, HasSubstr("message_id (id) is missing"));
}

TEST_F(BotsplashIntegrationTest, AgentAttributionAssignsTheVisitor) {
  StartAdapters(
      "    agents:\n      - {user_id: u-7, agent_client_user_id: agent-ivan}\n"
      "      - {user_id: u-8, agent_client_user_id: agent-olga}\n");
  ASSERT_TRUE(ts_->PostAsUser("u-7", kChat, "Ivan here").ok());
  ASSERT_TRUE(ts_->PostAsUser("u-7", kChat, "Ivan again").ok());
  ASSERT_TRUE(ts_->PostAsUser("u-8", kChat, "Olga here").ok());
  ASSERT_TRUE(
      Bsp::WaitFor([&] { return bsp_.ReceivedBy(kVisitor).size() == 3; },
                   absl::Seconds(60)));
  std::vector<Bsp::Received> got = bsp_.ReceivedBy(kVisitor);
  EXPECT_EQ(got[0].agent_client_user_id, "agent-ivan");
  EXPECT_EQ(got[1].agent_client_user_id, "agent-ivan");
  EXPECT_EQ(got[2].agent_client_user_id, "agent-olga");
  // One update per change of agent.
  EXPECT_THAT(bsp_.Calls("/visitor/clientVisitorId/crm-1"), SizeIs(2));
  EXPECT_EQ(bsp_.GetVisitor(kVisitor)->agent_client_user_id, "agent-olga");
}

// Botsplash takes no idempotency key, so a send cut by a crash is made again
// (at least once): the customer may get that one text twice, never none.
TEST_F(BotsplashIntegrationTest, KilledDuringASendTheTextIsSentAgainNotLost) {
  StartAdapters();
  // Botsplash sends the text, then the adapter dies before the answer.
  bsp_.HoldNextAnswer("/message");
  ASSERT_TRUE(ts_->PostAsUser("u-7", kChat, "sent during the crash").ok());
  ASSERT_TRUE(Bsp::WaitFor([&] { return bsp_.holding(); }, absl::Seconds(60)));
  ASSERT_THAT(bsp_.ReceivedBy(kVisitor), SizeIs(1));
  botsplash_->Kill();
  bsp_.ReleaseHeld();
  // The same state: the journal has the send's intent without its answer.
  botsplash_ = std::make_unique<AdapterProcess>(
      "adapters/botsplash/imbridge-adapter-botsplash", BotsplashConfig());
  absl::Status s = botsplash_->Start();
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_TRUE(ts_->PostAsUser("u-7", kChat, "after the restart").ok());
  ASSERT_TRUE(Bsp::WaitFor(
      [&] {
        std::vector<Bsp::Received> got = bsp_.ReceivedBy(kVisitor);
        return !got.empty() && got.back().text == "after the restart";
      },
      absl::Seconds(90)));
  // The router's retry of the cut send was made again, in order.
  std::vector<Bsp::Received> got = bsp_.ReceivedBy(kVisitor);
  ASSERT_THAT(got, SizeIs(3));
  EXPECT_EQ(got[0].text, "sent during the crash");
  EXPECT_EQ(got[1].text, "sent during the crash");
  EXPECT_EQ(got[2].text, "after the restart");
}

TEST_F(BotsplashIntegrationTest, StartAConversationFromTeamSpirit) {
  // The chat is linked to another team chat only: the customer is linked by
  // the command.
  StartAdapters("",
                absl::StrCat("  - name: team\n    members:\n"
                             "      - {platform: teamspirit, account: corp, "
                             "chat_id: ",
                             kChat,
                             "}\n      - {platform: teamspirit, account: corp, "
                             "chat_id: c-other}\n"));
  absl::StatusOr<std::string> command = ts_->PostAsUser(
      "u-7", kChat, "!bridge botsplash start +1(555)123-4567 Ann Lee");
  ASSERT_TRUE(command.ok());
  const std::string visitor = "imb-15551234567";
  ASSERT_TRUE(Bsp::WaitFor([&] { return bsp_.GetVisitor(visitor).has_value(); },
                           absl::Seconds(60)));
  Bsp::Visitor v = *bsp_.GetVisitor(visitor);
  EXPECT_EQ(v.listener_id, "lst-1");
  EXPECT_EQ(v.first_name, "Ann");
  EXPECT_EQ(v.last_name, "Lee");
  EXPECT_EQ(v.phone_number, "+15551234567");

  // The answer starts a thread under the command.
  ASSERT_TRUE(Ts::WaitUntil([&] { return !BridgePosts(*command).empty(); },
                            absl::Seconds(60)));
  EXPECT_THAT(BridgePosts(*command)[0].text, HasSubstr("Texting Ann Lee"));

  // What the agent writes in the thread reaches the customer.
  Ts::PostOptions in_thread;
  in_thread.thread_id = *command;
  ASSERT_TRUE(
      ts_->PostAsUser("u-7", kChat, "Hi Ann, about your order", in_thread)
          .ok());
  ASSERT_TRUE(Bsp::WaitFor([&] { return bsp_.ReceivedBy(visitor).size() == 1; },
                           absl::Seconds(60)));
  EXPECT_EQ(bsp_.ReceivedBy(visitor)[0].text, "Hi Ann, about your order");
  EXPECT_EQ(bsp_.ReceivedBy(visitor)[0].phone_number, "+15551234567");

  // The customer's reply comes back into the thread.
  absl::StatusOr<int> status = bsp_.ReplyAsCustomer(visitor, "Thanks!");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(*status, 200);
  ASSERT_TRUE(Ts::WaitUntil([&] { return BridgePosts(*command).size() == 2; },
                            absl::Seconds(60)));
  EXPECT_THAT(BridgePosts(*command)[1].text, HasSubstr("Thanks!"));
  // The customer's reply is only in the thread (the whole chat's link gets
  // what the team writes there, as for any message of the chat).
  for (const Ts::Message& m : ts_->Messages("c-other")) {
    EXPECT_THAT(m.text, ::testing::Not(HasSubstr("Thanks!")));
  }

  // Bad words get the reason, not a customer.
  ASSERT_TRUE(
      ts_->PostAsUser("u-7", kChat, "!bridge botsplash start call-me Bob")
          .ok());
  ASSERT_TRUE(ts_->PostAsUser("u-7", kChat, "!bridge botsplash").ok());
  ASSERT_TRUE(Ts::WaitUntil(
      [&] {
        bool reason = false, usage = false;
        for (const Ts::Message& m : BridgePosts()) {
          reason |=
              absl::StrContains(m.text, "'call-me' is not a phone number");
          usage |= absl::StrContains(m.text, "Usage: !bridge botsplash start");
        }
        return reason && usage;
      },
      absl::Seconds(60)));
  EXPECT_THAT(bsp_.Visitors(), SizeIs(2));  // crm-1 and Ann.
}

}  // namespace
}  // namespace imbridge::testing
