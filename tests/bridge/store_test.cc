#include "bridge/store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bridge/postgres_store.h"
#include "bridge/sqlite_store.h"
#include "common/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "imbridge/v1/config.pb.h"
#include "imbridge/v1/events.pb.h"
#include "tests/support/postgres_server.h"

namespace imbridge::bridge {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;

#define ASSERT_OK(expr)                         \
  do {                                          \
    ::absl::Status assert_ok_ = (expr);         \
    ASSERT_TRUE(assert_ok_.ok()) << assert_ok_; \
  } while (0)

#define EXPECT_OK(expr)                         \
  do {                                          \
    ::absl::Status expect_ok_ = (expr);         \
    EXPECT_TRUE(expect_ok_.ok()) << expect_ok_; \
  } while (0)

#define ASSERT_OK_AND_ASSIGN(lhs, rexpr)                                   \
  ASSERT_OK_AND_ASSIGN_IMPL_(IMB_CONCAT_(assert_statusor_, __LINE__), lhs, \
                             rexpr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                               \
  ASSERT_TRUE(statusor.ok()) << statusor.status();       \
  lhs = std::move(statusor).value()

const absl::Time kT0 = absl::FromUnixMillis(1700000000000);

absl::Time At(int seconds) { return kT0 + absl::Seconds(seconds); }

v1::ChannelRef Channel(const std::string& chat,
                       const std::string& thread = "") {
  v1::ChannelRef channel;
  channel.set_platform("slack");
  channel.set_account("acme");
  channel.set_chat_id(chat);
  channel.set_thread_id(thread);
  return channel;
}

v1::Event Posted(const std::string& key, const std::string& text) {
  v1::Event event;
  event.set_key(key);
  *event.mutable_channel() = Channel("C-origin");
  event.set_occurred_at_ms(1700000000000);
  event.mutable_posted()->set_message_id(absl::StrCat("m-", key));
  event.mutable_posted()->mutable_text()->set_text(text);
  event.mutable_posted()->mutable_sender()->set_display_name("Ann");
  return event;
}

DeliveryRecord Delivery(const std::string& chat, absl::Time created_at) {
  DeliveryRecord delivery;
  delivery.target = Channel(chat);
  delivery.target_key = ChannelKey(delivery.target, true);
  delivery.link = "support";
  delivery.sender_name = "Ann (Slack)";
  delivery.created_at = created_at;
  delivery.next_attempt_at = created_at;
  return delivery;
}

// A new event posted at the origin, with deliveries.
NewEvent Event(const std::string& key, std::vector<DeliveryRecord> deliveries,
               const std::string& text = "hi") {
  NewEvent entry;
  entry.event = std::make_shared<const v1::Event>(Posted(key, text));
  entry.deliveries = std::move(deliveries);
  return entry;
}

std::vector<int64_t> Ids(const std::vector<DeliveryRecord>& records) {
  std::vector<int64_t> ids;
  for (const DeliveryRecord& record : records) ids.push_back(record.id);
  return ids;
}

// The backends every StoreTest runs against.
enum class Backend { kSqlite, kPostgres };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "sqlite" : "postgres";
}

// How ctest's test names show the parameter.
void PrintTo(Backend backend, std::ostream* os) {
  *os << (backend == Backend::kSqlite ? "sqlite" : "postgres");
}

// A store of the parameter's backend, fresh for each test: SQLite in a temp
// dir, or a new database on the test binary's PostgreSQL server
// (tests/support/postgres_server.h).
class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info->name();  // "Test/backend"
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = absl::StrCat(::testing::TempDir(), "/imbridge_store_test_", getpid(),
                        "_", name, "/data");
    std::filesystem::remove_all(std::filesystem::path(dir_).parent_path());
    if (GetParam() == Backend::kPostgres) {
      absl::StatusOr<testing::PostgresServer*> server =
          testing::SharedPostgresServer();
      ASSERT_TRUE(server.ok()) << server.status();
      server_ = *server;
      absl::StatusOr<std::string> database = server_->CreateDatabase();
      ASSERT_TRUE(database.ok()) << database.status();
      database_ = *database;
    }
    Reopen();
  }

  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(std::filesystem::path(dir_).parent_path());
  }

  // Opens the store of this test's data dir or database.
  absl::StatusOr<std::unique_ptr<Store>> Open(
      v1::Durability durability = v1::FULL) {
    if (GetParam() == Backend::kSqlite) {
      return OpenSqliteStore(dir_, durability);
    }
    return OpenPostgresStore(PostgresOptions(database_, durability));
  }

  PostgresStoreOptions PostgresOptions(const std::string& database,
                                       v1::Durability durability = v1::FULL) {
    PostgresStoreOptions options;
    options.dsn = server_->Dsn(database);
    options.password = server_->password();
    options.durability = durability;
    return options;
  }

  // Opens a store of another, new data dir or database.
  absl::StatusOr<std::unique_ptr<Store>> OpenOther() {
    if (GetParam() == Backend::kSqlite) {
      return OpenSqliteStore(dir_ + "/other", v1::FULL);
    }
    IMB_ASSIGN_OR_RETURN(std::string database, server_->CreateDatabase());
    return OpenPostgresStore(PostgresOptions(database));
  }

  void Reopen(v1::Durability durability = v1::FULL) {
    store_.reset();
    absl::StatusOr<std::unique_ptr<Store>> store = Open(durability);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
  }

  // Runs `body` in one transaction: commits if it succeeds, rolls back if
  // it fails.
  absl::Status InTransaction(const std::function<absl::Status()>& body) {
    IMB_RETURN_IF_ERROR(store_->Begin());
    absl::Status status = body();
    if (!status.ok()) {
      store_->Rollback();
      return status;
    }
    return store_->Commit();
  }

  // Applies a batch made of `events` at `now`; returns the entries with
  // their ids.
  absl::StatusOr<std::vector<NewEvent>> Write(std::vector<NewEvent> events,
                                              absl::Time now = kT0) {
    CommitBatch batch;
    batch.now = now;
    batch.events = std::move(events);
    IMB_RETURN_IF_ERROR(store_->Apply(batch));
    return std::move(batch.events);
  }

  // Commits a new event and returns its id.
  absl::StatusOr<int64_t> AddEvent(const std::string& key,
                                   absl::Time received_at = kT0) {
    IMB_ASSIGN_OR_RETURN(std::vector<NewEvent> written,
                         Write({Event(key, {})}, received_at));
    if (written[0].id == 0) return absl::AlreadyExistsError(key);
    return written[0].id;
  }

  // Commits a new event with `deliveries` and returns the deliveries' ids.
  absl::StatusOr<std::vector<int64_t>> AddDeliveries(
      const std::string& key, std::vector<DeliveryRecord> deliveries,
      absl::Time received_at = kT0) {
    IMB_ASSIGN_OR_RETURN(
        std::vector<NewEvent> written,
        Write({Event(key, std::move(deliveries))}, received_at));
    if (written[0].id == 0) return absl::AlreadyExistsError(key);
    return Ids(written[0].deliveries);
  }

  // Commits a new event with one delivery and returns the delivery's id.
  absl::StatusOr<int64_t> AddDelivery(const std::string& key,
                                      DeliveryRecord delivery) {
    IMB_ASSIGN_OR_RETURN(std::vector<int64_t> ids,
                         AddDeliveries(key, {std::move(delivery)}));
    return ids[0];
  }

  // Prunes the events received before `before`, in a transaction of its
  // own; returns how many went.
  absl::StatusOr<int64_t> Prune(absl::Time before) {
    int64_t pruned = 0;
    IMB_RETURN_IF_ERROR(InTransaction([&]() -> absl::Status {
      IMB_ASSIGN_OR_RETURN(pruned, store_->PruneEvents(before));
      return absl::OkStatus();
    }));
    return pruned;
  }

  // Applies a batch that `fill` fills in, at `now`.
  absl::Status Change(const std::function<void(CommitBatch&)>& fill,
                      absl::Time now = kT0) {
    CommitBatch batch;
    batch.now = now;
    fill(batch);
    return store_->Apply(batch);
  }

  // Counts rows with a separate raw connection, to check what is stored.
  int64_t CountRows(const std::string& table) {
    if (GetParam() == Backend::kPostgres) {
      absl::StatusOr<std::string> count = server_->Query(
          database_, absl::StrCat("SELECT count(*) FROM ", table));
      return count.ok() ? std::stoll(*count) : -1;
    }
    return SqliteInt(absl::StrCat("SELECT count(*) FROM ", table));
  }

  // The first column of the first row of `sql` on the SQLite database; -1
  // if there is none.
  int64_t SqliteInt(const std::string& sql) {
    sqlite3* db = nullptr;
    int64_t value = -1;
    if (sqlite3_open_v2(DbPath().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
        SQLITE_OK) {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) ==
              SQLITE_OK &&
          sqlite3_step(stmt) == SQLITE_ROW) {
        value = sqlite3_column_int64(stmt, 0);
      }
      sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return value;
  }

  std::string DbPath() const { return dir_ + "/imbridge.db"; }

  std::string dir_;
  testing::PostgresServer* server_ = nullptr;
  std::string database_;
  std::unique_ptr<Store> store_;
};

INSTANTIATE_TEST_SUITE_P(, StoreTest,
                         ::testing::Values(Backend::kSqlite,
                                           Backend::kPostgres),
                         BackendName);

// Tests of what only the SQLite store has: its files, its pool of
// connections to them, its migrations of old data directories.
class SqliteStoreTest : public StoreTest {};
INSTANTIATE_TEST_SUITE_P(, SqliteStoreTest, ::testing::Values(Backend::kSqlite),
                         BackendName);

// Tests of what only the PostgreSQL store has.
class PostgresStoreTest : public StoreTest {};
INSTANTIATE_TEST_SUITE_P(, PostgresStoreTest,
                         ::testing::Values(Backend::kPostgres), BackendName);

TEST(ChannelKeyTest, JoinsPartsAndOptionalThread) {
  EXPECT_EQ(ChannelKey(Channel("C1"), false), "slack/acme/C1");
  EXPECT_EQ(ChannelKey(Channel("C1"), true), "slack/acme/C1");
  EXPECT_EQ(ChannelKey(Channel("C1", "t9"), false), "slack/acme/C1");
  EXPECT_EQ(ChannelKey(Channel("C1", "t9"), true), "slack/acme/C1#t9");
}

