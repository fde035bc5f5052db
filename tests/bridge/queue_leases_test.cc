// Queue leases (bridge/queue_leases.h) and the outbox order of several
// routers on one real PostgreSQL server (tests/support/postgres_server.h):
// leases spread evenly, a router that joins gets its share, a router that
// stops renewing loses its queues to the others by the clock and no earlier,
// commits wake the holders (NOTIFY), and two stores committing into one queue
// at once are read back by a paging reader in commit order, nothing skipped.

#include "bridge/queue_leases.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bridge/postgres_store.h"
#include "bridge/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"

namespace imbridge::bridge {
namespace {

using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

// Who holds each queue, as the listeners were told, shared by the routers
// of one test: a grant of a queue that another router may still send (its
// leases still valid by its clock) is a double owner.
struct Ledger {
  absl::Mutex mu;
  std::vector<std::string> double_owners ABSL_GUARDED_BY(mu);
};

// Records what one router's leases decided.
class RecordingListener : public QueueLeaseListener {
 public:
  RecordingListener(Ledger* ledger, std::vector<RecordingListener*>* routers)
      : ledger_(ledger), routers_(routers) {}

  void OnQueuesGranted(std::vector<std::string> keys) override {
    const absl::Time now = absl::Now();
    absl::MutexLock ledger(&ledger_->mu);
    for (RecordingListener* other : *routers_) {
      if (other == this) continue;
      absl::MutexLock lock(&other->mu_);
      for (const std::string& key : keys) {
        if (other->owned_.count(key) > 0 && other->valid_until_ > now) {
          ledger_->double_owners.push_back(key);
        }
      }
    }
    absl::MutexLock lock(&mu_);
    for (std::string& key : keys) {
      granted_at_[key] = now;
      owned_.insert(std::move(key));
    }
  }
  void OnQueuesRevoked(std::vector<std::string> keys) override {
    absl::MutexLock lock(&mu_);
    for (const std::string& key : keys) owned_.erase(key);
    revoked_ += keys.size();
  }
  void OnLeasesValidUntil(absl::Time until) override {
    absl::MutexLock lock(&mu_);
    valid_until_ = until;
  }
  void OnQueueWork(const QueueWork& work) override {
    absl::MutexLock lock(&mu_);
    work_.push_back(work);
  }

  std::set<std::string> owned() const {
    absl::MutexLock lock(&mu_);
    return owned_;
  }
  size_t revoked() const {
    absl::MutexLock lock(&mu_);
    return revoked_;
  }
  absl::Time valid_until() const {
    absl::MutexLock lock(&mu_);
    return valid_until_;
  }
  absl::Time granted_at(const std::string& key) const {
    absl::MutexLock lock(&mu_);
    auto it = granted_at_.find(key);
    return it == granted_at_.end() ? absl::InfiniteFuture() : it->second;
  }
  // Whether some work named `key` (or all queues).
  bool HeardOf(const std::string& key, bool reload) const {
    absl::MutexLock lock(&mu_);
    for (const QueueWork& w : work_) {
      const auto& keys = reload ? w.reload : w.written;
      if (w.all || std::find(keys.begin(), keys.end(), key) != keys.end()) {
        return true;
      }
    }
    return false;
  }

