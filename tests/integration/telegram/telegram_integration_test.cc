// End-to-end tests of imbridge-adapter-telegram: the real router, the real
// adapter binary and the fake Bot API, with an in-test adapter of another
// platform ("alpha") as the other side of each link.

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/http/http_client.h"
#include "emulators/telegram/fake_telegram.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/adapter_process.h"
#include "tests/integration/router_process.h"
#include "tests/integration/sanitizer_memory.h"
#include "tests/integration/test_adapter.h"

namespace imbridge::testing {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kRouterToken[] = "telegram-integration-token-0123";
constexpr char kSecret[] = "webhook-Secret_0123456789";
constexpr char kBinary[] = "adapters/telegram/imbridge-adapter-telegram";

// Events of the other side of every link (platform "alpha", account "a"),
// with keys unique across the test.
v1::Event AlphaEvent(const std::string& chat) {
  static std::atomic<int> seq{0};
  v1::Event e;
  e.set_key(
      absl::StrCat("alpha:a:", absl::ToUnixNanos(absl::Now()), ":", ++seq));
  e.mutable_channel()->set_platform("alpha");
  e.mutable_channel()->set_account("a");
  e.mutable_channel()->set_chat_id(chat);
  return e;
}
v1::Event AlphaPost(const std::string& chat, const std::string& text,
                    const std::string& message_id) {
  v1::Event e = AlphaEvent(chat);
  v1::MessagePosted* p = e.mutable_posted();
  p->set_message_id(message_id);
  p->mutable_sender()->set_platform("alpha");
  p->mutable_sender()->set_id("u1");
  p->mutable_sender()->set_display_name("Ann");
  p->mutable_text()->set_text(text);
  return e;
}

// How long the tests wait for the other side's deliveries.
constexpr absl::Duration kDeliveryWait = absl::Seconds(60);

std::vector<std::string> PostedTexts(const std::vector<v1::Delivery>& ds) {
  std::vector<std::string> out;
  for (const v1::Delivery& d : ds) {
    if (d.event().has_posted()) out.push_back(d.event().posted().text().text());
  }
  return out;
}

std::vector<std::string> Texts(
    const std::vector<fakes::FakeTelegram::Message>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) out.push_back(m.text());
  return out;
}

class TelegramIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fake_.Start().ok()); }

  // Starts the router with `links` (YAML list items under links:).
  void StartRouter(const std::string& links) {
    router_ = std::make_unique<RouterProcess>(absl::StrCat(
        "adapters:\n  - {name: tests, token: ", kRouterToken, "}\nlinks:\n",
        links,
        "store: {durability: normal}\n"
        "dispatch: {initial_backoff_ms: 50, max_backoff_ms: 300}\n"));
    ASSERT_TRUE(router_->Start().ok());
  }

  static std::string Link(const std::string& name, int64_t chat,
                          const std::string& other_chat,
                          const std::string& thread = "") {
    std::string tg = absl::StrCat(
        "      - {platform: telegram, account: main, chat_id: '", chat, "'");
    if (!thread.empty()) absl::StrAppend(&tg, ", thread_id: '", thread, "'");
    return absl::StrCat(
        "  - name: ", name, "\n    members:\n", tg, "}\n",
        "      - {platform: alpha, account: a, chat_id: ", other_chat, "}\n");
  }

  // The adapter's config; `account_extra` goes into the account.
  std::string AdapterConfig(const std::string& mode,
                            const std::string& account_extra = "") {
    state_dir_ = MakeTempDir("imbridge-tg-state");
    return absl::StrCat(
        "router: {address: '", router_->address(), "', token: ", kRouterToken,
        "}\nlog_level: debug\nstate_dir: ", state_dir_,
        "\nrate_limits: {per_chat_per_second: 200, per_chat_burst: 200, "
        "per_group_per_minute: 60000, per_bot_per_second: 200}\n"
        "accounts:\n  - name: main\n    token: '",
        fake_.token(), "'\n    api_base_url: ", fake_.base_url(),
        "\n    mode: ", mode, "\n    secret_token: ", kSecret, "\n",
        "    polling: {timeout_seconds: 1, retry_delay_ms: 200}\n",
        account_extra);
  }

  void StartAdapter(const std::string& config) {
    adapter_ = std::make_unique<AdapterProcess>(kBinary, config);
    absl::Status s = adapter_->Start();
    ASSERT_TRUE(s.ok()) << s;
  }

  std::string WebhookUrl() const {
    return adapter_->base_url() + "/telegram/main";
  }

  // The other side of every link: a TestAdapter of platform "alpha" that
  // records each delivery.
  std::unique_ptr<TestAdapter> Other() {
    TestAdapter::Options options;
    options.capabilities = {"edits", "deletes", "files", "threads",
                            "membership"};
    auto o = std::make_unique<TestAdapter>("alpha", "a", router_->address(),
                                           kRouterToken, options);
    o->Start();
    EXPECT_TRUE(o->WaitAttached(absl::Seconds(30)));
    return o;
  }

  // Publishes on the other side; the router must answer.
  static v1::PublishAck Publish(TestAdapter& side, v1::Event e) {
    v1::PublishAck ack = side.Publish(std::move(e));
    EXPECT_NE(ack.outcome(), v1::PublishAck::FAILED) << ack.detail();
    return ack;
  }

  // Waits until the adapter is attached to the router (readyz).
  void WaitReady() {
    HttpClient http;
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      auto r = http.Get(adapter_->base_url() + "/readyz");
      if (r.ok() && r->status == 200) return;
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "adapter not ready: " << adapter_->ReadLog();
  }

  // Sends an update to the adapter's webhook as Telegram does, with
  // `secret` (none when empty); returns the HTTP status, or -1 when there
  // was no answer.
  int PostUpdate(const std::string& body, const std::string& secret = kSecret) {
    HttpClient http;
    HttpHeaderList headers = {{"Content-Type", "application/json"}};
    if (!secret.empty()) {
      headers.emplace_back("X-Telegram-Bot-Api-Secret-Token", secret);
    }
    auto r = http.PostJson(WebhookUrl(), body, headers);
    return r.ok() ? r->status : -1;
  }

  void TearDown() override {
    if (HasFailure() && adapter_ != nullptr) {
      std::cerr << "adapter log:\n" << adapter_->ReadLog() << "\n";
    }
  }

  // How many times each of the texts "crash 00".."crash <n-1>" was sent to
  // the chats of KillWhileSending, after a kill -9 of the adapter while 20
  // sends were in flight and a restart, with `policy` as open_send_policy.
  // *in_flight: the texts Telegram had taken without answering at the kill.
  std::map<std::string, int> KillWhileSending(const std::string& policy,
                                              std::set<std::string>* in_flight);

  fakes::FakeTelegram fake_;
  std::unique_ptr<RouterProcess> router_;
  std::unique_ptr<AdapterProcess> adapter_;
  std::string state_dir_;
};

