// End-to-end tests of imbridge-adapter-bitrix24: the real router, the real
// adapter binary and the emulated Bitrix24 portal, with an in-test adapter of
// another platform ("alpha") as the other side of each link.

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/http/http_client.h"
#include "emulators/bitrix24/fake_bitrix24.h"
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
using Fake = emulators::FakeBitrix24;

constexpr char kRouterToken[] = "bitrix24-integration-token-0123";
constexpr char kBinary[] = "adapters/bitrix24/imbridge-adapter-bitrix24";
constexpr char kBotToken[] = "bot-token-0123456789";
constexpr absl::Duration kDeliveryWait = absl::Seconds(60);

std::vector<std::string> PostedTexts(const std::vector<v1::Delivery>& ds) {
  std::vector<std::string> out;
  for (const v1::Delivery& d : ds) {
    if (d.event().has_posted()) out.push_back(d.event().posted().text().text());
  }
  return out;
}

std::vector<std::string> Texts(const std::vector<Fake::Message>& messages) {
  std::vector<std::string> out;
  for (const Fake::Message& m : messages) out.push_back(m.text);
  return out;
}

class Bitrix24IntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fake_.Start().ok());
    fake_.SetBucket(1000, 1000);  // No rate limit unless a test sets one.
    state_dir_ = MakeTempDir("imbridge-b24-state");
  }

  void TearDown() override {
    if (HasFailure() && adapter_ != nullptr) {
      std::cerr << "adapter log:\n" << adapter_->ReadLog() << "\n";
    }
  }

  void StartRouter(const std::string& links) {
    router_ = std::make_unique<RouterProcess>(absl::StrCat(
        "adapters:\n  - {name: tests, token: ", kRouterToken, "}\nlinks:\n",
        links,
        "store: {durability: normal}\n"
        "dispatch: {initial_backoff_ms: 50, max_backoff_ms: 300}\n"));
    ASSERT_TRUE(router_->Start().ok());
  }

  static std::string Link(const std::string& name, int64_t chat,
                          const std::string& other_chat) {
    return absl::StrCat(
        "  - name: ", name, "\n    members:\n",
        "      - {platform: bitrix24, account: main, chat_id: chat", chat,
        "}\n      - {platform: alpha, account: a, chat_id: ", other_chat,
        "}\n");
  }

  // The account's credentials: the inbound webhook, or `oauth` (YAML).
  std::string Config(int64_t bot_id, const std::string& auth = "",
                     const std::string& extra = "") {
    std::string router =
        router_ == nullptr ? "127.0.0.1:1" : router_->address();
    return absl::StrCat(
        "router: {address: '", router, "', token: ", kRouterToken,
        "}\nlog_level: debug\nstate_dir: ", state_dir_,
        "\naccounts:\n  - name: main\n",
        auth.empty() ? absl::StrCat("    webhook_url: '", fake_.webhook_url(),
                                    "'\n    bot_token: ", kBotToken, "\n")
                     : auth,
        "    bot_id: ", bot_id,
        "\n    requests_per_second: 50\n"
        "    poll_active_ms: 100\n    poll_idle_ms: 500\n",
        extra);
  }

  // The account's `oauth` section with the portal's current access token.
  std::string OAuthConfig(const std::string& refresh_token) {
    return absl::StrCat(
        "    oauth:\n      rest_url: '", fake_.rest_url(),
        "'\n      token_url: '", fake_.oauth_url(),
        "'\n      client_id: ", fake_.options().client_id,
        "\n      client_secret: ", fake_.options().client_secret,
        "\n      access_token: ", fake_.access_token(),
        "\n      refresh_token: ", refresh_token, "\n");
  }

  // Runs `imbridge-adapter-bitrix24 --config FILE --register`; returns its
  // standard output and sets *exit_code.
  std::string RunRegister(const std::string& config, int* exit_code) {
    std::string dir = MakeTempDir("imbridge-b24-register");
    std::string path = dir + "/adapter.yaml";
    std::ofstream(path) << config;
    std::string cmd = absl::StrCat(BuildDir(), "/", kBinary, " --config ", path,
                                   " --register 2>&1");
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[512];
    while (p != nullptr && fgets(buf, sizeof buf, p) != nullptr) out += buf;
    int status = p == nullptr ? -1 : pclose(p);
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return out;
  }

  static std::string BuildDir() {
    const char* dir = std::getenv("IMBRIDGE_BUILD_DIR");
    return dir == nullptr ? "." : dir;
  }

  // Registers the bot through the binary; returns its id.
  int64_t Register(const std::string& auth = "") {
    int code = -1;
    std::string out = RunRegister(Config(0, auth), &code);
    EXPECT_EQ(code, 0) << out;
    int64_t id = 0;
    size_t at = out.find("main: bot_id ");
    if (at != std::string::npos) {
      std::string rest = out.substr(at + 13);
      EXPECT_TRUE(absl::SimpleAtoi(rest.substr(0, rest.find('\n')), &id))
          << out;
    }
    return id;
  }

  void StartAdapter(const std::string& config) {
    adapter_ = std::make_unique<AdapterProcess>(kBinary, config);
    absl::Status s = adapter_->Start();
    ASSERT_TRUE(s.ok()) << s;
  }

  std::unique_ptr<TestAdapter> Other() {
    TestAdapter::Options options;
    options.capabilities = {"edits", "deletes", "files", "membership"};
    auto o = std::make_unique<TestAdapter>("alpha", "a", router_->address(),
                                           kRouterToken, options);
    o->Start();
    EXPECT_TRUE(o->WaitAttached(absl::Seconds(30)));
    return o;
  }

  // Registers the bot in a new chat `title` linked to alpha's `other_chat`
  // and starts the router, the adapter (ready) and alpha. Sets bot_, chat_.
  std::unique_ptr<TestAdapter> StartLinked(const std::string& title,
                                           const std::string& other_chat) {
    bot_ = Register();
    chat_ = fake_.CreateChat(title);
    fake_.AddToChat(chat_, bot_);
    StartRouter(Link(title, chat_, other_chat));
    StartAdapter(Config(bot_));
    auto other = Other();
    WaitReady();
    return other;
  }

  int Readyz() {
    HttpClient http;
    auto r = http.Get(adapter_->base_url() + "/readyz");
    return r.ok() ? r->status : -1;
  }

  void WaitReady() {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      if (Readyz() == 200) return;
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "adapter not ready";
  }

  Fake fake_;
  std::unique_ptr<RouterProcess> router_;
  std::unique_ptr<AdapterProcess> adapter_;
  std::string state_dir_;
  int64_t bot_ = 0;
  int64_t chat_ = 0;
};