 private:
  Ledger* const ledger_;
  std::vector<RecordingListener*>* const routers_;
  mutable absl::Mutex mu_;
  std::set<std::string> owned_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time> granted_at_ ABSL_GUARDED_BY(mu_);
  size_t revoked_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time valid_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::vector<QueueWork> work_ ABSL_GUARDED_BY(mu_);
};

std::vector<std::string> Queues(int n) {
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) keys.push_back(absl::StrCat("slack/acme/C", i));
  return keys;
}

v1::ChannelRef Channel(const std::string& chat) {
  v1::ChannelRef channel;
  channel.set_platform("slack");
  channel.set_account("acme");
  channel.set_chat_id(chat);
  return channel;
}

// A posted event with one delivery to `chat`.
NewEvent Posted(const std::string& key, const std::string& chat) {
  auto event = std::make_shared<v1::Event>();
  event->set_key(key);
  *event->mutable_channel() = Channel("origin");
  event->mutable_posted()->set_message_id(key);
  event->mutable_posted()->mutable_text()->set_text(key);
  NewEvent entry;
  entry.event = event;
  DeliveryRecord d;
  d.target = Channel(chat);
  d.target_key = ChannelKey(d.target, true);
  d.link = "l";
  d.created_at = d.next_attempt_at = absl::Now();
  entry.deliveries.push_back(std::move(d));
  return entry;
}

class QueueLeasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::PostgresServer*> server =
        testing::SharedPostgresServer();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    absl::StatusOr<std::string> database = server_->CreateDatabase();
    ASSERT_TRUE(database.ok()) << database.status();
    options_.dsn = server_->Dsn(*database);
    options_.password = server_->password();
    // The store creates the schema the leases live in.
    absl::StatusOr<std::unique_ptr<Store>> store = OpenPostgresStore(options_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  void TearDown() override {
    for (auto& leases : leases_) leases->Stop();
    leases_.clear();
  }

  // A router's leases, knowing `queues`; not started.
  QueueLeases& AddRouter(const std::string& name,
                         std::vector<std::string> queues,
                         std::function<void()> records_changed = nullptr) {
    listeners_.push_back(
        std::make_unique<RecordingListener>(&ledger_, &routers_));
    routers_.push_back(listeners_.back().get());
    QueueLeases::Options options;
    options.router_name = name;
    options.known_queues = [queues] { return queues; };
    options.records_changed = std::move(records_changed);
    absl::StatusOr<std::unique_ptr<QueueLeases>> leases =
        QueueLeases::Open(options_, options, listeners_.back().get());
    EXPECT_TRUE(leases.ok()) << leases.status();
    leases_.push_back(std::move(*leases));
    return *leases_.back();
  }

  // Rounds of every router in `which` (indexes), each followed by a check
  // that no queue is held twice.
  void Rounds(int n, std::vector<size_t> which) {
    for (int i = 0; i < n; ++i) {
      for (size_t r : which) {
        absl::Status s = leases_[r]->Tick();
        EXPECT_TRUE(s.ok()) << s;
      }
      ExpectDisjoint();
    }
  }

  void ExpectDisjoint() {
    std::map<std::string, int> holders;
    for (auto& leases : leases_) {
      for (const std::string& key : leases->owned()) ++holders[key];
    }
    for (const auto& [key, n] : holders) EXPECT_EQ(n, 1) << key;
    absl::MutexLock lock(&ledger_.mu);
    EXPECT_THAT(ledger_.double_owners, IsEmpty());
  }

  std::set<std::string> AllOwned() {
    std::set<std::string> all;
    for (auto& leases : leases_) {
      for (const std::string& key : leases->owned()) all.insert(key);
    }
    return all;
  }

  testing::PostgresServer* server_ = nullptr;
  PostgresStoreOptions options_;
  std::unique_ptr<Store> store_;
  Ledger ledger_;
  std::vector<RecordingListener*> routers_;
  std::vector<std::unique_ptr<RecordingListener>> listeners_;
  std::vector<std::unique_ptr<QueueLeases>> leases_;
};

// Three routers over ten queues: each holds at most ceil(10 / 3) = 4, all
// ten are held, none twice; the listeners heard the same as owned() says.
TEST_F(QueueLeasesTest, SpreadsQueuesEvenlyOverLiveRouters) {
  const std::vector<std::string> queues = Queues(10);
  AddRouter("r1", queues);
  AddRouter("r2", queues);
  AddRouter("r3", queues);
  // A router counts the others once their rows exist: one round each
  // first, then rounds until the surplus moved.
  Rounds(4, {0, 1, 2});
  EXPECT_THAT(AllOwned(), ElementsAreArray(queues));
  for (size_t i = 0; i < leases_.size(); ++i) {
    std::vector<std::string> owned = leases_[i]->owned();
    EXPECT_LE(owned.size(), 4u) << leases_[i]->router_name();
    EXPECT_GE(owned.size(), 2u) << leases_[i]->router_name();
    EXPECT_EQ(std::set<std::string>(owned.begin(), owned.end()),
              listeners_[i]->owned());
  }
}

// One router holds everything; a second joins: the first gives its surplus
// back (revoking it first) and the second takes it.
TEST_F(QueueLeasesTest, RouterThatJoinsGetsTheSurplus) {
  const std::vector<std::string> queues = Queues(8);
  AddRouter("first", queues);
  Rounds(1, {0});
  EXPECT_EQ(leases_[0]->owned().size(), 8u);

  AddRouter("second", queues);
  Rounds(3, {1, 0});
  EXPECT_EQ(leases_[0]->owned().size(), 4u);
  EXPECT_EQ(leases_[1]->owned().size(), 4u);
  EXPECT_EQ(listeners_[0]->revoked(), 4u);
  EXPECT_THAT(AllOwned(), ElementsAreArray(queues));
}

// A router that stops renewing (as after kill -9 or a lost network) keeps
// its queues until its leases expire, and the survivor takes them over at
// its first round after that: within ttl + renew_every (1.75 s) of the
// dead router's last renewal.
TEST_F(QueueLeasesTest, SurvivorTakesOverOnlyAfterTheLeasesExpire) {
  const std::vector<std::string> queues = Queues(6);
  AddRouter("doomed", queues);
  AddRouter("survivor", queues);
  Rounds(3, {0, 1});
  std::vector<std::string> doomed = leases_[0]->owned();
  ASSERT_EQ(doomed.size(), 3u);

  // The doomed router's last renewal.
  const absl::Time last_renewal = absl::Now();
  ASSERT_TRUE(leases_[0]->Tick().ok());
  const absl::Time valid_until = listeners_[0]->valid_until();
  ASSERT_GE(valid_until, last_renewal + absl::Milliseconds(1250));

  // The survivor runs rounds every 0.5 s, as its thread would.
  absl::Time took_over = absl::InfiniteFuture();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    ASSERT_TRUE(leases_[1]->Tick().ok());
    if (leases_[1]->owned().size() == queues.size()) {
      took_over = absl::Now();
      break;
    }
    absl::SleepFor(absl::Milliseconds(500));
  }
  ASSERT_LT(took_over, deadline) << "never took over";
  for (const std::string& key : doomed) {
    // Never before the doomed router's own clock let it stop.
    EXPECT_GE(listeners_[1]->granted_at(key), valid_until) << key;
  }
  std::cerr << "taken over " << absl::FormatDuration(took_over - last_renewal)
            << " after the last renewal\n";
  // 1.75 s by design; the slack is for a loaded machine's rounds.
  EXPECT_LT(took_over - last_renewal, absl::Seconds(3))
      << absl::FormatDuration(took_over - last_renewal);
  // The doomed router's next round (had it survived) finds them lost.
  ASSERT_TRUE(leases_[0]->Tick().ok());
  EXPECT_THAT(leases_[0]->owned(), IsEmpty());
  EXPECT_THAT(listeners_[0]->owned(), IsEmpty());
}