constexpr int kCrashChats = 4;
constexpr int kCrashMessages = 20;
constexpr absl::Duration kSlowAnswer = absl::Milliseconds(1500);

std::map<std::string, int> TelegramIntegrationTest::KillWhileSending(
    const std::string& policy, std::set<std::string>* in_flight) {
  std::vector<int64_t> chats;
  std::string links;
  for (int c = 0; c < kCrashChats; ++c) {
    chats.push_back(fake_.CreateChat("supergroup", absl::StrCat("Crash ", c)));
    absl::StrAppend(&links, Link(absl::StrCat("crash", c), chats.back(),
                                 absl::StrCat("K", c)));
  }
  StartRouter(links);
  StartAdapter(AdapterConfig("polling") +
               absl::StrCat("open_send_policy: ", policy, "\n"));
  auto other = Other();
  WaitReady();
  // Telegram takes each message at once but answers late, so that sends are
  // in flight when the adapter dies.
  fake_.DelayAnswers("sendMessage", kSlowAnswer);
  for (int i = 0; i < kCrashMessages; ++i) {
    Publish(*other,
            AlphaPost(absl::StrCat("K", i % kCrashChats),
                      absl::StrFormat("crash %02d", i), absl::StrCat("k-", i)));
  }
  auto sent = [&] {
    std::map<std::string, int> count;
    for (int64_t chat : chats) {
      for (const std::string& text : Texts(fake_.bot_messages(chat))) {
        count[text.substr(text.find("crash "))]++;
      }
    }
    return count;
  };
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (sent().size() < 6 || fake_.delayed_answers_pending() == 0) {
    if (absl::Now() > deadline) {
      ADD_FAILURE() << "no sends in flight";
      return {};
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  const std::map<std::string, int> at_kill = sent();
  const absl::Time kill_at = absl::Now();
  adapter_->Kill();
  // The sends in flight: those made less than the answer delay before the
  // kill (with a margin for late answers on a loaded machine).
  for (const auto& call : fake_.calls("sendMessage")) {
    if (call.at > kill_at - kSlowAnswer - absl::Seconds(1) &&
        call.params.contains("text")) {
      std::string text = call.params["text"].get<std::string>();
      in_flight->insert(text.substr(text.find("crash ")));
    }
  }
  EXPECT_LT(at_kill.size(), static_cast<size_t>(kCrashMessages));

  fake_.DelayAnswers("sendMessage", absl::ZeroDuration());
  absl::Status restarted = adapter_->Start();
  EXPECT_TRUE(restarted.ok()) << restarted;
  // Every delivery's result reached the router: nothing more is sent.
  deadline = absl::Now() + absl::Seconds(90);
  while (true) {
    auto ok = router_->Metric("imbridge_router_deliveries_total",
                              {{"platform", "telegram"}, {"result", "ok"}});
    if (ok.ok() && *ok >= kCrashMessages) break;
    if (absl::Now() > deadline) {
      ADD_FAILURE() << "deliveries not done";
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return sent();
}

TEST_F(TelegramIntegrationTest, MessageEditReplyAndTopicBothWays) {
  const int64_t group = fake_.CreateChat("supergroup", "Team");
  const int64_t forum = fake_.CreateChat("supergroup", "Forum", true);
  const int64_t topic = fake_.CreateTopic(forum, "Ops");
  StartRouter(Link("team", group, "A1") +
              Link("ops", forum, "A2", absl::StrCat(topic)));
  // setWebhook goes to a URL that is not this adapter (the public URL in
  // real life); the test points the fake at the adapter itself below.
  StartAdapter(AdapterConfig(
      "webhook",
      "    set_webhook: {url: 'https://bridge.example.org/telegram/main'}\n"));
  auto other = Other();
  WaitReady();
  auto set = fake_.calls("setWebhook");
  ASSERT_THAT(set, SizeIs(1));
  EXPECT_EQ(set[0].params["url"], "https://bridge.example.org/telegram/main");
  EXPECT_EQ(set[0].params["secret_token"], kSecret);
  EXPECT_EQ(
      set[0].params["allowed_updates"],
      json::parse(
          R"(["message","edited_message","channel_post","edited_channel_post"])"));
  fake_.SetWebhook(WebhookUrl(), kSecret);

  // Telegram -> alpha: a message with entities, then its edit.
  fakes::FakeTelegram::User anna = fake_.NewUser("Anna", "K");
  int64_t m1 = fake_.PostMessage(
      group, anna, "hi 😀 bold",
      {0, 0, json::parse(R"([{"type":"bold","offset":6,"length":4}])")});
  ASSERT_TRUE(other->WaitForCalls(1, kDeliveryWait));
  v1::Delivery d = other->deliveries()[0];
  EXPECT_EQ(d.target().chat_id(), "A1");
  EXPECT_EQ(d.sender_name(), "Anna K (telegram)");
  EXPECT_EQ(d.event().channel().chat_id(), absl::StrCat(group));
  EXPECT_EQ(d.event().posted().message_id(), absl::StrCat(m1));
  EXPECT_EQ(d.event().posted().text().text(), "hi 😀 bold");
  ASSERT_EQ(d.event().posted().text().spans_size(), 1);
  EXPECT_EQ(d.event().posted().text().spans(0).offset(), 8u);  // bytes
  EXPECT_EQ(d.event().posted().text().spans(0).length(), 4u);
  const std::string copy_in_alpha = other->calls()[0].native_id;

  ASSERT_TRUE(fake_.EditMessage(group, m1, "hi, edited"));
  ASSERT_TRUE(other->WaitForCalls(2, kDeliveryWait));
  d = other->deliveries()[1];
  ASSERT_TRUE(d.event().has_edited());
  EXPECT_EQ(d.event().edited().text().text(), "hi, edited");
  EXPECT_THAT(d.target_message_ids(), ElementsAre(copy_in_alpha));

  // alpha -> Telegram: a message, a reply to Anna's message, an edit, a
  // delete.
  EXPECT_EQ(Publish(*other, AlphaPost("A1", "from alpha", "a-1")).outcome(),
            v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.bot_messages(group).size() == 1; }));
  fakes::FakeTelegram::Message copy = fake_.bot_messages(group)[0];
  EXPECT_EQ(copy.text(), "Ann (alpha): from alpha");
  EXPECT_EQ(copy.json["entities"][0],
            json::parse(R"({"type":"bold","offset":0,"length":11})"));

  v1::Event reply = AlphaPost("A1", "a reply", "a-2");
  reply.mutable_posted()->set_reply_to_message_id(copy_in_alpha);
  Publish(*other, reply);
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.bot_messages(group).size() == 2; }));
  fakes::FakeTelegram::Message reply_copy = fake_.bot_messages(group)[1];
  EXPECT_EQ(reply_copy.json["reply_to_message"]["message_id"], m1);

  v1::Event edit = AlphaEvent("A1");
  edit.mutable_edited()->set_message_id("a-1");
  edit.mutable_edited()->mutable_editor()->set_display_name("Ann");
  edit.mutable_edited()->mutable_text()->set_text("from alpha, edited");
  Publish(*other, edit);
  ASSERT_TRUE(fake_.WaitFor([&] {
    auto m = fake_.message(group, copy.message_id);
    return m && m->text() == "Ann (alpha): from alpha, edited";
  }));

  // A Telegram user replies to the bridge's copy: alpha sees a reply to its
  // own original.
  fake_.PostMessage(group, anna, "answering", {copy.message_id, 0, json()});
  ASSERT_TRUE(other->WaitForCalls(3, kDeliveryWait));
  d = other->deliveries()[2];
  EXPECT_EQ(d.event().posted().text().text(), "answering");
  EXPECT_EQ(d.reply_to_target_id(), "a-1");

  v1::Event del = AlphaEvent("A1");
  del.mutable_deleted()->set_message_id("a-2");
  Publish(*other, del);
  ASSERT_TRUE(fake_.WaitFor([&] {
    auto m = fake_.message(group, reply_copy.message_id);
    return m && m->deleted;
  }));

  // Forum topic: only the topic is linked, both ways.
  fake_.PostMessage(forum, anna, "in the topic", {0, topic, json()});
  fake_.PostMessage(forum, anna, "in General", {0, 0, json()});
  ASSERT_TRUE(other->WaitForCalls(4, kDeliveryWait));
  d = other->deliveries()[3];
  EXPECT_EQ(d.target().chat_id(), "A2");
  EXPECT_EQ(d.event().channel().thread_id(), absl::StrCat(topic));
  EXPECT_EQ(d.event().posted().text().text(), "in the topic");
  Publish(*other, AlphaPost("A2", "to the topic", "a-3"));
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.bot_messages(forum).size() == 1; }));
  EXPECT_EQ(fake_.bot_messages(forum)[0].json["message_thread_id"], topic);
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_THAT(PostedTexts(other->deliveries()),
              ElementsAre("hi 😀 bold", "answering", "in the topic"));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(TelegramIntegrationTest, FilesBothWays) {
  const int64_t group = fake_.CreateChat("supergroup", "Files");
  StartRouter(Link("files", group, "F1"));
  StartAdapter(AdapterConfig("webhook"));
  auto other = Other();
  WaitReady();
  fake_.SetWebhook(WebhookUrl(), kSecret);
  fakes::FakeTelegram::User anna = fake_.NewUser("Anna");

  fakes::FakeTelegram::Upload doc;
  doc.name = "report.pdf";
  doc.mime_type = "application/pdf";
  doc.bytes = std::string("%PDF-1.4\n") + std::string(100000, 'r');
  doc.caption = "the report";
  fake_.UploadFile(group, anna, doc);
  fakes::FakeTelegram::Upload huge;
  huge.name = "dump.iso";
  huge.bytes = "tiny";
  huge.declared_size = 25 << 20;
  fake_.UploadFile(group, anna, huge);
  fakes::FakeTelegram::Upload photo;
  photo.kind = "photo";
  photo.bytes = "JPEGDATA";
  photo.media_group_id = "album7";
  fake_.UploadFile(group, anna, photo);
  ASSERT_TRUE(other->WaitForCalls(3, kDeliveryWait));
  std::vector<v1::Delivery> ds = other->deliveries();
  const v1::Attachment& a = ds[0].event().posted().attachments(0);
  EXPECT_EQ(ds[0].event().posted().text().text(), "the report");
  EXPECT_EQ(a.name(), "report.pdf");
  EXPECT_EQ(a.mime_type(), "application/pdf");
  EXPECT_EQ(a.size(), doc.bytes.size());
  ASSERT_FALSE(a.blob_id().empty());
  absl::StatusOr<std::string> stored =
      other->client().GetBlob(a.blob_id(), 1 << 20);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(*stored, doc.bytes);
  const v1::Attachment& h = ds[1].event().posted().attachments(0);
  EXPECT_EQ(h.name(), "dump.iso");
  EXPECT_EQ(h.size(), 25u << 20);
  EXPECT_EQ(h.blob_id(), "");
  EXPECT_THAT(h.unavailable_reason(), HasSubstr("20.0 MB"));
  const v1::Attachment& p = ds[2].event().posted().attachments(0);
  EXPECT_EQ(p.kind(), v1::Attachment::IMAGE);
  EXPECT_EQ(p.group_id(), "album7");
  EXPECT_EQ(*other->client().GetBlob(p.blob_id(), 1 << 20), "JPEGDATA");
  // Only the two small files were fetched.
  EXPECT_THAT(fake_.calls("getFile"), SizeIs(2));

  // alpha -> Telegram: a file from the blob store.
  std::string bytes = "col1,col2\n1,2\n";
  v1::BlobMeta meta;
  meta.set_name("data.csv");
  meta.set_mime_type("text/csv");
  absl::StatusOr<v1::BlobRef> ref = other->client().PutBlob(meta, bytes);
  ASSERT_TRUE(ref.ok()) << ref.status();
  v1::Event post = AlphaPost("F1", "numbers", "a-f1");
  v1::Attachment* att = post.mutable_posted()->add_attachments();
  att->set_blob_id(ref->blob_id());
  att->set_name("data.csv");
  att->set_mime_type("text/csv");
  att->set_size(bytes.size());
  Publish(*other, post);
  ASSERT_TRUE(fake_.WaitForCalls("sendDocument", 1));
  auto call = fake_.calls("sendDocument")[0];
  EXPECT_EQ(call.files["document"], bytes);
  EXPECT_EQ(call.params["document"]["filename"], "data.csv");
  EXPECT_EQ(call.params["caption"], "Ann (alpha): numbers");
  EXPECT_EQ(adapter_->Terminate(), 0);
}