TEST_P(StoreTest, DuplicateEventKeyIsRejectedAndWritesNothing) {
  ASSERT_OK_AND_ASSIGN(int64_t first, AddEvent("slack:T1:Ev1"));
  // A duplicate writes nothing of its entry: not its deliveries either.
  ASSERT_OK_AND_ASSIGN(
      std::vector<NewEvent> dup,
      Write({Event("slack:T1:Ev1", {Delivery("A", kT0)}, "x")}));
  EXPECT_EQ(dup[0].id, 0);
  EXPECT_EQ(dup[0].deliveries[0].id, 0);
  EXPECT_EQ(CountRows("events"), 1);
  EXPECT_EQ(CountRows("deliveries"), 0);

  ASSERT_OK_AND_ASSIGN(int64_t second, AddEvent("slack:T1:Ev2"));
  EXPECT_GT(second, first);
  EXPECT_EQ(CountRows("events"), 2);
}

TEST_P(StoreTest, DuplicateInsideOneBatchIsRejected) {
  ASSERT_OK_AND_ASSIGN(std::vector<NewEvent> written,
                       Write({Event("k1", {Delivery("A", kT0)}, "a"),
                              Event("k1", {Delivery("A", kT0)}, "b"),
                              Event("k2", {Delivery("A", kT0)}, "c")}));
  EXPECT_GT(written[0].id, 0);
  EXPECT_EQ(written[1].id, 0);
  EXPECT_GT(written[2].id, written[0].id);
  EXPECT_EQ(CountRows("events"), 2);
  EXPECT_EQ(CountRows("deliveries"), 2);
  EXPECT_EQ(written[0].deliveries[0].event_id, written[0].id);
  EXPECT_GT(written[2].deliveries[0].id, written[0].deliveries[0].id);
}

TEST_P(StoreTest, DuplicateIsRecognisedAfterReopen) {
  ASSERT_OK(AddEvent("telegram:bot1:42").status());
  Reopen();
  EXPECT_EQ(AddEvent("telegram:bot1:42").status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_P(StoreTest, EventWithoutKeyIsInvalidAndFailsTheWholeBatch) {
  absl::StatusOr<std::vector<NewEvent>> written =
      Write({Event("good", {Delivery("A", kT0)}), Event("", {}, "x")});
  EXPECT_EQ(written.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CountRows("events"), 0);
  EXPECT_EQ(CountRows("deliveries"), 0);
  // The key was never accepted, and a failed batch's ids are handed out
  // again.
  ASSERT_OK_AND_ASSIGN(int64_t id, AddEvent("good"));
  EXPECT_EQ(id, 1);
}

TEST_P(StoreTest, ApplyInsideAnOperatorTransactionFails) {
  ASSERT_OK(store_->Begin());
  CommitBatch batch;
  batch.events.push_back(Event("k", {}));
  EXPECT_EQ(store_->Apply(batch).code(), absl::StatusCode::kFailedPrecondition);
  store_->Rollback();
  EXPECT_EQ(CountRows("events"), 0);
}

TEST_P(StoreTest, LoadPendingDeliveriesPagesInIdOrderWithEvents) {
  std::vector<NewEvent> events;
  for (int i = 0; i < 5; ++i) {
    events.push_back(Event(absl::StrCat("k", i),
                           {Delivery("A", At(i)), Delivery("B", At(i))}));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<NewEvent> written, Write(std::move(events)));
  std::vector<int64_t> a_ids;
  for (const NewEvent& e : written) {
    ASSERT_GT(e.deliveries[1].id, e.deliveries[0].id);
    a_ids.push_back(e.deliveries[0].id);
  }
  const std::string a_key = "slack/acme/A";

  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> page1,
                       store_->LoadPendingDeliveries(a_key, 0, 2));
  EXPECT_THAT(Ids(page1), ElementsAre(a_ids[0], a_ids[1]));
  ASSERT_OK_AND_ASSIGN(
      std::vector<DeliveryRecord> page2,
      store_->LoadPendingDeliveries(a_key, page1.back().id, 2));
  EXPECT_THAT(Ids(page2), ElementsAre(a_ids[2], a_ids[3]));
  ASSERT_OK_AND_ASSIGN(
      std::vector<DeliveryRecord> page3,
      store_->LoadPendingDeliveries(a_key, page2.back().id, 2));
  EXPECT_THAT(Ids(page3), ElementsAre(a_ids[4]));
  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> none,
                       store_->LoadPendingDeliveries(a_key, a_ids[4], 2));
  EXPECT_THAT(none, IsEmpty());
  ASSERT_OK_AND_ASSIGN(none, store_->LoadPendingDeliveries(a_key, 0, 0));
  EXPECT_THAT(none, IsEmpty());

  const DeliveryRecord& second = page1[1];
  EXPECT_EQ(second.event_id, written[1].id);
  EXPECT_EQ(second.target_key, a_key);
  EXPECT_EQ(second.target.chat_id(), "A");
  EXPECT_EQ(second.target.platform(), "slack");
  EXPECT_EQ(second.link, "support");
  EXPECT_EQ(second.sender_name, "Ann (Slack)");
  EXPECT_EQ(second.attempts, 0);
  EXPECT_EQ(second.created_at, At(1));
  EXPECT_EQ(second.next_attempt_at, At(1));
  EXPECT_EQ(second.last_error, "");
  ASSERT_NE(second.event, nullptr);
  EXPECT_EQ(second.event->key(), "k1");
  EXPECT_EQ(second.event->posted().text().text(), "hi");
  EXPECT_EQ(second.event->posted().sender().display_name(), "Ann");
  ASSERT_NE(page1[0].event, nullptr);
  EXPECT_EQ(page1[0].event->key(), "k0");
}

TEST_P(StoreTest, InfiniteTimesRoundTrip) {
  DeliveryRecord delivery = Delivery("A", kT0);
  delivery.next_attempt_at = absl::InfinitePast();
  ASSERT_OK(AddDelivery("k", delivery).status());
  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> loaded,
                       store_->LoadPendingDeliveries("slack/acme/A", 0, 10));
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].next_attempt_at, absl::InfinitePast());
}

TEST_P(StoreTest, ListPendingTargetsAndCompleteDelivery) {
  DeliveryRecord threaded = Delivery("C", kT0);
  threaded.target = Channel("C", "t1");
  threaded.target_key = ChannelKey(threaded.target, true);
  ASSERT_OK_AND_ASSIGN(
      std::vector<int64_t> ids,
      AddDeliveries("k", {Delivery("A", kT0), Delivery("B", kT0),
                          Delivery("B", kT0), threaded}));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> targets,
                       store_->ListPendingTargets());
  EXPECT_THAT(targets,
              ElementsAre("slack/acme/A", "slack/acme/B", "slack/acme/C#t1"));

  ASSERT_OK(Change([&](CommitBatch& b) {
    b.completed = {ids[1], ids[2]};
    b.dead_letters.push_back({ids[0], "gone"});
    // Unknown ids are a no-op, so a batch is not aborted by them.
    b.completed.push_back(9999);
    b.retries.push_back({9999, 1, At(2), "x"});
    b.dead_letters.push_back({9998, "x"});
  }));
  ASSERT_OK_AND_ASSIGN(targets, store_->ListPendingTargets());
  EXPECT_THAT(targets, ElementsAre("slack/acme/C#t1"));
  EXPECT_EQ(CountRows("deliveries"), 2);  // the thread's and the dead letter
}

TEST_P(StoreTest, RetryUpdatesAttemptAndError) {
  ASSERT_OK_AND_ASSIGN(int64_t id, AddDelivery("k", Delivery("A", kT0)));
  ASSERT_OK(Change([&](CommitBatch& b) {
    b.retries.push_back({id, 3, At(60), "429 rate limited"});
  }));
  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> loaded,
                       store_->LoadPendingDeliveries("slack/acme/A", 0, 10));
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].id, id);
  EXPECT_EQ(loaded[0].attempts, 3);
  EXPECT_EQ(loaded[0].next_attempt_at, At(60));
  EXPECT_EQ(loaded[0].last_error, "429 rate limited");
  EXPECT_EQ(loaded[0].created_at, kT0);
}

TEST_P(StoreTest, DeadLettersCanBeListedRetriedAndDropped) {
  ASSERT_OK_AND_ASSIGN(
      std::vector<int64_t> ids,
      AddDeliveries(
          "k", {Delivery("A", kT0), Delivery("A", kT0), Delivery("A", kT0)}));
  const int64_t d1 = ids[0], d2 = ids[1], d3 = ids[2];
  ASSERT_OK(Change(
      [&](CommitBatch& b) {
        b.retries.push_back({d1, 5, At(9), "timeout"});
        b.dead_letters.push_back({d1, "ttl expired"});
      },
      At(10)));
  ASSERT_OK(Change(
      [&](CommitBatch& b) {
        b.dead_letters.push_back({d2, "403 forbidden"});
      },
      At(20)));

  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> dead,
                       store_->ListDeadLetters(0, 10));
  EXPECT_THAT(Ids(dead), ElementsAre(d2, d1));  // newest first
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].last_error, "403 forbidden");
  EXPECT_EQ(dead[1].last_error, "ttl expired");
  EXPECT_EQ(dead[1].attempts, 5);
  ASSERT_NE(dead[1].event, nullptr);
  EXPECT_EQ(dead[1].event->key(), "k");
  ASSERT_OK_AND_ASSIGN(dead, store_->ListDeadLetters(0, 1));
  EXPECT_THAT(Ids(dead), ElementsAre(d2));

  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> pending,
                       store_->LoadPendingDeliveries("slack/acme/A", 0, 10));
  EXPECT_THAT(Ids(pending), ElementsAre(d3));
  ASSERT_OK_AND_ASSIGN(Store::TargetCounts counts,
                       store_->CountDeliveries("slack/acme/A"));
  EXPECT_EQ(counts.pending, 1);
  EXPECT_EQ(counts.dead, 2);

  // Retry brings d1 back, fresh, with its id.
  ASSERT_OK(InTransaction([&] { return store_->RetryDeadLetter(d1, At(30)); }));
  ASSERT_OK_AND_ASSIGN(pending,
                       store_->LoadPendingDeliveries("slack/acme/A", 0, 10));
  EXPECT_THAT(Ids(pending), ElementsAre(d1, d3));
  EXPECT_EQ(pending[0].attempts, 0);
  EXPECT_EQ(pending[0].next_attempt_at, At(30));
  EXPECT_EQ(pending[0].last_error, "");
  ASSERT_OK_AND_ASSIGN(dead, store_->ListDeadLetters(0, 10));
  EXPECT_THAT(Ids(dead), ElementsAre(d2));

  ASSERT_OK(InTransaction([&] { return store_->DropDeadLetter(d2); }));
  ASSERT_OK_AND_ASSIGN(dead, store_->ListDeadLetters(0, 10));
  EXPECT_THAT(dead, IsEmpty());
  ASSERT_OK_AND_ASSIGN(counts, store_->CountDeliveries("slack/acme/A"));
  EXPECT_EQ(counts.pending, 2);
  EXPECT_EQ(counts.dead, 0);

  // Not dead letters: the dropped one, a pending one, an unknown id.
  for (int64_t id : {d2, d3, int64_t{12345}}) {
    ASSERT_OK(store_->Begin());
    EXPECT_EQ(store_->RetryDeadLetter(id, At(40)).code(),
              absl::StatusCode::kNotFound);
    EXPECT_EQ(store_->DropDeadLetter(id).code(), absl::StatusCode::kNotFound);
    store_->Rollback();
  }
  ASSERT_OK_AND_ASSIGN(pending,
                       store_->LoadPendingDeliveries("slack/acme/A", 0, 10));
  EXPECT_THAT(Ids(pending), ElementsAre(d1, d3));
}