TEST_F(Bitrix24IntegrationTest, RegisterIsIdempotentAndMakesASupervisor) {
  int64_t first = Register();
  ASSERT_GT(first, 0);
  EXPECT_EQ(Register(), first);
  auto registers = fake_.calls("imbot.v2.Bot.register");
  ASSERT_THAT(registers, SizeIs(1));
  EXPECT_EQ(registers[0].params["fields"]["type"], "supervisor");
  EXPECT_EQ(registers[0].params["fields"]["eventMode"], "fetch");
  EXPECT_EQ(registers[0].params["fields"]["botToken"], kBotToken);
}

TEST_F(Bitrix24IntegrationTest, MessagesEditsDeletesAndRepliesBothWays) {
  int64_t bot = Register();
  int64_t chat = fake_.CreateChat("Team");
  fake_.AddToChat(chat, bot);
  int64_t anna = fake_.NewUser("Anna Smith");
  int64_t boris = fake_.NewUser("Boris");
  StartRouter(Link("team", chat, "A1"));
  StartAdapter(Config(bot));
  auto other = Other();
  WaitReady();

  // Bitrix24 -> alpha: BB-code, a mention, a reply, an edit, a delete.
  fake_.AddToChat(chat, boris);
  int64_t m1 = fake_.PostMessage(
      chat, anna,
      "hi [b]all[/b], ask [USER=" + std::to_string(boris) + "]Boris[/USER] 😀");
  ASSERT_TRUE(other->WaitForCalls(2, kDeliveryWait));
  std::vector<v1::Delivery> ds = other->deliveries();
  ASSERT_TRUE(ds[0].event().has_membership()) << ds[0].DebugString();
  EXPECT_TRUE(ds[0].event().membership().joined());
  EXPECT_EQ(ds[0].event().membership().user().display_name(), "Boris");
  const v1::MessagePosted& p = ds[1].event().posted();
  EXPECT_EQ(p.text().text(), "hi all, ask @Boris 😀");
  ASSERT_THAT(p.text().spans(), SizeIs(2));
  EXPECT_EQ(p.text().spans(0).kind(), v1::Span::BOLD);
  EXPECT_EQ(p.text().spans(1).kind(), v1::Span::MENTION);
  EXPECT_EQ(p.text().spans(1).user_id(), std::to_string(boris));
  EXPECT_EQ(ds[1].sender_name(), "Anna Smith (bitrix24)");
  fake_.PostMessage(chat, boris, "a reply", m1);
  ASSERT_TRUE(other->WaitForCalls(3, kDeliveryWait));
  EXPECT_EQ(other->deliveries()[2].reply_to_target_id(),
            other->calls()[1].native_id);
  fake_.EditMessage(m1, "hi [i]everyone[/i]");
  ASSERT_TRUE(other->WaitForCalls(4, kDeliveryWait));
  EXPECT_EQ(other->deliveries()[3].event().edited().text().text(),
            "hi everyone");
  fake_.DeleteMessage(m1);
  ASSERT_TRUE(other->WaitForCalls(5, kDeliveryWait));
  EXPECT_TRUE(other->deliveries()[4].event().has_deleted());

  // alpha -> Bitrix24: a post with the sender's name, a reply to the
  // Bitrix24 message, an edit and a delete.
  std::string a1 = other->Post("A1", "from alpha");
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.messages(chat, bot).size() == 1; }));
  Fake::Message copy = fake_.messages(chat, bot)[0];
  EXPECT_EQ(copy.text, "[b]Person on alpha (alpha)[/b]: from alpha");
  int64_t m2 = fake_.PostMessage(chat, anna, "answer me");
  ASSERT_TRUE(other->WaitForCalls(6, kDeliveryWait));
  std::string m2_copy = other->calls()[5].native_id;
  // The test adapter sends its result after recording the call: replying to
  // the copy before the router stored that result would be a reply to an
  // unknown message (a plain post), as it would be for a person that fast.
  ASSERT_TRUE(router_->WaitForMetric("imbridge_router_deliveries_total",
                                     {{"platform", "alpha"}, {"result", "ok"}},
                                     6, kDeliveryWait));
  other->Post("A1", "answering", m2_copy);
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.messages(chat, bot).size() == 2; }));
  EXPECT_EQ(fake_.messages(chat, bot)[1].reply_id, m2);
  other->Edit("A1", a1, "from alpha, edited");
  ASSERT_TRUE(fake_.WaitFor([&] {
    auto m = fake_.message(copy.id);
    return m.has_value() && m->edits == 1;
  }));
  EXPECT_EQ(fake_.message(copy.id)->text,
            "[b]user-alpha (alpha)[/b]: from alpha, edited");
  other->Delete("A1", a1);
  ASSERT_TRUE(fake_.WaitFor([&] { return fake_.message(copy.id)->deleted; }));

  // A text over 20,000 characters becomes several messages, each with the
  // sender's name and within the limit.
  std::string longtext;
  for (int i = 0; i < 4000; ++i) longtext += "word😀 ";
  other->Post("A1", longtext);
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.messages(chat, bot).size() == 3; }));
  std::vector<Fake::Message> parts = fake_.messages(chat, bot);
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_TRUE(absl::StartsWith(parts[i].text,
                                 "[b]Person on alpha (alpha)[/b]: word"));
  }

  // The bot's own messages (the copies), their edits and deletes were in
  // the event queue too; none came back. Wait until the queue is drained.
  ASSERT_TRUE(fake_.WaitFor([&] { return fake_.pending_events(bot) == 0; }));
  absl::SleepFor(absl::Seconds(1));
  EXPECT_THAT(other->deliveries(), SizeIs(6));

  // A member leaving.
  fake_.RemoveFromChat(chat, boris);
  ASSERT_TRUE(other->WaitForCalls(7, kDeliveryWait));
  const v1::Event left = other->deliveries()[6].event();
  ASSERT_TRUE(left.has_membership()) << left.DebugString();
  EXPECT_FALSE(left.membership().joined());
  EXPECT_EQ(left.membership().user().id(), std::to_string(boris));
  // The inbound webhook's secret code is never logged.
  EXPECT_THAT(adapter_->ReadLog(),
              ::testing::Not(HasSubstr(fake_.options().webhook_code)));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