// open_send_policy at_least_once (the default): after a kill -9 with 20
// sends in flight and a restart, nothing is lost, and only messages whose
// send was in flight at the kill may show twice.
TEST_F(TelegramIntegrationTest, KilledWhileSendingAtLeastOnceLosesNothing) {
  std::set<std::string> in_flight;
  std::map<std::string, int> sent =
      KillWhileSending("at_least_once", &in_flight);
  ASSERT_FALSE(in_flight.empty());
  for (int i = 0; i < kCrashMessages; ++i) {
    std::string text = absl::StrFormat("crash %02d", i);
    EXPECT_GE(sent[text], 1) << text << " lost";
    EXPECT_LE(sent[text], in_flight.count(text) ? 2 : 1) << text;
  }
  EXPECT_THAT(adapter_->ReadLog(), HasSubstr("sent again"));
}

// open_send_policy at_most_once: the same crash doubles nothing. A message
// whose send was recorded but had not reached Telegram at the kill is
// missing, as documented: at most one per chat (sends into one chat are made
// one at a time).
TEST_F(TelegramIntegrationTest, KilledWhileSendingAtMostOnceDoublesNothing) {
  std::set<std::string> in_flight;
  std::map<std::string, int> sent =
      KillWhileSending("at_most_once", &in_flight);
  ASSERT_FALSE(in_flight.empty());
  int missing = 0;
  for (int i = 0; i < kCrashMessages; ++i) {
    std::string text = absl::StrFormat("crash %02d", i);
    EXPECT_LE(sent[text], 1) << text;
    if (sent[text] == 0) ++missing;
  }
  EXPECT_LE(missing, kCrashChats);
  EXPECT_THAT(adapter_->ReadLog(), HasSubstr("taken as sent"));
}

