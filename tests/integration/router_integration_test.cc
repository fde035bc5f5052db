// End-to-end tests of the real imbridge-router binary with in-test adapters
// built on adapters/common's RouterClient.

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "imbridge/v1/router.grpc.pb.h"
#include "tests/integration/router_process.h"
#include "tests/integration/tcp_proxy.h"
#include "tests/integration/test_adapter.h"
#include "tests/support/postgres_server.h"

namespace imbridge::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kToken[] = "integration-token-0123456789";

std::string Credentials() {
  return absl::StrCat("adapters:\n  - {name: tests, token: ", kToken, "}\n");
}

// Links: "trio" joins alpha/A1, beta/B1 and gamma/G1.
constexpr char kTrioLinks[] = R"(links:
  - name: trio
    members:
      - {platform: alpha, account: a, chat_id: A1}
      - {platform: beta, account: b, chat_id: B1}
      - {platform: gamma, account: g, chat_id: G1}
)";

// The trio link; `store` is the config's store: line.
std::string TrioConfig(
    const std::string& extra = "",
    const std::string& store = "store: {durability: normal}") {
  return Credentials() + kTrioLinks + store + R"(
dispatch: {initial_backoff_ms: 50, max_backoff_ms: 200}
)" + extra;
}

std::vector<std::string> Texts(const std::vector<TestAdapter::Call>& calls,
                               const std::string& kind = "post") {
  std::vector<std::string> out;
  for (const auto& c : calls) {
    if (c.kind == kind) out.push_back(c.text);
  }
  return out;
}

// The trio link with durability full, as the crash tests run it.
std::string DurableTrioConfig(
    const std::string& store = "store: {durability: full}") {
  return Credentials() + kTrioLinks + store + "\n";
}

// Counts the acknowledgements of publishes made without waiting.
class AckCounter {
 public:
  void Add() {
    absl::MutexLock lock(&mu_);
    ++acked_;
  }
  int count() {
    absl::MutexLock lock(&mu_);
    return acked_;
  }
  bool WaitFor(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return acked_ >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

 private:
  absl::Mutex mu_;
  int acked_ ABSL_GUARDED_BY(mu_) = 0;
};

// Publishes alpha's message number `i` ("m<i>" in A1) without waiting for
// its ack, which `acks` counts.
bool PublishNumbered(TestAdapter& alpha, int i, AckCounter& acks) {
  v1::Event e;
  e.set_key(absl::StrCat("alpha:a:", i));
  e.mutable_channel()->set_platform("alpha");
  e.mutable_channel()->set_account("a");
  e.mutable_channel()->set_chat_id("A1");
  e.mutable_posted()->set_message_id(absl::StrCat("A1-", i));
  e.mutable_posted()->mutable_text()->set_text(absl::StrCat("m", i));
  return alpha.client()
      .Publish(std::move(e), [&acks](const v1::PublishAck&) { acks.Add(); })
      .ok();
}

// Every one of `n` publishes is acknowledged and each target shows m0 ..
// m<n-1> exactly once, in order.
void ExpectAllAckedOnceInOrder(AckCounter& acks, int n,
                               const std::vector<TestAdapter*>& targets) {
  ASSERT_TRUE(acks.WaitFor(n, absl::Seconds(60)));
  for (TestAdapter* t : targets) {
    ASSERT_TRUE(t->WaitForCalls(n, absl::Seconds(60)));
  }
  absl::SleepFor(absl::Milliseconds(500));
  std::vector<std::string> expected;
  for (int i = 0; i < n; ++i) expected.push_back(absl::StrCat("m", i));
  for (TestAdapter* t : targets) {
    std::vector<std::string> got = Texts(t->calls());
    // Name the first difference: the vectors are too long to print.
    size_t same = 0;
    while (same < got.size() && same < expected.size() &&
           got[same] == expected[same]) {
      ++same;
    }
    EXPECT_EQ(got, expected)
        << got.size() << " calls for " << n << " messages; first difference at "
        << same << ": "
        << (same < got.size() ? got[same] : std::string("(none)"));
  }
}

class RouterIntegrationTest : public ::testing::Test {
 protected:
  std::unique_ptr<TestAdapter> Adapter(RouterProcess& router,
                                       const std::string& platform,
                                       const std::string& account,
                                       TestAdapter::Options options = {}) {
    auto a = std::make_unique<TestAdapter>(platform, account, router.address(),
                                           kToken, std::move(options));
    a->Start();
    EXPECT_TRUE(a->WaitAttached()) << platform;
    return a;
  }
};

// The tests that run on each store backend: SQLite in the data dir, and a
// database on a PostgreSQL server of the test's own
// (tests/support/postgres_server.h), the password in a file.
class RouterOnEachStoreTest : public RouterIntegrationTest,
                              public ::testing::WithParamInterface<bool> {
 protected:
  // The config's store: line with `durability`.
  std::string Store(const std::string& durability) {
    if (!GetParam())
      return absl::StrCat("store: {durability: ", durability, "}");
    absl::StatusOr<PostgresServer*> server = SharedPostgresServer();
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return "";
    absl::StatusOr<std::string> database = (*server)->CreateDatabase();
    EXPECT_TRUE(database.ok()) << database.status();
    return absl::StrCat(
        "store: {durability: ", durability, ", ",
        PostgresStoreYaml(**server, *database, MakeTempDir("pg-password")),
        "}");
  }
};

INSTANTIATE_TEST_SUITE_P(, RouterOnEachStoreTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "postgres" : "sqlite";
                         });

