// End-to-end tests of imbridge-adapter-chatlio's webhooks: the real router
// and adapter binaries; Chatlio's webhooks POSTed as Chatlio sends them; a
// TestAdapter on platform "beta" as the support chat the notices channel is
// linked with, and one on platform "slack" as the visitors' Slack channels
// for the runtime links (the whole stack with the real Slack and TeamSpirit
// adapters is chatlio_visitor_test).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/http/http_client.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "imbridge/v1/admin.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/integration/adapter_process.h"
#include "tests/integration/router_process.h"
#include "tests/integration/test_adapter.h"

namespace imbridge::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kToken[] = "chatlio-integration-token-0123456789";
constexpr char kSecret[] = "chatlio-path-secret-4f9a2c";
constexpr char kBinary[] = "adapters/chatlio/imbridge-adapter-chatlio";
constexpr char kAdminToken[] = "chatlio-integration-admin-token-01";
constexpr absl::Duration kWait = absl::Seconds(30);

std::string RouterConfig() {
  return absl::StrCat("adapters:\n  - {name: tests, token: ", kToken, "}\n",
                      "admin_token: ", kAdminToken, "\n", R"(links:
  - name: web-support
    members:
      - {platform: chatlio, account: site, chat_id: notices, direction: in}
      - {platform: beta, account: b, chat_id: support}
store: {durability: normal}
dispatch: {initial_backoff_ms: 100, max_backoff_ms: 2000}
)");
}

// With `links`, visitors' channels of the Slack account "work" are linked
// with the support chat {beta, b, support}.
std::string AdapterConfig(const std::string& router,
                          const std::string& state_dir, bool links = false) {
  return absl::StrCat(
      "router: {address: \"", router, "\", token: ", kToken,
      "}\nlog_level: debug\nstate_dir: \"", state_dir,
      "\"\naccounts:\n  - name: site\n    webhook_secret: ", kSecret,
      "\n    slack_workspace_url: https://acme.slack.com\n",
      links ? "    slack_account: work\n    support: {platform: beta, "
              "account: b, chat_id: support}\n"
            : "");
}

nlohmann::json Visitor() {
  return {{"email", ""},
          {"UUID", "2b959179-d06f-4fec-9c6e-1c98468d1d63"},
          {"name", "Ann Lee"},
          {"handle", "costa-mesa-california-us-133"},
          {"currentPage", "http://chatlio.com/docs"},
          {"referrerURL", ""},
          {"location", "Costa Mesa, California, United States"}};
}

std::string NewConversation(const std::string& uuid) {
  return nlohmann::json{{"visitor", Visitor()},
                        {"message", "Hi! I love your webhooks!"},
                        {"conversationUUID", uuid},
                        {"channelId", "C03FVS2UR"},
                        {"slackChannelName", "costa-mesa-california-us-133"},
                        {"slackChannelId", "C03FVS2UR"}}
      .dump();
}

std::string Transcript(const std::string& uuid, const std::string& html) {
  return nlohmann::json{
      {"agentName", "Some One"},
      {"channelId", "C03FVS2UR"},
      {"channelName", "costa-mesa-california-us-133"},
      {"conversationUUID", uuid},
      {"htmlBody", html},
      {"textBody", "Ann: Hi! I love your webhooks!\nSome One: Thanks!"},
      {"messages",
       nlohmann::json::array({{{"text", "Hi! I love your webhooks!"},
                               {"userId", ""},
                               {"isVisitorMsg", true}},
                              {{"text", "Thanks!"},
                               {"userId", "U0N2GKA2G"},
                               {"isVisitorMsg", false}}})},
      {"visitorName", "Ann Lee"},
      {"visitor", Visitor()}}
      .dump();
}

class ChatlioIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_ = std::make_unique<RouterProcess>(RouterConfig());
    ASSERT_TRUE(router_->Start().ok()) << router_->ReadLog();
    support_ =
        std::make_unique<TestAdapter>("beta", "b", router_->address(), kToken);
    support_->Start();
    ASSERT_TRUE(support_->WaitAttached(kWait));
    adapter_ = std::make_unique<AdapterProcess>(
        kBinary,
        AdapterConfig(router_->address(), MakeTempDir("chatlio-state")));
    StartAdapter();
  }

  void StartAdapter() {
    absl::Status started = adapter_->Start();
    ASSERT_TRUE(started.ok()) << started << "\n" << adapter_->ReadLog();
    absl::Time deadline = absl::Now() + kWait;
    while (true) {
      auto r = http_.Get(absl::StrCat(adapter_->base_url(), "/readyz"));
      if (r.ok() && r->status == 200) break;
      ASSERT_LT(absl::Now(), deadline) << adapter_->ReadLog();
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  // POSTs `body` to the webhook path after /chatlio/; the HTTP status (0
  // when the request failed).
  int Post(const std::string& path, const std::string& body) {
    auto r = http_.PostJson(
        absl::StrCat(adapter_->base_url(), "/chatlio/", path), body);
    return r.ok() ? r->status : 0;
  }
  std::string Hook(const std::string& type = "") {
    return absl::StrCat("site/", kSecret, type.empty() ? "" : "/", type);
  }

  std::vector<std::string> Texts() {
    std::vector<std::string> out;
    for (const auto& d : support_->deliveries()) {
      out.push_back(d.event().posted().text().text());
    }
    return out;
  }

  // The router's runtime link `name`, or std::nullopt.
  std::optional<v1::Link> RuntimeLink(const std::string& name) {
    for (const v1::Link& link : RuntimeLinkDefinitions()) {
      if (link.name() == name) return link;
    }
    return std::nullopt;
  }
  // Waits until runtime link `name` exists with its support member's thread
  // resolved (the Chatlio adapter creates it at once; the router narrows
  // the member to the thread once the notice's copy is made, or leaves it
  // the whole chat if the copy cannot be made); std::nullopt on timeout.
  std::optional<v1::Link> WaitForRuntimeLink(const std::string& name) {
    absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      std::optional<v1::Link> link = RuntimeLink(name);
      if (link.has_value() && link->members_size() > 1 &&
          link->members(1).pending_thread_root() == 0) {
        return link;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return std::nullopt;
  }

  // An agent's message in the support chat's thread rooted at `root`; the
  // router's answer.
  v1::PublishAck::Outcome PostInThread(const std::string& root,
                                       const std::string& id,
                                       const std::string& text) {
    v1::Event e;
    e.set_key(absl::StrCat("beta:b:", id));
    e.mutable_channel()->set_chat_id("support");
    e.mutable_channel()->set_thread_id(root);
    e.set_occurred_at_ms(absl::ToUnixMillis(absl::Now()));
    v1::MessagePosted* p = e.mutable_posted();
    p->set_message_id(id);
    p->set_thread_root_id(root);
    p->mutable_sender()->set_id("agent");
    p->mutable_sender()->set_display_name("Agent");
    p->mutable_text()->set_text(text);
    return support_->Publish(e).outcome();
  }

  // The router's runtime links.
  std::vector<v1::Link> RuntimeLinkDefinitions() {
    auto admin = v1::Admin::NewStub(grpc::CreateChannel(
        router_->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kAdminToken));
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(20));
    v1::ListLinksResponse resp;
    grpc::Status s = admin->ListLinks(&ctx, v1::ListLinksRequest(), &resp);
    std::vector<v1::Link> out;
    if (!s.ok()) {
      ADD_FAILURE() << "ListLinks: " << s.error_message();
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

  // Restarts the adapter with visitor links configured.
  void UseLinks() {
    adapter_->Terminate();
    adapter_ = std::make_unique<AdapterProcess>(
        kBinary, AdapterConfig(router_->address(), MakeTempDir("chatlio-links"),
                               /*links=*/true));
    StartAdapter();
  }

  std::unique_ptr<RouterProcess> router_;
  std::unique_ptr<TestAdapter> support_;
  std::unique_ptr<AdapterProcess> adapter_;
  HttpClient http_;
};

TEST_F(ChatlioIntegrationTest, NoticesAndTheTranscriptReachTheSupportChat) {
  const std::string uuid = "e3d1800d-2d9e-4966-4500-9ff986cfa197";
  // Answered 200 only once the router has the notice.
  EXPECT_EQ(Post(Hook("new-conversation"), NewConversation(uuid)), 200);
  ASSERT_TRUE(support_->WaitForCalls(1, kWait));
  v1::Delivery notice = support_->deliveries()[0];
  EXPECT_EQ(notice.target().chat_id(), "support");
  EXPECT_EQ(notice.event().key(),
            absl::StrCat("chatlio:site:", uuid, ":new-conversation"));
  EXPECT_THAT(notice.event().posted().text().text(),
              HasSubstr("New website conversation with Ann Lee\n"
                        "Location: Costa Mesa, California, United States\n"));
  EXPECT_THAT(notice.event().posted().text().text(),
              HasSubstr("First message: Hi! I love your webhooks!"));
  EXPECT_EQ(notice.sender_name(), "Chatlio (chatlio)");

  const std::string html = "<html><body><p>Ann: Hi!</p></body></html>";
  EXPECT_EQ(Post(Hook(), Transcript(uuid, html)), 200);
  ASSERT_TRUE(support_->WaitForCalls(2, kWait));
  const v1::MessagePosted t = support_->deliveries()[1].event().posted();
  EXPECT_THAT(t.text().text(),
              HasSubstr("Transcript of the conversation with Ann Lee "
                        "(agent Some One)"));
  EXPECT_THAT(t.text().text(), HasSubstr("Some One: Thanks!"));
  ASSERT_THAT(t.attachments(), SizeIs(1));
  EXPECT_EQ(t.attachments(0).name(),
            "chatlio-transcript-costa-mesa-california-us-133.html");
  EXPECT_EQ(t.attachments(0).mime_type(), "text/html");
  auto blob = support_->client().GetBlob(t.attachments(0).blob_id(), 1 << 20);
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_EQ(*blob, html);
}

TEST_F(ChatlioIntegrationTest, ARetriedTranscriptIsPostedOnceAcrossRestarts) {
  const std::string uuid = "6a0c1d2e-0000-4000-8000-00000000abcd";
  const std::string body = Transcript(uuid, "<p>once</p>");
  EXPECT_EQ(Post(Hook("transcript"), body), 200);
  ASSERT_TRUE(support_->WaitForCalls(1, kWait));
  // Chatlio sends it again, to the same and to the typeless URL.
  EXPECT_EQ(Post(Hook("transcript"), body), 200);
  EXPECT_EQ(Post(Hook(), body), 200);
  // And again after the adapter was killed and started (its memory gone):
  // the router's deduplication is durable.
  adapter_->Kill();
  StartAdapter();
  EXPECT_EQ(Post(Hook(), body), 200);
  // A later webhook of another conversation goes through, and the
  // support chat got the transcript only once before it.
  EXPECT_EQ(Post(Hook(), NewConversation("another-conversation")), 200);
  ASSERT_TRUE(support_->WaitForCalls(2, kWait));
  std::vector<std::string> texts = Texts();
  ASSERT_THAT(texts, SizeIs(2));
  EXPECT_THAT(texts[0], HasSubstr("Transcript of the conversation"));
  EXPECT_THAT(texts[1], HasSubstr("New website conversation"));
}

TEST_F(ChatlioIntegrationTest, BadRequestsChangeNothing) {
  const std::string uuid = "0f0f0f0f-0000-4000-8000-000000000001";
  // A wrong secret, an unknown account, a path without a secret: 404, and
  // the secret tried is not logged.
  EXPECT_EQ(Post("site/wrong-secret-0123456789abc", NewConversation(uuid)),
            404);
  EXPECT_EQ(Post(absl::StrCat("other/", kSecret), NewConversation(uuid)), 404);
  EXPECT_EQ(Post("site", NewConversation(uuid)), 404);
  EXPECT_EQ(Post(Hook("no-such-type"), NewConversation(uuid)), 404);
  // Malformed JSON: 400. Over 1 MiB: 413.
  EXPECT_EQ(Post(Hook(), "{\"conversationUUID\": "), 400);
  EXPECT_EQ(Post(Hook(), Transcript(uuid, std::string(2 << 20, 'x'))), 413);
  // Unknown shapes: 200, counted, nothing published.
  EXPECT_EQ(Post(Hook(), R"({"hello": "world"})"), 200);
  EXPECT_EQ(Post(Hook("transcript"), NewConversation(uuid)), 200);
  // A genuine one afterwards is the only message.
  EXPECT_EQ(Post(Hook(), NewConversation(uuid)), 200);
  ASSERT_TRUE(support_->WaitForCalls(1, kWait));
  absl::SleepFor(absl::Seconds(1));
  EXPECT_THAT(Texts(), SizeIs(1));

  auto metrics = http_.Get(adapter_->base_url() + "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body,
              HasSubstr("imbridge_chatlio_unknown_webhooks_total{account="
                        "\"site\"} 2"));
  EXPECT_THAT(metrics->body, HasSubstr("reason=\"bad_secret\"} 1"));
  std::string log = adapter_->ReadLog();
  EXPECT_THAT(log, HasSubstr("Chatlio webhook refused"));
  EXPECT_THAT(log, Not(HasSubstr("wrong-secret-0123456789abc")));
  EXPECT_THAT(log, Not(HasSubstr(kSecret)));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(ChatlioIntegrationTest, VisitorChannelsAreLinkedUntilTheTranscript) {
  UseLinks();
  TestAdapter slack("slack", "work", router_->address(), kToken);
  slack.Start();
  ASSERT_TRUE(slack.WaitAttached(kWait));
  const std::string uuid = "7b1e2f00-0000-4000-8000-00000000c0de";
  const std::string link = absl::StrCat("chatlio-", uuid);

  // The new conversation links the visitor's channel C03FVS2UR with the
  // thread of the notice's copy in the support chat, once the copy is made.
  EXPECT_EQ(Post(Hook("new-conversation"), NewConversation(uuid)), 200);
  ASSERT_TRUE(support_->WaitForCalls(1, kWait));
  EXPECT_THAT(Texts()[0], HasSubstr("Answer in this message's thread"));
  const std::string root =
      support_->CopyOf(absl::StrCat("new-conversation:", uuid));
  ASSERT_FALSE(root.empty());
  std::optional<v1::Link> created = WaitForRuntimeLink(link);
  ASSERT_TRUE(created.has_value()) << adapter_->ReadLog();
  ASSERT_EQ(created->members_size(), 3);
  EXPECT_EQ(created->members(1).chat_id(), "support");
  EXPECT_EQ(created->members(1).thread_id(), root);
  // Chatlio's bot posts the visitor's message in the channel: it reaches
  // the support chat in the notice's thread; the agent's answer in that
  // thread reaches the channel, a message outside the thread does not.
  slack.Post("C03FVS2UR", "the visitor asks");
  ASSERT_TRUE(support_->WaitForCalls(2, kWait));
  EXPECT_EQ(support_->deliveries()[1].event().posted().text().text(),
            "the visitor asks");
  EXPECT_EQ(support_->deliveries()[1].target().thread_id(), root);
  support_->Post("support", "to the whole chat");
  EXPECT_EQ(PostInThread(root, "a-1", "the agent answers"),
            v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(slack.WaitForCalls(1, kWait));
  EXPECT_EQ(slack.calls()[0].chat, "C03FVS2UR");
  EXPECT_EQ(slack.calls()[0].text, "the agent answers");

  // The transcript removes the link.
  EXPECT_EQ(Post(Hook("transcript"), Transcript(uuid, "<p>bye</p>")), 200);
  EXPECT_THAT(RuntimeLinks(), Not(::testing::Contains(link)));

  // A late or repeated new-conversation webhook does not link the ended
  // conversation again, also after a restart of the adapter.
  EXPECT_EQ(Post(Hook("new-conversation"), NewConversation(uuid)), 200);
  adapter_->Kill();
  StartAdapter();
  EXPECT_EQ(Post(Hook("new-conversation"), NewConversation(uuid)), 200);
  EXPECT_THAT(RuntimeLinks(), Not(::testing::Contains(link)));
  // And the channel's messages go nowhere now: the next message of the
  // support chat reaches no Slack channel, the one after a new visitor does.
  // (Routed nowhere: the thread is no link's member any more.)
  EXPECT_EQ(PostInThread(root, "a-2", "after the end"),
            v1::PublishAck::DROPPED);
  const std::string other = "7b1e2f00-0000-4000-8000-00000000beef";
  EXPECT_EQ(Post(Hook("new-conversation"), NewConversation(other)), 200);
  std::optional<v1::Link> other_link =
      WaitForRuntimeLink(absl::StrCat("chatlio-", other));
  ASSERT_TRUE(other_link.has_value()) << adapter_->ReadLog();
  const std::string other_root =
      support_->CopyOf(absl::StrCat("new-conversation:", other));
  EXPECT_EQ(other_link->members(1).thread_id(), other_root);
  EXPECT_EQ(PostInThread(other_root, "a-3", "to the new visitor"),
            v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(slack.WaitForCalls(2, kWait));
  EXPECT_EQ(slack.calls()[1].text, "to the new visitor");
  EXPECT_THAT(slack.calls(), SizeIs(2));
}

TEST_F(ChatlioIntegrationTest, ADeadLetteredNoticeLinksTheWholeSupportChat) {
  UseLinks();
  TestAdapter slack("slack", "work", router_->address(), kToken);
  slack.Start();
  ASSERT_TRUE(slack.WaitAttached(kWait));
  const std::string uuid = "7b1e2f00-0000-4000-8000-0000000dead0";
  const std::string link = absl::StrCat("chatlio-", uuid);
  // The notice's delivery fails for good: there is no copy to thread under,
  // so the visitor is linked with the whole chat (by the adapter if the
  // router refused the thread, else by the router when the notice was
  // dead-lettered).
  support_->FailNext(1, /*retryable=*/false);
  EXPECT_EQ(Post(Hook("new-conversation"), NewConversation(uuid)), 200);
  std::optional<v1::Link> created = WaitForRuntimeLink(link);
  ASSERT_TRUE(created.has_value()) << adapter_->ReadLog();
  EXPECT_EQ(created->members(1).chat_id(), "support");
  EXPECT_EQ(created->members(1).thread_id(), "");
  support_->Post("support", "the agent answers");
  ASSERT_TRUE(slack.WaitForCalls(1, kWait));
  EXPECT_EQ(slack.calls()[0].text, "the agent answers");
}

TEST_F(ChatlioIntegrationTest, AnArchivedChannelEndsTheConversation) {
  UseLinks();
  TestAdapter slack("slack", "work", router_->address(), kToken);
  slack.Start();
  ASSERT_TRUE(slack.WaitAttached(kWait));
  const std::string uuid = "7b1e2f00-0000-4000-8000-0000000a5c1e";
  const std::string link = absl::StrCat("chatlio-", uuid);
  EXPECT_EQ(Post(Hook("new-conversation"), NewConversation(uuid)), 200);
  ASSERT_TRUE(WaitForRuntimeLink(link).has_value()) << adapter_->ReadLog();

  // The Slack adapter's message that the channel was archived.
  v1::Event archived;
  archived.mutable_channel()->set_chat_id("C03FVS2UR");
  archived.mutable_posted()->set_message_id(
      "channel_archive:1700000000.000100");
  archived.mutable_posted()->mutable_sender()->set_display_name("Some One");
  archived.mutable_posted()->mutable_text()->set_text("archived this channel");
  EXPECT_EQ(slack.Publish(archived).outcome(), v1::PublishAck::ACCEPTED);
  absl::Time deadline = absl::Now() + kWait;
  while (absl::c_linear_search(RuntimeLinks(), link)) {
    ASSERT_LT(absl::Now(), deadline) << adapter_->ReadLog();
    absl::SleepFor(absl::Milliseconds(50));
  }
  // Ended: a late new-conversation webhook does not link it again.
  EXPECT_EQ(Post(Hook("new-conversation"), NewConversation(uuid)), 200);
  EXPECT_THAT(RuntimeLinks(), Not(::testing::Contains(link)));
}

TEST_F(ChatlioIntegrationTest, DeliveriesToChatlioAreRefusedWithTheReason) {
  // A config that links the notices channel both ways: what the support
  // chat says is refused by the adapter, permanently, saying why.
  RouterProcess both(absl::StrCat(
      "adapters:\n  - {name: tests, token: ", kToken, "}\n", R"(links:
  - name: both-ways
    members:
      - {platform: chatlio, account: site, chat_id: notices}
      - {platform: beta, account: b, chat_id: support}
store: {durability: normal}
dispatch: {initial_backoff_ms: 100, max_backoff_ms: 2000}
)"));
  ASSERT_TRUE(both.Start().ok());
  TestAdapter support("beta", "b", both.address(), kToken);
  support.Start();
  ASSERT_TRUE(support.WaitAttached(kWait));
  AdapterProcess adapter(
      kBinary, AdapterConfig(both.address(), MakeTempDir("chatlio-both")));
  ASSERT_TRUE(adapter.Start().ok()) << adapter.ReadLog();
  ASSERT_TRUE(both.WaitForMetric("imbridge_router_attached_adapters", {}, 2));
  support.Post("support", "hello visitors");
  ASSERT_TRUE(both.WaitForMetric("imbridge_router_dead_letters", {}, 1))
      << both.ReadLog();
}

}  // namespace
}  // namespace imbridge::testing