TEST_P(StoreTest, DeadLetterRefsPageByIdAndTargetsAreListed) {
  // Dead letters in two targets, a pending delivery between them.
  const std::vector<std::string> chats = {"B", "A", "B", "pending", "A", "B"};
  std::vector<DeliveryRecord> deliveries;
  for (const std::string& chat : chats) {
    deliveries.push_back(Delivery(chat, kT0));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<int64_t> ids,
                       AddDeliveries("k", std::move(deliveries)));
  std::vector<int64_t> dead_ids;
  ASSERT_OK(Change(
      [&](CommitBatch& b) {
        for (size_t i = 0; i < chats.size(); ++i) {
          if (chats[i] == "pending") continue;
          b.dead_letters.push_back({ids[i], "gone"});
          dead_ids.push_back(ids[i]);
        }
      },
      At(1)));

  std::vector<int64_t> walked;
  std::vector<std::string> keys;
  int64_t after = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(std::vector<DeadLetterRef> page,
                         store_->ListDeadLetterRefs(after, 2));
    if (page.empty()) break;
    EXPECT_LE(page.size(), 2u);
    for (const DeadLetterRef& ref : page) {
      walked.push_back(ref.id);
      keys.push_back(ref.target_key);
    }
    after = page.back().id;
  }
  EXPECT_EQ(walked, dead_ids);
  EXPECT_THAT(keys, ElementsAre("slack/acme/B", "slack/acme/A", "slack/acme/B",
                                "slack/acme/A", "slack/acme/B"));

  ASSERT_OK_AND_ASSIGN(std::optional<DeadLetterRef> found,
                       store_->FindDeadLetter(dead_ids[1]));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->target_key, "slack/acme/A");
  // The pending delivery (id between the third and fourth dead letter) and
  // an unknown id are not dead letters.
  for (int64_t id : {dead_ids[3] - 1, int64_t{12345}}) {
    ASSERT_OK_AND_ASSIGN(found, store_->FindDeadLetter(id));
    EXPECT_FALSE(found.has_value()) << id;
  }

  ASSERT_OK_AND_ASSIGN(auto targets, store_->ListDeadLetterTargets());
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_EQ(targets[0].first, "slack/acme/A");
  EXPECT_EQ(targets[0].second.chat_id(), "A");
  EXPECT_EQ(targets[1].first, "slack/acme/B");
  EXPECT_EQ(targets[1].second.chat_id(), "B");

  ASSERT_OK(InTransaction([&]() -> absl::Status {
    IMB_RETURN_IF_ERROR(store_->DropDeadLetter(dead_ids[1]));
    return store_->RetryDeadLetter(dead_ids[3], At(2));
  }));
  ASSERT_OK_AND_ASSIGN(targets, store_->ListDeadLetterTargets());
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0].first, "slack/acme/B");
}

TEST_P(StoreTest, CountDeliveriesReportsOldestPending) {
  ASSERT_OK_AND_ASSIGN(Store::TargetCounts empty,
                       store_->CountDeliveries("slack/acme/A"));
  EXPECT_EQ(empty.pending, 0);
  EXPECT_EQ(empty.dead, 0);
  EXPECT_EQ(empty.oldest_pending, absl::InfiniteFuture());

  ASSERT_OK_AND_ASSIGN(
      std::vector<int64_t> ids,
      AddDeliveries("k", {Delivery("A", At(5)), Delivery("A", At(7)),
                          Delivery("A", At(9)), Delivery("B", At(1))}));
  const int64_t first = ids[0];
  ASSERT_OK(Change(
      [&](CommitBatch& b) {
        b.dead_letters.push_back({first, "no"});
      },
      At(10)));
  ASSERT_OK_AND_ASSIGN(Store::TargetCounts counts,
                       store_->CountDeliveries("slack/acme/A"));
  EXPECT_EQ(counts.pending, 2);
  EXPECT_EQ(counts.dead, 1);
  EXPECT_EQ(counts.oldest_pending, At(7));

  // A retried dead letter goes back to the head of its queue (its id) and
  // counts from its retry.
  ASSERT_OK(
      InTransaction([&] { return store_->RetryDeadLetter(first, At(20)); }));
  ASSERT_OK_AND_ASSIGN(counts, store_->CountDeliveries("slack/acme/A"));
  EXPECT_EQ(counts.pending, 3);
  EXPECT_EQ(counts.dead, 0);
  EXPECT_EQ(counts.oldest_pending, At(20));
}

TEST_P(StoreTest, MessageMap) {
  ASSERT_OK(Change([&](CommitBatch& b) {
    b.messages.push_back({7, "slack/acme/C1", {"o1"}, false});
    b.messages.push_back(
        {7, "telegram/bot/42", {"c-part0", "c-part1", "c-part2"}, true});
    // Re-adding an existing pair changes nothing, even with other values.
    b.messages.push_back({99, "telegram/bot/42", {"c-part1"}, false});
  }));

  ASSERT_OK_AND_ASSIGN(std::optional<MessageLocation> original,
                       store_->FindMessage("slack/acme/C1", "o1"));
  ASSERT_TRUE(original.has_value());
  EXPECT_EQ(original->group_id, 7);
  EXPECT_FALSE(original->is_copy);
  ASSERT_OK_AND_ASSIGN(std::optional<MessageLocation> copy,
                       store_->FindMessage("telegram/bot/42", "c-part1"));
  ASSERT_TRUE(copy.has_value());
  EXPECT_EQ(copy->group_id, 7);
  EXPECT_TRUE(copy->is_copy);
  ASSERT_OK_AND_ASSIGN(std::optional<MessageLocation> missing,
                       store_->FindMessage("slack/acme/C1", "c-part1"));
  EXPECT_FALSE(missing.has_value());

  // Many at once, in one read: results in the order asked.
  const std::vector<std::pair<std::string, std::string>> asked = {
      {"telegram/bot/42", "c-part2"},
      {"slack/acme/C1", "nope"},
      {"slack/acme/C1", "o1"}};
  ASSERT_OK_AND_ASSIGN(std::vector<std::optional<MessageLocation>> many,
                       store_->FindMessages(asked));
  ASSERT_EQ(many.size(), 3u);
  ASSERT_TRUE(many[0].has_value());
  EXPECT_TRUE(many[0]->is_copy);
  EXPECT_FALSE(many[1].has_value());
  ASSERT_TRUE(many[2].has_value());
  EXPECT_FALSE(many[2]->is_copy);
  EXPECT_EQ(many[2]->group_id, 7);
  ASSERT_OK_AND_ASSIGN(many, store_->FindMessages({}));
  EXPECT_THAT(many, IsEmpty());

  ASSERT_OK_AND_ASSIGN(std::vector<std::string> parts,
                       store_->FindMessagesInChannel(7, "telegram/bot/42"));
  EXPECT_THAT(parts, ElementsAre("c-part0", "c-part1", "c-part2"));
  ASSERT_OK_AND_ASSIGN(parts,
                       store_->FindMessagesInChannel(7, "slack/acme/C1"));
  EXPECT_THAT(parts, ElementsAre("o1"));
  ASSERT_OK_AND_ASSIGN(parts,
                       store_->FindMessagesInChannel(99, "telegram/bot/42"));
  EXPECT_THAT(parts, IsEmpty());
  EXPECT_EQ(CountRows("messages"), 4);
}

TEST_P(StoreTest, RosterUpsertAndList) {
  RosterEntry ann{"slack", "acme", "U1", "Ann", v1::ONLINE, "", At(1)};
  RosterEntry bob{"telegram", "bot", "7", "Bob", v1::AWAY, "lunch", At(2)};
  ASSERT_OK(Change([&](CommitBatch& b) { b.roster = {ann, bob}; }));
  ann.presence = v1::DND;
  ann.status_text = "in a meeting";
  ann.updated_at = At(3);
  ASSERT_OK(Change([&](CommitBatch& b) { b.roster = {ann}; }));

  ASSERT_OK_AND_ASSIGN(std::vector<RosterEntry> all, store_->ListRoster(""));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].user_id, "U1");
  EXPECT_EQ(all[0].presence, v1::DND);
  EXPECT_EQ(all[0].status_text, "in a meeting");
  EXPECT_EQ(all[0].updated_at, At(3));
  EXPECT_EQ(all[1].display_name, "Bob");
  EXPECT_EQ(all[1].presence, v1::AWAY);

  ASSERT_OK_AND_ASSIGN(std::vector<RosterEntry> telegram,
                       store_->ListRoster("telegram"));
  ASSERT_EQ(telegram.size(), 1u);
  EXPECT_EQ(telegram[0].account, "bot");
  EXPECT_EQ(telegram[0].status_text, "lunch");
  ASSERT_OK_AND_ASSIGN(std::vector<RosterEntry> none,
                       store_->ListRoster("irc"));
  EXPECT_THAT(none, IsEmpty());
}