// The bridge's copies are known from the delivery journal, not from memory:
// after a restart, a person deleting a copy in Bitrix24 is not published.
TEST_F(Bitrix24IntegrationTest, DeleteOfACopyAfterRestartIsNotMirrored) {
  auto other = StartLinked("copies", "C1");
  const int64_t bot = bot_, chat = chat_;
  int64_t anna = fake_.NewUser("Anna");
  other->Post("C1", "from alpha");
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.messages(chat, bot).size() == 1; }));
  const int64_t copy = fake_.messages(chat, bot)[0].id;
  ASSERT_TRUE(fake_.WaitFor([&] { return fake_.pending_events(bot) == 0; }));
  ASSERT_EQ(adapter_->Terminate(), 0);
  ASSERT_TRUE(adapter_->Start().ok());
  WaitReady();

  ASSERT_TRUE(fake_.DeleteMessage(copy));
  // A person's message and its delete after it: both come through, and
  // they are the only deliveries.
  int64_t own = fake_.PostMessage(chat, anna, "marker");
  ASSERT_TRUE(fake_.DeleteMessage(own));
  ASSERT_TRUE(other->WaitForCalls(2, kDeliveryWait));
  ASSERT_TRUE(fake_.WaitFor([&] { return fake_.pending_events(bot) == 0; }));
  absl::SleepFor(absl::Seconds(1));
  std::vector<v1::Delivery> ds = other->deliveries();
  ASSERT_THAT(ds, SizeIs(2));
  EXPECT_EQ(ds[0].event().posted().text().text(), "marker");
  EXPECT_EQ(ds[1].event().deleted().message_id(), std::to_string(own));
  // The adapter did not even publish the copy's delete (the router would
  // drop it as an echo of a copy, and count it).
  absl::StatusOr<double> dropped =
      router_->Metric("imbridge_router_events_total",
                      {{"platform", "bitrix24"}, {"outcome", "dropped"}});
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(*dropped, 0);
  EXPECT_EQ(adapter_->Terminate(), 0);
}