// Telegram delivers webhooks over up to max_connections connections at once
// (the fake sends them one by one, so the test sends them itself): a message
// with a 3 MB file whose download takes 500 ms, then 50 ms later a text in
// the same chat. On the other side the file's copy comes first.
TEST_F(TelegramIntegrationTest, AMessageWithASlowFileIsNotOvertaken) {
  const int64_t group = fake_.CreateChat("supergroup", "Order");
  StartRouter(Link("order", group, "O1"));
  StartAdapter(AdapterConfig("webhook"));
  auto other = Other();
  WaitReady();
  fakes::FakeTelegram::User anna = fake_.NewUser("Anna");
  fakes::FakeTelegram::Upload doc;
  doc.name = "big.bin";
  doc.mime_type = "application/octet-stream";
  doc.bytes = std::string(3 << 20, '\0');
  for (size_t i = 0; i < doc.bytes.size(); ++i) {
    doc.bytes[i] = static_cast<char>((i * 7919) % 251);
  }
  doc.caption = "the big file";
  // No webhook is set on the fake: its updates stay queued, and the test
  // delivers copies of them.
  int64_t with_file = fake_.UploadFile(group, anna, doc);
  int64_t text = fake_.PostMessage(group, anna, "right after");
  auto update = [&](int64_t update_id, int64_t message_id) {
    return json{{"update_id", update_id},
                {"message", fake_.message(group, message_id)->json}}
        .dump();
  };
  fake_.DelayDownloads(absl::Milliseconds(500));
  int file_status = 0;
  std::thread first([&] { file_status = PostUpdate(update(9001, with_file)); });
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(PostUpdate(update(9002, text)), 200);
  first.join();
  EXPECT_EQ(file_status, 200);

  ASSERT_TRUE(other->WaitForCalls(2, kDeliveryWait));
  std::vector<v1::Delivery> ds = other->deliveries();
  EXPECT_THAT(PostedTexts(ds), ElementsAre("the big file", "right after"));
  ASSERT_THAT(ds[0].event().posted().attachments(), SizeIs(1));
  absl::StatusOr<std::string> stored = other->client().GetBlob(
      ds[0].event().posted().attachments(0).blob_id(), 4 << 20);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_TRUE(*stored == doc.bytes);
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(TelegramIntegrationTest, FloodWaitIsHonouredThenDelivered) {
  const int64_t group = fake_.CreateChat("supergroup", "Flood");
  StartRouter(Link("flood", group, "R1"));
  StartAdapter(AdapterConfig("webhook"));
  auto other = Other();
  WaitReady();
  fake_.FailNext("sendMessage", 1,
                 {429, "Too Many Requests: retry after 1", 1, 0});
  Publish(*other, AlphaPost("R1", "patience", "a-r1"));
  ASSERT_TRUE(fake_.WaitFor([&] {
    auto c = fake_.calls("sendMessage");
    return c.size() == 2 && c[1].status != 0;
  }));
  auto calls = fake_.calls("sendMessage");
  EXPECT_EQ(calls[0].status, 429);
  EXPECT_EQ(calls[1].status, 200);
  absl::Duration gap = calls[1].at - calls[0].at;
  EXPECT_GE(gap, absl::Milliseconds(900)) << gap;
  EXPECT_LE(gap, absl::Seconds(30)) << gap;
  EXPECT_THAT(Texts(fake_.bot_messages(group)),
              ElementsAre("Ann (alpha): patience"));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(TelegramIntegrationTest, RouterRestartMidStreamLosesAndDoublesNothing) {
  constexpr int kN = 10;
  const int64_t group = fake_.CreateChat("supergroup", "Restart");
  StartRouter(Link("restart", group, "S1"));
  StartAdapter(AdapterConfig("webhook"));
  auto other = Other();
  WaitReady();
  fake_.SetWebhook(WebhookUrl(), kSecret);
  fakes::FakeTelegram::User anna = fake_.NewUser("Anna");

  std::atomic<int> acked{0};
  std::thread telegram_side([&] {
    for (int i = 0; i < kN; ++i) {
      fake_.PostMessage(group, anna, absl::StrCat("tg ", i));
      absl::SleepFor(absl::Milliseconds(80));
    }
  });
  std::thread alpha_side([&] {
    for (int i = 0; i < kN; ++i) {
      absl::Status s = other->client().Publish(
          AlphaPost("S1", absl::StrCat("alpha ", i), absl::StrCat("s-", i)),
          [&](const v1::PublishAck&) { acked++; });
      EXPECT_TRUE(s.ok()) << s;
      absl::SleepFor(absl::Milliseconds(80));
    }
  });
  absl::SleepFor(absl::Milliseconds(300));
  router_->Kill();
  absl::SleepFor(absl::Milliseconds(500));
  ASSERT_TRUE(router_->Start().ok());
  telegram_side.join();
  alpha_side.join();

  std::vector<std::string> want_tg, want_alpha;
  for (int i = 0; i < kN; ++i) {
    want_tg.push_back(absl::StrCat("tg ", i));
    want_alpha.push_back(absl::StrCat("Ann (alpha): alpha ", i));
  }
  ASSERT_TRUE(other->WaitForCalls(kN, absl::Seconds(90)))
      << other->deliveries().size();
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.bot_messages(group).size() >= kN; },
                    absl::Seconds(90)))
      << fake_.bot_messages(group).size();
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(PostedTexts(other->deliveries()), want_tg);
  EXPECT_EQ(Texts(fake_.bot_messages(group)), want_alpha);
  EXPECT_EQ(fake_.pending_updates(), 0u);
  EXPECT_EQ(acked.load(), kN);
  EXPECT_EQ(adapter_->Terminate(), 0);
}