TEST_P(StoreTest, BlobsRecordFindDeleteAndCollect) {
  const std::string kA(64, 'a'), kB(64, 'b'), kC(64, 'c');
  ASSERT_OK(InTransaction([&]() -> absl::Status {
    IMB_RETURN_IF_ERROR(store_->RecordBlob({kA, 100, At(0), At(0)}));
    IMB_RETURN_IF_ERROR(store_->RecordBlob({kB, 200, At(0), At(0)}));
    IMB_RETURN_IF_ERROR(store_->RecordBlob({kC, 300, At(0), At(0)}));
    // Recording a known blob refreshes last_used_at only.
    return store_->RecordBlob({kC, 999, At(50), At(50)});
  }));
  ASSERT_OK_AND_ASSIGN(std::optional<BlobInfo> c, store_->FindBlob(kC));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->blob_id, kC);
  EXPECT_EQ(c->size, 300u);
  EXPECT_EQ(c->created_at, At(0));
  EXPECT_EQ(c->last_used_at, At(50));
  ASSERT_OK_AND_ASSIGN(std::optional<BlobInfo> unknown,
                       store_->FindBlob(std::string(64, 'f')));
  EXPECT_FALSE(unknown.has_value());

  // A is referenced by an event with a pending delivery, B by one whose
  // delivery is dead; an event without deliveries does not keep C.
  std::vector<NewEvent> events = {Event("k1", {Delivery("A", kT0)}),
                                  Event("k2", {Delivery("A", kT0)}),
                                  Event("k3", {})};
  events[0].blob_ids = {kA};
  events[1].blob_ids = {kB};
  events[2].blob_ids = {kC};
  ASSERT_OK_AND_ASSIGN(events, Write(std::move(events), At(10)));
  const int64_t d2 = events[1].deliveries[0].id;
  ASSERT_OK(Change(
      [&](CommitBatch& b) {
        b.dead_letters.push_back({d2, "no"});
      },
      At(11)));
  ASSERT_OK_AND_ASSIGN(std::optional<BlobInfo> a, store_->FindBlob(kA));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->last_used_at, At(10));  // an event's commit marks it used
  ASSERT_OK_AND_ASSIGN(c, store_->FindBlob(kC));
  EXPECT_EQ(c->last_used_at, At(50));  // never moves back

  ASSERT_OK_AND_ASSIGN(std::vector<std::string> collectable,
                       store_->ListCollectableBlobs(At(100)));
  EXPECT_THAT(collectable, ElementsAre(kC));
  ASSERT_OK_AND_ASSIGN(collectable, store_->ListCollectableBlobs(At(50)));
  EXPECT_THAT(collectable, IsEmpty());  // C was last used at 50

  ASSERT_OK(InTransaction([&] { return store_->DropDeadLetter(d2); }));
  ASSERT_OK_AND_ASSIGN(collectable, store_->ListCollectableBlobs(At(100)));
  EXPECT_THAT(collectable, ElementsAre(kB, kC));

  // DeleteBlob checks again: a blob used since (C at 50) or still needed
  // by a delivery (A) stays.
  auto delete_blob = [&](const std::string& id, absl::Time unused_before) {
    bool deleted = false;
    EXPECT_OK(InTransaction([&]() -> absl::Status {
      IMB_ASSIGN_OR_RETURN(deleted, store_->DeleteBlob(id, unused_before));
      return absl::OkStatus();
    }));
    return deleted;
  };
  EXPECT_FALSE(delete_blob(kC, At(50)));
  EXPECT_FALSE(delete_blob(kA, At(100)));
  ASSERT_OK_AND_ASSIGN(a, store_->FindBlob(kA));
  EXPECT_TRUE(a.has_value());
  EXPECT_TRUE(delete_blob(kC, At(100)));
  ASSERT_OK_AND_ASSIGN(c, store_->FindBlob(kC));
  EXPECT_FALSE(c.has_value());
  ASSERT_OK_AND_ASSIGN(collectable, store_->ListCollectableBlobs(At(100)));
  EXPECT_THAT(collectable, ElementsAre(kB));
}

TEST_P(StoreTest, PruneEventsKeepsEventsThatDeliveriesNeed) {
  std::vector<NewEvent> old = {Event("old-pending", {Delivery("A", At(0))}),
                               Event("old-dead", {Delivery("A", At(0))}),
                               Event("old-done", {Delivery("A", At(0))})};
  old[0].blob_ids = {"blob2"};
  old[2].blob_ids = {"blob1"};
  ASSERT_OK_AND_ASSIGN(old, Write(std::move(old), At(0)));
  ASSERT_OK_AND_ASSIGN(int64_t recent, AddEvent("recent", At(100)));
  const int64_t old_done = old[2].id;
  ASSERT_OK(Change(
      [&](CommitBatch& b) {
        b.dead_letters.push_back({old[1].deliveries[0].id, "no"});
        b.completed.push_back(old[2].deliveries[0].id);
        b.messages.push_back({old_done, "slack/acme/A", {"n1"}, true});
      },
      At(1)));

  ASSERT_OK_AND_ASSIGN(int64_t pruned, Prune(At(50)));
  EXPECT_EQ(pruned, 1);
  EXPECT_EQ(CountRows("events"), 3);
  EXPECT_EQ(CountRows("event_blobs"), 1);  // blob2 of old_pending
  EXPECT_EQ(CountRows("messages"), 1);     // the message map is kept

  // The pruned key is forgotten; the kept ones still dedupe.
  ASSERT_OK_AND_ASSIGN(
      std::vector<NewEvent> again,
      Write({Event("old-done", {}), Event("old-pending", {})}, At(200)));
  EXPECT_GT(again[0].id, recent);  // ids are never reused
  EXPECT_EQ(again[1].id, 0);

  // Events of the remaining deliveries still load.
  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> pending,
                       store_->LoadPendingDeliveries("slack/acme/A", 0, 10));
  ASSERT_EQ(pending.size(), 1u);
  ASSERT_NE(pending[0].event, nullptr);
  EXPECT_EQ(pending[0].event->key(), "old-pending");
}

TEST_P(StoreTest, IdsAreNotReusedAfterDeletingTheNewestRows) {
  ASSERT_OK_AND_ASSIGN(std::vector<NewEvent> first,
                       Write({Event("k1", {Delivery("A", At(0))})}, At(0)));
  const int64_t e = first[0].id, d = first[0].deliveries[0].id;
  ASSERT_OK(Change([&](CommitBatch& b) { b.completed = {d}; }));
  ASSERT_OK(Prune(At(1)).status());
  EXPECT_EQ(CountRows("events"), 0);
  Reopen();
  ASSERT_OK_AND_ASSIGN(std::vector<NewEvent> second,
                       Write({Event("k2", {Delivery("A", At(2))})}, At(2)));
  EXPECT_GT(second[0].id, e);
  EXPECT_GT(second[0].deliveries[0].id, d);
}

// meta's page was written by every commit for the last ids; it now holds a
// bound raised a block at a time, and the store opens above it.
TEST_P(SqliteStoreTest, IdBoundIsWrittenABlockAtATime) {
  const std::string bound_sql =
      "SELECT value FROM meta WHERE key = 'last_event_id'";
  ASSERT_OK_AND_ASSIGN(std::vector<NewEvent> first,
                       Write({Event("k0", {Delivery("A", At(0))})}));
  const int64_t bound = SqliteInt(bound_sql);
  EXPECT_GT(bound, first[0].id + 1000);
  for (int i = 1; i <= 20; ++i) {
    ASSERT_OK(
        Write({Event(absl::StrCat("k", i), {Delivery("A", At(i))})}).status());
  }
  EXPECT_EQ(SqliteInt(bound_sql), bound);
  Reopen();
  ASSERT_OK_AND_ASSIGN(std::vector<NewEvent> after,
                       Write({Event("k-after", {Delivery("A", At(30))})}));
  EXPECT_GT(after[0].id, bound);
}

TEST_P(StoreTest, IdsStayUniqueAcrossRollbacks) {
  ASSERT_OK_AND_ASSIGN(int64_t e1, AddEvent("k1"));
  // A batch that fails hands its ids out again...
  ASSERT_FALSE(Write({Event("k2", {}), Event("", {})}).ok());
  ASSERT_OK_AND_ASSIGN(int64_t e3, AddEvent("k3"));
  EXPECT_EQ(e3, e1 + 1);
  // ...and a Rollback with no transaction open (say after a failed Begin)
  // must not hand out the ids of committed rows again.
  store_->Rollback();
  EXPECT_FALSE(store_->Commit().ok());
  ASSERT_OK_AND_ASSIGN(int64_t e4, AddEvent("k4"));
  EXPECT_GT(e4, e3);
  EXPECT_EQ(CountRows("events"), 3);
}

TEST_P(StoreTest, FailedBatchLeavesNothing) {
  CommitBatch batch;
  batch.now = kT0;
  batch.events.push_back(Event("k", {Delivery("A", kT0)}));
  batch.events.back().original_chat_key = "slack/acme/C-origin";
  batch.events.back().original_message_id = "m-k";
  batch.events.back().blob_ids = {"b"};
  batch.messages.push_back({1, "slack/acme/A", {"n1"}, true});
  batch.roster.push_back({"slack", "acme", "U1", "Ann", v1::ONLINE, "", kT0});
  // Invalid: fails the batch after the rows above were written.
  DeliveryRecord no_target;
  batch.events.push_back(Event("k2", {no_target}));
  EXPECT_EQ(store_->Apply(batch).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(batch.events[0].id, 0);
  EXPECT_EQ(batch.events[0].deliveries[0].id, 0);

  EXPECT_EQ(CountRows("events"), 0);
  EXPECT_EQ(CountRows("deliveries"), 0);
  EXPECT_EQ(CountRows("messages"), 0);
  EXPECT_EQ(CountRows("event_blobs"), 0);
  EXPECT_EQ(CountRows("roster"), 0);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> targets,
                       store_->ListPendingTargets());
  EXPECT_THAT(targets, IsEmpty());
  // The key was never accepted.
  ASSERT_OK(AddEvent("k").status());
}

