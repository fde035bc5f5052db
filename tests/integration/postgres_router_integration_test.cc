// The real imbridge-router binary on a real PostgreSQL server of the test's
// own (tests/support/postgres_server.h): /readyz follows the database, the
// password is never logged, bad store.postgres config stops the router with
// the field named, --migrate-from-sqlite copies a data directory, and two
// routers share one database (queue leases, takeover after kill -9 of a
// queue's holder). (Relaying and kill -9 of a single router on PostgreSQL run
// in router_integration_test's RouterOnEachStoreTest.)

#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bridge/postgres_store.h"
#include "bridge/sqlite_store.h"
#include "bridge/store.h"
#include "common/http/http_client.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "imbridge/v1/admin.grpc.pb.h"
#include "tests/integration/router_process.h"
#include "tests/integration/test_adapter.h"
#include "tests/support/postgres_server.h"

namespace imbridge::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "integration-token-0123456789";

constexpr char kPairConfig[] = R"(adapters:
  - {name: tests, token: integration-token-0123456789}
links:
  - name: pair
    members:
      - {platform: alpha, account: a, chat_id: A1}
      - {platform: beta, account: b, chat_id: B1}
log_level: debug
dispatch: {initial_backoff_ms: 50, max_backoff_ms: 200}
)";

class PostgresRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<PostgresServer*> server = SharedPostgresServer();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    absl::StatusOr<std::string> database = server_->CreateDatabase();
    ASSERT_TRUE(database.ok()) << database.status();
    database_ = *database;
  }

  void TearDown() override { unsetenv("IMBRIDGE_PG_PASSWORD"); }

  std::unique_ptr<TestAdapter> Adapter(RouterProcess& router,
                                       const std::string& platform,
                                       const std::string& account) {
    auto a = std::make_unique<TestAdapter>(platform, account, router.address(),
                                           kToken);
    a->Start();
    EXPECT_TRUE(a->WaitAttached()) << platform;
    return a;
  }

  // The /readyz status code, or 0 when it does not answer.
  int Readyz(const RouterProcess& router) {
    HttpClient http;
    auto r = http.Get(
        absl::StrCat("http://127.0.0.1:", router.http_port(), "/readyz"));
    return r.ok() ? r->status : 0;
  }

  bool WaitForReadyz(const RouterProcess& router, int status) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      if (Readyz(router) == status) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  void RestartMidStream(bool crash);

  PostgresServer* server_ = nullptr;
  std::string database_;
};

// The password comes from IMBRIDGE_PG_PASSWORD; /readyz is unready while
// the database is down and ready again once it is back, and the router
// relays again without a restart. No log line holds the password, not even
// at debug level with the database failing.
TEST_F(PostgresRouterTest, ReadyzFollowsTheDatabaseAndPasswordIsNeverLogged) {
  ASSERT_EQ(setenv("IMBRIDGE_PG_PASSWORD", server_->password().c_str(), 1), 0);
  RouterProcess router(absl::StrCat(kPairConfig, "store: {postgres: {dsn: '",
                                    server_->Dsn(database_), "'}}\n"));
  ASSERT_TRUE(router.Start().ok()) << router.ReadLog();
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b");
  alpha->Post("A1", "before");
  ASSERT_TRUE(beta->WaitForCalls(1));
  EXPECT_EQ(Readyz(router), 200);

  ASSERT_TRUE(server_->Stop().ok());
  EXPECT_TRUE(WaitForReadyz(router, 503));
  ASSERT_TRUE(server_->Restart().ok());
  EXPECT_TRUE(WaitForReadyz(router, 200));

  // Publishes may fail while connections are remade; the adapter's retry
  // (the same key) is accepted once.
  v1::Event after;
  after.set_key("alpha:a:after-restart");
  after.mutable_channel()->set_platform("alpha");
  after.mutable_channel()->set_account("a");
  after.mutable_channel()->set_chat_id("A1");
  after.mutable_posted()->set_message_id("A1-after");
  after.mutable_posted()->mutable_text()->set_text("after");
  v1::PublishAck ack;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  do {
    ack = alpha->Publish(after);
    if (ack.outcome() == v1::PublishAck::ACCEPTED) break;
    absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < deadline);
  EXPECT_EQ(ack.outcome(), v1::PublishAck::ACCEPTED) << ack.detail();
  ASSERT_TRUE(beta->WaitForCalls(2));
  std::vector<std::string> texts;
  for (const auto& call : beta->calls()) texts.push_back(call.text);
  EXPECT_THAT(texts, ElementsAre("before", "after"));
  EXPECT_EQ(router.Terminate(), 0);

  std::string log = router.ReadLog();
  EXPECT_THAT(log, Not(HasSubstr(server_->password())));
}

// The two-link config of the stream tests: A1 -> B1 and A2 -> B2.
constexpr char kTwoPairsConfig[] = R"(adapters:
  - {name: tests, token: integration-token-0123456789}
links:
  - name: one
    members:
      - {platform: alpha, account: a, chat_id: A1}
      - {platform: beta, account: b, chat_id: B1}
  - name: two
    members:
      - {platform: alpha, account: a, chat_id: A2}
      - {platform: beta, account: b, chat_id: B2}
dispatch: {initial_backoff_ms: 50, max_backoff_ms: 500}
)";

