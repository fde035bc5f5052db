// End-to-end tests of imbridge-adapter-teamspirit: the real router and the
// real adapter binary against the fake TeamSpirit server, with an in-test
// messenger ("slack", a TestAdapter) on the other side of the link.

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "adapters/teamspirit/signature.h"
#include "common/http/http_client.h"
#include "emulators/teamspirit/fake_teamspirit.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/adapter_process.h"
#include "tests/integration/router_process.h"
#include "tests/integration/test_adapter.h"

namespace imbridge::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using Fake = fakes::FakeTeamSpirit;

constexpr char kToken[] = "teamspirit-integration-token-0123";
constexpr char kApiKey[] = "ts-bot-api-key-0123";
constexpr char kSecret[] = "ts-webhook-secret-1";
constexpr char kBinary[] = "adapters/teamspirit/imbridge-adapter-teamspirit";
constexpr char kChat[] = "c-42";
constexpr char kExternalId[] = "imb-slack-acme-user-slack";

// TeamSpirit's chat of link `i` (1, 2, ...): c-42, c-43, ...
std::string TsChat(int i) { return absl::StrCat("c-", 41 + i); }

// `chats` links, each of TsChat(i) with slack's C<i>.
std::string RouterConfig(int chats = 1) {
  std::string links;
  for (int i = 1; i <= chats; ++i) {
    absl::StrAppend(
        &links, "  - name: support", i == 1 ? "" : absl::StrCat(i),
        "\n    members:\n",
        "      - {platform: teamspirit, account: corp, chat_id: ", TsChat(i),
        "}\n", "      - {platform: slack, account: acme, chat_id: C", i, "}\n");
  }
  return absl::StrCat("adapters:\n  - {name: tests, token: ", kToken, "}\n",
                      "links:\n", links, R"(store: {durability: normal}
dispatch: {initial_backoff_ms: 100, max_backoff_ms: 1000}
)");
}

// Messages of `chat` whose text is `text`.
std::vector<Fake::Message> WithText(const Fake& fake, const std::string& chat,
                                    const std::string& text) {
  std::vector<Fake::Message> out;
  for (const Fake::Message& m : fake.Messages(chat, true)) {
    if (m.text == text) out.push_back(m);
  }
  return out;
}

class TeamSpiritIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Fake::Options options;
    options.webhook_initial_backoff = absl::Milliseconds(100);
    options.webhook_max_backoff = absl::Seconds(1);
    fake_ = std::make_unique<Fake>(options);
    fake_->AddBot("u-bot", "Bridge", kApiKey);
    fake_->AddUser("u-7", "Ivan Petrov", "https://ts.example/avatars/u-7.png");
    fake_->AddChat(kChat, "Support", {"u-bot", "u-7"});
    ASSERT_TRUE(fake_->Start().ok());
    router_ = std::make_unique<RouterProcess>(RouterConfig());
    ASSERT_TRUE(router_->Start().ok());
  }

  // Starts the adapter in bot mode (or with `config` instead) and points
  // the fake's outgoing webhook at it.
  void StartAdapter(const std::string& extra = "") {
    std::string config = absl::StrCat(
        "router: {address: \"", router_->address(), "\", token: ", kToken,
        "}\naccount: corp\napi_base_url: ", fake_->api_base_url(),
        "\napi_key: ", kApiKey, "\nwebhook_secret: ", kSecret,
        "\nlog_level: debug\n", extra);
    adapter_ = std::make_unique<AdapterProcess>(kBinary, config);
    absl::Status s = adapter_->Start();
    ASSERT_TRUE(s.ok()) << s;
    fake_->SetOutgoingWebhook(
        absl::StrCat(adapter_->base_url(), "/teamspirit/events"), kSecret);
  }

  std::unique_ptr<TestAdapter> Slack() {
    auto slack = std::make_unique<TestAdapter>("slack", "acme",
                                               router_->address(), kToken);
    slack->Start();
    EXPECT_TRUE(slack->WaitAttached());
    return slack;
  }

  // Waits until the adapter is attached and identified (its bot is online).
  void WaitReady() {
    ASSERT_TRUE(Fake::WaitUntil([&] {
      return fake_->BotPresence("u-bot").status == "online";
    })) << adapter_->ReadLog();
  }

  // Sends an outgoing webhook to the adapter as TeamSpirit does, signed
  // (unless `sign` is false) for the time `ts`; returns the HTTP status, or
  // -1 when there was no answer.
  int PostWebhook(const std::string& body, bool sign = true,
                  int64_t ts = absl::ToUnixSeconds(absl::Now())) {
    HttpClient http;
    HttpClientRequest r;
    r.method = "POST";
    r.url = adapter_->base_url() + "/teamspirit/events";
    r.body = body;
    r.timeout = absl::Seconds(30);
    r.headers = {{"Content-Type", "application/json"},
                 {"X-TeamSpirit-Timestamp", absl::StrCat(ts)}};
    if (sign) {
      r.headers.emplace_back(
          "X-TeamSpirit-Signature",
          *adapters::SignTimestamped(adapters::teamspirit::kTeamSpiritSignature,
                                     kSecret, ts, body));
    }
    auto response = http.Send(r);
    return response.ok() ? response->status : -1;
  }

  std::unique_ptr<Fake> fake_;
  std::unique_ptr<RouterProcess> router_;
  std::unique_ptr<AdapterProcess> adapter_;
};