TEST_P(StoreTest, OperatorRollbackLeavesNothing) {
  ASSERT_OK(store_->Begin());
  ASSERT_OK(store_->RecordBlob({"b", 1, kT0, kT0}));
  ASSERT_OK(store_->PutRecord("link", "x", "X"));
  // Uncommitted rows are invisible to the read methods.
  ASSERT_OK_AND_ASSIGN(std::optional<BlobInfo> blob, store_->FindBlob("b"));
  EXPECT_FALSE(blob.has_value());
  store_->Rollback();
  store_->Rollback();  // a second rollback is harmless
  EXPECT_EQ(CountRows("blobs"), 0);
  EXPECT_EQ(CountRows("records"), 0);
}

TEST_P(StoreTest, NewEventWritesItsOriginalAndBlobsWithIt) {
  NewEvent entry = Event("k", {Delivery("A", kT0)});
  entry.original_chat_key = "slack/acme/C-origin";
  entry.original_message_id = "m-k";
  entry.blob_ids = {"blob1"};
  // A payload made by the caller is stored as given.
  v1::Event other = Posted("k", "serialized by the caller");
  ASSERT_TRUE(other.SerializeToString(&entry.payload));
  ASSERT_OK_AND_ASSIGN(std::vector<NewEvent> written, Write({entry}));
  ASSERT_OK_AND_ASSIGN(std::optional<MessageLocation> original,
                       store_->FindMessage("slack/acme/C-origin", "m-k"));
  ASSERT_TRUE(original.has_value());
  EXPECT_EQ(original->group_id, written[0].id);
  EXPECT_FALSE(original->is_copy);
  EXPECT_EQ(CountRows("event_blobs"), 1);
  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> pending,
                       store_->LoadPendingDeliveries("slack/acme/A", 0, 10));
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].event->posted().text().text(),
            "serialized by the caller");
}

// An event's original and the copies recorded later are one message map:
// found one at a time and many at once, listed per channel, and where a
// native id has two rows the older one counts.
TEST_P(StoreTest, OriginalsAndCopiesAreOneMessageMap) {
  NewEvent entry = Event("k", {Delivery("B", kT0)});
  entry.original_chat_key = "slack/acme/A";
  entry.original_message_id = "m1";
  NewEvent no_original = Event("k2", {Delivery("B", kT0)});
  no_original.original_chat_key = "slack/acme/A";  // and no native id
  ASSERT_OK_AND_ASSIGN(std::vector<NewEvent> written,
                       Write({entry, no_original}, At(1)));
  const int64_t group = written[0].id;
  ASSERT_OK(Change(
      [&](CommitBatch& b) {
        b.messages.push_back({group, "slack/acme/B", {"c1", "c2"}, true});
        // A copy given the original's native id in its chat (a messenger
        // that reuses ids): the original, written first, still counts.
        b.messages.push_back({group, "slack/acme/A", {"m1"}, true});
      },
      At(2)));
  ASSERT_OK_AND_ASSIGN(std::optional<MessageLocation> original,
                       store_->FindMessage("slack/acme/A", "m1"));
  ASSERT_TRUE(original.has_value());
  EXPECT_EQ(original->group_id, group);
  EXPECT_FALSE(original->is_copy);
  ASSERT_OK_AND_ASSIGN(std::optional<MessageLocation> none,
                       store_->FindMessage("slack/acme/A", ""));
  EXPECT_FALSE(none.has_value());
  ASSERT_OK_AND_ASSIGN(std::vector<std::optional<MessageLocation>> many,
                       store_->FindMessages({{"slack/acme/B", "c2"},
                                             {"slack/acme/A", "m1"},
                                             {"slack/acme/B", "m1"}}));
  ASSERT_EQ(many.size(), 3u);
  ASSERT_TRUE(many[0].has_value());
  EXPECT_TRUE(many[0]->is_copy);
  ASSERT_TRUE(many[1].has_value());
  EXPECT_FALSE(many[1]->is_copy);
  EXPECT_EQ(many[1]->group_id, group);
  EXPECT_FALSE(many[2].has_value());
  EXPECT_THAT(*store_->FindMessagesInChannel(group, "slack/acme/A"),
              ElementsAre("m1"));
  EXPECT_THAT(*store_->FindMessagesInChannel(group, "slack/acme/B"),
              ElementsAre("c1", "c2"));
  EXPECT_THAT(*store_->FindMessagesInChannel(written[1].id, "slack/acme/A"),
              IsEmpty());
}

// Pruning an event keeps its original in the message map.
TEST_P(StoreTest, PruneEventsKeepsTheirOriginalsInTheMessageMap) {
  NewEvent entry = Event("old", {Delivery("B", At(0))});
  entry.original_chat_key = "slack/acme/A";
  entry.original_message_id = "m-old";
  ASSERT_OK_AND_ASSIGN(std::vector<NewEvent> written, Write({entry}, At(0)));
  const int64_t group = written[0].id;
  ASSERT_OK(Change(
      [&](CommitBatch& b) {
        b.completed.push_back(written[0].deliveries[0].id);
        b.messages.push_back({group, "slack/acme/B", {"c-old"}, true});
      },
      At(1)));
  ASSERT_OK_AND_ASSIGN(int64_t pruned, Prune(At(50)));
  ASSERT_EQ(pruned, 1);
  EXPECT_EQ(CountRows("events"), 0);
  ASSERT_OK_AND_ASSIGN(std::optional<MessageLocation> original,
                       store_->FindMessage("slack/acme/A", "m-old"));
  ASSERT_TRUE(original.has_value());
  EXPECT_EQ(original->group_id, group);
  EXPECT_FALSE(original->is_copy);
  EXPECT_THAT(*store_->FindMessagesInChannel(group, "slack/acme/A"),
              ElementsAre("m-old"));
  // And it still tells a repeated original from a new one.
  ASSERT_OK_AND_ASSIGN(std::vector<std::optional<MessageLocation>> many,
                       store_->FindMessages({{"slack/acme/A", "m-old"}}));
  ASSERT_EQ(many.size(), 1u);
  EXPECT_TRUE(many[0].has_value());
}

TEST_P(StoreTest, DataSurvivesReopen) {
  ASSERT_OK_AND_ASSIGN(std::vector<NewEvent> written,
                       Write({Event("k", {Delivery("A", At(3))})}));
  const int64_t e = written[0].id, d = written[0].deliveries[0].id;
  ASSERT_OK(Change([&](CommitBatch& b) {
    b.messages.push_back({e, "slack/acme/A", {"n1", "n2"}, true});
    b.roster.push_back({"slack", "acme", "U1", "Ann", v1::ONLINE, "", At(1)});
  }));
  ASSERT_OK(InTransaction([&] {
    return store_->RecordBlob({"b1", 10, At(1), At(2)});
  }));
  Reopen(v1::NORMAL);

  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> pending,
                       store_->LoadPendingDeliveries("slack/acme/A", 0, 10));
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].id, d);
  EXPECT_EQ(pending[0].created_at, At(3));
  ASSERT_NE(pending[0].event, nullptr);
  EXPECT_EQ(pending[0].event->key(), "k");
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> parts,
                       store_->FindMessagesInChannel(e, "slack/acme/A"));
  EXPECT_THAT(parts, ElementsAre("n1", "n2"));
  ASSERT_OK_AND_ASSIGN(std::vector<RosterEntry> roster, store_->ListRoster(""));
  ASSERT_EQ(roster.size(), 1u);
  EXPECT_EQ(roster[0].display_name, "Ann");
  ASSERT_OK_AND_ASSIGN(std::optional<BlobInfo> blob, store_->FindBlob("b1"));
  ASSERT_TRUE(blob.has_value());
  EXPECT_EQ(blob->last_used_at, At(2));
}

TEST_P(StoreTest, RouterIdIsStableAcrossReopen) {
  std::string id = store_->router_id();
  EXPECT_THAT(id, MatchesRegex("[0-9a-f]{32}"));
  Reopen();
  EXPECT_EQ(store_->router_id(), id);

  absl::StatusOr<std::unique_ptr<Store>> other = OpenOther();
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE((*other)->router_id(), id);
}

TEST_P(SqliteStoreTest, NewerSchemaIsRefused) {
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);

  absl::StatusOr<std::unique_ptr<Store>> store =
      OpenSqliteStore(dir_, v1::FULL);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()),
              HasSubstr("made by a newer imbridge: schema version 99, this "
                        "build knows 4"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(DbPath()));
}

TEST_P(SqliteStoreTest, UnusableDataDirIsNamedInTheError) {
  std::string file = dir_ + "/not-a-dir";
  std::ofstream(file) << "x";
  absl::StatusOr<std::unique_ptr<Store>> store =
      OpenSqliteStore(file + "/data", v1::FULL);
  EXPECT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(file));

  // A file that is not a database.
  std::string bad_dir = dir_ + "/bad";
  std::filesystem::create_directories(bad_dir);
  std::ofstream(bad_dir + "/imbridge.db") << std::string(4096, 'z');
  store = OpenSqliteStore(bad_dir, v1::FULL);
  EXPECT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()),
              HasSubstr(bad_dir + "/imbridge.db"));
}

TEST_P(StoreTest, ReadsRunConcurrentlyWithTheWriter) {
  std::atomic<bool> done{false};
  std::atomic<int> read_errors{0};
  std::thread reader([&] {
    while (!done.load()) {
      absl::StatusOr<std::vector<DeliveryRecord>> pending =
          store_->LoadPendingDeliveries("slack/acme/A", 0, 50);
      if (!pending.ok()) ++read_errors;
      if (!store_->CountDeliveries("slack/acme/A").ok()) ++read_errors;
    }
  });
  for (int batch = 0; batch < 20; ++batch) {
    std::vector<NewEvent> events;
    for (int i = 0; i < 50; ++i) {
      events.push_back(
          Event(absl::StrCat(batch, "-", i), {Delivery("A", kT0)}, "x"));
    }
    ASSERT_OK(Write(std::move(events)).status());
  }
  done = true;
  reader.join();
  EXPECT_EQ(read_errors.load(), 0);
  ASSERT_OK_AND_ASSIGN(Store::TargetCounts counts,
                       store_->CountDeliveries("slack/acme/A"));
  EXPECT_EQ(counts.pending, 1000);
}

