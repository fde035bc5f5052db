// End-to-end tests of imbridge-adapter-slack: the real router and adapter
// binaries, a fake Slack workspace (emulators/slack) and a TestAdapter on
// another platform ("beta", the peer) as the other side of the link.

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/http/http_client.h"
#include "common/http/http_server.h"
#include "emulators/slack/fake_slack.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/adapter_process.h"
#include "tests/integration/router_process.h"
#include "tests/integration/test_adapter.h"

namespace imbridge::testing {
namespace {

using fakes::FakeSlack;
using fakes::FakeSlackMessage;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kToken[] = "slack-integration-token-0123456789";
constexpr char kAdapterBinary[] = "adapters/slack/imbridge-adapter-slack";

// A message by Boris, a person on the peer messenger "beta".
v1::Event BorisPost(const std::string& id, const std::string& text,
                    const std::string& thread_root = "") {
  v1::Event e;
  auto* p = e.mutable_posted();
  p->set_message_id(id);
  p->mutable_sender()->set_platform("beta");
  p->mutable_sender()->set_id("bu1");
  p->mutable_sender()->set_display_name("Boris");
  p->mutable_sender()->set_avatar_url("https://beta.example/boris.png");
  p->mutable_text()->set_text(text);
  p->set_thread_root_id(thread_root);
  return e;
}

// Links Slack channel C<i> with beta chat B<i>, for i in 1..chats.
std::string RouterConfig(int chats = 1) {
  std::string links;
  for (int i = 1; i <= chats; ++i) {
    absl::StrAppend(&links, "  - name: office", i == 1 ? "" : absl::StrCat(i),
                    "\n    members:\n",
                    "      - {platform: slack, account: "
                    "work, chat_id: C",
                    i, "}\n", "      - {platform: beta, account: b, chat_id: B",
                    i, "}\n");
  }
  return absl::StrCat("adapters:\n  - {name: tests, token: ", kToken, "}\n",
                      "links:\n", links, R"(store: {durability: normal}
dispatch: {initial_backoff_ms: 100, max_backoff_ms: 2000}
)");
}

std::string AdapterConfig(const FakeSlack& slack, const std::string& router,
                          bool socket_mode = false,
                          const std::string& state_dir = "") {
  std::string mode = socket_mode ? "socket" : "http";
  return absl::StrCat(
      "router: {address: \"", router, "\", token: ", kToken, "}\n",
      state_dir.empty() ? "" : absl::StrCat("state_dir: \"", state_dir, "\"\n"),
      "log_level: debug\naccounts:\n  - name: work\n", "    mode: ", mode, "\n",
      "    bot_token: ", slack.options().bot_token, "\n",
      "    signing_secret: ", slack.options().signing_secret, "\n",
      "    app_token: ", slack.options().app_token, "\n",
      "    api_base_url: \"", slack.api_base_url(), "\"\n",
      "    presence_poll_interval_seconds: 1\n",
      "    presence_calls_per_minute: 600\n", "    messages_per_second: 20\n");
}

std::vector<FakeSlackMessage> Live(const std::vector<FakeSlackMessage>& all) {
  std::vector<FakeSlackMessage> out;
  for (const auto& m : all) {
    if (!m.deleted) out.push_back(m);
  }
  return out;
}

class SlackIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(slack_.Start().ok());
    slack_.AddChannel("C1", "general");
    slack_.AddUser("U1", "Ann", "https://slack.example/ann.png");
    slack_.AddUser("U2", "Bob");
    router_ = std::make_unique<RouterProcess>(RouterConfig());
    ASSERT_TRUE(router_->Start().ok()) << router_->ReadLog();
  }