// Issue 11: the router never got the result of a send that Telegram made
// (the router died before the answer came), and the adapter restarted since.
// The router sends the delivery again; the adapter answers it from its
// delivery journal with the same message id, without a second sendMessage,
// and the router records that id: a later edit reaches the one copy.
TEST_F(TelegramIntegrationTest,
       ARedeliveryAfterARestartIsAnsweredFromTheJournal) {
  const int64_t group = fake_.CreateChat("supergroup", "Journal");
  StartRouter(Link("journal", group, "J1"));
  StartAdapter(AdapterConfig("polling"));
  auto other = Other();
  WaitReady();
  fake_.DelayAnswers("sendMessage", absl::Seconds(2));
  Publish(*other, AlphaPost("J1", "once", "j-1"));
  ASSERT_TRUE(fake_.WaitFor([&] { return !fake_.bot_messages(group).empty(); },
                            kDeliveryWait));
  // Telegram has the message; its answer comes after the router died.
  router_->Kill();
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.delayed_answers_pending() == 0; },
                    absl::Seconds(30) * AsanSlowdown()));
  // The adapter stops (it finishes the delivery in progress, so the answer
  // is journaled) and forgets everything it kept in memory.
  EXPECT_EQ(adapter_->Terminate(), 0);
  fake_.DelayAnswers("sendMessage", absl::ZeroDuration());

  ASSERT_TRUE(router_->Start().ok());
  ASSERT_TRUE(adapter_->Start().ok());
  ASSERT_TRUE(router_->WaitForMetric(
      "imbridge_router_deliveries_total",
      {{"platform", "telegram"}, {"result", "ok"}}, 1, kDeliveryWait));
  EXPECT_THAT(fake_.calls("sendMessage"), SizeIs(1));
  std::vector<fakes::FakeTelegram::Message> copies = fake_.bot_messages(group);
  ASSERT_THAT(copies, SizeIs(1));
  EXPECT_EQ(copies[0].text(), "Ann (alpha): once");

  v1::Event edit = AlphaEvent("J1");
  edit.mutable_edited()->set_message_id("j-1");
  edit.mutable_edited()->mutable_text()->set_text("once, edited");
  Publish(*other, edit);
  ASSERT_TRUE(fake_.WaitForCalls("editMessageText", 1));
  EXPECT_EQ(fake_.calls("editMessageText")[0].params["message_id"],
            copies[0].message_id);
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(TelegramIntegrationTest, BadWebhookRequestsAreRefusedAndReachNothing) {
  const int64_t group = fake_.CreateChat("supergroup", "Bad");
  StartRouter(Link("bad", group, "B1"));
  StartAdapter(AdapterConfig("webhook"));
  auto other = Other();
  WaitReady();
  HttpClient http;
  const std::string good = json{
      {"update_id", 5},
      {"message",
       {{"message_id", 1},
        {"date", 1},
        {"from", {{"id", 42}, {"is_bot", false}, {"first_name", "Eve"}}},
        {"chat", {{"id", group}, {"type", "supergroup"}}},
        {"text",
         "must not pass"}}}}.dump();
  auto post = [&](const std::string& body, const std::string& secret) {
    return PostUpdate(body, secret);
  };
  EXPECT_EQ(post(good, "wrong-secret"), 401);
  EXPECT_EQ(post(good, ""), 401);
  EXPECT_EQ(post(good, std::string(kSecret) + "x"), 401);
  EXPECT_EQ(post(std::string(2 << 20, ' '), kSecret), 413);
  EXPECT_EQ(post("{not json", kSecret), 400);
  EXPECT_EQ(post(R"({"no_update_id": true})", kSecret), 400);
  EXPECT_EQ(post(R"({"update_id": 6, "callback_query": {"id": "1"}})", kSecret),
            200);
  EXPECT_EQ(post(R"({"update_id": 7, "my_chat_member": {}})", kSecret), 200);
  absl::SleepFor(absl::Seconds(1));
  EXPECT_THAT(other->deliveries(), SizeIs(0));

  auto metrics = http.Get(adapter_->base_url() + "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body, HasSubstr("reason=\"bad_secret\"} 3"));
  EXPECT_THAT(metrics->body, HasSubstr("reason=\"bad_json\"} 1"));
  EXPECT_THAT(metrics->body, HasSubstr("reason=\"unknown_type\"} 2"));

  // The right secret with a real message passes.
  EXPECT_EQ(post(good, kSecret), 200);
  ASSERT_TRUE(other->WaitForCalls(1, kDeliveryWait));
  EXPECT_THAT(PostedTexts(other->deliveries()), ElementsAre("must not pass"));
  // The adapter never logged the secret or the bot token.
  std::string log = adapter_->ReadLog();
  EXPECT_THAT(log, ::testing::Not(HasSubstr(kSecret)));
  EXPECT_THAT(log, ::testing::Not(HasSubstr(fake_.token())));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(TelegramIntegrationTest, PollingAdvancesOnlyPastAcknowledgedUpdates) {
  const int64_t group = fake_.CreateChat("group", "Polled");
  StartRouter(Link("polled", group, "P1"));
  // A webhook left over from earlier: polling mode removes it.
  fake_.SetWebhook("https://old.example.org/hook", "x");
  StartAdapter(AdapterConfig("polling"));
  auto other = Other();
  WaitReady();
  ASSERT_TRUE(fake_.WaitForCalls("getUpdates", 1));
  EXPECT_THAT(fake_.calls("deleteWebhook"), SizeIs(1));
  fakes::FakeTelegram::User anna = fake_.NewUser("Anna");
  int64_t first_update = 0;
  for (int i = 0; i < 3; ++i) {
    fake_.PostMessage(group, anna, absl::StrCat("polled ", i));
  }
  ASSERT_TRUE(other->WaitForCalls(3, kDeliveryWait));
  // The next getUpdates confirms them.
  ASSERT_TRUE(fake_.WaitFor([&] { return fake_.pending_updates() == 0; }));
  for (const auto& c : fake_.calls("getUpdates")) {
    if (c.params.contains("offset")) {
      first_update =
          std::max<int64_t>(first_update, c.params["offset"].get<int64_t>());
    }
  }
  EXPECT_GT(first_update, 0);

  // The router goes away: updates are fetched but not confirmed.
  router_->Kill();
  fake_.PostMessage(group, anna, "while the router is down");
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ(fake_.pending_updates(), 1u);
  ASSERT_TRUE(router_->Start().ok());
  ASSERT_TRUE(other->WaitForCalls(4, absl::Seconds(60)));
  ASSERT_TRUE(fake_.WaitFor([&] { return fake_.pending_updates() == 0; }));

  // A restarted adapter resumes from the offset saved in its journal (no
  // confirmed update is fetched again) and duplicates nothing.
  EXPECT_EQ(adapter_->Terminate(), 0);
  int64_t last_offset = 0;
  for (const auto& c : fake_.calls("getUpdates")) {
    if (c.params.contains("offset")) {
      last_offset =
          std::max<int64_t>(last_offset, c.params["offset"].get<int64_t>());
    }
  }
  const size_t calls_before_restart = fake_.calls("getUpdates").size();
  fake_.PostMessage(group, anna, "after restart");
  ASSERT_TRUE(adapter_->Start().ok());
  ASSERT_TRUE(fake_.WaitForCalls("getUpdates", calls_before_restart + 1));
  auto first_after_restart = fake_.calls("getUpdates")[calls_before_restart];
  ASSERT_TRUE(first_after_restart.params.contains("offset"));
  EXPECT_EQ(first_after_restart.params["offset"].get<int64_t>(), last_offset);
  ASSERT_TRUE(other->WaitForCalls(5, absl::Seconds(60)));
  absl::SleepFor(absl::Seconds(1));
  EXPECT_THAT(PostedTexts(other->deliveries()),
              ElementsAre("polled 0", "polled 1", "polled 2",
                          "while the router is down", "after restart"));
  // alpha -> Telegram works in polling mode too.
  Publish(*other, AlphaPost("P1", "back", "a-p1"));
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.bot_messages(group).size() == 1; }));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(TelegramIntegrationTest, MigratedGroupKeepsItsLink) {
  const int64_t group = fake_.CreateChat("group", "Small group");
  StartRouter(Link("grown", group, "M1"));
  StartAdapter(AdapterConfig("webhook"));
  auto other = Other();
  WaitReady();
  fake_.SetWebhook(WebhookUrl(), kSecret);
  fakes::FakeTelegram::User anna = fake_.NewUser("Anna");
  fake_.PostMessage(group, anna, "before");
  ASSERT_TRUE(other->WaitForCalls(1, kDeliveryWait));

  const int64_t super = fake_.MigrateToSupergroup(group);
  fake_.PostMessage(super, anna, "after");
  ASSERT_TRUE(other->WaitForCalls(2, kDeliveryWait));
  v1::Delivery d = other->deliveries()[1];
  EXPECT_EQ(d.event().channel().chat_id(), absl::StrCat(group));
  EXPECT_EQ(d.event().posted().text().text(), "after");

  Publish(*other, AlphaPost("M1", "to the supergroup", "a-m1"));
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.bot_messages(super).size() == 1; }));
  EXPECT_EQ(fake_.calls("sendMessage").back().params["chat_id"], super);

  // The alias survives a restart: the first send goes to the new id at once.
  EXPECT_EQ(adapter_->Terminate(), 0);
  ASSERT_TRUE(adapter_->Start().ok());
  WaitReady();
  size_t before = fake_.calls("sendMessage").size();
  Publish(*other, AlphaPost("M1", "still linked", "a-m2"));
  ASSERT_TRUE(fake_.WaitFor([&] {
    for (const auto& m : fake_.bot_messages(super)) {
      if (m.text() == "Ann (alpha): still linked") return true;
    }
    return false;
  }));
  // Every send after the restart went to the new id at once. (Counting
  // calls exactly is not possible: RouterClient::Stop() may drop the result
  // of the last delivery, which the router then sends again.)
  auto calls = fake_.calls("sendMessage");
  ASSERT_GT(calls.size(), before);
  for (size_t i = before; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].params["chat_id"], super);
    EXPECT_EQ(calls[i].status, 200);
  }
  fake_.PostMessage(super, anna, "after restart");
  ASSERT_TRUE(other->WaitForCalls(3, kDeliveryWait));
  EXPECT_EQ(other->deliveries()[2].event().channel().chat_id(),
            absl::StrCat(group));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(TelegramIntegrationTest, InvalidConfigNamesTheField) {
  StartRouter(Link("x", -1, "X1"));
  AdapterProcess bad(kBinary,
                     absl::StrCat("router: {address: '", router_->address(),
                                  "', token: t}\naccounts:\n  - name: main\n"
                                  "    token: 'not-a-token'\n"
                                  "    secret_token: s\n"));
  absl::Status s = bad.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("accounts[0].token"));
  EXPECT_THAT(std::string(s.message()),
              ::testing::Not(HasSubstr("not-a-token'")));
}

}  // namespace
}  // namespace imbridge::testing