// With their threads: three routers share the queues; one stops (giving
// its leases back) and the two others hold everything within two rounds.
// A commit into a held queue wakes its holder through NOTIFY, and a queue
// that only has pending deliveries (no link names it) is leased too.
TEST_F(QueueLeasesTest, ThreadsShareHandOverAndHearCommits) {
  const std::vector<std::string> queues = Queues(9);
  for (const char* name : {"a", "b", "c"}) AddRouter(name, queues).Start();
  auto wait = [&](auto done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (!done()) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return true;
  };
  ASSERT_TRUE(wait([&] {
    return AllOwned().size() == queues.size() &&
           leases_[0]->owned().size() == 3 && leases_[1]->owned().size() == 3 &&
           leases_[2]->owned().size() == 3;
  }));
  ExpectDisjoint();

  // A commit into a queue: its holder hears of it.
  CommitBatch batch;
  batch.now = absl::Now();
  batch.events.push_back(Posted("e1", "C4"));
  ASSERT_TRUE(store_->Apply(batch).ok());
  size_t holder = 3;
  for (size_t i = 0; i < 3; ++i) {
    std::vector<std::string> owned = leases_[i]->owned();
    if (std::count(owned.begin(), owned.end(), "slack/acme/C4") > 0) {
      holder = i;
    }
  }
  ASSERT_LT(holder, 3u);
  EXPECT_TRUE(wait(
      [&] { return listeners_[holder]->HeardOf("slack/acme/C4", false); }));

  // Pending work for a queue nobody links: leased as well.
  CommitBatch extra;
  extra.now = absl::Now();
  extra.events.push_back(Posted("e2", "unlinked"));
  ASSERT_TRUE(store_->Apply(extra).ok());
  EXPECT_TRUE(wait([&] { return AllOwned().count("slack/acme/unlinked"); }));

  // "c" stops: a and b hold all ten within their next rounds.
  const absl::Time stopped = absl::Now();
  leases_[2]->Stop();
  ASSERT_TRUE(wait([&] {
    return leases_[0]->owned().size() + leases_[1]->owned().size() == 10;
  }));
  EXPECT_LT(absl::Now() - stopped, absl::Seconds(5));
  EXPECT_LE(leases_[0]->owned().size(), 5u);
  EXPECT_LE(leases_[1]->owned().size(), 5u);
  ExpectDisjoint();
}