  // Starts the adapter and waits until /readyz says it is attached and
  // identified.
  void StartAdapter(bool socket_mode = false, bool wait_ready = true) {
    if (adapter_ == nullptr) {
      adapter_ = std::make_unique<AdapterProcess>(
          kAdapterBinary,
          AdapterConfig(slack_, router_->address(), socket_mode, state_dir_));
    }
    absl::Status started = adapter_->Start();
    ASSERT_TRUE(started.ok()) << started << "\n" << adapter_->ReadLog();
    slack_.SetEventsUrl(
        absl::StrCat(adapter_->base_url(), "/slack/work/events"));
    if (!wait_ready) return;
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (true) {
      auto r = http_.Get(absl::StrCat(adapter_->base_url(), "/readyz"));
      if (r.ok() && r->status == 200) break;
      ASSERT_LT(absl::Now(), deadline) << adapter_->ReadLog();
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  // The other side of the link: a messenger "beta" simulated in memory that
  // records every delivery.
  void StartPeer() {
    peer_ =
        std::make_unique<TestAdapter>("beta", "b", router_->address(), kToken);
    peer_->Start();
    ASSERT_TRUE(peer_->WaitAttached(absl::Seconds(30)));
  }

  // A person on beta does something in chat B1.
  v1::PublishAck PeerPublish(v1::Event e) {
    e.mutable_channel()->set_chat_id("B1");
    return peer_->Publish(std::move(e));
  }

  // What the peer received apart from presence (which the poller adds at
  // its own pace).
  std::vector<v1::Delivery> Relayed() {
    std::vector<v1::Delivery> out;
    for (auto& d : peer_->deliveries()) {
      if (!d.event().has_presence()) out.push_back(std::move(d));
    }
    return out;
  }
  bool WaitForRelayed(size_t n) {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (Relayed().size() < n) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return true;
  }

  // The posts the peer received, by text.
  std::vector<std::string> PeerPosts() {
    std::vector<std::string> out;
    for (const auto& d : peer_->deliveries()) {
      if (d.event().has_posted())
        out.push_back(d.event().posted().text().text());
    }
    return out;
  }

  FakeSlack slack_{FakeSlack::Options()};
  // The adapter's state_dir ("": none, the journal is in memory).
  std::string state_dir_;
  std::unique_ptr<RouterProcess> router_;
  std::unique_ptr<AdapterProcess> adapter_;
  std::unique_ptr<TestAdapter> peer_;
  HttpClient http_;
};

TEST_F(SlackIntegrationTest, SlackMessagesEditsThreadsDeletesReachThePeer) {
  StartPeer();
  StartAdapter();
  auto root = slack_.PostMessage("C1", "U1", "hello *team* <@U2>");
  EXPECT_EQ(root.http_status, 200);
  ASSERT_TRUE(WaitForRelayed(1));
  v1::Delivery d = Relayed()[0];
  EXPECT_EQ(d.target().chat_id(), "B1");
  EXPECT_EQ(d.sender_name(), "Ann (slack)");
  EXPECT_EQ(d.event().key(), absl::StrCat("slack:work:", root.event_id));
  EXPECT_EQ(d.event().posted().message_id(), root.ts);
  EXPECT_EQ(d.event().posted().text().text(), "hello team @Bob");
  EXPECT_EQ(d.event().posted().sender().avatar_url(),
            "https://slack.example/ann.png");

  // A reply in the thread points at the peer's copy of the root.
  auto reply = slack_.PostMessage("C1", "U2", "in thread", root.ts);
  EXPECT_EQ(reply.http_status, 200);
  ASSERT_TRUE(WaitForRelayed(2));
  EXPECT_EQ(Relayed()[1].event().posted().thread_root_id(), root.ts);
  const std::string root_copy = peer_->CopyOf(root.ts);
  ASSERT_FALSE(root_copy.empty());
  EXPECT_EQ(Relayed()[1].thread_root_target_id(), root_copy);

  // A change that leaves the text as it was (reply count) is not an edit.
  EXPECT_EQ(slack_.TouchMessage("C1", root.ts).http_status, 200);
  // A real edit is.
  EXPECT_EQ(slack_.EditMessage("C1", root.ts, "hello _all_").http_status, 200);
  ASSERT_TRUE(WaitForRelayed(3));
  v1::Delivery edit = Relayed()[2];
  ASSERT_TRUE(edit.event().has_edited());
  EXPECT_EQ(edit.event().edited().text().text(), "hello all");
  EXPECT_THAT(edit.target_message_ids(), ElementsAre(root_copy));

  EXPECT_EQ(slack_.DeleteMessage("C1", reply.ts).http_status, 200);
  ASSERT_TRUE(WaitForRelayed(4));
  EXPECT_TRUE(Relayed()[3].event().has_deleted());
  ASSERT_FALSE(peer_->CopyOf(reply.ts).empty());
  EXPECT_THAT(Relayed()[3].target_message_ids(),
              ElementsAre(peer_->CopyOf(reply.ts)));

  EXPECT_EQ(slack_.JoinChannel("C1", "U2").http_status, 200);
  ASSERT_TRUE(WaitForRelayed(5));
  EXPECT_TRUE(Relayed()[4].event().membership().joined());
  EXPECT_EQ(Relayed()[4].event().membership().user().display_name(), "Bob");
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_THAT(Relayed(), SizeIs(5));
}

TEST_F(SlackIntegrationTest, PeerMessagesEditsThreadsDeletesReachSlack) {
  StartPeer();
  StartAdapter();
  v1::Event post = BorisPost("b-1", "hi <all> & welcome");
  post.mutable_posted()->mutable_text()->add_spans()->set_kind(v1::Span::BOLD);
  post.mutable_posted()->mutable_text()->mutable_spans(0)->set_offset(0);
  post.mutable_posted()->mutable_text()->mutable_spans(0)->set_length(2);
  EXPECT_EQ(PeerPublish(post).outcome(), v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(slack_.WaitForMessages(
      "C1", [](const auto& ms) { return Live(ms).size() == 1; }));
  FakeSlackMessage copy = slack_.Messages("C1")[0];
  EXPECT_EQ(copy.text, "*hi* &lt;all&gt; &amp; welcome");
  EXPECT_EQ(copy.username, "Boris (beta)");
  EXPECT_EQ(copy.icon_url, "https://beta.example/boris.png");
  EXPECT_EQ(copy.bot_id, slack_.options().bot_id);

  // A reply in the peer's thread goes into the Slack thread of the copy.
  EXPECT_EQ(PeerPublish(BorisPost("b-2", "threaded", "b-1")).outcome(),
            v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(slack_.WaitForMessages(
      "C1", [](const auto& ms) { return Live(ms).size() == 2; }));
  EXPECT_EQ(slack_.Messages("C1")[1].thread_ts, copy.ts);

  v1::Event edit;
  edit.mutable_edited()->set_message_id("b-1");
  edit.mutable_edited()->mutable_text()->set_text("edited");
  EXPECT_EQ(PeerPublish(edit).outcome(), v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(slack_.WaitForMessages("C1", [](const auto& ms) {
    return !ms.empty() && ms[0].text == "edited";
  }));

  v1::Event del;
  del.mutable_deleted()->set_message_id("b-1");
  EXPECT_EQ(PeerPublish(del).outcome(), v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(slack_.WaitForMessages(
      "C1", [](const auto& ms) { return !ms.empty() && ms[0].deleted; }));

  // Slack reported each of the bridge's own posts, edits and deletes back
  // (echoes); none reached the peer.
  absl::SleepFor(absl::Seconds(1));
  EXPECT_THAT(peer_->deliveries(), SizeIs(0));
  EXPECT_THAT(slack_.Calls("chat.postMessage"), SizeIs(2));
}

// The texts of the bridge's posts in `channel`.
std::vector<std::string> BotTexts(const FakeSlack& slack,
                                  const std::string& channel) {
  std::vector<std::string> out;
  for (const auto& m : slack.Messages(channel)) {
    if (m.bot_id == slack.options().bot_id && !m.deleted) out.push_back(m.text);
  }
  return out;
}

// kill -9 of the adapter while 20 sends are in flight (Slack has taken some
// posts but not answered yet), then a restart: the journal and Slack's
// message metadata make each message appear exactly once.
TEST_F(SlackIntegrationTest, KilledWhileSendingPostsEachMessageExactlyOnce) {
  constexpr int kChats = 4;
  constexpr int kMessages = 20;
  router_ = std::make_unique<RouterProcess>(RouterConfig(kChats));
  ASSERT_TRUE(router_->Start().ok()) << router_->ReadLog();
  for (int c = 2; c <= kChats; ++c) {
    slack_.AddChannel(absl::StrCat("C", c), absl::StrCat("room", c));
  }
  state_dir_ = MakeTempDir("slack-state");
  // Slack stores each post at once but answers it late, so that posts are
  // in flight when the adapter dies.
  slack_.DelayAnswers("chat.postMessage", absl::Milliseconds(1500));
  StartPeer();
  StartAdapter();
  for (int i = 0; i < kMessages; ++i) {
    peer_->Post(absl::StrCat("B", i % kChats + 1),
                absl::StrFormat("crash %02d", i));
  }
  auto posted = [&] {
    size_t n = 0;
    for (int c = 1; c <= kChats; ++c) {
      n += BotTexts(slack_, absl::StrCat("C", c)).size();
    }
    return n;
  };
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (posted() < 6 || slack_.delayed_answers_pending() == 0) {
    ASSERT_LT(absl::Now(), deadline) << adapter_->ReadLog();
    absl::SleepFor(absl::Milliseconds(10));
  }
  adapter_->Kill();
  const size_t posted_at_kill = posted();
  ASSERT_LT(posted_at_kill, static_cast<size_t>(kMessages));

  slack_.DelayAnswers("chat.postMessage", absl::ZeroDuration());
  StartAdapter();
  // Every delivery's result reached the router: nothing more is posted.
  deadline = absl::Now() + absl::Seconds(90);
  while (true) {
    auto ok = router_->Metric("imbridge_router_deliveries_total",
                              {{"platform", "slack"}, {"result", "ok"}});
    if (ok.ok() && *ok >= kMessages) break;
    ASSERT_LT(absl::Now(), deadline) << adapter_->ReadLog();
    absl::SleepFor(absl::Milliseconds(50));
  }
  for (int i = 0; i < kMessages; ++i) {
    std::string text = absl::StrFormat("crash %02d", i);
    std::vector<std::string> texts =
        BotTexts(slack_, absl::StrCat("C", i % kChats + 1));
    EXPECT_EQ(std::count(texts.begin(), texts.end(), text), 1) << text;
  }
  EXPECT_EQ(posted(), static_cast<size_t>(kMessages));
  // The posts Slack had taken without answering were found by their
  // metadata, not posted again.
  EXPECT_THAT(slack_.Calls("conversations.history"), Not(IsEmpty()));
  EXPECT_THAT(adapter_->ReadLog(), HasSubstr("reconciled a step left open"));
}

TEST_F(SlackIntegrationTest, FilesInBothDirections) {
  StartPeer();
  StartAdapter();
  std::string bytes = "\x89PNG fake image bytes \x00\x01\x02";
  bytes.append(100000, 'x');
  auto up =
      slack_.UploadFile("C1", "U1", "cat.png", "image/png", bytes, "a cat");
  EXPECT_EQ(up.http_status, 200);
  ASSERT_TRUE(peer_->WaitForCalls(1));
  const v1::Delivery first = peer_->deliveries()[0];
  const v1::MessagePosted& p = first.event().posted();
  EXPECT_EQ(p.text().text(), "a cat");
  ASSERT_EQ(p.attachments_size(), 1);
  EXPECT_EQ(p.attachments(0).name(), "cat.png");
  EXPECT_EQ(p.attachments(0).kind(), v1::Attachment::IMAGE);
  ASSERT_FALSE(p.attachments(0).blob_id().empty())
      << p.attachments(0).unavailable_reason();
  auto blob = peer_->client().GetBlob(p.attachments(0).blob_id(), 1 << 20);
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_EQ(*blob, bytes);
  auto downloads = slack_.Calls("file.download");
  ASSERT_THAT(downloads, SizeIs(1));
  EXPECT_EQ(downloads[0].token, slack_.options().bot_token);

  // Peer -> Slack: the external upload flow into the thread of a message.
  EXPECT_EQ(PeerPublish(BorisPost("b-root", "root")).outcome(),
            v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(slack_.WaitForMessages("C1", [](const auto& ms) {
    return ms.size() == 2;  // Ann's upload, the copy of "root".
  }));
  std::string root_ts = slack_.Messages("C1")[1].ts;
  v1::BlobMeta meta;
  meta.set_name("report.pdf");
  meta.set_mime_type("application/pdf");
  std::string pdf = "%PDF-1.4 fake report";
  auto ref = peer_->client().PutBlob(meta, pdf);
  ASSERT_TRUE(ref.ok()) << ref.status();
  v1::Event file = BorisPost("b-file", "the report", "b-root");
  auto* a = file.mutable_posted()->add_attachments();
  a->set_blob_id(ref->blob_id());
  a->set_name("report.pdf");
  a->set_mime_type("application/pdf");
  a->set_size(pdf.size());
  EXPECT_EQ(PeerPublish(file).outcome(), v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(slack_.WaitForCalls("files.completeUploadExternal", 1));
  auto get = slack_.Calls("files.getUploadURLExternal");
  ASSERT_THAT(get, SizeIs(1));
  EXPECT_EQ(get[0].args["filename"], "report.pdf");
  EXPECT_EQ(get[0].args["length"], std::to_string(pdf.size()));
  auto complete = slack_.Calls("files.completeUploadExternal")[0];
  EXPECT_EQ(complete.args["channel_id"], "C1");
  EXPECT_EQ(complete.args["thread_ts"], root_ts);
  std::string file_id =
      nlohmann::json::parse(complete.args["files"].get<std::string>())[0]["id"];
  auto stored = slack_.File(file_id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->content, pdf);
  EXPECT_EQ(stored->channel, "C1");
  EXPECT_EQ(stored->initial_comment, "*Boris (beta)*");
  // The text went as a message in the same thread, with the sender's name.
  ASSERT_TRUE(slack_.WaitForMessages("C1", [](const auto& ms) {
    for (const auto& m : ms) {
      if (m.text == "the report") return true;
    }
    return false;
  }));

  // Deleting it removes the message and the file.
  v1::Event del;
  del.mutable_deleted()->set_message_id("b-file");
  EXPECT_EQ(PeerPublish(del).outcome(), v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(slack_.WaitForCalls("files.delete", 1));
  EXPECT_EQ(slack_.Calls("files.delete")[0].args["file"], file_id);
  EXPECT_TRUE(slack_.File(file_id)->deleted);
}

// Slack sends event callbacks over several connections at once (the fake
// sends them one by one, so the test sends them itself): a message with a
// 3 MB file whose download takes 500 ms, then 50 ms later a text in the same
// channel. On the other side the file's copy comes first.
TEST_F(SlackIntegrationTest, AMessageWithASlowFileIsNotOvertaken) {
  StartPeer();
  StartAdapter();
  const std::string events_url =
      absl::StrCat(adapter_->base_url(), "/slack/work/events");
  // The fake only records the callbacks; the test delivers them.
  slack_.SetEventsUrl("");
  std::string bytes(3 << 20, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<char>((i * 7919) % 251);
  }
  auto up = slack_.UploadFile("C1", "U1", "big.bin", "application/octet-stream",
                              bytes, "the big file");
  auto text = slack_.PostMessage("C1", "U2", "right after");
  slack_.DelayDownloads(absl::Milliseconds(500));
  fakes::SlackEventsSender sender(events_url, slack_.options().signing_secret);
  int file_status = 0;
  std::thread first([&] {
    auto r = sender.Send(slack_.CallbackBody(up.event_id));
    file_status = r.ok() ? r->status : -1;
  });
  absl::SleepFor(absl::Milliseconds(50));
  auto r = sender.Send(slack_.CallbackBody(text.event_id));
  EXPECT_EQ(r.ok() ? r->status : -1, 200);
  first.join();
  EXPECT_EQ(file_status, 200);

  ASSERT_TRUE(WaitForRelayed(2)) << adapter_->ReadLog();
  EXPECT_THAT(PeerPosts(), ElementsAre("the big file", "right after"));
  const std::vector<v1::Delivery> relayed = Relayed();
  const v1::MessagePosted& p = relayed[0].event().posted();
  ASSERT_EQ(p.attachments_size(), 1);
  auto blob = peer_->client().GetBlob(p.attachments(0).blob_id(), 4 << 20);
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_TRUE(*blob == bytes);
}

TEST_F(SlackIntegrationTest, FileTokenIsNotSentAfterARedirectElsewhere) {
  // Another host that records what it was sent.
  HttpServer elsewhere{HttpServer::Options()};
  absl::Mutex mu;
  std::vector<std::string> authorizations;
  elsewhere.HandlePrefix(
      "GET", "/", [&](HttpRequest r, std::shared_ptr<Responder> w) {
        {
          absl::MutexLock lock(&mu);
          authorizations.push_back(std::string(r.Header("Authorization")));
        }
        w->Respond(200, "application/octet-stream", "moved bytes");
      });
  ASSERT_TRUE(elsewhere.Start().ok());
  StartPeer();
  StartAdapter();
  // Upload without delivering the event, redirect the file's download to
  // the other host, then deliver the event (as Slack's retry).
  slack_.SetEventsUrl("");
  auto up = slack_.UploadFile("C1", "U1", "moved.bin",
                              "application/octet-stream", "original bytes");
  std::string file_id;
  for (const auto& m : slack_.Messages("C1")) {
    if (m.ts == up.ts) file_id = m.file_ids[0];
  }
  ASSERT_FALSE(file_id.empty());
  slack_.RedirectFile(
      file_id,
      absl::StrCat("http://127.0.0.1:", elsewhere.port(), "/moved.bin"));
  slack_.SetEventsUrl(absl::StrCat(adapter_->base_url(), "/slack/work/events"));
  EXPECT_EQ(slack_.Redeliver(up.event_id, 1), 200);
  ASSERT_TRUE(peer_->WaitForCalls(1));
  // The fake (a trusted file host) got the token; the other host did not.
  EXPECT_EQ(slack_.Calls("file.download").back().token,
            slack_.options().bot_token);
  absl::MutexLock lock(&mu);
  ASSERT_THAT(authorizations, SizeIs(1));
  EXPECT_EQ(authorizations[0], "");
  elsewhere.Stop();
}

TEST_F(SlackIntegrationTest, SameEventThreeTimesIsMirroredOnce) {
  StartPeer();
  StartAdapter();
  auto sent = slack_.PostMessage("C1", "U1", "only once");
  EXPECT_EQ(sent.http_status, 200);
  EXPECT_EQ(slack_.Redeliver(sent.event_id, 1, "http_timeout"), 200);
  EXPECT_EQ(slack_.Redeliver(sent.event_id, 2, "http_error"), 200);
  ASSERT_TRUE(peer_->WaitForCalls(1));
  absl::SleepFor(absl::Seconds(1));
  EXPECT_THAT(PeerPosts(), ElementsAre("only once"));
  // users.info was asked once for the sender (cached), not per retry.
  EXPECT_THAT(slack_.Calls("users.info"), SizeIs(1));
}

TEST_F(SlackIntegrationTest, RateLimitedThenSucceeds) {
  StartPeer();
  StartAdapter();
  slack_.FailNext("chat.postMessage", 1, 429, "ratelimited", 1);
  absl::Time start = absl::Now();
  EXPECT_EQ(PeerPublish(BorisPost("b-1", "patience")).outcome(),
            v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(slack_.WaitForMessages(
      "C1", [](const auto& ms) { return Live(ms).size() == 1; }));
  // The retry waited for Retry-After (1 s).
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(900));
  EXPECT_THAT(slack_.Calls("chat.postMessage"), SizeIs(2));
  EXPECT_EQ(slack_.Messages("C1")[0].text, "patience");
}

TEST_F(SlackIntegrationTest, PermanentErrorIsNotRetried) {
  StartPeer();
  StartAdapter();
  slack_.FailNext("chat.postMessage", 1, 200, "channel_not_found");
  EXPECT_EQ(PeerPublish(BorisPost("b-1", "lost")).outcome(),
            v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(slack_.WaitForCalls("chat.postMessage", 1));
  absl::SleepFor(absl::Seconds(2));
  EXPECT_THAT(slack_.Calls("chat.postMessage"), SizeIs(1));
}

TEST_F(SlackIntegrationTest, UrlVerificationAndBadInput) {
  StartAdapter();
  fakes::SlackEventsSender sender = slack_.sender();
  auto challenge = sender.SendUrlVerification(
      "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
  ASSERT_TRUE(challenge.ok());
  EXPECT_EQ(challenge->status, 200);
  EXPECT_EQ(nlohmann::json::parse(challenge->body)["challenge"],
            "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");

  std::string body =
      R"({"type":"event_callback","event_id":"EvBad","event":{"type":"message","channel":"C1","user":"U1","text":"x","ts":"1.0"}})";
  fakes::SlackEventsSender::Options forged;
  forged.secret = "not-the-signing-secret";
  auto refused = sender.Send(body, forged);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 401);
  // Error answers carry the adapters' one JSON error body.
  EXPECT_EQ(nlohmann::json::parse(refused->body)["error"]["code"],
            "unauthenticated");
  fakes::SlackEventsSender::Options stale;
  stale.timestamp = absl::ToUnixSeconds(absl::Now()) - 301;
  EXPECT_EQ(sender.Send(body, stale)->status, 401);
  fakes::SlackEventsSender::Options no_signature;
  no_signature.omit_signature = true;
  EXPECT_EQ(sender.Send(body, no_signature)->status, 401);
  fakes::SlackEventsSender::Options no_timestamp;
  no_timestamp.omit_timestamp = true;
  EXPECT_EQ(sender.Send(body, no_timestamp)->status, 401);
  // A tampered body with the original's signature.
  HttpClientRequest tampered;
  tampered.method = "POST";
  tampered.url = sender.url();
  int64_t now = absl::ToUnixSeconds(absl::Now());
  tampered.headers = {
      {"Content-Type", "application/json"},
      {"X-Slack-Request-Timestamp", std::to_string(now)},
      {"X-Slack-Signature", fakes::SlackEventsSender::Sign(
                                slack_.options().signing_secret, now, body)}};
  tampered.body = body + " ";
  EXPECT_EQ(http_.Send(tampered)->status, 401);
  EXPECT_EQ(sender.Send("{not json")->status, 400);
  auto not_an_object = sender.Send("[1,2]");
  ASSERT_TRUE(not_an_object.ok());
  EXPECT_EQ(not_an_object->status, 400);
  EXPECT_EQ(nlohmann::json::parse(not_an_object->body)["error"]["code"],
            "bad_json");
  // A signed body whose `type` is not a string is bad input, not a server
  // error.
  for (const char* bad_type :
       {R"({"type":1})", R"({"type":null})", R"({"type":["event_callback"]})",
        R"({"type":{"a":1},"event_id":"Ev1"})"}) {
    auto refused_type = sender.Send(bad_type);
    ASSERT_TRUE(refused_type.ok());
    EXPECT_EQ(refused_type->status, 400) << bad_type;
    EXPECT_EQ(nlohmann::json::parse(refused_type->body)["error"]["code"],
              "bad_json")
        << bad_type;
  }
  EXPECT_EQ(sender.Send(std::string((1 << 20) + 1, ' '))->status, 413);
  // Unknown account.
  fakes::SlackEventsSender other(
      absl::StrCat(adapter_->base_url(), "/slack/nobody/events"),
      slack_.options().signing_secret);
  EXPECT_EQ(other.Send(body)->status, 404);
  EXPECT_TRUE(absl::StrContains(adapter_->ReadLog(), "Slack request refused"));
  EXPECT_FALSE(
      absl::StrContains(adapter_->ReadLog(), slack_.options().signing_secret));
  EXPECT_FALSE(
      absl::StrContains(adapter_->ReadLog(), slack_.options().bot_token));
}

TEST_F(SlackIntegrationTest, RouterUnreachableAnswers5xxWithinSlacksDeadline) {
  StartAdapter();
  router_->Kill();
  absl::Time start = absl::Now();
  auto sent = slack_.PostMessage("C1", "U1", "nobody home");
  EXPECT_GE(sent.http_status, 500);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  // When the router is back, Slack's retry gets through and is relayed once.
  ASSERT_TRUE(router_->Start().ok());
  StartPeer();
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  int status = 0;
  while (status != 200 && absl::Now() < deadline) {
    status = slack_.Redeliver(sent.event_id, 1, "http_error");
    if (status != 200) absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(status, 200);
  ASSERT_TRUE(peer_->WaitForCalls(1));
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_THAT(PeerPosts(), ElementsAre("nobody home"));
}

TEST_F(SlackIntegrationTest, PresencePollingPublishesChanges) {
  StartPeer();
  StartAdapter();
  slack_.SetPresence("U1", "active");
  EXPECT_EQ(slack_.PostMessage("C1", "U1", "I am here").http_status, 200);
  auto presences = [&] {
    std::vector<v1::Presence> out;
    for (const auto& d : peer_->deliveries()) {
      if (d.event().has_presence()) {
        EXPECT_EQ(d.event().presence().user().id(), "U1");
        out.push_back(d.event().presence().presence());
      }
    }
    return out;
  };
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (presences().empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_THAT(presences(), ElementsAre(v1::ONLINE));
  // No change, no event; then away.
  absl::SleepFor(absl::Seconds(2));
  EXPECT_THAT(presences(), ElementsAre(v1::ONLINE));
  slack_.SetPresence("U1", "away");
  deadline = absl::Now() + absl::Seconds(30);
  while (presences().size() < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_THAT(presences(), ElementsAre(v1::ONLINE, v1::AWAY));
  EXPECT_GE(slack_.Calls("users.getPresence").size(), 3u);
}

TEST_F(SlackIntegrationTest, SocketModeAcksOnlyAfterTheRouterAcked) {
  slack_.UseSocketMode(true);
  StartPeer();
  StartAdapter(/*socket_mode=*/true);
  ASSERT_TRUE(slack_.socket_connected());
  auto first = slack_.PostMessage("C1", "U1", "over the socket");
  ASSERT_TRUE(WaitForRelayed(1));
  EXPECT_THAT(PeerPosts(), ElementsAre("over the socket"));
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (slack_.acked_envelopes().empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_THAT(slack_.acked_envelopes(), SizeIs(1));
  EXPECT_EQ(slack_.EventIdOfEnvelope(slack_.acked_envelopes()[0]),
            first.event_id);

  // With the router down, the envelope is not acked...
  router_->Kill();
  auto second = slack_.PostMessage("C1", "U2", "while the router is down");
  absl::SleepFor(absl::Seconds(2));
  EXPECT_THAT(slack_.acked_envelopes(), SizeIs(1));
  // ...until the router has the event.
  ASSERT_TRUE(router_->Start().ok());
  deadline = absl::Now() + absl::Seconds(30);
  while (slack_.acked_envelopes().size() < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_THAT(slack_.acked_envelopes(), SizeIs(2));
  EXPECT_EQ(slack_.EventIdOfEnvelope(slack_.acked_envelopes()[1]),
            second.event_id);
  ASSERT_TRUE(WaitForRelayed(2));
  EXPECT_THAT(PeerPosts(),
              ElementsAre("over the socket", "while the router is down"));

  // Slack's "disconnect" makes the adapter reconnect and go on.
  slack_.RequestSocketReconnect();
  absl::SleepFor(absl::Milliseconds(500));
  deadline = absl::Now() + absl::Seconds(30);
  while (!slack_.socket_connected() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  slack_.PostMessage("C1", "U1", "after reconnect");
  ASSERT_TRUE(WaitForRelayed(3));
  EXPECT_GE(slack_.Calls("apps.connections.open").size(), 2u);
  for (const auto& call : slack_.Calls("apps.connections.open")) {
    EXPECT_EQ(call.token, slack_.options().app_token);
  }
}

}  // namespace
}  // namespace imbridge::testing
