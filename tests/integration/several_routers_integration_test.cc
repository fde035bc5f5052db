// Two real imbridge-router processes on one real PostgreSQL database
// (tests/support/postgres_server.h), each with test adapters of both
// platforms attached: each target queue is sent by the one router that
// holds its lease, whichever router accepted the publish; when that router
// is killed with SIGKILL the other takes its queues over and sends what
// was pending, with the same idempotency keys, in order.

#include <stdlib.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/router_process.h"
#include "tests/integration/test_adapter.h"
#include "tests/support/postgres_server.h"

namespace imbridge::testing {
namespace {

constexpr char kToken[] = "integration-token-0123456789";

constexpr char kPairConfig[] = R"(adapters:
  - {name: tests, token: integration-token-0123456789}
links:
  - name: pair
    members:
      - {platform: alpha, account: a, chat_id: A1}
      - {platform: beta, account: b, chat_id: B1}
dispatch: {initial_backoff_ms: 50, max_backoff_ms: 200}
)";

class SeveralRoutersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<PostgresServer*> server = SharedPostgresServer();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    absl::StatusOr<std::string> database = server_->CreateDatabase();
    ASSERT_TRUE(database.ok()) << database.status();
    database_ = *database;
    ASSERT_EQ(setenv("IMBRIDGE_PG_PASSWORD", server_->password().c_str(), 1),
              0);
  }
  void TearDown() override { unsetenv("IMBRIDGE_PG_PASSWORD"); }

  std::string Config() const {
    return absl::StrCat(kPairConfig, "store: {postgres: {dsn: '",
                        server_->Dsn(database_), "'}}\n");
  }

  std::unique_ptr<TestAdapter> Adapter(RouterProcess& router,
                                       const std::string& platform,
                                       const std::string& account) {
    auto a = std::make_unique<TestAdapter>(platform, account, router.address(),
                                           kToken);
    a->Start();
    EXPECT_TRUE(a->WaitAttached()) << platform;
    return a;
  }

  // The pid in the name of the router holding `target_key`'s lease
  // ("host:pid:random"), or -1 while nobody holds it.
  int HolderPid(const std::string& target_key) {
    absl::StatusOr<std::string> holder = server_->Query(
        database_,
        absl::StrCat("SELECT split_part(holder, ':', 2) FROM queue_leases "
                     "WHERE target_key = '",
                     target_key, "' AND expires_at > now()"));
    int pid = -1;
    if (holder.ok() && !holder->empty()) pid = std::stoi(*holder);
    return pid;
  }

  bool WaitFor(const std::function<bool()>& done,
               absl::Duration timeout = absl::Seconds(60)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!done()) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return true;
  }

  PostgresServer* server_ = nullptr;
  std::string database_;
};

// Message `i` posted in chat A1, published through `adapter` (event keys
// are the test's: two adapters of one account would number theirs alike).
void PostMessage(TestAdapter& adapter, int i) {
  v1::Event e;
  e.set_key(absl::StrCat("alpha:a:m", i));
  e.mutable_channel()->set_platform("alpha");
  e.mutable_channel()->set_account("a");
  e.mutable_channel()->set_chat_id("A1");
  e.mutable_posted()->set_message_id(absl::StrCat("m", i));
  e.mutable_posted()->mutable_sender()->set_id("user-alpha");
  e.mutable_posted()->mutable_text()->set_text(absl::StrCat("m", i));
  v1::PublishAck ack = adapter.Publish(std::move(e));
  EXPECT_EQ(ack.outcome(), v1::PublishAck::ACCEPTED)
      << i << " " << ack.detail();
}

// The deliveries both adapters of one target got, in order, with the
// copies sent again (same idempotency key) counted once.
std::vector<std::string> Received(const std::vector<TestAdapter*>& adapters,
                                  std::map<std::string, int>* resent) {
  std::vector<std::pair<uint64_t, std::string>> by_id;
  std::set<std::string> keys;
  for (TestAdapter* a : adapters) {
    for (const v1::Delivery& d : a->deliveries()) {
      if (!keys.insert(d.idempotency_key()).second) {
        ++(*resent)[d.idempotency_key()];
        continue;
      }
      by_id.emplace_back(d.id(), d.event().posted().text().text());
    }
  }
  std::sort(by_id.begin(), by_id.end());
  std::vector<std::string> texts;
  for (auto& [id, text] : by_id) texts.push_back(std::move(text));
  return texts;
}