TEST_P(RouterOnEachStoreTest,
       MessageEditReplyDeleteReachEveryMemberWithoutEchoes) {
  RouterProcess router(TrioConfig("", Store("normal")));
  ASSERT_TRUE(router.Start().ok());
  TestAdapter::Options echoing;
  echoing.emit_echoes = true;
  auto alpha = Adapter(router, "alpha", "a", echoing);
  auto beta = Adapter(router, "beta", "b", echoing);
  auto gamma = Adapter(router, "gamma", "g", echoing);

  v1::PublishAck ack;
  std::string original = alpha->Post("A1", "hello from alpha", "", "", &ack);
  EXPECT_EQ(ack.outcome(), v1::PublishAck::ACCEPTED) << ack.detail();
  ASSERT_TRUE(beta->WaitForCalls(1));
  ASSERT_TRUE(gamma->WaitForCalls(1));
  auto b = beta->calls()[0];
  auto g = gamma->calls()[0];
  EXPECT_EQ(b.kind, "post");
  EXPECT_EQ(b.text, "hello from alpha");
  EXPECT_EQ(b.sender_name, "Person on alpha (alpha)");
  EXPECT_EQ(g.text, "hello from alpha");

  // The edit reaches each copy by its own native id.
  EXPECT_EQ(alpha->Edit("A1", original, "hello, edited").outcome(),
            v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(beta->WaitForCalls(2));
  ASSERT_TRUE(gamma->WaitForCalls(2));
  EXPECT_EQ(beta->calls()[1].kind, "edit");
  EXPECT_THAT(beta->calls()[1].target_ids, ElementsAre(b.native_id));
  EXPECT_THAT(gamma->calls()[1].target_ids, ElementsAre(g.native_id));

  // A reply in beta to beta's copy points at the original in alpha and at
  // gamma's copy in gamma.
  beta->Post("B1", "a reply", b.native_id);
  ASSERT_TRUE(alpha->WaitForCalls(1));
  ASSERT_TRUE(gamma->WaitForCalls(3));
  EXPECT_EQ(alpha->calls()[0].reply_to, original);
  EXPECT_EQ(gamma->calls()[2].reply_to, g.native_id);

  // Delete of the original reaches both copies.
  EXPECT_EQ(alpha->Delete("A1", original).outcome(), v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(beta->WaitForCalls(3));
  ASSERT_TRUE(gamma->WaitForCalls(4));
  EXPECT_EQ(beta->calls()[2].kind, "delete");
  EXPECT_THAT(beta->calls()[2].target_ids, ElementsAre(b.native_id));
  EXPECT_THAT(gamma->calls()[3].target_ids, ElementsAre(g.native_id));

  // The messengers reported every copy back (echoes); none was relayed.
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(alpha->calls().size(), 1u);
  EXPECT_EQ(beta->calls().size(), 3u);
  EXPECT_EQ(gamma->calls().size(), 4u);

  // An edit of a message the bridge never relayed is not posted anywhere.
  EXPECT_EQ(alpha->Edit("A1", "never-seen", "x").outcome(),
            v1::PublishAck::DROPPED);
  // A retried webhook (same key) is accepted once.
  v1::Event e;
  e.set_key("alpha:a:retried");
  e.mutable_channel()->set_chat_id("A1");
  e.mutable_posted()->set_message_id("A1-retried");
  e.mutable_posted()->mutable_text()->set_text("once");
  EXPECT_EQ(alpha->Publish(e).outcome(), v1::PublishAck::ACCEPTED);
  EXPECT_EQ(alpha->Publish(e).outcome(), v1::PublishAck::DUPLICATE);
  ASSERT_TRUE(beta->WaitForCalls(4));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_THAT(Texts(beta->calls()), ElementsAre("hello from alpha", "once"));
  EXPECT_EQ(router.Terminate(), 0);
}

TEST_F(RouterIntegrationTest, OneChannelInTwoLinksDoesNotLoop) {
  RouterProcess router(Credentials() + R"(links:
  - name: l1
    members:
      - {platform: alpha, account: a, chat_id: A1}
      - {platform: xray, account: x, chat_id: X1}
  - name: l2
    members:
      - {platform: xray, account: x, chat_id: X1}
      - {platform: beta, account: b, chat_id: B1}
store: {durability: normal}
)");
  ASSERT_TRUE(router.Start().ok());
  TestAdapter::Options echoing;
  echoing.emit_echoes = true;
  auto alpha = Adapter(router, "alpha", "a", echoing);
  auto xray = Adapter(router, "xray", "x", echoing);
  auto beta = Adapter(router, "beta", "b", echoing);

  alpha->Post("A1", "from alpha");
  ASSERT_TRUE(xray->WaitForCalls(1));
  xray->Post("X1", "from x");
  ASSERT_TRUE(alpha->WaitForCalls(1));
  ASSERT_TRUE(beta->WaitForCalls(1));
  absl::SleepFor(absl::Milliseconds(500));
  // Alpha's message is a copy in X1: it is not carried on into l2.
  EXPECT_THAT(Texts(xray->calls()), ElementsAre("from alpha"));
  EXPECT_THAT(Texts(alpha->calls()), ElementsAre("from x"));
  EXPECT_THAT(Texts(beta->calls()), ElementsAre("from x"));
  EXPECT_EQ(router.Terminate(), 0);
}

TEST_P(RouterOnEachStoreTest, KillDashNineMidStreamLosesAndDoublesNothing) {
  RouterProcess router(DurableTrioConfig(Store("full")));
  ASSERT_TRUE(router.Start().ok());
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b");
  auto gamma = Adapter(router, "gamma", "g");

  constexpr int kMessages = 1000;
  AckCounter acks;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(PublishNumbered(*alpha, i, acks));
    if (i == kMessages / 3) {
      // Crash the router while publishes and deliveries are in flight.
      beta->WaitForCalls(50, absl::Seconds(10));
      router.Kill();
      ASSERT_TRUE(router.Start().ok());
    }
  }
  ExpectAllAckedOnceInOrder(acks, kMessages, {beta.get(), gamma.get()});
  EXPECT_EQ(router.Terminate(), 0);
}

// Every publish's outcome by event key, and how often each was answered.
class OutcomeLog {
 public:
  void Add(const std::string& key, const v1::PublishAck& ack) {
    absl::MutexLock lock(&mu_);
    Entry& entry = entries_[key];
    entry.outcome = ack.outcome();
    entry.detail = ack.detail();
    ++entry.answers;
    ++answers_;
  }
  // Waits until `n` answers came; false on timeout.
  bool WaitFor(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return answers_ >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }
  int answers() {
    absl::MutexLock lock(&mu_);
    return answers_;
  }
  // Keys answered other than once, or other than ACCEPTED/DUPLICATE.
  std::vector<std::string> Wrong() {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> wrong;
    for (const auto& [key, entry] : entries_) {
      if (entry.answers != 1 || (entry.outcome != v1::PublishAck::ACCEPTED &&
                                 entry.outcome != v1::PublishAck::DUPLICATE)) {
        wrong.push_back(absl::StrCat(
            key, ": ", entry.answers, " answers, ",
            v1::PublishAck::Outcome_Name(entry.outcome), " ", entry.detail));
      }
    }
    return wrong;
  }

 private:
  struct Entry {
    v1::PublishAck::Outcome outcome = v1::PublishAck::OUTCOME_UNSPECIFIED;
    std::string detail;
    int answers = 0;
  };
  absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  int answers_ ABSL_GUARDED_BY(mu_) = 0;
};

// How DropsMidStreamLoseAndDoubleNothing goes.
struct DropPlan {
  int messages = 2000;
  // The adapter's connection is dropped after every messages/drops
  // publishes (the last time after the last publish).
  int drops = 4;
  // Before each drop, the test waits until this share of the publishes made
  // so far was acknowledged (0: drops at once, the router's backlog whole).
  double acked_before_drop = 0.5;
  // Added to the router's store: line (say ", max_batch: 8").
  std::string store_options;
  // Only the adapter's side of its connection is reset (TcpProxy::
  // DropClientSides): the router keeps the old stream until the test ends.
  bool client_side_only = false;
  // The router is killed (SIGKILL) and started again after a third of the
  // publishes up to the first drop, before the drops.
  bool kill_first = false;
  // The router must have stopped reading the adapter's stream at least once
  // because too many of its publishes waited behind their chats' groups
  // (imbridge_router_stream_pauses_total{reason="held_publishes"}), so that
  // the drops meet paused streams too.
  bool expect_held_pauses = false;
};

// The adapter's connection breaks while the router lives and has the
// stream's publishes in flight (what the adapter's own gRPC keepalive
// giving a connection up, a proxy, or a network blip does): the adapter
// attaches again by itself and sends every publish not acknowledged again,
// with the same seqs and per-chat after_seq. Each must be acknowledged
// (ACCEPTED, or DUPLICATE if its first send was stored) once, and stored
// once, in its chat's order, also when the connection breaks several times.
void DropsMidStreamLoseAndDoubleNothing(const DropPlan& plan) {
  constexpr int kChats = 4;
  std::string links = "links:\n";
  for (int c = 0; c < kChats; ++c) {
    absl::StrAppend(&links, "  - name: l", c, "\n    members:\n",
                    "      - {platform: alpha, account: a, chat_id: A", c,
                    "}\n      - {platform: beta, account: b, chat_id: B", c,
                    "}\n");
  }
  RouterProcess router(absl::StrCat(Credentials(), links,
                                    "store: {durability: full",
                                    plan.store_options, "}\n"));
  ASSERT_TRUE(router.Start().ok());
  absl::StatusOr<std::unique_ptr<TcpProxy>> proxy =
      TcpProxy::Start(router.port());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  TestAdapter alpha("alpha", "a", (*proxy)->address(), kToken);
  alpha.Start();
  ASSERT_TRUE(alpha.WaitAttached());
  TestAdapter beta("beta", "b", router.address(), kToken);
  beta.Start();
  ASSERT_TRUE(beta.WaitAttached());

  OutcomeLog outcomes;
  int dropped = 0;
  const int every = plan.messages / plan.drops;
  for (int i = 0; i < plan.messages; ++i) {
    v1::Event e;
    std::string key = absl::StrCat("alpha:a:", i);
    std::string chat = absl::StrCat(i % kChats);
    e.set_key(key);
    e.mutable_channel()->set_platform("alpha");
    e.mutable_channel()->set_account("a");
    e.mutable_channel()->set_chat_id(absl::StrCat("A", chat));
    e.mutable_posted()->set_message_id(absl::StrCat("A", chat, "-", i));
    e.mutable_posted()->mutable_text()->set_text(absl::StrCat("m", i));
    ASSERT_TRUE(alpha.client()
                    .Publish(std::move(e),
                             [&outcomes, key](const v1::PublishAck& ack) {
                               outcomes.Add(key, ack);
                             })
                    .ok());
    if (plan.kill_first && i == every / 2) {
      router.Kill();
      ASSERT_TRUE(router.Start().ok());
    }
    if ((i + 1) % every != 0) continue;
    // Some acknowledged, the rest in flight: the router has the stream's
    // publishes in its sequencer and committer when the connection goes.
    ASSERT_TRUE(outcomes.WaitFor(
        static_cast<int>(plan.acked_before_drop * (i + 1)), absl::Seconds(60)))
        << outcomes.answers() << " of " << i + 1 << " acknowledged";
    const int connections = (*proxy)->accepted();
    if ((plan.client_side_only ? (*proxy)->DropClientSides()
                               : (*proxy)->DropConnections()) > 0) {
      ++dropped;
    }
    // Attached again (through a new connection) before the next drop.
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    while ((*proxy)->accepted() == connections) {
      ASSERT_LT(absl::Now(), deadline) << "no new connection";
      absl::SleepFor(absl::Milliseconds(5));
    }
    ASSERT_TRUE(alpha.WaitAttached());
  }
  EXPECT_EQ(dropped, plan.drops);
  EXPECT_TRUE(outcomes.WaitFor(plan.messages, absl::Seconds(60)))
      << outcomes.answers() << " of " << plan.messages << " acknowledged after "
      << plan.drops << " dropped connections";
  EXPECT_THAT(outcomes.Wrong(), IsEmpty());
  ASSERT_TRUE(beta.WaitForCalls(plan.messages, absl::Seconds(60)))
      << beta.calls().size();
  absl::SleepFor(absl::Milliseconds(500));
  std::map<std::string, std::vector<std::string>> got;
  for (const TestAdapter::Call& call : beta.calls()) {
    if (call.kind == "post") got[call.chat].push_back(call.text);
  }
  std::map<std::string, std::vector<std::string>> expected;
  for (int i = 0; i < plan.messages; ++i) {
    expected[absl::StrCat("B", i % kChats)].push_back(absl::StrCat("m", i));
  }
  for (const auto& [chat, texts] : expected) {
    EXPECT_TRUE(got[chat] == texts)
        << chat << ": " << got[chat].size() << " posts for " << texts.size();
  }
  if (plan.expect_held_pauses) {
    absl::StatusOr<double> pauses =
        router.Metric("imbridge_router_stream_pauses_total",
                      {{"platform", "alpha"}, {"reason", "held_publishes"}});
    ASSERT_TRUE(pauses.ok()) << pauses.status();
    EXPECT_GT(*pauses, 0);
  }
  EXPECT_EQ(router.Terminate(), 0);
}

TEST_F(RouterIntegrationTest, PublishesInFlightWhenTheAdapterDropsItsStream) {
  DropsMidStreamLoseAndDoubleNothing({});
}

// The router reads the adapter's stream no further while its committer is
// behind (Committer::AdmitOrWait) or while 1,024 of the stream's publishes
// wait behind their chats' groups: the drops come with its backlog whole
// and with the stream paused.
TEST_F(RouterIntegrationTest, AdapterDropsItsStreamWhileTheRouterIsBehind) {
  DropPlan plan;
  plan.messages = 12000;
  plan.drops = 6;
  plan.acked_before_drop = 0;
  plan.store_options = ", max_batch: 16";
  plan.expect_held_pauses = true;
  DropsMidStreamLoseAndDoubleNothing(plan);
}

// The network between them is lost as the adapter sees it, not the router:
// the router keeps the old streams (their acks go nowhere) while the
// adapter sends the same publishes on new ones.
TEST_F(RouterIntegrationTest, AdapterAloneSeesItsStreamDrop) {
  DropPlan plan;
  plan.client_side_only = true;
  DropsMidStreamLoseAndDoubleNothing(plan);
}

// As KillDashNineMidStreamLosesAndDoublesNothing, then the adapter drops the
// stream it attached with after the restart (as its keepalive did when the
// restarted router was slow to answer a ping).
TEST_F(RouterIntegrationTest, AdapterDropsItsStreamAfterTheRouterRestarted) {
  DropPlan plan;
  plan.messages = 1200;
  plan.drops = 3;
  plan.acked_before_drop = 0.2;
  plan.kill_first = true;
  DropsMidStreamLoseAndDoubleNothing(plan);
}

// The router crashes (SIGKILL, by the test-only IMBRIDGE_TEST_CRASH_AT) at
// `crash_at` of its first commit of accepted publishes: committed but not
// yet synced ("after_commit"), or synced but not acknowledged
// ("after_sync"). The adapter publishes again after the restart; every
// message reaches each target exactly once, in order.
void CrashAtLosesAndDoublesNothing(const std::string& crash_at) {
  RouterProcess router(DurableTrioConfig());
  ASSERT_EQ(setenv("IMBRIDGE_TEST_CRASH_AT", crash_at.c_str(), 1), 0);
  absl::Status started = router.Start();
  unsetenv("IMBRIDGE_TEST_CRASH_AT");
  ASSERT_TRUE(started.ok()) << started;
  auto adapter = [&](const std::string& platform, const std::string& account) {
    auto a = std::make_unique<TestAdapter>(platform, account, router.address(),
                                           kToken);
    a->Start();
    EXPECT_TRUE(a->WaitAttached()) << platform;
    return a;
  };
  auto alpha = adapter("alpha", "a");
  auto beta = adapter("beta", "b");
  auto gamma = adapter("gamma", "g");

  constexpr int kMessages = 200;
  AckCounter acks;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(PublishNumbered(*alpha, i, acks));
  }
  // The router kills itself at the named point of its first commit.
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (router.ReadLog().find("IMBRIDGE_TEST_CRASH_AT") == std::string::npos) {
    ASSERT_LT(absl::Now(), deadline) << router.ReadLog();
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_THAT(router.ReadLog(), ::testing::HasSubstr(crash_at));
  router.Kill();  // reaps it
  // Nothing was acknowledged before the crash.
  EXPECT_EQ(acks.count(), 0);
  ASSERT_TRUE(router.Start().ok());
  ExpectAllAckedOnceInOrder(acks, kMessages, {beta.get(), gamma.get()});
  EXPECT_EQ(router.Terminate(), 0);
}

TEST_F(RouterIntegrationTest, CrashBetweenSyncAndAckLosesAndDoublesNothing) {
  CrashAtLosesAndDoublesNothing("after_sync");
}

TEST_F(RouterIntegrationTest, CrashBetweenCommitAndSyncLosesAndDoublesNothing) {
  CrashAtLosesAndDoublesNothing("after_commit");
}

TEST_F(RouterIntegrationTest,
       DetachedTargetGetsBacklogInOrderWithoutDelayingOthers) {
  RouterProcess router(TrioConfig());
  ASSERT_TRUE(router.Start().ok());
  auto alpha = Adapter(router, "alpha", "a");
  auto gamma = Adapter(router, "gamma", "g");
  // beta is not attached while alpha talks.
  constexpr int kMessages = 100;
  for (int i = 0; i < kMessages; ++i) alpha->Post("A1", absl::StrCat("m", i));
  ASSERT_TRUE(gamma->WaitForCalls(kMessages, absl::Seconds(10)));

  auto beta = Adapter(router, "beta", "b");
  ASSERT_TRUE(beta->WaitForCalls(kMessages, absl::Seconds(20)));
  std::vector<std::string> expected;
  for (int i = 0; i < kMessages; ++i) expected.push_back(absl::StrCat("m", i));
  EXPECT_EQ(Texts(beta->calls()), expected);
  EXPECT_EQ(Texts(gamma->calls()), expected);
  EXPECT_EQ(router.Terminate(), 0);
}

TEST_F(RouterIntegrationTest, RetryableFailuresBackOffAndKeepOrder) {
  RouterProcess router(TrioConfig());
  ASSERT_TRUE(router.Start().ok());
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b");
  auto gamma = Adapter(router, "gamma", "g");
  beta->FailNext(2, /*retryable=*/true, absl::Milliseconds(300));
  absl::Time start = absl::Now();
  for (int i = 0; i < 5; ++i) alpha->Post("A1", absl::StrCat("m", i));
  ASSERT_TRUE(beta->WaitForCalls(5));
  // Two failures, each asking for 300 ms.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(600));
  EXPECT_THAT(Texts(beta->calls()), ElementsAre("m0", "m1", "m2", "m3", "m4"));

  // A permanent failure dead-letters that delivery; the next one proceeds.
  gamma->WaitForCalls(5);
  gamma->FailNext(1, /*retryable=*/false);
  alpha->Post("A1", "lost to a permanent error");
  alpha->Post("A1", "after");
  ASSERT_TRUE(gamma->WaitForCalls(6));
  EXPECT_EQ(gamma->calls().back().text, "after");
  // "after" is pipelined behind the failing delivery (it does not wait for
  // its result), so gamma can take it before the failure's result has
  // reached the router: the dead letter is awaited in the store.
  EXPECT_TRUE(router.WaitForMetric("imbridge_router_dead_letters", {}, 1));
  EXPECT_EQ(router.Terminate(), 0);
  EXPECT_NE(router.ReadLog().find("delivery dead-lettered"), std::string::npos);
}

// The router binary allocates with what the build chose for it
// (cmake/allocator.cmake: jemalloc unless turned off or sanitized), and says
// so when it starts.
TEST_F(RouterIntegrationTest, StartsWithTheAllocatorTheBuildLinked) {
  RouterProcess router(TrioConfig());
  ASSERT_TRUE(router.Start().ok()) << router.ReadLog();
  EXPECT_EQ(router.Terminate(), 0);
  EXPECT_THAT(router.ReadLog(),
              ::testing::HasSubstr(absl::StrCat(
                  "\"allocator\":\"", IMBRIDGE_ROUTER_ALLOCATOR, "\"")));
}

TEST_F(RouterIntegrationTest, PresenceUpdatesAreCoalescedPerPerson) {
  RouterProcess router(TrioConfig());
  ASSERT_TRUE(router.Start().ok());
  auto alpha = Adapter(router, "alpha", "a");
  // beta is away while ivan's presence changes three times.
  EXPECT_EQ(alpha->SetPresence("ivan", v1::AWAY).outcome(),
            v1::PublishAck::ACCEPTED);
  alpha->SetPresence("ivan", v1::DND);
  alpha->SetPresence("ivan", v1::ONLINE);
  alpha->SetPresence("olga", v1::OFFLINE);
  auto beta = Adapter(router, "beta", "b");
  ASSERT_TRUE(beta->WaitForCalls(2));
  absl::SleepFor(absl::Milliseconds(300));
  std::vector<std::string> seen = Texts(beta->calls(), "presence");
  EXPECT_THAT(seen, ElementsAre("ivan=ONLINE", "olga=OFFLINE"));
  EXPECT_EQ(router.Terminate(), 0);
}

TEST_F(RouterIntegrationTest, WrongTokenIsRefusedAndNotLogged) {
  RouterProcess router(TrioConfig());
  ASSERT_TRUE(router.Start().ok());
  const std::string wrong = "wrong-token-that-must-not-be-logged";
  TestAdapter intruder("alpha", "a", router.address(), wrong);
  intruder.Start();
  EXPECT_FALSE(intruder.WaitAttached(absl::Milliseconds(800)));
  intruder.Stop();

  auto channel =
      grpc::CreateChannel(router.address(), grpc::InsecureChannelCredentials());
  auto stub = v1::Router::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + wrong);
  v1::BlobRef ref;
  ref.set_blob_id(std::string(64, 'a'));
  auto reader = stub->GetBlob(&ctx, ref);
  v1::BlobChunk chunk;
  while (reader->Read(&chunk)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::UNAUTHENTICATED);

  grpc::ClientContext no_token;
  auto stream = stub->Attach(&no_token);
  v1::AdapterFrame hello;
  hello.mutable_hello()->set_platform("alpha");
  hello.mutable_hello()->add_accounts("a");
  stream->Write(hello);
  v1::RouterFrame frame;
  EXPECT_FALSE(stream->Read(&frame));
  EXPECT_EQ(stream->Finish().error_code(), grpc::UNAUTHENTICATED);

  EXPECT_EQ(router.Terminate(), 0);
  std::string log = router.ReadLog();
  EXPECT_NE(log.find("missing or wrong adapter token"), std::string::npos);
  EXPECT_EQ(log.find(wrong), std::string::npos);
  EXPECT_EQ(log.find(kToken), std::string::npos);
}