// More reader threads than read connections, each checking that what it
// reads is its own target's rows: connections are borrowed, never shared.
TEST_P(StoreTest, ManyReadersShareThePoolWithoutMixingResults) {
  constexpr int kThreads = 10;
  std::vector<NewEvent> events;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i <= t; ++i) {
      events.push_back(Event(absl::StrCat(t, "-", i),
                             {Delivery(absl::StrCat("T", t), kT0)}, "x"));
    }
  }
  ASSERT_OK(Write(std::move(events)).status());
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = absl::StrCat("slack/acme/T", t);
      for (int round = 0; round < 200; ++round) {
        auto pending = store_->LoadPendingDeliveries(key, 0, 100);
        auto counts = store_->CountDeliveries(key);
        if (!pending.ok() || !counts.ok() ||
            pending->size() != static_cast<size_t>(t + 1) ||
            counts->pending != t + 1) {
          ++wrong;
          continue;
        }
        for (const DeliveryRecord& d : *pending) {
          if (d.target_key != key) ++wrong;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

// How many of this process's file descriptors are open on `path`.
int OpenDescriptorsOn(const std::string& path) {
  const std::filesystem::path target = std::filesystem::canonical(path);
  int count = 0;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    std::filesystem::path link = std::filesystem::read_symlink(fd.path(), ec);
    if (!ec && link == target) ++count;
  }
  return count;
}

// store.read_connections sets how many read connections the pool opens;
// one is enough for reads from many threads (they take turns).
// The WAL header's checkpoint sequence number (bytes 12-15, big-endian),
// which SQLite advances each time it starts the WAL file over.
uint32_t WalRestarts(const std::string& wal) {
  std::ifstream in(wal, std::ios::binary);
  unsigned char header[16] = {};
  if (!in.read(reinterpret_cast<char*>(header), sizeof(header))) return 0;
  return (uint32_t{header[12]} << 24) | (uint32_t{header[13]} << 16) |
         (uint32_t{header[14]} << 8) | uint32_t{header[15]};
}

// Commits that never pause left the checkpoints behind for good: the WAL
// grew by every commit (to 1.25 GB in 16 s of the bench). Now the store
// starts the WAL over once it passes its limit, with a reader at work too,
// and every event is still there after a reopen.
TEST_P(SqliteStoreTest, WalStartsOverUnderCommitsThatNeverPause) {
  store_.reset();
  const std::string dir = dir_ + "/steady";
  constexpr int64_t kLimit = int64_t{1} << 20;
  ASSERT_OK_AND_ASSIGN(
      store_, OpenSqliteStore(dir, v1::FULL, kDefaultReadConnections, kLimit));
  const std::string wal = dir + "/imbridge.db-wal";
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      (void)store_->CountDeliveries("slack/acme/A");
      absl::SleepFor(absl::Milliseconds(1));
    }
  });
  // Each commit rewrites about ten pages of the same few tables (40 KB of
  // WAL): without restarts the WAL holds all of it. Commits go on until
  // three restarts, for at most a minute (a restart cycle fsyncs the
  // database file, which takes long on a machine busy with other tests'
  // fsyncs; a size bound of 64 MiB was reached there after two restarts)
  // or until the WAL is 1 GiB.
  const uint32_t restarts_before = WalRestarts(wal);
  const absl::Time deadline = absl::Now() + absl::Minutes(1);
  int events = 0;
  uint32_t restarts = 0;
  for (int batch = 0; restarts < 3 && absl::Now() < deadline &&
                      std::filesystem::file_size(wal) < 1024 * kLimit;
       ++batch) {
    std::vector<NewEvent> entries;
    for (int i = 0; i < 4; ++i) {
      entries.push_back(
          Event(absl::StrCat("steady-", batch, "-", i), {Delivery("A", kT0)}));
    }
    ASSERT_OK(Write(std::move(entries)).status());
    events += 4;
    restarts = WalRestarts(wal) - restarts_before;
  }
  done = true;
  reader.join();
  EXPECT_GE(restarts, 3u) << "the WAL started over " << restarts << " times in "
                          << events << " events; it is "
                          << std::filesystem::file_size(wal) << " bytes";
  store_.reset();
  ASSERT_OK_AND_ASSIGN(store_, OpenSqliteStore(dir, v1::FULL));
  ASSERT_OK_AND_ASSIGN(Store::TargetCounts counts,
                       store_->CountDeliveries("slack/acme/A"));
  EXPECT_EQ(counts.pending, events);
}

TEST_P(SqliteStoreTest, ReadPoolHasTheConfiguredNumberOfConnections) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> one,
                       OpenSqliteStore(dir_ + "/one", v1::FULL, 1));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> six,
                       OpenSqliteStore(dir_ + "/six", v1::FULL, 6));
  const int on_one = OpenDescriptorsOn(dir_ + "/one/imbridge.db");
  const int on_six = OpenDescriptorsOn(dir_ + "/six/imbridge.db");
  EXPECT_GE(on_one, 2);  // the writer and the reader at least
  EXPECT_EQ(on_six - on_one, 5);

  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (!one->CountDeadLetters().ok() || !one->ListPendingTargets().ok()) {
          ++failed;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failed.load(), 0);
}

// A pool size out of range is refused before anything is created.
TEST_P(SqliteStoreTest, ReadPoolSizeOutOfRangeIsRefused) {
  for (int size : {0, -1, kMaxReadConnections + 1}) {
    const std::string dir = absl::StrCat(dir_, "/bad", size + 10);
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenSqliteStore(dir, v1::FULL, size);
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument)
        << size;
    EXPECT_THAT(std::string(store.status().message()),
                HasSubstr(absl::StrCat("read_connections is ", size,
                                       "; it must be 1 to 64")));
    EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
  }
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Store> largest,
      OpenSqliteStore(dir_ + "/largest", v1::FULL, kMaxReadConnections));
  EXPECT_OK(largest->CountDeadLetters().status());
}

}  // namespace
}  // namespace imbridge::bridge

namespace imbridge::bridge {
namespace {

// ListDeadLetters pages from the newest id down; pending deliveries between
// dead letters are skipped, and a page ends where asked.
TEST_P(StoreTest, DeadLetterListPagesDownByIdSkippingPending) {
  std::vector<DeliveryRecord> deliveries;
  for (int i = 0; i < 9; ++i) deliveries.push_back(Delivery("A", kT0));
  ASSERT_OK_AND_ASSIGN(std::vector<int64_t> ids,
                       AddDeliveries("k", std::move(deliveries)));
  // Every other delivery dies; a later death does not move it up the list.
  std::vector<int64_t> dead_ids;
  for (size_t i = 0; i < ids.size(); i += 2) dead_ids.push_back(ids[i]);
  for (size_t i = 0; i < dead_ids.size(); ++i) {
    ASSERT_OK(Change(
        [&](CommitBatch& b) {
          b.dead_letters.push_back({dead_ids[i], absl::StrCat("dead ", i)});
        },
        At(100 - static_cast<int>(i))));
  }
  std::vector<int64_t> walked;
  int64_t before_id = 0;
  int pages = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> page,
                         store_->ListDeadLetters(before_id, 2));
    if (page.empty()) break;
    ASSERT_LE(page.size(), 2u);
    ++pages;
    for (const DeliveryRecord& d : page) {
      walked.push_back(d.id);
      ASSERT_NE(d.event, nullptr);
      EXPECT_EQ(d.event->key(), "k");
    }
    before_id = page.back().id;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_THAT(walked, ElementsAre(ids[8], ids[6], ids[4], ids[2], ids[0]));
  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> below,
                       store_->ListDeadLetters(ids[5], 10));
  EXPECT_THAT(Ids(below), ElementsAre(ids[4], ids[2], ids[0]));
  EXPECT_EQ(below[0].last_error, "dead 2");
}

TEST_P(StoreTest, DeadLettersAreCounted) {
  EXPECT_EQ(*store_->CountDeadLetters(), 0);
  ASSERT_OK_AND_ASSIGN(
      std::vector<int64_t> ids,
      AddDeliveries("k1", {Delivery("C1", kT0), Delivery("C2", kT0)}));
  ASSERT_OK(Change([&](CommitBatch& b) {
    b.dead_letters.push_back({ids[0], "gone"});
  }));
  EXPECT_EQ(*store_->CountDeadLetters(), 1);
  ASSERT_OK(Change([&](CommitBatch& b) {
    b.dead_letters.push_back({ids[1], "gone"});
  }));
  EXPECT_EQ(*store_->CountDeadLetters(), 2);
}

TEST_P(StoreTest, RecordsArePutListedReplacedAndDeleted) {
  ASSERT_TRUE(InTransaction([&] {
                IMB_RETURN_IF_ERROR(store_->PutRecord("link", "b", "B1"));
                IMB_RETURN_IF_ERROR(store_->PutRecord("link", "a", "A1"));
                return store_->PutRecord("webhook", "w", "W1");
              }).ok());
  ASSERT_TRUE(
      InTransaction([&] { return store_->PutRecord("link", "b", "B2"); }).ok());
  Reopen();
  auto links = store_->ListRecords("link");
  ASSERT_TRUE(links.ok());
  ASSERT_EQ(links->size(), 2u);
  EXPECT_EQ((*links)[0], std::make_pair(std::string("a"), std::string("A1")));
  EXPECT_EQ((*links)[1], std::make_pair(std::string("b"), std::string("B2")));
  ASSERT_TRUE(
      InTransaction([&] { return store_->DeleteRecord("link", "a"); }).ok());
  EXPECT_EQ(
      InTransaction([&] { return store_->DeleteRecord("link", "a"); }).code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ListRecords("link")->size(), 1u);
  EXPECT_EQ(store_->ListRecords("webhook")->size(), 1u);
  // One record by kind and name.
  EXPECT_EQ(*store_->GetRecord("link", "b"), std::optional<std::string>("B2"));
  EXPECT_EQ(*store_->GetRecord("webhook", "w"),
            std::optional<std::string>("W1"));
  EXPECT_EQ(*store_->GetRecord("link", "a"), std::nullopt);
  EXPECT_EQ(*store_->GetRecord("link", "w"), std::nullopt);
}