// A dead letter put back into its queue wakes the queue's holder to read
// it again from the start (it keeps its old id).
TEST_F(QueueLeasesTest, RetriedDeadLetterWakesTheHolderToReload) {
  QueueLeases& leases = AddRouter("only", Queues(1));
  leases.Start();
  // Held (and so listened for) first.
  const absl::Time held_by = absl::Now() + absl::Seconds(30);
  while (leases.owned().empty() && absl::Now() < held_by) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_FALSE(leases.owned().empty());
  CommitBatch batch;
  batch.now = absl::Now();
  batch.events.push_back(Posted("dead", "C0"));
  ASSERT_TRUE(store_->Apply(batch).ok());
  const int64_t id = batch.events[0].deliveries[0].id;
  CommitBatch dead;
  dead.now = absl::Now();
  dead.dead_letters.push_back({id, "gave up"});
  ASSERT_TRUE(store_->Apply(dead).ok());
  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(store_->RetryDeadLetter(id, absl::Now()).ok());
  ASSERT_TRUE(store_->Commit().ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!listeners_[0]->HeardOf("slack/acme/C0", true) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(listeners_[0]->HeardOf("slack/acme/C0", true));
}

// Every router hears of a committed change to the operator records (runtime
// links, webhooks), whoever committed it, and reads them once when its
// LISTEN connection is made; a rolled-back change says nothing.
TEST_F(QueueLeasesTest, RecordCommitsWakeEveryRouterToReadThemAgain) {
  std::atomic<int> heard[2] = {0, 0};
  AddRouter("r1", Queues(1), [&] { ++heard[0]; });
  AddRouter("r2", Queues(1), [&] { ++heard[1]; });
  // Rounds until both routers heard `n` times (or 10 s).
  auto rounds_until = [&](int n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    do {
      Rounds(1, {0, 1});
      if (heard[0] >= n && heard[1] >= n) return;
      absl::SleepFor(absl::Milliseconds(20));
    } while (absl::Now() < deadline);
  };
  rounds_until(1);
  // Connected (and so listening): one reading each.
  EXPECT_EQ(heard[0].load(), 1);
  EXPECT_EQ(heard[1].load(), 1);

  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(store_->PutRecord("link", "l", "payload").ok());
  store_->Rollback();
  Rounds(3, {0, 1});
  EXPECT_EQ(heard[0].load(), 1);
  EXPECT_EQ(heard[1].load(), 1);

  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(store_->PutRecord("webhook", "w", "payload").ok());
  ASSERT_TRUE(store_->Commit().ok());
  rounds_until(2);
  EXPECT_EQ(heard[0].load(), 2);
  EXPECT_EQ(heard[1].load(), 2);
  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(store_->DeleteRecord("webhook", "w").ok());
  ASSERT_TRUE(store_->Commit().ok());
  rounds_until(3);
  EXPECT_EQ(heard[0].load(), 3);
  EXPECT_EQ(heard[1].load(), 3);
}

TEST(QueueWorkPayloadTest, RoundTripsAndFallsBackToAllQueues) {
  QueueWork work;
  work.written = {"a/b/c", "x\"y\n"};
  work.reload = {"r"};
  QueueWork back = ParseQueueWork(QueueWorkPayload(work));
  EXPECT_FALSE(back.all);
  EXPECT_EQ(back.written, work.written);
  EXPECT_EQ(back.reload, work.reload);

  // Too long for NOTIFY: every queue, new deliveries only.
  QueueWork many;
  for (int i = 0; i < 2000; ++i) many.written.push_back(absl::StrCat("q", i));
  QueueWork all = ParseQueueWork(QueueWorkPayload(many));
  EXPECT_TRUE(all.all);
  EXPECT_TRUE(all.reload.empty());
  // A key that is not UTF-8 cannot be named in JSON: every queue.
  QueueWork odd;
  odd.reload = {std::string("bad\xff", 4)};
  QueueWork all_again = ParseQueueWork(QueueWorkPayload(odd));
  EXPECT_TRUE(all_again.all);
  EXPECT_FALSE(all_again.reload.empty());
  // Unreadable: every queue, from the start.
  QueueWork garbage = ParseQueueWork("not json");
  EXPECT_TRUE(garbage.all);
  EXPECT_FALSE(garbage.reload.empty());
}

// The outbox-sequence trap: two routers' stores commit deliveries into one
// queue at once while a reader pages through it after its cursor, as a
// queue's holder does. Ids must follow commit order, or a commit of a lower
// id landing after the reader passed a higher one is skipped for good.
TEST_F(QueueLeasesTest, ConcurrentCommittersNeverMakeTheReaderSkip) {
  absl::StatusOr<std::unique_ptr<Store>> second = OpenPostgresStore(options_);
  ASSERT_TRUE(second.ok()) << second.status();
  constexpr int kBatches = 300;
  std::atomic<int> writers_done{0};
  auto writer = [&](Store* store, const std::string& name) {
    for (int i = 0; i < kBatches; ++i) {
      CommitBatch batch;
      batch.now = absl::Now();
      for (int j = 0; j < 1 + i % 3; ++j) {
        batch.events.push_back(
            Posted(absl::StrCat(name, "-", i, "-", j), "shared"));
      }
      absl::Status s = store->Apply(batch);
      EXPECT_TRUE(s.ok()) << s;
    }
    ++writers_done;
  };
  std::thread a(writer, store_.get(), "a");
  std::thread b(writer, second->get(), "b");

  // The reader: pages of 7 after its cursor, completing nothing.
  std::vector<int64_t> read;
  int64_t cursor = 0;
  while (true) {
    const bool last = writers_done.load() == 2;
    absl::StatusOr<std::vector<DeliveryRecord>> page =
        store_->LoadPendingDeliveries("slack/acme/shared", cursor, 7);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const DeliveryRecord& d : *page) {
      read.push_back(d.id);
      cursor = d.id;
    }
    if (last && page->empty()) break;
  }
  a.join();
  b.join();

  absl::StatusOr<std::vector<DeliveryRecord>> all =
      store_->LoadPendingDeliveries("slack/acme/shared", 0, 1 << 20);
  ASSERT_TRUE(all.ok());
  std::vector<int64_t> committed;
  for (const DeliveryRecord& d : *all) committed.push_back(d.id);
  ASSERT_EQ(committed.size(), static_cast<size_t>(2 * (kBatches / 3) * 6));
  // Everything committed was read, each once, in id (= commit) order.
  EXPECT_EQ(read, committed);
}

}  // namespace
}  // namespace imbridge::bridge