TEST_F(SeveralRoutersTest, QueueHolderKilledTheOtherRouterResumesInOrder) {
  RouterProcess one(Config());
  RouterProcess two(Config());
  ASSERT_TRUE(one.Start().ok()) << one.ReadLog();
  ASSERT_TRUE(two.Start().ok()) << two.ReadLog();
  // Each router has both platforms attached (until adapters attach to
  // several routers themselves).
  auto alpha_one = Adapter(one, "alpha", "a");
  auto beta_one = Adapter(one, "beta", "b");
  auto alpha_two = Adapter(two, "alpha", "a");
  auto beta_two = Adapter(two, "beta", "b");

  // Two queues over two routers: one each.
  ASSERT_TRUE(WaitFor([&] {
    int a = HolderPid("alpha/a/A1"), b = HolderPid("beta/b/B1");
    return a > 0 && b > 0 && a != b;
  })) << one.ReadLog();
  ASSERT_TRUE(one.WaitForMetric("imbridge_router_queues_owned", {}, 1));
  ASSERT_TRUE(two.WaitForMetric("imbridge_router_queues_owned", {}, 1));
  const int beta_holder = HolderPid("beta/b/B1");
  RouterProcess& holder = beta_holder == one.pid() ? one : two;
  RouterProcess& survivor = beta_holder == one.pid() ? two : one;
  ASSERT_EQ(holder.pid(), beta_holder);
  TestAdapter* alpha_survivor =
      &holder == &one ? alpha_two.get() : alpha_one.get();
  TestAdapter* beta_at_holder =
      &holder == &one ? beta_one.get() : beta_two.get();
  TestAdapter* beta_at_survivor =
      &holder == &one ? beta_two.get() : beta_one.get();

  // Publishes through both routers: only the holder's beta adapter gets
  // deliveries, in publish order.
  constexpr int kBefore = 40;
  for (int i = 0; i < kBefore; ++i) {
    PostMessage(i % 2 == 0 ? *alpha_one : *alpha_two, i);
  }
  ASSERT_TRUE(beta_at_holder->WaitForCalls(kBefore))
      << beta_at_holder->calls().size() << " " << holder.ReadLog();
  EXPECT_TRUE(beta_at_survivor->calls().empty());
  // Some more, and the holder dies with them pending or in flight.
  constexpr int kTotal = 100;
  for (int i = kBefore; i < 60; ++i) {
    PostMessage(*alpha_survivor, i);
  }
  holder.Kill();
  const absl::Time killed = absl::Now();
  for (int i = 60; i < kTotal; ++i) {
    PostMessage(*alpha_survivor, i);
  }

  // The survivor takes the queue over and sends the rest.
  ASSERT_TRUE(WaitFor([&] { return HolderPid("beta/b/B1") == survivor.pid(); }))
      << survivor.ReadLog();
  ASSERT_TRUE(beta_at_survivor->WaitForCalls(1)) << survivor.ReadLog();
  const absl::Duration resumed_after = absl::Now() - killed;
  std::map<std::string, int> resent;
  ASSERT_TRUE(WaitFor([&] {
    resent.clear();
    return Received({beta_at_holder, beta_at_survivor}, &resent).size() >=
           static_cast<size_t>(kTotal);
  })) << survivor.ReadLog();
  std::vector<std::string> expected;
  for (int i = 0; i < kTotal; ++i) expected.push_back(absl::StrCat("m", i));
  resent.clear();
  EXPECT_EQ(Received({beta_at_holder, beta_at_survivor}, &resent), expected);
  // Sent again only what was in flight at the dead router (its window).
  EXPECT_LE(resent.size(), 60u - kBefore);
  // Both routers key deliveries alike (the database's router id and the
  // delivery id), so a resend is recognised by any adapter's journal.
  const std::string prefix =
      beta_at_holder->deliveries().front().idempotency_key().substr(0, 8);
  for (TestAdapter* a : {beta_at_holder, beta_at_survivor}) {
    for (const v1::Delivery& d : a->deliveries()) {
      EXPECT_TRUE(absl::StartsWith(d.idempotency_key(), prefix))
          << d.idempotency_key();
    }
  }
  // Each copy once per adapter: the survivor's adapter saw each key once.
  std::set<std::string> at_survivor;
  for (const v1::Delivery& d : beta_at_survivor->deliveries()) {
    EXPECT_TRUE(at_survivor.insert(d.idempotency_key()).second)
        << d.idempotency_key();
  }
  // The takeover: 1.75 s by design, plus the first delivery; the bound is
  // generous for a loaded machine.
  EXPECT_LT(resumed_after, absl::Seconds(10))
      << absl::FormatDuration(resumed_after);
  std::cerr << "resumed " << absl::FormatDuration(resumed_after)
            << " after kill -9; sent again: " << resent.size() << "\n";
  EXPECT_TRUE(survivor.WaitForMetric("imbridge_router_queues_owned", {}, 2));

  alpha_one->Stop();
  alpha_two->Stop();
  beta_one->Stop();
  beta_two->Stop();
}

}  // namespace
}  // namespace imbridge::testing