TEST_P(StoreTest, ParticipantsAreListedMostRecentFirst) {
  v1::UserRef ann;
  ann.set_platform("slack");
  ann.set_id("U1");
  ann.set_display_name("Ann");
  v1::UserRef bob = ann;
  bob.set_id("U2");
  bob.set_display_name("Bob");
  absl::Time t0 = absl::FromUnixSeconds(1000);
  ASSERT_OK(Change(
      [&](CommitBatch& b) {
        b.participants = {{"slack/w/C1", ann}};
      },
      t0));
  ASSERT_OK(Change(
      [&](CommitBatch& b) {
        b.participants = {{"slack/w/C1", bob}, {"slack/w/C2", bob}};
      },
      t0 + absl::Seconds(1)));
  ann.set_display_name("Ann B.");
  ASSERT_OK(Change(
      [&](CommitBatch& b) {
        b.participants = {{"slack/w/C1", ann}};
      },
      t0 + absl::Seconds(2)));
  auto people = store_->ListParticipants("slack/w/C1");
  ASSERT_TRUE(people.ok());
  ASSERT_EQ(people->size(), 2u);
  EXPECT_EQ((*people)[0].display_name, "Ann B.");
  EXPECT_EQ((*people)[0].last_seen_at, t0 + absl::Seconds(2));
  EXPECT_EQ((*people)[1].user_id, "U2");
  EXPECT_EQ((*people)[1].last_seen_at, t0 + absl::Seconds(1));
  EXPECT_EQ(store_->ListParticipants("slack/w/C3")->size(), 0u);
}

TEST_P(SqliteStoreTest, VersionOneDatabaseIsMigratedKeepingItsData) {
  ASSERT_OK(AddEvent("k1").status());
  store_.reset();
  // Make the database look like one written by schema version 1.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP TABLE records; DROP TABLE participants; "
                         "DROP INDEX dead_letters_by_target; "
                         "DROP INDEX dead_letters_by_id; "
                         "PRAGMA user_version = 1",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  Reopen();
  ASSERT_TRUE(
      InTransaction([&] { return store_->PutRecord("link", "x", "X"); }).ok());
  EXPECT_EQ(store_->ListRecords("link")->size(), 1u);
  // The old event is still known (a duplicate key is refused).
  EXPECT_EQ(AddEvent("k1").status().code(), absl::StatusCode::kAlreadyExists);
}

// A database written by schema version 2 (today's routers), created from the
// checked-in fixture: opening it upgrades it in place and every row is found.
TEST_P(SqliteStoreTest, VersionTwoDataDirIsUpgradedInPlaceAndFindsEverything) {
  store_.reset();
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  std::ifstream in(std::string(IMBRIDGE_TEST_SOURCE_DIR) +
                   "/tests/bridge/testdata/store_schema_v2.sql");
  ASSERT_TRUE(in.good());
  std::string sql((std::istreambuf_iterator<char>(in)),
                  std::istreambuf_iterator<char>());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << error;
  sqlite3_close(db);

  Reopen();
  EXPECT_EQ(store_->router_id(), "fixture-router-v2-0001");
  const std::string beta = "beta/b/B1";
  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> pending,
                       store_->LoadPendingDeliveries(beta, 0, 10));
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].id, 1);
  EXPECT_EQ(pending[0].target.chat_id(), "B1");
  EXPECT_EQ(pending[0].sender_name, "Ann (alpha)");
  ASSERT_NE(pending[0].event, nullptr);
  EXPECT_EQ(pending[0].event->posted().text().text(), "hello from v2");
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> targets,
                       store_->ListPendingTargets());
  EXPECT_THAT(targets, ElementsAre(beta));

  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> dead,
                       store_->ListDeadLetters(0, 10));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].id, 2);
  EXPECT_EQ(dead[0].last_error, "403 forbidden");
  EXPECT_EQ(dead[0].attempts, 3);
  EXPECT_EQ(dead[0].event->posted().text().text(), "refused by beta");
  EXPECT_EQ(*store_->CountDeadLetters(), 1);
  ASSERT_OK_AND_ASSIGN(auto dead_targets, store_->ListDeadLetterTargets());
  ASSERT_EQ(dead_targets.size(), 1u);
  EXPECT_EQ(dead_targets[0].first, beta);
  ASSERT_OK_AND_ASSIGN(std::vector<DeadLetterRef> refs,
                       store_->ListDeadLetterRefs(0, 10));
  ASSERT_EQ(refs.size(), 1u);
  EXPECT_EQ(refs[0].id, 2);

  ASSERT_OK_AND_ASSIGN(std::optional<MessageLocation> original,
                       store_->FindMessage("alpha/a/A1", "m3"));
  ASSERT_TRUE(original.has_value());
  EXPECT_EQ(original->group_id, 3);
  EXPECT_FALSE(original->is_copy);
  ASSERT_OK_AND_ASSIGN(std::optional<MessageLocation> copy,
                       store_->FindMessage(beta, "copy-of-m3"));
  ASSERT_TRUE(copy.has_value());
  EXPECT_TRUE(copy->is_copy);
  EXPECT_THAT(*store_->FindMessagesInChannel(3, beta),
              ElementsAre("copy-of-m3"));

  ASSERT_OK_AND_ASSIGN(std::vector<RosterEntry> roster,
                       store_->ListRoster("alpha"));
  ASSERT_EQ(roster.size(), 1u);
  EXPECT_EQ(roster[0].display_name, "Ann");
  EXPECT_EQ(roster[0].status_text, "writing");
  ASSERT_OK_AND_ASSIGN(
      std::optional<BlobInfo> blob,
      store_->FindBlob(
          "aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11"));
  ASSERT_TRUE(blob.has_value());
  EXPECT_EQ(blob->size, 1234u);
  ASSERT_OK_AND_ASSIGN(auto records, store_->ListRecords("link"));
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].first, "pair");
  ASSERT_OK_AND_ASSIGN(std::vector<Participant> participants,
                       store_->ListParticipants("alpha/a/A1"));
  ASSERT_EQ(participants.size(), 1u);
  EXPECT_EQ(participants[0].user_id, "U1");

  // The event log still deduplicates, and new ids follow the old ones.
  ASSERT_OK_AND_ASSIGN(std::vector<NewEvent> written,
                       Write({Event("alpha:1", {}, "x"),
                              Event("alpha:4", {Delivery("B1", kT0)}, "new")}));
  EXPECT_EQ(written[0].id, 0);
  EXPECT_EQ(written[1].id, 4);
  EXPECT_EQ(written[1].deliveries[0].id, 4);
  // Retrying the old dead letter works on the upgraded schema.
  ASSERT_OK(InTransaction([&] { return store_->RetryDeadLetter(2, At(5)); }));
  ASSERT_OK_AND_ASSIGN(dead_targets, store_->ListDeadLetterTargets());
  EXPECT_THAT(dead_targets, IsEmpty());
}

// A database of schema version 2 kept every original's message-map row in
// `messages`; version 3 keeps new ones in their events' rows. After the
// upgrade both are found, and the rows from before are not moved.
TEST_P(PostgresStoreTest, VersionTwoDatabaseIsUpgradedAndFindsOldOriginals) {
  ASSERT_OK_AND_ASSIGN(std::vector<NewEvent> old,
                       Write({Event("old", {Delivery("B", At(0))})}, At(0)));
  const int64_t old_group = old[0].id;
  // What version 2 wrote for an original, and its schema.
  store_.reset();
  ASSERT_OK(
      server_
          ->Query(database_,
                  absl::StrCat("INSERT INTO messages VALUES ('slack/acme/A', "
                               "'m-v2', ",
                               old_group,
                               ", 0, false, 0); ALTER TABLE events DROP COLUMN "
                               "origin_chat, DROP COLUMN origin_id; UPDATE "
                               "schema_version SET version = 2"))
          .status());
  EXPECT_EQ(*server_->Query(database_,
                            "SELECT count(*) FROM pg_indexes "
                            "WHERE indexname = 'events_by_origin'"),
            "0");
  Reopen();
  EXPECT_EQ(*server_->Query(database_, "SELECT version FROM schema_version"),
            "3");

  NewEvent entry = Event("new", {Delivery("B", At(1))});
  entry.original_chat_key = "slack/acme/A";
  entry.original_message_id = "m-v3";
  ASSERT_OK_AND_ASSIGN(std::vector<NewEvent> written, Write({entry}, At(1)));
  EXPECT_EQ(CountRows("messages"), 1);  // the new original is in its event
  ASSERT_OK_AND_ASSIGN(std::vector<std::optional<MessageLocation>> found,
                       store_->FindMessages({{"slack/acme/A", "m-v2"},
                                             {"slack/acme/A", "m-v3"}}));
  ASSERT_EQ(found.size(), 2u);
  ASSERT_TRUE(found[0].has_value());
  EXPECT_EQ(found[0]->group_id, old_group);
  EXPECT_FALSE(found[0]->is_copy);
  ASSERT_TRUE(found[1].has_value());
  EXPECT_EQ(found[1]->group_id, written[0].id);
  EXPECT_THAT(*store_->FindMessagesInChannel(old_group, "slack/acme/A"),
              ElementsAre("m-v2"));
  EXPECT_THAT(*store_->FindMessagesInChannel(written[0].id, "slack/acme/A"),
              ElementsAre("m-v3"));
}

TEST_P(PostgresStoreTest, NewerSchemaIsRefused) {
  store_.reset();
  ASSERT_OK(server_->Query(database_, "UPDATE schema_version SET version = 99")
                .status());
  absl::StatusOr<std::unique_ptr<Store>> store = Open();
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()),
              HasSubstr("schema version 99 but this build knows 3"));
}

// The password reaches the server and nothing else: not an error about a
// wrong one, not the error about a connection string that holds one.
TEST_P(PostgresStoreTest, PasswordNeverAppearsInErrors) {
  PostgresStoreOptions options = PostgresOptions(database_);
  options.password = "wrong-secret-5f1c9a";
  absl::StatusOr<std::unique_ptr<Store>> store = OpenPostgresStore(options);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(store.status().message()),
              HasSubstr("password authentication failed"));
  EXPECT_THAT(std::string(store.status().message()),
              ::testing::Not(HasSubstr("wrong-secret-5f1c9a")));

  options = PostgresOptions(database_);
  options.dsn += " password=" + server_->password();
  store = OpenPostgresStore(options);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(store.status().message()),
              HasSubstr("holds a password"));
  EXPECT_THAT(std::string(store.status().message()),
              ::testing::Not(HasSubstr(server_->password())));
  EXPECT_FALSE(CheckPostgresDsn("host='unterminated").ok());
  EXPECT_OK(CheckPostgresDsn("postgresql://bridge@db.example/imbridge"));
  EXPECT_FALSE(CheckPostgresDsn("postgresql://bridge:pw@db/imbridge").ok());
}