// A copy split at 20,000 characters: an edit updates every part, and an
// edit to a shorter text removes the parts it no longer needs.
TEST_F(Bitrix24IntegrationTest, EditOfASplitCopyUpdatesEveryPart) {
  auto other = StartLinked("long", "L1");
  const int64_t bot = bot_, chat = chat_;
  auto repeat = [](const std::string& word) {
    std::string out;
    for (int i = 0; i < 9000; ++i) out += word + " ";
    return out;
  };
  std::string a1 = other->Post("L1", repeat("abcd"));
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.messages(chat, bot).size() == 3; }));
  std::vector<Fake::Message> parts = fake_.messages(chat, bot);
  // The three parts went as one batch request (one unit of the bucket).
  EXPECT_THAT(fake_.calls("batch"), SizeIs(1));
  for (const Fake::Call& c : fake_.calls("imbot.v2.Chat.Message.send")) {
    EXPECT_TRUE(c.batched);
  }

  other->Edit("L1", a1, repeat("wxyz"));
  ASSERT_TRUE(fake_.WaitFor([&] {
    for (const Fake::Message& p : parts) {
      auto m = fake_.message(p.id);
      if (!m.has_value() || m->edits != 1) return false;
    }
    return true;
  }));
  for (const Fake::Message& p : parts) {
    std::string text = fake_.message(p.id)->text;
    EXPECT_THAT(text, HasSubstr("wxyz")) << p.id;
    EXPECT_THAT(text, ::testing::Not(HasSubstr("abcd"))) << p.id;
  }
  // The three updates: one batch request.
  EXPECT_THAT(fake_.calls("batch"), SizeIs(2));

  other->Edit("L1", a1, "short now");
  ASSERT_TRUE(fake_.WaitFor([&] {
    return fake_.message(parts[0].id)->edits == 2 &&
           fake_.message(parts[1].id)->deleted &&
           fake_.message(parts[2].id)->deleted;
  }));
  EXPECT_EQ(fake_.message(parts[0].id)->text,
            "[b]user-alpha (alpha)[/b]: short now");
  EXPECT_THAT(fake_.calls("batch"), SizeIs(3));
  // Nothing of it came back to alpha.
  ASSERT_TRUE(fake_.WaitFor([&] { return fake_.pending_events(bot) == 0; }));
  absl::SleepFor(absl::Seconds(1));
  EXPECT_THAT(other->deliveries(), SizeIs(0));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