TEST_F(RouterIntegrationTest, BlobsRoundTripAndOversizedBlobIsRefused) {
  RouterProcess router(TrioConfig("blobs: {max_bytes: 1048576}\n"));
  ASSERT_TRUE(router.Start().ok());
  auto alpha = Adapter(router, "alpha", "a");
  std::string data(700 * 1024, '\0');
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<char>(i * 31 % 251);
  v1::BlobMeta meta;
  meta.set_name("photo.jpg");
  meta.set_mime_type("image/jpeg");
  auto ref = alpha->client().PutBlob(meta, data);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->size(), data.size());
  EXPECT_EQ(ref->blob_id().size(), 64u);
  auto back = alpha->client().GetBlob(ref->blob_id(), 10 << 20);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, data);

  namespace fs = std::filesystem;
  auto count_files = [&] {
    size_t n = 0;
    for (const auto& e :
         fs::recursive_directory_iterator(router.data_dir() + "/blobs")) {
      if (e.is_regular_file()) ++n;
    }
    return n;
  };
  size_t before = count_files();
  std::string big(2 * 1024 * 1024, 'x');
  auto refused = alpha->client().PutBlob(meta, big);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("blob limit"), std::string::npos)
      << refused.status();
  EXPECT_EQ(count_files(), before);
  EXPECT_EQ(alpha->client().GetBlob(std::string(64, 'f'), 1024).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(router.Terminate(), 0);
}