// Publishes `count` messages in `chat`, one after another, each until the
// router acknowledges it (ACCEPTED, or DUPLICATE for a retry whose first try
// was stored but not answered), with the same key every try, as an adapter
// does with a messenger's retried webhook. Returns how many were
// acknowledged; *failures counts the tries the router refused.
int PublishStream(TestAdapter& adapter, const std::string& chat, int count,
                  std::atomic<int>* failures) {
  int acked = 0;
  for (int i = 0; i < count; ++i) {
    v1::Event event;
    event.set_key(absl::StrCat("alpha:a:", chat, "-", i));
    event.mutable_channel()->set_chat_id(chat);
    event.mutable_posted()->set_message_id(absl::StrCat(chat, "-", i));
    event.mutable_posted()->mutable_text()->set_text(
        absl::StrCat(chat, " m", i));
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (true) {
      v1::PublishAck ack = adapter.Publish(event);
      if (ack.outcome() == v1::PublishAck::ACCEPTED ||
          ack.outcome() == v1::PublishAck::DUPLICATE) {
        ++acked;
        break;
      }
      failures->fetch_add(1);
      if (absl::Now() > deadline) return acked;
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  return acked;
}

// The texts delivered to `chat`, in the order they were delivered.
std::vector<std::string> TextsIn(const TestAdapter& adapter,
                                 const std::string& chat) {
  std::vector<std::string> texts;
  for (const auto& call : adapter.calls()) {
    if (call.chat == chat) texts.push_back(call.text);
  }
  return texts;
}

// PostgreSQL is stopped (`crash`: as a crash, else a fast shutdown) in the
// middle of a stream of publishes on two chats and started again a few
// seconds later: /readyz is 503 while the database is gone and 200 again
// after, the router reconnects by itself (the same process throughout), and
// every acknowledged message arrives exactly once and in order in its
// target.
void PostgresRouterTest::RestartMidStream(bool crash) {
  ASSERT_EQ(setenv("IMBRIDGE_PG_PASSWORD", server_->password().c_str(), 1), 0);
  RouterProcess router(absl::StrCat(kTwoPairsConfig,
                                    "store: {postgres: {dsn: '",
                                    server_->Dsn(database_), "'}}\n"));
  ASSERT_TRUE(router.Start().ok()) << router.ReadLog();
  const pid_t router_pid = router.pid();
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b");
  ASSERT_TRUE(WaitForReadyz(router, 200));

  constexpr int kPerChat = 150;
  std::atomic<int> failures{0};
  int acked[2] = {0, 0};
  std::thread publishers[2];
  for (int c = 0; c < 2; ++c) {
    publishers[c] = std::thread([&, c] {
      acked[c] =
          PublishStream(*alpha, c == 0 ? "A1" : "A2", kPerChat, &failures);
    });
  }
  // The database goes away with the stream well under way.
  EXPECT_TRUE(beta->WaitForCalls(40, absl::Seconds(60)));
  ASSERT_TRUE((crash ? server_->Crash() : server_->Stop()).ok());
  EXPECT_TRUE(WaitForReadyz(router, 503));
  // It stays unready as long as the database is gone.
  for (int i = 0; i < 5; ++i) {
    absl::SleepFor(absl::Milliseconds(300));
    EXPECT_EQ(Readyz(router), 503);
  }
  const size_t delivered_while_down = beta->calls().size();
  ASSERT_TRUE(server_->Restart().ok());
  EXPECT_TRUE(WaitForReadyz(router, 200));
  for (std::thread& t : publishers) t.join();
  EXPECT_EQ(acked[0], kPerChat);
  EXPECT_EQ(acked[1], kPerChat);
  // The stream was really cut: some publishes were refused meanwhile.
  EXPECT_GT(failures.load(), 0);

  ASSERT_TRUE(beta->WaitForCalls(2 * kPerChat, absl::Seconds(120)))
      << "delivered " << beta->calls().size() << " of " << 2 * kPerChat << " ("
      << delivered_while_down << " before the restart)";
  // Anything delivered twice would arrive by now.
  absl::SleepFor(absl::Seconds(1));
  for (const char* chat : {"A1", "A2"}) {
    std::vector<std::string> expected;
    for (int i = 0; i < kPerChat; ++i) {
      expected.push_back(absl::StrCat(chat, " m", i));
    }
    EXPECT_EQ(TextsIn(*beta, chat[1] == '1' ? "B1" : "B2"), expected) << chat;
  }
  EXPECT_EQ(router.pid(), router_pid);
  EXPECT_TRUE(router.running());
  EXPECT_EQ(router.Terminate(), 0);
  // While the database was gone each connection tried again after a
  // backoff, not once for every operation the writer retried (which made
  // about two thousand attempts in these few seconds, each of which may wait
  // connect_timeout on a silent network).
  const std::string log = router.ReadLog();
  int attempts = 0;
  for (size_t at = log.find("postgres: cannot connect");
       at != std::string::npos;
       at = log.find("postgres: cannot connect", at + 1)) {
    ++attempts;
  }
  EXPECT_LE(attempts, 100);
}

TEST_F(PostgresRouterTest, DatabaseRestartMidStreamLosesNothingAcknowledged) {
  RestartMidStream(/*crash=*/false);
}

TEST_F(PostgresRouterTest, DatabaseCrashMidStreamLosesNothingAcknowledged) {
  RestartMidStream(/*crash=*/true);
}

// A wrong password stops the start with the server's reason, never with
// the password.
// Routers that share a blob directory keep it outside their data_dir; the
// router still makes data_dir for its port files. Before, with PostgreSQL
// and blob_dir elsewhere nothing made it: the router served, but wrote no
// router.port, so a supervisor (or this test) waiting for it waited in vain.
TEST_F(PostgresRouterTest, BlobDirElsewhereStillMakesTheDataDir) {
  ASSERT_EQ(setenv("IMBRIDGE_PG_PASSWORD", server_->password().c_str(), 1), 0);
  const std::string blobs = MakeTempDir("shared-blobs");
  RouterProcess router(absl::StrCat(kPairConfig, "store: {postgres: {dsn: '",
                                    server_->Dsn(database_), "', blob_dir: '",
                                    blobs, "'}}\n"));
  ASSERT_TRUE(router.Start().ok()) << router.ReadLog();
  EXPECT_TRUE(std::filesystem::exists(router.data_dir() + "/router.port"));
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b");
  alpha->Post("A1", "hello");
  EXPECT_TRUE(beta->WaitForCalls(1)) << router.ReadLog();
  alpha->Stop();
  beta->Stop();
}

TEST_F(PostgresRouterTest, WrongPasswordStopsTheStartWithoutShowingIt) {
  std::string password_file = MakeTempDir("pg-wrong") + "/password";
  std::ofstream(password_file) << "not-the-password-7d2e\n";
  RouterProcess router(absl::StrCat(
      kPairConfig, "store: {postgres: {dsn: '", server_->Dsn(database_),
      "', password_file: '", password_file, "'}}\n"));
  absl::Status started = router.Start();
  ASSERT_FALSE(started.ok());
  std::string log = router.ReadLog();
  EXPECT_THAT(log, HasSubstr("password authentication failed"));
  EXPECT_THAT(log, Not(HasSubstr("not-the-password-7d2e")));
  EXPECT_THAT(std::string(started.message()),
              Not(HasSubstr("not-the-password-7d2e")));
}

TEST_F(PostgresRouterTest, BadPostgresConfigStopsWithTheFieldNamed) {
  struct Case {
    std::string store;
    std::string error;
  };
  const Case cases[] = {
      {"store: {postgres: {pool_size: 2}}",
       "store.postgres.dsn: required (or dsn_file)"},
      {"store: {postgres: {dsn: 'host=db password=hunter2-secret'}}",
       "store.postgres.dsn: holds a password"},
      {"store: {postgres: {dsn: 'host=db', pool_size: 1000}}",
       "store.postgres.pool_size: must be 1 to 64"},
      {"store: {postgres: {dsn: \"host='db\"}}",
       "store.postgres.dsn: not a valid libpq connection string"},
  };
  for (const Case& c : cases) {
    RouterProcess router(absl::StrCat(kPairConfig, c.store, "\n"));
    absl::Status s = router.Start();
    ASSERT_FALSE(s.ok()) << c.store;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.error)) << c.store;
    EXPECT_THAT(std::string(s.message()), Not(HasSubstr("hunter2-secret")));
  }
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

// Runs `imbridge-router --config CONFIG --migrate-from-sqlite DIR`; returns
// its exit code, its output in `output`.
int RunMigration(const std::string& config, const std::string& dir,
                 std::string* output) {
  std::string out = MakeTempDir("migrate-out") + "/out.txt";
  std::string command =
      absl::StrCat(BuildPath("bridge/imbridge-router"), " --config '", config,
                   "' --migrate-from-sqlite '", dir, "' >'", out, "' 2>&1");
  int status = std::system(command.c_str());
  *output = ReadAll(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A SQLite data directory with some of everything is copied into an empty
// database: the copy dedupes the old keys, finds the old messages (so edits
// and replies of them resolve), keeps the outbox and its dead letters, the
// roster, runtime links, blobs, participants and the router id, and hands
// out ids after the old ones. A second migration into it is refused.
TEST_F(PostgresRouterTest, MigrateFromSqliteCopiesEverythingOnce) {
  using bridge::CommitBatch;
  using bridge::DeliveryRecord;
  using bridge::NewEvent;
  const std::string sqlite_dir = MakeTempDir("sqlite-data");
  constexpr int kMessages = 3000;
  std::string router_id;
  {
    auto store = bridge::OpenSqliteStore(sqlite_dir, v1::NORMAL);
    ASSERT_TRUE(store.ok()) << store.status();
    router_id = (*store)->router_id();
    const absl::Time now = absl::FromUnixSeconds(1700000000);
    for (int chunk = 0; chunk < kMessages / 500; ++chunk) {
      CommitBatch batch;
      batch.now = now;
      for (int i = chunk * 500; i < (chunk + 1) * 500; ++i) {
        auto event = std::make_shared<v1::Event>();
        event->set_key(absl::StrCat("alpha:a:", i));
        event->mutable_channel()->set_platform("alpha");
        event->mutable_posted()->set_message_id(absl::StrCat("A1-", i));
        event->mutable_posted()->mutable_text()->set_text(absl::StrCat("m", i));
        NewEvent entry;
        entry.event = event;
        entry.original_chat_key = "alpha/a/A1";
        entry.original_message_id = absl::StrCat("A1-", i);
        if (i >= kMessages - 2) {
          DeliveryRecord d;
          d.target.set_platform("beta");
          d.target.set_account("b");
          d.target.set_chat_id("B1");
          d.target_key = "beta/b/B1";
          d.link = "pair";
          d.created_at = d.next_attempt_at = now;
          entry.deliveries.push_back(d);
        }
        batch.events.push_back(std::move(entry));
      }
      ASSERT_TRUE((*store)->Apply(batch).ok());
      CommitBatch copies;
      copies.now = now;
      for (size_t i = 0; i < batch.events.size(); ++i) {
        copies.messages.push_back(
            {batch.events[i].id,
             "beta/b/B1",
             {absl::StrCat("copy-", chunk * 500 + static_cast<int>(i))},
             true});
      }
      if (chunk == kMessages / 500 - 1) {
        // The last two events' deliveries: one dead, one pending.
        copies.dead_letters.push_back(
            {batch.events[498].deliveries[0].id, "403 forbidden"});
        copies.roster.push_back(
            {"alpha", "a", "U1", "Ann", v1::ONLINE, "here", now});
        v1::UserRef ann;
        ann.set_platform("alpha");
        ann.set_id("U1");
        ann.set_display_name("Ann");
        copies.participants.push_back({"alpha/a/A1", ann});
      }
      ASSERT_TRUE((*store)->Apply(copies).ok());
    }
    ASSERT_TRUE((*store)->Begin().ok());
    ASSERT_TRUE((*store)->PutRecord("link", "runtime", "serialized").ok());
    ASSERT_TRUE((*store)->RecordBlob({"b1", 42, now, now}).ok());
    ASSERT_TRUE((*store)->Commit().ok());
  }

  const std::string config_dir = MakeTempDir("migrate-config");
  const std::string config = config_dir + "/router.yaml";
  std::ofstream(config) << "data_dir: " << config_dir << "/data\n"
                        << kPairConfig << "store: {"
                        << PostgresStoreYaml(*server_, database_, config_dir)
                        << "}\n";
  std::string output;
  ASSERT_EQ(RunMigration(config, sqlite_dir, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("messages: 6000 rows"));
  EXPECT_THAT(output, HasSubstr("events: 3000 rows"));
  EXPECT_THAT(output, HasSubstr("deliveries: 2 rows"));

  bridge::PostgresStoreOptions options;
  options.dsn = server_->Dsn(database_);
  options.password = server_->password();
  {
    auto store = bridge::OpenPostgresStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    bridge::Store& s = **store;
    EXPECT_EQ(s.router_id(), router_id);
    auto original = s.FindMessage("alpha/a/A1", "A1-1234");
    ASSERT_TRUE(original.ok() && original->has_value());
    EXPECT_FALSE((*original)->is_copy);
    auto copy = s.FindMessage("beta/b/B1", "copy-1234");
    ASSERT_TRUE(copy.ok() && copy->has_value());
    EXPECT_TRUE((*copy)->is_copy);
    EXPECT_EQ((*copy)->group_id, (*original)->group_id);
    EXPECT_THAT(*s.FindMessagesInChannel((*original)->group_id, "beta/b/B1"),
                ElementsAre("copy-1234"));
    auto pending = s.LoadPendingDeliveries("beta/b/B1", 0, 10);
    ASSERT_TRUE(pending.ok());
    ASSERT_EQ(pending->size(), 1u);
    EXPECT_EQ((*pending)[0].event->posted().text().text(),
              absl::StrCat("m", kMessages - 1));
    auto dead = s.ListDeadLetters(0, 10);
    ASSERT_TRUE(dead.ok());
    ASSERT_EQ(dead->size(), 1u);
    EXPECT_EQ((*dead)[0].last_error, "403 forbidden");
    EXPECT_EQ(s.ListRoster("alpha")->size(), 1u);
    EXPECT_EQ(s.ListParticipants("alpha/a/A1")->size(), 1u);
    EXPECT_EQ(s.ListRecords("link")->size(), 1u);
    EXPECT_TRUE(s.FindBlob("b1")->has_value());

    // Old keys still dedupe; new ids are above the old ones (above the
    // bound the SQLite store keeps, which may skip the rest of a block).
    CommitBatch batch;
    batch.now = absl::Now();
    for (const std::string key : {"alpha:a:7", "alpha:a:new"}) {
      auto event = std::make_shared<v1::Event>();
      event->set_key(key);
      NewEvent entry;
      entry.event = event;
      batch.events.push_back(std::move(entry));
    }
    ASSERT_TRUE(s.Apply(batch).ok());
    EXPECT_EQ(batch.events[0].id, 0);
    EXPECT_GT(batch.events[1].id, kMessages);
  }

  // The database is no longer empty: a second migration changes nothing.
  ASSERT_EQ(RunMigration(config, sqlite_dir, &output), 1) << output;
  EXPECT_THAT(output, HasSubstr("not empty"));
  EXPECT_EQ(server_->Query(database_, "SELECT count(*) FROM events").value(),
            "3001");
}

// The channel keys of the pair link's chats, as the router makes them.
std::string KeyOf(const std::string& platform, const std::string& account,
                  const std::string& chat) {
  v1::ChannelRef channel;
  channel.set_platform(platform);
  channel.set_account(account);
  channel.set_chat_id(chat);
  return bridge::ChannelKey(channel, /*with_thread=*/false);
}

// A data directory of a router that relayed 100,000 messages from A1 to B1
// (each an event, its original and its copy in the message map) is built
// through the SQLite store in batches, migrated with --migrate-from-sqlite,
// and a router on the PostgreSQL database then resolves edits and replies
// of the first and of the last old message, from either side, to the right
// copies. The phases' durations are printed (the test asserts none).
TEST_F(PostgresRouterTest, MigratedHundredThousandMessagesStillResolve) {
  using bridge::CommitBatch;
  using bridge::NewEvent;
  constexpr int kMessages = 100000;
  constexpr int kBatch = 5000;
  const std::string alpha_key = KeyOf("alpha", "a", "A1");
  const std::string beta_key = KeyOf("beta", "b", "B1");
  const std::string config_dir = MakeTempDir("migrate-100k");
  const std::string sqlite_dir = config_dir + "/data";

  absl::Time started = absl::Now();
  {
    auto store = bridge::OpenSqliteStore(sqlite_dir, v1::NORMAL);
    ASSERT_TRUE(store.ok()) << store.status();
    const absl::Time now = absl::Now() - absl::Hours(1);
    for (int first = 0; first < kMessages; first += kBatch) {
      CommitBatch batch;
      batch.now = now;
      for (int i = first; i < first + kBatch; ++i) {
        auto event = std::make_shared<v1::Event>();
        event->set_key(absl::StrCat("alpha:a:", i));
        event->mutable_channel()->set_platform("alpha");
        event->mutable_channel()->set_account("a");
        event->mutable_channel()->set_chat_id("A1");
        event->mutable_posted()->set_message_id(absl::StrCat("A1-", i));
        event->mutable_posted()->mutable_text()->set_text(absl::StrCat("m", i));
        NewEvent entry;
        entry.event = std::move(event);
        entry.original_chat_key = alpha_key;
        entry.original_message_id = absl::StrCat("A1-", i);
        batch.events.push_back(std::move(entry));
      }
      ASSERT_TRUE((*store)->Apply(batch).ok());
      CommitBatch copies;
      copies.now = now;
      for (int i = 0; i < kBatch; ++i) {
        ASSERT_NE(batch.events[i].id, 0);
        copies.messages.push_back({batch.events[i].id,
                                   beta_key,
                                   {absl::StrCat("B1-copy-", first + i)},
                                   true});
      }
      ASSERT_TRUE((*store)->Apply(copies).ok());
    }
  }
  const absl::Duration built = absl::Now() - started;

  const std::string store_config = absl::StrCat(
      "store: {", PostgresStoreYaml(*server_, database_, config_dir), "}\n");
  const std::string config = config_dir + "/router.yaml";
  std::ofstream(config) << "data_dir: " << sqlite_dir << "\n"
                        << kPairConfig << store_config;
  started = absl::Now();
  std::string output;
  ASSERT_EQ(RunMigration(config, sqlite_dir, &output), 0) << output;
  const absl::Duration migrated = absl::Now() - started;
  EXPECT_THAT(output, HasSubstr("events: 100000 rows"));
  EXPECT_THAT(output, HasSubstr("messages: 200000 rows"));
  std::printf("built the SQLite store in %s, migrated it in %s\n",
              absl::FormatDuration(built).c_str(),
              absl::FormatDuration(migrated).c_str());

  RouterProcess router(absl::StrCat(kPairConfig, store_config));
  ASSERT_TRUE(router.Start().ok()) << router.ReadLog();
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b");
  const std::string first = "0";
  const std::string last = absl::StrCat(kMessages - 1);
  // From A1: edits of the first and the last message, a reply to the last.
  EXPECT_EQ(alpha->Edit("A1", "A1-" + first, "first, edited").outcome(),
            v1::PublishAck::ACCEPTED);
  EXPECT_EQ(alpha->Edit("A1", "A1-" + last, "last, edited").outcome(),
            v1::PublishAck::ACCEPTED);
  alpha->Post("A1", "re: last", "A1-" + last);
  ASSERT_TRUE(beta->WaitForCalls(3, absl::Seconds(60)));
  std::vector<TestAdapter::Call> calls = beta->calls();
  EXPECT_EQ(calls[0].kind, "edit");
  EXPECT_THAT(calls[0].target_ids, ElementsAre("B1-copy-" + first));
  EXPECT_EQ(calls[0].text, "first, edited");
  EXPECT_EQ(calls[1].kind, "edit");
  EXPECT_THAT(calls[1].target_ids, ElementsAre("B1-copy-" + last));
  EXPECT_EQ(calls[2].kind, "post");
  EXPECT_EQ(calls[2].reply_to, "B1-copy-" + last);
  // From B1, where people reply to the copies: replies to the first and the
  // last resolve to the originals.
  beta->Post("B1", "re: first", "B1-copy-" + first);
  beta->Post("B1", "re: last", "B1-copy-" + last);
  ASSERT_TRUE(alpha->WaitForCalls(2, absl::Seconds(60)));
  calls = alpha->calls();
  EXPECT_EQ(calls[0].kind, "post");
  EXPECT_EQ(calls[0].reply_to, "A1-" + first);
  EXPECT_EQ(calls[1].kind, "post");
  EXPECT_EQ(calls[1].reply_to, "A1-" + last);
  EXPECT_EQ(router.Terminate(), 0);
}

// Message `i` posted in chat A1, published through `adapter` (event keys
// are the test's: two adapters of one account would number theirs alike).
void PostMessage(TestAdapter& adapter, int i, const std::string& chat = "A1") {
  v1::Event e;
  e.set_key(absl::StrCat("alpha:a:m", i));
  e.mutable_channel()->set_platform("alpha");
  e.mutable_channel()->set_account("a");
  e.mutable_channel()->set_chat_id(chat);
  e.mutable_posted()->set_message_id(absl::StrCat("m", i));
  e.mutable_posted()->mutable_sender()->set_id("user-alpha");
  e.mutable_posted()->mutable_text()->set_text(absl::StrCat("m", i));
  v1::PublishAck ack = adapter.Publish(std::move(e));
  EXPECT_EQ(ack.outcome(), v1::PublishAck::ACCEPTED)
      << i << " " << ack.detail();
}

// "m<first>" ... "m<end - 1>".
std::vector<std::string> Messages(int first, int end) {
  std::vector<std::string> texts;
  for (int i = first; i < end; ++i) texts.push_back(absl::StrCat("m", i));
  return texts;
}

// Two routers on one database, each with test adapters of both platforms
// attached (until adapters attach to several routers themselves), and
// which of them holds the lease of beta's queue B1.
struct TwoRouters {
  std::unique_ptr<RouterProcess> one, two;
  std::unique_ptr<TestAdapter> alpha_one, beta_one, alpha_two, beta_two;
  RouterProcess* holder = nullptr;
  RouterProcess* survivor = nullptr;
  TestAdapter* alpha_at_survivor = nullptr;
  TestAdapter* beta_at_holder = nullptr;
  TestAdapter* beta_at_survivor = nullptr;

  // The posts both beta adapters got, in delivery id order, each
  // idempotency key once; `resent` counts the keys seen more than once.
  std::vector<std::string> Received(std::map<std::string, int>* resent) const {
    std::vector<std::pair<uint64_t, std::string>> by_id;
    std::set<std::string> keys;
    for (TestAdapter* a : {beta_at_holder, beta_at_survivor}) {
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
  void Stop() {
    for (auto* a : {&alpha_one, &beta_one, &alpha_two, &beta_two}) {
      (*a)->Stop();
    }
  }
};

class SeveralRoutersTest : public PostgresRouterTest {
 protected:
  static constexpr char kAdminToken[] = "admin-token-0123456789";

  // A call's context with `token` as its bearer token and a 20 s deadline.
  static std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token));
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(20));
    return ctx;
  }

  static std::unique_ptr<v1::Admin::Stub> AdminOf(const RouterProcess& router) {
    return v1::Admin::NewStub(grpc::CreateChannel(
        router.address(), grpc::InsecureChannelCredentials()));
  }

  // The queues as `router`'s Admin API lists them.
  v1::ListQueuesResponse ListQueues(const RouterProcess& router) {
    v1::ListQueuesResponse queues;
    grpc::Status status = AdminOf(router)->ListQueues(
        Ctx(kAdminToken).get(), v1::ListQueuesRequest(), &queues);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return queues;
  }

  // The pid in the name of the router holding `target_key`'s lease
  // ("host:pid:random"), or -1 while nobody holds it.
  int HolderPid(const std::string& target_key) {
    absl::StatusOr<std::string> holder = server_->Query(
        database_,
        absl::StrCat("SELECT split_part(holder, ':', 2) FROM queue_leases "
                     "WHERE target_key = '",
                     target_key, "' AND expires_at > now()"));
    return holder.ok() && !holder->empty() ? std::stoi(*holder) : -1;
  }

  // Whether the leases are spread as StartTwoRouters expects, from the
  // holders' pids of A1 and B1 (-1: none).
  static bool SpreadAsExpected(int a1, int b1, bool a1_receives) {
    return a1_receives ? a1 > 0 && b1 > 0 && a1 != b1 : a1 < 0 && b1 > 0;
  }

  static bool WaitFor(const std::function<bool()>& done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (!done()) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return true;
  }

  // Starts two routers with `links` (kPairConfig's, or with A1 only
  // feeding the link) and their adapters. With both chats receiving, each
  // router holds one of the two queues (A1 and B1); otherwise one router
  // holds B1, the only queue, and the other none.
  void StartTwoRouters(TwoRouters& r, bool a1_receives = true) {
    ASSERT_EQ(setenv("IMBRIDGE_PG_PASSWORD", server_->password().c_str(), 1),
              0);
    std::string links = kPairConfig;
    if (!a1_receives) {
      absl::StrReplaceAll({{"chat_id: A1}", "chat_id: A1, direction: in}"}},
                          &links);
    }
    const std::string config = absl::StrCat(links, "admin_token: ", kAdminToken,
                                            "\nstore: {postgres: {dsn: '",
                                            server_->Dsn(database_), "'}}\n");
    r.one = std::make_unique<RouterProcess>(config);
    r.two = std::make_unique<RouterProcess>(config);
    ASSERT_TRUE(r.one->Start().ok()) << r.one->ReadLog();
    ASSERT_TRUE(r.two->Start().ok()) << r.two->ReadLog();
    r.alpha_one = Adapter(*r.one, "alpha", "a");
    r.beta_one = Adapter(*r.one, "beta", "b");
    r.alpha_two = Adapter(*r.two, "alpha", "a");
    r.beta_two = Adapter(*r.two, "beta", "b");
    ASSERT_TRUE(WaitFor([&] {
      int a = HolderPid("alpha/a/A1"), b = HolderPid("beta/b/B1");
      return SpreadAsExpected(a, b, a1_receives);
    })) << "first router:\n"
        << r.one->ReadLog() << "second router:\n"
        << r.two->ReadLog();
    if (a1_receives) {
      ASSERT_TRUE(r.one->WaitForMetric("imbridge_router_queues_owned", {}, 1));
      ASSERT_TRUE(r.two->WaitForMetric("imbridge_router_queues_owned", {}, 1));
    }
    const bool one_holds = HolderPid("beta/b/B1") == r.one->pid();
    r.holder = one_holds ? r.one.get() : r.two.get();
    r.survivor = one_holds ? r.two.get() : r.one.get();
    r.alpha_at_survivor = one_holds ? r.alpha_two.get() : r.alpha_one.get();
    r.beta_at_holder = one_holds ? r.beta_one.get() : r.beta_two.get();
    r.beta_at_survivor = one_holds ? r.beta_two.get() : r.beta_one.get();
  }
};

// Publishes through both routers reach B1 only through its holder; when
// the holder is killed with SIGKILL the other router takes the queue over
// and sends what was pending, in order, resends with the same idempotency
// keys.
TEST_F(SeveralRoutersTest, QueueHolderKilledTheOtherRouterResumesInOrder) {
  TwoRouters r;
  ASSERT_NO_FATAL_FAILURE(StartTwoRouters(r));
  constexpr int kBefore = 40;
  for (int i = 0; i < kBefore; ++i) {
    PostMessage(i % 2 == 0 ? *r.alpha_one : *r.alpha_two, i);
  }
  ASSERT_TRUE(r.beta_at_holder->WaitForCalls(kBefore))
      << r.beta_at_holder->calls().size() << " " << r.holder->ReadLog();
  EXPECT_TRUE(r.beta_at_survivor->calls().empty());
  // Some more, and the holder dies with them pending or in flight.
  constexpr int kTotal = 100;
  for (int i = kBefore; i < 60; ++i) PostMessage(*r.alpha_at_survivor, i);
  r.holder->Kill();
  const absl::Time killed = absl::Now();
  for (int i = 60; i < kTotal; ++i) PostMessage(*r.alpha_at_survivor, i);

  ASSERT_TRUE(WaitFor([&] {
    return HolderPid("beta/b/B1") == r.survivor->pid();
  })) << r.survivor->ReadLog();
  ASSERT_TRUE(r.beta_at_survivor->WaitForCalls(1)) << r.survivor->ReadLog();
  const absl::Duration resumed_after = absl::Now() - killed;
  std::map<std::string, int> resent;
  ASSERT_TRUE(WaitFor([&] {
    resent.clear();
    return r.Received(&resent).size() >= static_cast<size_t>(kTotal);
  })) << r.survivor->ReadLog();
  resent.clear();
  EXPECT_EQ(r.Received(&resent), Messages(0, kTotal));
  // Sent again only what was in flight at the dead router.
  EXPECT_LE(resent.size(), 60u - kBefore);
  // Both routers key deliveries alike (the database's router id and the
  // delivery id), so a resend is recognised by any adapter's journal.
  const std::string prefix =
      r.beta_at_holder->deliveries().front().idempotency_key().substr(0, 8);
  for (TestAdapter* a : {r.beta_at_holder, r.beta_at_survivor}) {
    std::set<std::string> keys;
    for (const v1::Delivery& d : a->deliveries()) {
      EXPECT_TRUE(absl::StartsWith(d.idempotency_key(), prefix))
          << d.idempotency_key();
      // Each adapter got each delivery once.
      EXPECT_TRUE(keys.insert(d.idempotency_key()).second)
          << d.idempotency_key();
    }
  }
  // The takeover: 1.75 s by design, plus the first delivery; the bound is
  // generous for a loaded machine.
  EXPECT_LT(resumed_after, absl::Seconds(10))
      << absl::FormatDuration(resumed_after);
  std::cerr << "resumed " << absl::FormatDuration(resumed_after)
            << " after kill -9; sent again: " << resent.size() << "\n";
  EXPECT_TRUE(r.survivor->WaitForMetric("imbridge_router_queues_owned", {}, 2));
  r.Stop();
}

// The Admin API of any router names the router that sends each queue.
TEST_F(SeveralRoutersTest, AdminOfAnyRouterNamesTheQueueOwner) {
  TwoRouters r;
  ASSERT_NO_FATAL_FAILURE(StartTwoRouters(r));
  // Beta's adapters go away, so that B1 keeps a pending delivery.
  r.beta_one->Stop();
  r.beta_two->Stop();
  PostMessage(*r.alpha_at_survivor, 0);
  v1::ListQueuesResponse queues = ListQueues(*r.survivor);
  ASSERT_EQ(queues.queues_size(), 1);
  EXPECT_EQ(queues.queues(0).target_key(), "beta/b/B1");
  EXPECT_EQ(queues.queues(0).pending(), 1);
  EXPECT_THAT(queues.queues(0).owner(),
              ::testing::HasSubstr(absl::StrCat(":", r.holder->pid(), ":")));
  r.alpha_one->Stop();
  r.alpha_two->Stop();
}

// A link and a webhook made through one router's Admin API hold on the
// other router too, without a restart: it lists and relays the link, and
// accepts the webhook's key. A revocation through the first router holds
// for the very next key check on the second.
TEST_F(SeveralRoutersTest, LinksAndWebhooksMadeThroughOneRouterHoldOnBoth) {
  TwoRouters r;
  ASSERT_NO_FATAL_FAILURE(StartTwoRouters(r));
  v1::CreateLinkRequest create;
  create.mutable_link()->set_name("second");
  for (const auto& [platform, account, chat] :
       {std::tuple{"alpha", "a", "A2"}, std::tuple{"beta", "b", "B2"}}) {
    v1::LinkMember* m = create.mutable_link()->add_members();
    m->set_platform(platform);
    m->set_account(account);
    m->set_chat_id(chat);
  }
  v1::LinkInfo made;
  grpc::Status status =
      AdminOf(*r.one)->CreateLink(Ctx(kAdminToken).get(), create, &made);
  ASSERT_TRUE(status.ok()) << status.error_message();

  auto lists_second = [&](const RouterProcess& router) {
    v1::ListLinksResponse links;
    if (!AdminOf(router)
             ->ListLinks(Ctx(kAdminToken).get(), v1::ListLinksRequest(), &links)
             .ok()) {
      return false;
    }
    for (const v1::LinkInfo& l : links.links()) {
      if (l.link().name() == "second") return true;
    }
    return false;
  };
  const absl::Time made_at = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return lists_second(*r.two); }))
      << r.two->ReadLog();
  std::cerr << "the other router had the link after "
            << absl::FormatDuration(absl::Now() - made_at) << "\n";
  // Published through the router that did not make the link.
  PostMessage(*r.alpha_two, 1000, "A2");
  ASSERT_TRUE(WaitFor([&] {
    for (TestAdapter* a : {r.beta_one.get(), r.beta_two.get()}) {
      for (const TestAdapter::Call& call : a->calls()) {
        if (call.chat == "B2" && call.text == "m1000") return true;
      }
    }
    return false;
  })) << r.two->ReadLog();

  v1::CreateWebhookRequest hook_request;
  hook_request.set_link("pair");
  hook_request.set_direction(v1::INCOMING);
  v1::CreateWebhookResponse hook;
  status = AdminOf(*r.one)->CreateWebhook(Ctx(kAdminToken).get(), hook_request,
                                          &hook);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto directory = v1::WebhookDirectory::NewStub(grpc::CreateChannel(
      r.two->address(), grpc::InsecureChannelCredentials()));
  v1::CheckIncomingKeyRequest check;
  check.set_id(hook.webhook().id());
  check.set_key(hook.secret());
  v1::WebhookInfo info;
  status = directory->CheckIncomingKey(Ctx(kToken).get(), check, &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(info.link(), "pair");
  v1::CheckIncomingKeyRequest wrong = check;
  wrong.set_key(hook.secret() + "x");
  EXPECT_EQ(
      directory->CheckIncomingKey(Ctx(kToken).get(), wrong, &info).error_code(),
      grpc::PERMISSION_DENIED);

  v1::RevokeWebhookRequest revoke;
  revoke.set_id(hook.webhook().id());
  v1::RevokeWebhookResponse revoked;
  status =
      AdminOf(*r.one)->RevokeWebhook(Ctx(kAdminToken).get(), revoke, &revoked);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(
      directory->CheckIncomingKey(Ctx(kToken).get(), check, &info).error_code(),
      grpc::PERMISSION_DENIED);
  r.Stop();
}