// A split copy whose batch fails part-way (a limit code on the second
// part): the part made is deleted, and the router's retry shows every part
// once, in order.
TEST_F(Bitrix24IntegrationTest, ASplitCopyFailingPartWayIsNotDoubled) {
  auto other = StartLinked("halfway", "H1");
  const int64_t bot = bot_, chat = chat_;
  std::string text;
  for (int i = 0; i < 9000; ++i) text += "abcd ";
  text += "END";
  fake_.FailNext("imbot.v2.Chat.Message.send", 1, 503, "QUERY_LIMIT_EXCEEDED",
                 /*after=*/1);
  other->Post("H1", text);
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.messages(chat, bot).size() == 3; },
                    absl::Seconds(60)));
  std::vector<Fake::Message> parts = fake_.messages(chat, bot);
  EXPECT_THAT(parts[2].text, ::testing::EndsWith("END"));
  EXPECT_THAT(parts[0].text, ::testing::Not(HasSubstr("END")));
  // The first attempt made one part and removed it again.
  auto deletes = fake_.calls("imbot.v2.Chat.Message.delete");
  ASSERT_THAT(deletes, SizeIs(1));
  // One delete goes as a plain call (a JSON number).
  auto first = fake_.message(deletes[0].params["messageId"].get<int64_t>());
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->deleted);
  absl::SleepFor(absl::Seconds(1));
  EXPECT_THAT(fake_.messages(chat, bot), SizeIs(3));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(Bitrix24IntegrationTest, FilesBothWays) {
  int64_t bot = Register();
  int64_t chat = fake_.CreateChat("Files");
  fake_.AddToChat(chat, bot);
  int64_t anna = fake_.NewUser("Anna");
  StartRouter(Link("files", chat, "F1"));
  StartAdapter(Config(bot, "", "    max_file_bytes: 200000\n"));
  auto other = Other();
  WaitReady();

  std::string pdf = "%PDF-1.4\n" + std::string(100000, 'r');
  fake_.PostFile(chat, anna, "report.pdf", pdf, "the report");
  ASSERT_TRUE(other->WaitForCalls(1, kDeliveryWait));
  const v1::MessagePosted p = other->deliveries()[0].event().posted();
  EXPECT_EQ(p.text().text(), "the report");
  ASSERT_THAT(p.attachments(), SizeIs(1));
  EXPECT_EQ(p.attachments(0).name(), "report.pdf");
  ASSERT_FALSE(p.attachments(0).blob_id().empty())
      << p.attachments(0).unavailable_reason();
  EXPECT_EQ(*other->client().GetBlob(p.attachments(0).blob_id(), 1 << 20), pdf);

  // Over max_file_bytes: a notice with name and size, nothing downloaded.
  fake_.PostFile(chat, anna, "big.bin", std::string(300000, 'b'));
  ASSERT_TRUE(other->WaitForCalls(2, kDeliveryWait));
  const v1::Attachment big =
      other->deliveries()[1].event().posted().attachments(0);
  EXPECT_EQ(big.name(), "big.bin");
  EXPECT_EQ(big.size(), 300000u);
  EXPECT_EQ(big.blob_id(), "");
  EXPECT_FALSE(big.unavailable_reason().empty());

  std::string csv = "col1,col2\n1,2\n";
  v1::BlobMeta meta;
  meta.set_name("data.csv");
  meta.set_mime_type("text/csv");
  absl::StatusOr<v1::BlobRef> ref = other->client().PutBlob(meta, csv);
  ASSERT_TRUE(ref.ok()) << ref.status();
  v1::Event post;
  post.mutable_channel()->set_chat_id("F1");
  v1::MessagePosted* posted = post.mutable_posted();
  posted->set_message_id("a-f1");
  posted->mutable_sender()->set_platform("alpha");
  posted->mutable_sender()->set_id("u1");
  posted->mutable_sender()->set_display_name("Ann");
  posted->mutable_text()->set_text("numbers");
  v1::Attachment* att = posted->add_attachments();
  att->set_blob_id(ref->blob_id());
  att->set_name("data.csv");
  att->set_mime_type("text/csv");
  att->set_size(csv.size());
  EXPECT_NE(other->Publish(post).outcome(), v1::PublishAck::FAILED);
  // The text rides on the file's upload: one message, one request.
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.messages(chat, bot).size() == 1; }));
  std::vector<Fake::Message> copies = fake_.messages(chat, bot);
  EXPECT_EQ(copies[0].text, "[b]Ann (alpha)[/b]: numbers");
  ASSERT_THAT(copies[0].file_ids, SizeIs(1));
  EXPECT_EQ(fake_.file(copies[0].file_ids[0])->name, "data.csv");
  EXPECT_EQ(fake_.file(copies[0].file_ids[0])->bytes, csv);
  EXPECT_THAT(fake_.calls("imbot.v2.Chat.Message.send"), SizeIs(0));

  // An edit updates that message's text; the file stays.
  v1::Event edit;
  edit.mutable_channel()->set_chat_id("F1");
  edit.mutable_edited()->set_message_id("a-f1");
  *edit.mutable_edited()->mutable_editor() = posted->sender();
  edit.mutable_edited()->mutable_text()->set_text("more numbers");
  EXPECT_NE(other->Publish(edit).outcome(), v1::PublishAck::FAILED);
  ASSERT_TRUE(fake_.WaitFor([&] {
    return fake_.message(copies[0].id)->text ==
           "[b]Ann (alpha)[/b]: more numbers";
  }));
  EXPECT_THAT(fake_.message(copies[0].id)->file_ids, SizeIs(1));

  // A file with a reply: the text goes first with replyId, the file after.
  v1::Event reply = post;
  reply.mutable_posted()->set_message_id("a-f2");
  reply.mutable_posted()->set_reply_to_message_id("a-f1");
  reply.mutable_posted()->mutable_text()->set_text("see above");
  EXPECT_NE(other->Publish(reply).outcome(), v1::PublishAck::FAILED);
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.messages(chat, bot).size() == 3; }));
  copies = fake_.messages(chat, bot);
  EXPECT_EQ(copies[1].text, "[b]Ann (alpha)[/b]: see above");
  EXPECT_EQ(copies[1].reply_id, copies[0].id);
  EXPECT_THAT(copies[2].file_ids, SizeIs(1));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(Bitrix24IntegrationTest, QueryLimitStormThenEverythingInOrder) {
  int64_t bot = Register();
  int64_t chat = fake_.CreateChat("Storm");
  fake_.AddToChat(chat, bot);
  int64_t anna = fake_.NewUser("Anna");
  StartRouter(Link("storm", chat, "S1"));
  StartAdapter(Config(bot));
  auto other = Other();
  WaitReady();

  // A portal far slower than the adapter's pace: most calls get 503.
  fake_.SetBucket(4, 2);
  fake_.FailNext("imbot.v2.Chat.Message.send", 3, 503, "QUERY_LIMIT_EXCEEDED");
  std::vector<std::string> out, in;
  for (int i = 0; i < 8; ++i) {
    out.push_back(absl::StrCat("out ", i));
    in.push_back(absl::StrCat("in ", i));
    other->Post("S1", out.back());
    fake_.PostMessage(chat, anna, in.back());
  }
  ASSERT_TRUE(fake_.WaitFor(
      [&] { return fake_.messages(chat, bot).size() == out.size(); },
      absl::Seconds(120)));
  ASSERT_TRUE(other->WaitForCalls(in.size(), absl::Seconds(120)));
  std::vector<std::string> expected;
  for (const std::string& t : out) {
    expected.push_back("[b]Person on alpha (alpha)[/b]: " + t);
  }
  EXPECT_EQ(Texts(fake_.messages(chat, bot)), expected);
  EXPECT_EQ(PostedTexts(other->deliveries()), in);
  int limited = 0;
  for (const Fake::Call& c : fake_.calls()) limited += c.status == 503;
  EXPECT_GT(limited, 3);
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(Bitrix24IntegrationTest, ExpiredTokenIsRefreshedAndPersisted) {
  std::string oauth = OAuthConfig(fake_.refresh_token());
  int64_t bot = Register(oauth);
  ASSERT_GT(bot, 0);
  int64_t chat = fake_.CreateChat("OAuth");
  fake_.AddToChat(chat, bot);
  int64_t anna = fake_.NewUser("Anna");
  StartRouter(Link("oauth", chat, "O1"));
  StartAdapter(Config(bot, oauth));
  auto other = Other();
  WaitReady();

  fake_.ExpireAccessToken();
  fake_.PostMessage(chat, anna, "after expiry");
  ASSERT_TRUE(other->WaitForCalls(1, kDeliveryWait));
  EXPECT_EQ(fake_.refreshes(), 1);
  other->Post("O1", "outbound too");
  ASSERT_TRUE(
      fake_.WaitFor([&] { return fake_.messages(chat, bot).size() == 1; }));
  EXPECT_EQ(Readyz(), 200);

  // A restart uses the refreshed pair from the state, not the config's
  // (whose refresh token no longer works).
  EXPECT_EQ(adapter_->Terminate(), 0);
  fake_.ExpireAccessToken();
  ASSERT_TRUE(adapter_->Start().ok());
  fake_.PostMessage(chat, anna, "after restart");
  ASSERT_TRUE(other->WaitForCalls(2, kDeliveryWait));
  EXPECT_EQ(fake_.refreshes(), 2);
  std::string log = adapter_->ReadLog();
  EXPECT_THAT(log, ::testing::Not(HasSubstr(fake_.access_token())));
  EXPECT_THAT(log, ::testing::Not(HasSubstr(fake_.refresh_token())));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(Bitrix24IntegrationTest, FailedRefreshMakesTheAdapterUnready) {
  int64_t bot = Register();  // Through the webhook; the adapter uses OAuth.
  std::string oauth = OAuthConfig("revoked-refresh-token");
  int64_t chat = fake_.CreateChat("Revoked");
  fake_.AddToChat(chat, bot);
  StartRouter(Link("revoked", chat, "R1"));
  StartAdapter(Config(bot, oauth));
  auto other = Other();
  WaitReady();
  fake_.ExpireAccessToken();
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (Readyz() != 503 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(Readyz(), 503);
  std::string log = adapter_->ReadLog();
  EXPECT_THAT(log, HasSubstr("invalid_grant"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("revoked-refresh-token")));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(Bitrix24IntegrationTest, FetchOffsetSurvivesKill9) {
  int64_t bot = Register();
  int64_t chat = fake_.CreateChat("Crash");
  fake_.AddToChat(chat, bot);
  int64_t anna = fake_.NewUser("Anna");
  StartRouter(Link("crash", chat, "K1"));
  StartAdapter(Config(bot));
  auto other = Other();
  WaitReady();
  std::vector<std::string> texts;
  for (int i = 0; i < 10; ++i) {
    texts.push_back(absl::StrCat("before ", i));
    fake_.PostMessage(chat, anna, texts.back());
  }
  // Killed while the events are being fetched and published.
  ASSERT_TRUE(other->WaitForCalls(3, kDeliveryWait));
  adapter_->Kill();
  int64_t offset_at_kill = fake_.last_offset(bot);
  const size_t calls_before = fake_.calls("imbot.v2.Event.get").size();
  for (int i = 0; i < 10; ++i) {
    texts.push_back(absl::StrCat("after ", i));
    fake_.PostMessage(chat, anna, texts.back());
  }
  ASSERT_TRUE(adapter_->Start().ok());
  ASSERT_TRUE(other->WaitForCalls(texts.size(), kDeliveryWait));
  ASSERT_TRUE(fake_.WaitFor([&] { return fake_.pending_events(bot) == 0; }));
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(PostedTexts(other->deliveries()), texts);
  // The restarted adapter resumed from its saved offset (not from the
  // start of the queue).
  std::vector<Fake::Call> gets = fake_.calls("imbot.v2.Event.get");
  ASSERT_GT(gets.size(), calls_before);
  int64_t resumed = gets[calls_before].params["offset"].get<int64_t>();
  EXPECT_GT(resumed, 0);
  EXPECT_GE(resumed, offset_at_kill);
  EXPECT_EQ(adapter_->Terminate(), 0);
}

// Webhook mode: Bitrix24's form-urlencoded POSTs with the application token.
TEST_F(Bitrix24IntegrationTest,
       WebhookModeStoresGenuineEventsAndRefusesForged) {
  int64_t bot = Register();
  int64_t chat = fake_.CreateChat("Hooked");
  int64_t anna = fake_.NewUser("Anna");
  StartRouter(Link("hooked", chat, "W1"));
  StartAdapter(Config(
      bot, "", "    mode: webhook\n    application_token: app-token-123\n"));
  auto other = Other();
  WaitReady();
  const std::string url = adapter_->base_url() + "/bitrix24/main";
  HttpClient http;
  auto post = [&](const HttpHeaderList& fields,
                  const std::string& type =
                      "application/x-www-form-urlencoded") {
    HttpClientRequest req;
    req.method = "POST";
    req.url = url;
    req.headers = {{"Content-Type", type}};
    req.body = HttpClient::FormEncode(fields);
    auto r = http.Send(req);
    return r.ok() ? r->status : -1;
  };
  auto message = [&](const std::string& id, const std::string& text,
                     const std::string& token) {
    return HttpHeaderList{{"event", "ONIMBOTV2MESSAGEADD"},
                          {"data[message][id]", id},
                          {"data[message][chatId]", std::to_string(chat)},
                          {"data[message][authorId]", std::to_string(anna)},
                          {"data[message][text]", text},
                          {"data[message][isSystem]", ""},
                          {"data[chat][id]", std::to_string(chat)},
                          {"data[chat][dialogId]", absl::StrCat("chat", chat)},
                          {"data[user][id]", std::to_string(anna)},
                          {"data[user][name]", "Anna"},
                          {"ts", "1700000000"},
                          {"auth[application_token]", token},
                          {"auth[domain]", "portal.example"}};
  };

  // Forged: a wrong or missing application token reaches nothing.
  EXPECT_EQ(post(message("901", "forged", "wrong-token")), 401);
  EXPECT_EQ(post(message("902", "forged", "")), 401);
  // Not a form: 415 from the HTTP server. Malformed: an unbalanced key, no
  // event.
  EXPECT_EQ(post(message("903", "x", "app-token-123"), "application/json"),
            415);
  EXPECT_EQ(post({{"data[message", "1"},
                  {"auth[application_token]", "app-token-123"}}),
            400);
  EXPECT_EQ(post({{"auth[application_token]", "app-token-123"}}), 400);
  // Over 1 MiB: 413.
  EXPECT_EQ(post(message("904", std::string(2 << 20, 'x'), "app-token-123")),
            413);
  // An unknown event: 200, counted, nothing published.
  EXPECT_EQ(post({{"event", "ONIMBOTV2REACTIONCHANGE"},
                  {"data[message][id]", "5"},
                  {"auth[application_token]", "app-token-123"}}),
            200);
  // The genuine one: 200 once stored; sent twice, published once.
  EXPECT_EQ(post(message("905", "hello [b]web[/b]", "app-token-123")), 200);
  EXPECT_EQ(post(message("905", "hello [b]web[/b]", "app-token-123")), 200);
  ASSERT_TRUE(other->WaitForCalls(1, kDeliveryWait));
  absl::SleepFor(absl::Seconds(1));
  EXPECT_THAT(PostedTexts(other->deliveries()), ElementsAre("hello web"));
  auto metrics = http.Get(adapter_->base_url() + "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body,
              HasSubstr("imbridge_bitrix24_ignored_events_total{type="
                        "\"ONIMBOTV2REACTIONCHANGE\"} 1"));
  // Types are labels, but not without bound: 20 more made-up types and one
  // that is no name leave at most 16 series and "other".
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(post({{"event", absl::StrCat("ONMADEUPEVENT", i)},
                    {"data[message][id]", "6"},
                    {"auth[application_token]", "app-token-123"}}),
              200);
  }
  EXPECT_EQ(post({{"event", "not a {name}"},
                  {"data[message][id]", "7"},
                  {"auth[application_token]", "app-token-123"}}),
            200);
  metrics = http.Get(adapter_->base_url() + "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body,
              HasSubstr("imbridge_bitrix24_ignored_events_total{type="
                        "\"other\"} 6"));
  const std::vector<absl::string_view> lines =
      absl::StrSplit(metrics->body, '\n');
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](absl::string_view line) {
                            return absl::StartsWith(
                                line,
                                "imbridge_bitrix24_ignored_events_total{");
                          }),
            17);
  EXPECT_THAT(adapter_->ReadLog(), ::testing::Not(HasSubstr("app-token-123")));
  // No Event.get in webhook mode.
  EXPECT_THAT(fake_.calls("imbot.v2.Event.get"), SizeIs(0));
  EXPECT_EQ(adapter_->Terminate(), 0);
}

TEST_F(Bitrix24IntegrationTest, InvalidConfigNamesTheField) {
  AdapterProcess bad(kBinary, Config(0));
  absl::Status s = bad.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(bad.ReadLog(), HasSubstr("accounts[0].bot_id"));
}

}  // namespace
}  // namespace imbridge::testing