TEST_P(PostgresStoreTest, PoolSizeOutOfRangeIsRefused) {
  for (int size : {0, -1, kMaxPostgresPoolSize + 1}) {
    PostgresStoreOptions options = PostgresOptions(database_);
    options.pool_size = size;
    absl::StatusOr<std::unique_ptr<Store>> store = OpenPostgresStore(options);
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument)
        << size;
    EXPECT_THAT(std::string(store.status().message()),
                HasSubstr(absl::StrCat("pool_size is ", size)));
  }
}

// Calls `attempt` until it succeeds, for up to a minute.
absl::Status Eventually(const std::function<absl::Status()>& attempt) {
  absl::Status status;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  do {
    status = attempt();
    if (status.ok()) return status;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  return status;
}

// A restart of the server breaks every connection; the store reconnects on
// the next use, and everything committed before is there.
TEST_P(PostgresStoreTest, ReconnectsAfterTheServerRestarts) {
  ASSERT_OK_AND_ASSIGN(int64_t d1, AddDelivery("k1", Delivery("A", kT0)));
  ASSERT_OK(server_->Restart());
  // Calls that find a connection broken fail as unavailable (retryable).
  absl::Status first = AddEvent("k2").status();
  if (!first.ok()) {
    EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable) << first;
  }
  ASSERT_OK(Eventually([&] {
    absl::StatusOr<int64_t> id = AddEvent("k3");
    return id.status();
  }));
  std::vector<DeliveryRecord> pending;
  ASSERT_OK(Eventually([&]() -> absl::Status {
    IMB_ASSIGN_OR_RETURN(pending,
                         store_->LoadPendingDeliveries("slack/acme/A", 0, 10));
    return absl::OkStatus();
  }));
  ASSERT_THAT(Ids(pending), ElementsAre(d1));
  // The writer's transaction state is clean: operator writes work too.
  ASSERT_OK(InTransaction([&] { return store_->PutRecord("link", "x", "X"); }));
  EXPECT_EQ(store_->ListRecords("link")->size(), 1u);
}

// A batch the server refuses part way (PostgreSQL's text must be UTF-8)
// writes nothing, hands its ids out again, and leaves the writer usable.
TEST_P(PostgresStoreTest, BatchTheServerRefusesWritesNothing) {
  absl::StatusOr<std::vector<NewEvent>> written =
      Write({Event("good", {Delivery("A", kT0)}), Event("bad\xff", {})});
  EXPECT_FALSE(written.ok());
  EXPECT_EQ(CountRows("events"), 0);
  EXPECT_EQ(CountRows("deliveries"), 0);
  ASSERT_OK_AND_ASSIGN(int64_t id, AddEvent("good"));
  EXPECT_EQ(id, 1);
}

// An operator transaction whose connection breaks is lost whole: the
// writes after the break do not go to a new connection outside it.
TEST_P(PostgresStoreTest, OperatorTransactionCutByARestartWritesNothing) {
  ASSERT_OK(store_->Begin());
  ASSERT_OK(store_->PutRecord("link", "a", "A"));
  ASSERT_OK(server_->Restart());
  EXPECT_FALSE(store_->PutRecord("link", "b", "B").ok());
  EXPECT_FALSE(store_->Commit().ok());
  std::vector<std::pair<std::string, std::string>> links;
  ASSERT_OK(Eventually([&]() -> absl::Status {
    IMB_ASSIGN_OR_RETURN(links, store_->ListRecords("link"));
    return absl::OkStatus();
  }));
  EXPECT_THAT(links, IsEmpty());
  // The next transaction starts clean.
  ASSERT_OK(Eventually([&] {
    return InTransaction([&] { return store_->PutRecord("link", "c", "C"); });
  }));
  EXPECT_EQ(store_->ListRecords("link")->size(), 1u);
}

// The dedupe and the ids of a batch that mixes new events, duplicates of
// stored ones and duplicates inside the batch, with several deliveries
// each: the same outcome on both backends, ids dense and in order.
TEST_P(StoreTest, MixedBatchDedupesAndNumbersLikeOneAtATime) {
  ASSERT_OK(AddDeliveries("old", {Delivery("A", kT0)}).status());
  ASSERT_OK_AND_ASSIGN(
      std::vector<NewEvent> written,
      Write({Event("n1", {Delivery("A", kT0), Delivery("B", kT0)}),
             Event("old", {Delivery("A", kT0)}),
             Event("n1", {Delivery("C", kT0)}),
             Event("n2", {Delivery("A", kT0), Delivery("C", kT0)})}));
  EXPECT_EQ(written[0].id, 2);
  EXPECT_EQ(written[1].id, 0);
  EXPECT_EQ(written[2].id, 0);
  EXPECT_EQ(written[3].id, 3);
  EXPECT_THAT(Ids(written[0].deliveries), ElementsAre(2, 3));
  EXPECT_THAT(Ids(written[1].deliveries), ElementsAre(0));
  EXPECT_THAT(Ids(written[2].deliveries), ElementsAre(0));
  EXPECT_THAT(Ids(written[3].deliveries), ElementsAre(4, 5));
  EXPECT_EQ(written[3].deliveries[1].event_id, 3);
  EXPECT_EQ(CountRows("events"), 3);
  EXPECT_EQ(CountRows("deliveries"), 5);
  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> c,
                       store_->LoadPendingDeliveries("slack/acme/C", 0, 10));
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].event->key(), "n2");
}

// An entry's original, blobs and deliveries are written only with its event:
// nothing of a duplicate's; of two entries with the same original (chat,
// native id), the first one's row stays.
TEST_P(StoreTest, EntriesOfOneBatchWriteTheirRowsInOrderAndDuplicatesNone) {
  const std::string kA(64, 'a'), kB(64, 'b');
  ASSERT_OK(InTransaction([&]() -> absl::Status {
    IMB_RETURN_IF_ERROR(store_->RecordBlob({kA, 1, At(0), At(0)}));
    return store_->RecordBlob({kB, 1, At(0), At(0)});
  }));
  std::vector<NewEvent> events = {
      Event("e1", {Delivery("A", kT0)}), Event("e1", {Delivery("B", kT0)}),
      Event("e2", {Delivery("A", kT0)}), Event("e3", {})};
  events[0].original_chat_key = events[1].original_chat_key =
      events[2].original_chat_key = "slack/acme/C";
  events[0].original_message_id = "m1";
  events[0].blob_ids = {kA};
  events[1].original_message_id = "m-duplicate";
  events[1].blob_ids = {kB};
  events[2].original_message_id = "m1";  // the same native id as e1's
  ASSERT_OK_AND_ASSIGN(events, Write(std::move(events), At(10)));
  EXPECT_EQ(events[0].id, 1);
  EXPECT_EQ(events[1].id, 0);
  EXPECT_EQ(events[2].id, 2);
  EXPECT_EQ(events[3].id, 3);
  EXPECT_THAT(Ids(events[2].deliveries), ElementsAre(2));
  ASSERT_OK_AND_ASSIGN(std::optional<MessageLocation> m1,
                       store_->FindMessage("slack/acme/C", "m1"));
  ASSERT_TRUE(m1.has_value());
  EXPECT_EQ(m1->group_id, 1);
  ASSERT_OK_AND_ASSIGN(std::optional<MessageLocation> duplicate,
                       store_->FindMessage("slack/acme/C", "m-duplicate"));
  EXPECT_FALSE(duplicate.has_value());
  EXPECT_EQ(CountRows("event_blobs"), 1);
  ASSERT_OK_AND_ASSIGN(std::optional<BlobInfo> a, store_->FindBlob(kA));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->last_used_at, At(10));
  ASSERT_OK_AND_ASSIGN(std::optional<BlobInfo> b, store_->FindBlob(kB));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->last_used_at, At(0));  // only the duplicate referred to it
  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> to_b,
                       store_->LoadPendingDeliveries("slack/acme/B", 0, 10));
  EXPECT_THAT(to_b, IsEmpty());
}

// Routers sharing a database: batches with overlapping keys applied at the
// same time by two stores write each key once, and the ids handed out stay
// unique and without gaps.
TEST_P(PostgresStoreTest, TwoStoresOnOneDatabaseWriteEachKeyOnce) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> other, Open());
  constexpr int kBatches = 20, kPerBatch = 50;
  std::vector<int64_t> written[2];
  auto run = [&](Store* store, int side) -> absl::Status {
    for (int b = 0; b < kBatches; ++b) {
      CommitBatch batch;
      batch.now = kT0;
      for (int i = 0; i < kPerBatch; ++i) {
        // Each side writes keys 0..999, in opposite orders.
        const int n = b * kPerBatch + i;
        const int key = side == 0 ? n : kBatches * kPerBatch - 1 - n;
        batch.events.push_back(Event(absl::StrCat("k", key),
                                     {Delivery("A", kT0), Delivery("B", kT0)}));
      }
      IMB_RETURN_IF_ERROR(store->Apply(batch));
      for (const NewEvent& e : batch.events) {
        if (e.id == 0) continue;
        written[side].push_back(e.id);
        for (const DeliveryRecord& d : e.deliveries) {
          if (d.id == 0 || d.event_id != e.id) {
            return absl::InternalError("a written event's delivery has no id");
          }
        }
      }
    }
    return absl::OkStatus();
  };
  absl::Status first;
  std::thread thread([&] { first = run(other.get(), 0); });
  absl::Status second = run(store_.get(), 1);
  thread.join();
  ASSERT_OK(first);
  ASSERT_OK(second);
  constexpr int64_t kKeys = kBatches * kPerBatch;
  EXPECT_EQ(static_cast<int64_t>(written[0].size() + written[1].size()), kKeys);
  EXPECT_EQ(CountRows("events"), kKeys);
  EXPECT_EQ(CountRows("deliveries"), 2 * kKeys);
  ASSERT_OK_AND_ASSIGN(std::string max_event,
                       server_->Query(database_, "SELECT max(id) FROM events"));
  EXPECT_EQ(max_event, std::to_string(kKeys));
  ASSERT_OK_AND_ASSIGN(
      std::string distinct_deliveries,
      server_->Query(database_,
                     "SELECT count(DISTINCT id) || '/' || max(id) FROM "
                     "deliveries"));
  EXPECT_EQ(distinct_deliveries, absl::StrCat(2 * kKeys, "/", 2 * kKeys));
}

}  // namespace
}  // namespace imbridge::bridge