// A holder that stops answering (frozen with SIGSTOP, as a router cut off
// from the network) loses its queue by the clock: the other router takes it
// over and sends what was pending, in order. When the frozen router wakes
// up it sends nothing of what was committed after it froze.
TEST_F(SeveralRoutersTest, FrozenHolderLosesItsQueueAndStaysQuietWhenItWakes) {
  // B1 is the only queue, so that the woken router is not given it back
  // (one queue for two routers: the survivor keeps it).
  TwoRouters r;
  ASSERT_NO_FATAL_FAILURE(StartTwoRouters(r, /*a1_receives=*/false));
  for (int i = 0; i < 20; ++i) PostMessage(*r.alpha_at_survivor, i);
  ASSERT_TRUE(r.beta_at_holder->WaitForCalls(20));
  ASSERT_EQ(kill(r.holder->pid(), SIGSTOP), 0);
  const absl::Time frozen = absl::Now();
  for (int i = 20; i < 40; ++i) PostMessage(*r.alpha_at_survivor, i);
  std::map<std::string, int> resent;
  ASSERT_TRUE(WaitFor([&] {
    resent.clear();
    return r.Received(&resent).size() >= 40u;
  })) << r.survivor->ReadLog();
  const absl::Duration resumed_after = absl::Now() - frozen;
  std::cerr << "resumed " << absl::FormatDuration(resumed_after)
            << " after SIGSTOP\n";
  EXPECT_LT(resumed_after, absl::Seconds(10));

  ASSERT_EQ(kill(r.holder->pid(), SIGCONT), 0);
  // Committed after the freeze, while the woken router finds its lease
  // gone: only the survivor sends them.
  for (int i = 40; i < 50; ++i) PostMessage(*r.alpha_at_survivor, i);
  ASSERT_TRUE(WaitFor([&] {
    resent.clear();
    return r.Received(&resent).size() >= 50u;
  }));
  // Time for the woken router to go wrong, if it would: it is back in the
  // routers table (renewing again) for a few rounds.
  ASSERT_TRUE(WaitFor([&] {
    absl::StatusOr<std::string> live = server_->Query(
        database_, "SELECT count(*) FROM routers WHERE expires_at > now()");
    return live.ok() && *live == "2";
  }));
  absl::SleepFor(absl::Seconds(2));
  resent.clear();
  EXPECT_EQ(r.Received(&resent), Messages(0, 50));
  for (const TestAdapter::Call& call : r.beta_at_holder->calls()) {
    EXPECT_LT(std::stoi(call.text.substr(1)), 40) << call.text;
  }
  EXPECT_EQ(HolderPid("beta/b/B1"), r.survivor->pid());
  r.Stop();
}

}  // namespace
}  // namespace imbridge::testing