// Issue 11, item 2 (router half): deliveries are fitted to the capabilities
// the target's adapter declared in Hello: beta declares no "files", gamma no
// "threads".
TEST_F(RouterIntegrationTest, FilesBecomeANoticeAndThreadsAPlainReply) {
  RouterProcess router(TrioConfig());
  ASSERT_TRUE(router.Start().ok()) << router.ReadLog();
  TestAdapter::Options no_files;
  no_files.capabilities = {"edits", "deletes", "threads"};
  TestAdapter::Options no_threads;
  no_threads.capabilities = {"edits", "deletes", "files"};
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b", no_files);
  auto gamma = Adapter(router, "gamma", "g", no_threads);

  std::string root = alpha->Post("A1", "the thread starts here");
  ASSERT_TRUE(beta->WaitForCalls(1));
  ASSERT_TRUE(gamma->WaitForCalls(1));

  // A message in the thread, with a file.
  std::string data(3 * 1024 + 100, 'r');
  v1::BlobMeta meta;
  meta.set_name("report.pdf");
  meta.set_mime_type("application/pdf");
  absl::StatusOr<v1::BlobRef> blob = alpha->client().PutBlob(meta, data);
  ASSERT_TRUE(blob.ok()) << blob.status();
  v1::Event event;
  event.mutable_channel()->set_chat_id("A1");
  v1::MessagePosted* posted = event.mutable_posted();
  posted->set_message_id("A1-with-file");
  posted->mutable_sender()->set_display_name("Ann");
  posted->mutable_text()->set_text("the figures");
  posted->set_thread_root_id(root);
  v1::Attachment* file = posted->add_attachments();
  file->set_blob_id(blob->blob_id());
  file->set_name("report.pdf");
  file->set_mime_type("application/pdf");
  file->set_size(data.size());
  ASSERT_EQ(alpha->Publish(event).outcome(), v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(beta->WaitForCalls(2)) << router.ReadLog();
  ASSERT_TRUE(gamma->WaitForCalls(2)) << router.ReadLog();

  // beta: no files, so a notice with name and size instead; still threaded.
  v1::Delivery to_beta = beta->deliveries()[1];
  EXPECT_EQ(to_beta.event().posted().text().text(),
            "the figures\n\xF0\x9F\x93\x8E report.pdf (3 KB)");
  EXPECT_EQ(to_beta.event().posted().attachments_size(), 0);
  EXPECT_EQ(to_beta.thread_root_target_id(), beta->CopyOf(root));
  EXPECT_FALSE(to_beta.thread_root_target_id().empty());

  // gamma: the file itself, and a plain reply to its copy of the root.
  v1::Delivery to_gamma = gamma->deliveries()[1];
  EXPECT_EQ(to_gamma.event().posted().text().text(), "the figures");
  ASSERT_EQ(to_gamma.event().posted().attachments_size(), 1);
  EXPECT_EQ(to_gamma.event().posted().attachments(0).blob_id(),
            blob->blob_id());
  EXPECT_EQ(to_gamma.thread_root_target_id(), "");
  EXPECT_EQ(to_gamma.reply_to_target_id(), gamma->CopyOf(root));
  EXPECT_FALSE(to_gamma.reply_to_target_id().empty());
  EXPECT_EQ(router.Terminate(), 0);
}

// Issue 11, item 5: the router rejects rich text whose spans do not fall on
// character boundaries, with the reason, and nothing is relayed.
TEST_F(RouterIntegrationTest, UnsoundRichTextIsRejectedWithTheReason) {
  RouterProcess router(TrioConfig());
  ASSERT_TRUE(router.Start().ok()) << router.ReadLog();
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b");

  v1::Event event;
  event.mutable_channel()->set_chat_id("A1");
  v1::MessagePosted* posted = event.mutable_posted();
  posted->set_message_id("A1-bad-span");
  posted->mutable_text()->set_text("caf\xC3\xA9");  // the é is bytes 3-4
  v1::Span* span = posted->mutable_text()->add_spans();
  span->set_kind(v1::Span::BOLD);
  span->set_offset(0);
  span->set_length(4);
  v1::PublishAck ack = alpha->Publish(event);
  EXPECT_EQ(ack.outcome(), v1::PublishAck::REJECTED);
  EXPECT_THAT(ack.detail(),
              ::testing::HasSubstr("span 0 (BOLD) ends at byte 4, inside a "
                                   "UTF-8 character"));

  // On a character boundary it goes through, and it is the first thing
  // beta gets (a target's deliveries keep their order).
  posted->set_message_id("A1-good-span");
  span->set_length(5);
  EXPECT_EQ(alpha->Publish(event).outcome(), v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(beta->WaitForCalls(1));
  EXPECT_EQ(beta->deliveries()[0].event().posted().message_id(),
            "A1-good-span");
}

TEST_F(RouterIntegrationTest, BadConfigStopsWithTheFieldNamed) {
  RouterProcess router(
      Credentials() +
      "links:\n  - name: l\n    members:\n      - {platform: a}\n");
  absl::Status s = router.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(
      s.message().find("links[0].members: a link needs at least two members"),
      std::string::npos)
      << s;
}

}  // namespace
}  // namespace imbridge::testing