TEST_F(TeamSpiritIntegrationTest, MessagesEditsDeletesRepliesAndFilesBothWays) {
  StartAdapter();
  auto slack = Slack();
  WaitReady();

  // TeamSpirit -> slack.
  absl::StatusOr<std::string> ts_id =
      fake_->PostAsUser("u-7", kChat, "Hello **team**");
  ASSERT_TRUE(ts_id.ok());
  ASSERT_TRUE(slack->WaitForCalls(1)) << adapter_->ReadLog();
  TestAdapter::Call first = slack->calls()[0];
  EXPECT_EQ(first.kind, "post");
  EXPECT_EQ(first.text, "Hello team");
  EXPECT_EQ(first.sender_name, "Ivan Petrov (teamspirit)");
  v1::Delivery d = slack->deliveries()[0];
  ASSERT_THAT(d.event().posted().text().spans(), SizeIs(1));
  EXPECT_EQ(d.event().posted().text().spans(0).kind(), v1::Span::BOLD);
  EXPECT_EQ(d.event().posted().sender().avatar_url(),
            "https://ts.example/avatars/u-7.png");

  ASSERT_TRUE(fake_->EditAsUser("u-7", *ts_id, "Hello _everyone_").ok());
  ASSERT_TRUE(slack->WaitForCalls(2));
  EXPECT_EQ(slack->calls()[1].kind, "edit");
  EXPECT_EQ(slack->calls()[1].text, "Hello everyone");
  EXPECT_THAT(slack->calls()[1].target_ids, ElementsAre(first.native_id));

  // slack -> TeamSpirit, under an external user, replying to the original.
  std::string slack_id = slack->Post("C1", "hi from slack", first.native_id);
  ASSERT_TRUE(Fake::WaitUntil([&] {
    return !WithText(*fake_, kChat, "hi from slack").empty();
  })) << adapter_->ReadLog();
  Fake::Message copy = WithText(*fake_, kChat, "hi from slack")[0];
  EXPECT_EQ(copy.user_id, "u-bot");
  ASSERT_TRUE(copy.author.has_value());
  EXPECT_EQ(copy.author->external_id, kExternalId);
  EXPECT_EQ(copy.author->name, "Person on slack (slack)");
  EXPECT_EQ(copy.reply_to, *ts_id);
  ASSERT_TRUE(fake_->GetExternalUser(kExternalId).has_value());

  // A TeamSpirit reply in a thread of the copy reaches slack's original.
  Fake::PostOptions reply;
  reply.reply_to = copy.id;
  reply.thread_id = copy.id;
  ASSERT_TRUE(fake_->PostAsUser("u-7", kChat, "thread reply", reply).ok());
  ASSERT_TRUE(slack->WaitForCalls(3));
  EXPECT_EQ(slack->calls()[2].text, "thread reply");
  EXPECT_EQ(slack->calls()[2].reply_to, slack_id);
  EXPECT_EQ(slack->calls()[2].thread_root, slack_id);

  // slack edits and deletes its message: the copy follows.
  slack->Edit("C1", slack_id, "hi from slack, edited");
  ASSERT_TRUE(Fake::WaitUntil([&] {
    return fake_->GetMessage(copy.id)->text == "hi from slack, edited";
  }));
  slack->Delete("C1", slack_id);
  ASSERT_TRUE(
      Fake::WaitUntil([&] { return fake_->GetMessage(copy.id)->deleted; }));

  // A file from TeamSpirit reaches slack through the blob store.
  std::string content = "%PDF-1.4 quarterly report";
  std::string file_id =
      fake_->UploadAsUser("u-7", "report.pdf", "application/pdf", content);
  Fake::PostOptions with_file;
  with_file.file_ids = {file_id};
  ASSERT_TRUE(fake_->PostAsUser("u-7", kChat, "the report", with_file).ok());
  ASSERT_TRUE(slack->WaitForCalls(4));
  v1::Delivery file_delivery = slack->deliveries()[3];
  ASSERT_THAT(file_delivery.event().posted().attachments(), SizeIs(1));
  const v1::Attachment& a = file_delivery.event().posted().attachments(0);
  EXPECT_EQ(a.name(), "report.pdf");
  EXPECT_EQ(a.mime_type(), "application/pdf");
  absl::StatusOr<std::string> blob =
      slack->client().GetBlob(a.blob_id(), 1 << 20);
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_EQ(*blob, content);

  // A file from slack is uploaded to TeamSpirit and attached.
  v1::BlobMeta meta;
  meta.set_name("cat.png");
  meta.set_mime_type("image/png");
  std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + "pixels";
  absl::StatusOr<v1::BlobRef> ref = slack->client().PutBlob(meta, png);
  ASSERT_TRUE(ref.ok()) << ref.status();
  v1::Event e;
  e.mutable_channel()->set_chat_id("C1");
  e.mutable_posted()->set_message_id("C1-file");
  e.mutable_posted()->mutable_sender()->set_id("user-slack");
  e.mutable_posted()->mutable_sender()->set_display_name("Person on slack");
  e.mutable_posted()->mutable_text()->set_text("a picture");
  v1::Attachment* att = e.mutable_posted()->add_attachments();
  att->set_blob_id(ref->blob_id());
  att->set_name("cat.png");
  att->set_mime_type("image/png");
  att->set_size(png.size());
  att->set_kind(v1::Attachment::IMAGE);
  EXPECT_EQ(slack->Publish(e).outcome(), v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(Fake::WaitUntil(
      [&] { return !WithText(*fake_, kChat, "a picture").empty(); }));
  Fake::Message picture = WithText(*fake_, kChat, "a picture")[0];
  ASSERT_THAT(picture.file_ids, SizeIs(1));
  EXPECT_EQ(fake_->GetFile(picture.file_ids[0])->content, png);
  EXPECT_EQ(fake_->GetFile(picture.file_ids[0])->name, "cat.png");

  // The fake reported every copy the bot made back to the adapter (as the
  // real server does); none was mirrored back to slack.
  ASSERT_TRUE(Fake::WaitUntil([&] { return fake_->PendingWebhooks() == 0; }));
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(slack->calls().size(), 4u);
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(TeamSpiritIntegrationTest, DeliveryRetriedAfterAKillPostsOnce) {
  StartAdapter();
  auto slack = Slack();
  WaitReady();

  // The fake carries out the next POST but holds its answer; the adapter is
  // killed before it learns the message id.
  fake_->HoldNextPost();
  std::string once = slack->Post("C1", "exactly once");
  ASSERT_TRUE(fake_->WaitForHeld()) << adapter_->ReadLog();
  adapter_->Kill();
  fake_->ReleaseHeld();
  ASSERT_THAT(WithText(*fake_, kChat, "exactly once"), SizeIs(1));

  // The restarted adapter gets the delivery again and sends the same
  // client_token; TeamSpirit answers with the first message.
  ASSERT_TRUE(adapter_->Start().ok());
  ASSERT_TRUE(Fake::WaitUntil([&] {
    for (const Fake::ApiCall& c : fake_->Calls()) {
      if (c.method == "POST" && c.path == "/chats/c-42/messages" &&
          c.status == 200) {
        return true;
      }
    }
    return false;
  })) << adapter_->ReadLog();
  slack->Post("C1", "after the crash");
  ASSERT_TRUE(Fake::WaitUntil(
      [&] { return !WithText(*fake_, kChat, "after the crash").empty(); }));
  EXPECT_THAT(WithText(*fake_, kChat, "exactly once"), SizeIs(1));
  std::vector<std::string> texts;
  for (const Fake::Message& m : fake_->Messages(kChat)) texts.push_back(m.text);
  EXPECT_THAT(texts, ElementsAre("exactly once", "after the crash"));

  // The router learnt the message id from the retried answer: an edit
  // reaches the one copy.
  slack->Edit("C1", once, "exactly once, edited");
  ASSERT_TRUE(Fake::WaitUntil([&] {
    return !WithText(*fake_, kChat, "exactly once, edited").empty();
  }));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

// kill -9 of the adapter while 20 sends (some with a file) are in flight
// (TeamSpirit has created some posts but not answered yet), then a restart:
// the delivery journal resumes each delivery after its last recorded step
// and a post left open is made again with its client_token, so each message
// is in TeamSpirit exactly once, with its file.
TEST_F(TeamSpiritIntegrationTest,
       KilledWhileSendingPostsEachMessageExactlyOnce) {
  constexpr int kChats = 4;
  constexpr int kMessages = 20;
  router_ = std::make_unique<RouterProcess>(RouterConfig(kChats));
  ASSERT_TRUE(router_->Start().ok()) << router_->ReadLog();
  for (int c = 2; c <= kChats; ++c) {
    fake_->AddChat(TsChat(c), absl::StrCat("Room ", c), {"u-bot", "u-7"});
  }
  const std::string state_dir = MakeTempDir("teamspirit-state");
  // TeamSpirit creates each post at once but answers it late, so that posts
  // are in flight when the adapter dies.
  fake_->DelayAnswers("post_message", absl::Milliseconds(1500));
  StartAdapter(absl::StrCat("state_dir: \"", state_dir, "\"\n"));
  auto slack = Slack();
  WaitReady();
  auto text_of = [](int i) { return absl::StrFormat("crash %02d", i); };
  auto content_of = [](int i) { return absl::StrCat("file of message ", i); };
  for (int i = 0; i < kMessages; ++i) {
    const std::string chat = absl::StrCat("C", i % kChats + 1);
    if (i % 3 != 0) {
      slack->Post(chat, text_of(i));
      continue;
    }
    v1::BlobMeta meta;
    meta.set_name(absl::StrCat("file-", i, ".txt"));
    meta.set_mime_type("text/plain");
    absl::StatusOr<v1::BlobRef> ref =
        slack->client().PutBlob(meta, content_of(i));
    ASSERT_TRUE(ref.ok()) << ref.status();
    v1::Event e;
    e.mutable_channel()->set_chat_id(chat);
    e.mutable_posted()->set_message_id(absl::StrCat("with-file-", i));
    e.mutable_posted()->mutable_sender()->set_id("user-slack");
    e.mutable_posted()->mutable_text()->set_text(text_of(i));
    v1::Attachment* a = e.mutable_posted()->add_attachments();
    a->set_blob_id(ref->blob_id());
    a->set_name(meta.name());
    a->set_mime_type("text/plain");
    a->set_size(content_of(i).size());
    ASSERT_EQ(slack->Publish(e).outcome(), v1::PublishAck::ACCEPTED);
  }
  auto posted = [&] {
    size_t n = 0;
    for (int c = 1; c <= kChats; ++c) n += fake_->Messages(TsChat(c)).size();
    return n;
  };
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (posted() < 6 || fake_->delayed_answers_pending() == 0) {
    ASSERT_LT(absl::Now(), deadline) << adapter_->ReadLog();
    absl::SleepFor(absl::Milliseconds(10));
  }
  adapter_->Kill();
  ASSERT_LT(posted(), static_cast<size_t>(kMessages));

  fake_->DelayAnswers("post_message", absl::ZeroDuration());
  ASSERT_TRUE(adapter_->Start().ok());
  // Every delivery's result reached the router: nothing more is posted.
  ASSERT_TRUE(
      router_->WaitForMetric("imbridge_router_deliveries_total",
                             {{"platform", "teamspirit"}, {"result", "ok"}},
                             kMessages, absl::Seconds(90)))
      << adapter_->ReadLog();
  for (int i = 0; i < kMessages; ++i) {
    std::vector<Fake::Message> copies =
        WithText(*fake_, TsChat(i % kChats + 1), text_of(i));
    ASSERT_THAT(copies, SizeIs(1)) << text_of(i);
    if (i % 3 != 0) continue;
    ASSERT_THAT(copies[0].file_ids, SizeIs(1)) << text_of(i);
    EXPECT_EQ(fake_->GetFile(copies[0].file_ids[0])->content, content_of(i));
  }
  EXPECT_EQ(posted(), static_cast<size_t>(kMessages));
  // The posts TeamSpirit had taken without answering were made again with
  // their client_token and answered with the first message.
  EXPECT_THAT(adapter_->ReadLog(),
              HasSubstr("made again with its client_token"));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(TeamSpiritIntegrationTest, PresenceCrossesTheBridge) {
  StartAdapter();
  auto slack = Slack();
  WaitReady();

  // A slack person who has spoken in the linked chat appears on TeamSpirit
  // as an external user, and their presence follows.
  slack->Post("C1", "hello");
  ASSERT_TRUE(Fake::WaitUntil(
      [&] { return fake_->GetExternalUser(kExternalId).has_value(); }));
  slack->SetPresence("user-slack", v1::AWAY);
  ASSERT_TRUE(Fake::WaitUntil([&] {
    auto u = fake_->GetExternalUser(kExternalId);
    return u.has_value() && u->presence.status == "away";
  })) << adapter_->ReadLog();
  slack->SetPresence("user-slack", v1::DND);
  ASSERT_TRUE(Fake::WaitUntil([&] {
    return fake_->GetExternalUser(kExternalId)->presence.status == "dnd";
  }));

  // A TeamSpirit person's presence reaches the router (and slack).
  fake_->SetUserPresence("u-7", "dnd", "In a meeting");
  ASSERT_TRUE(Fake::WaitUntil([&] {
    for (const TestAdapter::Call& c : slack->calls()) {
      if (c.kind == "presence" && c.text == "u-7=DND") return true;
    }
    return false;
  })) << adapter_->ReadLog();
  bool found = false;
  for (const v1::Delivery& d : slack->deliveries()) {
    if (d.event().has_presence()) {
      found = true;
      EXPECT_EQ(d.event().channel().platform(), "teamspirit");
      EXPECT_EQ(d.event().presence().status_text(), "In a meeting");
      EXPECT_EQ(d.event().presence().user().display_name(), "Ivan Petrov");
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(adapter_->Terminate(), 0);
}

// One process serves two TeamSpirit accounts on two servers, whose chats
// even have the same id, next to a send-only account: each message reaches
// the right server, and each server's events come from the right account.
TEST_F(TeamSpiritIntegrationTest, SeveralAccountsInOneProcess) {
  Fake::Options options;
  options.webhook_initial_backoff = absl::Milliseconds(100);
  options.webhook_max_backoff = absl::Seconds(1);
  Fake partner(options);
  partner.AddBot("u-bot2", "Partner bridge", "partner-api-key-0123");
  partner.AddUser("u-9", "Olga Partner");
  partner.AddChat(kChat, "Partner support", {"u-bot2", "u-9"});
  ASSERT_TRUE(partner.Start().ok());
  std::string hook = fake_->AddIncomingWebhook("c-news", "news-hook-token");
  fake_->AddChat("c-news", "News", {"u-bot"});
  router_ = std::make_unique<RouterProcess>(absl::StrCat(
      "adapters:\n  - {name: tests, token: ", kToken, "}\n", R"(links:
  - name: corp
    members:
      - {platform: teamspirit, account: corp, chat_id: c-42}
      - {platform: slack, account: acme, chat_id: C1}
  - name: partner
    members:
      - {platform: teamspirit, account: partner, chat_id: c-42}
      - {platform: slack, account: acme, chat_id: C2}
  - name: news
    members:
      - {platform: slack, account: acme, chat_id: C3}
      - {platform: teamspirit, account: news, chat_id: c-news, direction: out}
store: {durability: normal}
dispatch: {initial_backoff_ms: 100, max_backoff_ms: 1000}
)"));
  ASSERT_TRUE(router_->Start().ok()) << router_->ReadLog();
  adapter_ = std::make_unique<AdapterProcess>(
      kBinary,
      absl::StrCat(
          "router: {address: \"", router_->address(), "\", token: ", kToken,
          "}\nlog_level: debug\naccounts:\n",
          "  - name: corp\n    api_base_url: ", fake_->api_base_url(),
          "\n    api_key: ", kApiKey, "\n    webhook_secret: ", kSecret,
          "\n  - name: partner\n    api_base_url: ", partner.api_base_url(),
          "\n    api_key: partner-api-key-0123\n"
          "    webhook_secret: partner-secret\n"
          "    post_as_bot: true\n",
          "  - name: news\n    incoming_webhook_url: ", hook, "\n"));
  ASSERT_TRUE(adapter_->Start().ok());
  fake_->SetOutgoingWebhook(
      absl::StrCat(adapter_->base_url(), "/teamspirit/corp/events"), kSecret);
  partner.SetOutgoingWebhook(
      absl::StrCat(adapter_->base_url(), "/teamspirit/partner/events"),
      "partner-secret");
  auto slack = Slack();
  WaitReady();
  ASSERT_TRUE(Fake::WaitUntil([&] {
    return partner.BotPresence("u-bot2").status == "online";
  })) << adapter_->ReadLog();

  // Out: each link's message reaches its own server, in its account's way.
  slack->Post("C1", "to corp");
  slack->Post("C2", "to partner");
  slack->Post("C3", "to the news");
  ASSERT_TRUE(Fake::WaitUntil([&] {
    return !WithText(*fake_, kChat, "to corp").empty() &&
           !WithText(partner, kChat, "**Person on slack (slack)**: to partner")
                .empty() &&
           !fake_->Messages("c-news").empty();
  })) << adapter_->ReadLog();
  EXPECT_THAT(WithText(*fake_, kChat, "to partner"), SizeIs(0));
  EXPECT_THAT(partner.Messages(kChat), SizeIs(1));
  EXPECT_EQ(fake_->Messages("c-news")[0].text, "to the news");
  EXPECT_EQ(fake_->Messages("c-news")[0].user_id, "hook:news-hook-token");

  // In: each server's people reach the link of their account.
  ASSERT_TRUE(fake_->PostAsUser("u-7", kChat, "from corp").ok());
  ASSERT_TRUE(partner.PostAsUser("u-9", kChat, "from partner").ok());
  ASSERT_TRUE(Fake::WaitUntil([&] {
    size_t n = 0;
    for (const TestAdapter::Call& c : slack->calls()) {
      if (c.kind == "post") ++n;
    }
    return n >= 2;
  })) << adapter_->ReadLog();
  for (const TestAdapter::Call& c : slack->calls()) {
    if (c.kind != "post") continue;
    EXPECT_EQ(c.chat, c.text == "from corp" ? "C1" : "C2") << c.text;
  }
  for (const v1::Delivery& d : slack->deliveries()) {
    const std::string& text = d.event().posted().text().text();
    EXPECT_EQ(d.event().channel().account(),
              text == "from corp" ? "corp" : "partner")
        << text;
  }
  EXPECT_EQ(adapter_->Terminate(), 0);
  EXPECT_EQ(partner.BotPresence("u-bot2").status, "offline");
}

TEST_F(TeamSpiritIntegrationTest, BotPresenceReflectsTheBridgeHealth) {
  StartAdapter("bot_presence: {degraded_after_detached_seconds: 1}\n");
  WaitReady();
  // The router goes away: after the grace period the bot is away.
  router_->Kill();
  ASSERT_TRUE(Fake::WaitUntil([&] {
    return fake_->BotPresence("u-bot").status == "away";
  })) << adapter_->ReadLog();
  EXPECT_TRUE(absl::StrContains(fake_->BotPresence("u-bot").text, "router"));
  ASSERT_TRUE(router_->Start().ok());
  WaitReady();
  // A clean shutdown leaves it offline.
  EXPECT_EQ(adapter_->Terminate(), 0);
  EXPECT_EQ(fake_->BotPresence("u-bot").status, "offline");
  EXPECT_THAT(fake_->BotPresenceHistory("u-bot"),
              ElementsAre("online", "away", "online", "offline"));
}

TEST_F(TeamSpiritIntegrationTest, SendOnlyModePostsThroughTheIncomingWebhook) {
  std::string hook = fake_->AddIncomingWebhook(kChat, "hook-secret-token");
  adapter_ = std::make_unique<AdapterProcess>(
      kBinary, absl::StrCat("router: {address: \"", router_->address(),
                            "\", token: ", kToken, "}\naccount: corp\n",
                            "incoming_webhook_url: ", hook, "\n"));
  ASSERT_TRUE(adapter_->Start().ok());
  auto slack = Slack();
  std::string id = slack->Post("C1", "via the *incoming* webhook");
  ASSERT_TRUE(Fake::WaitUntil([&] { return !fake_->Messages(kChat).empty(); }))
      << adapter_->ReadLog();
  Fake::Message m = fake_->Messages(kChat)[0];
  EXPECT_EQ(m.text, "via the \\*incoming\\* webhook");
  EXPECT_EQ(m.username, "Person on slack (slack)");
  // Edits are not announced in this mode, so nothing more arrives.
  slack->Edit("C1", id, "edited");
  slack->Post("C1", "second");
  ASSERT_TRUE(
      Fake::WaitUntil([&] { return fake_->Messages(kChat).size() == 2; }));
  EXPECT_EQ(fake_->Messages(kChat)[0].text, "via the \\*incoming\\* webhook");
  for (const Fake::ApiCall& c : fake_->Calls()) {
    EXPECT_TRUE(absl::StartsWith(c.path, "/hooks/")) << c.path;
  }
  // No outgoing-webhook receiver in this mode.
  HttpClient http;
  auto r = http.PostJson(adapter_->base_url() + "/teamspirit/events", "{}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_FALSE(absl::StrContains(adapter_->ReadLog(), "hook-secret-token"));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

// TeamSpirit may deliver the webhooks of one chat over several connections
// at once (the fake sends them one by one, so the test sends them itself): a
// message with a 3 MB file whose download takes 500 ms, then 50 ms later a
// text in the same chat. On the other side the file's copy comes first.
TEST_F(TeamSpiritIntegrationTest, AMessageWithASlowFileIsNotOvertaken) {
  StartAdapter();
  auto slack = Slack();
  WaitReady();
  std::string content(3 << 20, '\0');
  for (size_t i = 0; i < content.size(); ++i) {
    content[i] = static_cast<char>((i * 7919) % 251);
  }
  std::string file_id = fake_->UploadAsUser(
      "u-7", "big.bin", "application/octet-stream", content);
  fake_->DelayDownloads(absl::Milliseconds(500));
  auto event = [](const std::string& id, const std::string& text,
                  const std::string& files) {
    return absl::StrCat(
        R"({"event_id":")", id,
        R"(","type":"message.created","chat":{"id":"c-42"},)",
        R"("user":{"id":"u-7","name":"Ivan"},"message":{"id":"m-)", id,
        R"(","text":")", text, R"(","files":[)", files, "]}}");
  };
  std::string with_file =
      event("evt-file", "the big file",
            absl::StrCat(
                R"({"id":")", file_id, R"(","name":"big.bin","mime_type":)",
                R"("application/octet-stream","size":)", content.size(), "}"));
  int file_status = 0;
  std::thread first([&] { file_status = PostWebhook(with_file); });
  // The text is sent while the file's download is under way: once the
  // adapter asked for the file (the emulator answers 500 ms later), not after
  // a fixed pause that a loaded machine can outlast before the first webhook
  // arrives.
  const std::string download_path =
      absl::StrCat("/files/", file_id, "/content");
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  auto download_asked = [&] {
    for (const auto& call : fake_->Calls()) {
      if (call.method == "GET" && call.path == download_path) return true;
    }
    return false;
  };
  while (!download_asked() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_TRUE(download_asked()) << adapter_->ReadLog();
  EXPECT_EQ(PostWebhook(event("evt-text", "right after", "")), 200);
  first.join();
  EXPECT_EQ(file_status, 200);

  ASSERT_TRUE(slack->WaitForCalls(2)) << adapter_->ReadLog();
  std::vector<v1::Delivery> deliveries = slack->deliveries();
  ASSERT_EQ(deliveries.size(), 2u);
  EXPECT_EQ(deliveries[0].event().posted().text().text(), "the big file");
  EXPECT_EQ(deliveries[1].event().posted().text().text(), "right after");
  ASSERT_THAT(deliveries[0].event().posted().attachments(), SizeIs(1));
  absl::StatusOr<std::string> blob = slack->client().GetBlob(
      deliveries[0].event().posted().attachments(0).blob_id(), 4 << 20);
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_TRUE(*blob == content);
  EXPECT_EQ(adapter_->Terminate(), 0);
}

// A link member narrowed to a TeamSpirit thread (as an adapter's runtime
// link from a chat command makes) receives the thread's messages only, and
// what is relayed to it is posted in that thread.
TEST_F(TeamSpiritIntegrationTest, AMemberNarrowedToAThreadGetsOnlyThatThread) {
  absl::StatusOr<std::string> root =
      fake_->PostAsUser("u-7", kChat, "a customer conversation");
  ASSERT_TRUE(root.ok()) << root.status();
  router_->Terminate();
  router_ = std::make_unique<RouterProcess>(absl::StrCat(
      "adapters:\n  - {name: tests, token: ", kToken, "}\n", "links:\n",
      "  - name: support\n    members:\n",
      "      - {platform: teamspirit, account: corp, chat_id: ", kChat, "}\n",
      "      - {platform: slack, account: acme, chat_id: C1}\n",
      "  - name: customer\n    members:\n",
      "      - {platform: teamspirit, account: corp, chat_id: ", kChat,
      ", thread_id: \"", *root, "\"}\n",
      "      - {platform: slack, account: acme, chat_id: C9}\n",
      "store: {durability: normal}\n"));
  ASSERT_TRUE(router_->Start().ok());
  StartAdapter();
  auto slack = Slack();
  WaitReady();

  // Texts relayed to slack's chat `chat`, in order.
  auto texts_in = [&](const std::string& chat) {
    std::vector<std::string> out;
    for (const TestAdapter::Call& c : slack->calls()) {
      if (c.kind == "post" && c.chat == chat) out.push_back(c.text);
    }
    return out;
  };
  Fake::PostOptions in_thread;
  in_thread.thread_id = *root;
  ASSERT_TRUE(fake_->PostAsUser("u-7", kChat, "in the thread", in_thread).ok());
  ASSERT_TRUE(fake_->PostAsUser("u-7", kChat, "outside the thread").ok());
  ASSERT_TRUE(Fake::WaitUntil([&] {
    return absl::c_linear_search(texts_in("C1"), "outside the thread");
  })) << adapter_->ReadLog();
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_THAT(texts_in("C9"), ElementsAre("in the thread"));
  EXPECT_TRUE(absl::c_linear_search(texts_in("C1"), "in the thread"));

  // The customer's side answers: the copy goes into the thread.
  slack->Post("C9", "answer from the customer");
  ASSERT_TRUE(Fake::WaitUntil([&] {
    return !WithText(*fake_, kChat, "answer from the customer").empty();
  })) << adapter_->ReadLog();
  EXPECT_EQ(WithText(*fake_, kChat, "answer from the customer")[0].thread_id,
            *root);
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(TeamSpiritIntegrationTest, BadWebhooksAreRefusedAndNothingIsRelayed) {
  StartAdapter();
  auto slack = Slack();
  WaitReady();
  auto post = [&](const std::string& body, bool sign, int64_t ts) {
    return PostWebhook(body, sign, ts);
  };
  int64_t now = absl::ToUnixSeconds(absl::Now());
  std::string valid = absl::StrCat(
      R"({"event_id":"evt-x","type":"message.created","chat":{"id":"c-42"},)",
      R"("user":{"id":"u-7","name":"Ivan"},"message":{"id":"m-x","text":"x"}})");
  EXPECT_EQ(post(valid, false, now), 401);
  EXPECT_EQ(post(valid, true, now - 3600), 401);
  EXPECT_EQ(post("{broken", true, now), 400);
  EXPECT_EQ(post(R"({"event_id":"e","type":"poll.created"})", true, now), 200);
  EXPECT_EQ(post(std::string(2 << 20, ' '), true, now), 413);
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_TRUE(slack->calls().empty());
  // The adapter survived all of it and still relays.
  EXPECT_EQ(post(valid, true, now), 200);
  ASSERT_TRUE(slack->WaitForCalls(1));
  EXPECT_EQ(slack->calls()[0].text, "x");
  std::string log = adapter_->ReadLog();
  EXPECT_FALSE(absl::StrContains(log, kApiKey));
  EXPECT_FALSE(absl::StrContains(log, kSecret));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

}  // namespace
}  // namespace imbridge::testing
