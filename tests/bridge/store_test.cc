#include "bridge/store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bridge/sqlite_store.h"
#include "common/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "imbridge/v1/config.pb.h"
#include "imbridge/v1/events.pb.h"

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

DeliveryRecord Delivery(int64_t event_id, const std::string& chat,
                        absl::Time created_at) {
  DeliveryRecord delivery;
  delivery.event_id = event_id;
  delivery.target = Channel(chat);
  delivery.target_key = ChannelKey(delivery.target, true);
  delivery.link = "support";
  delivery.sender_name = "Ann (Slack)";
  delivery.created_at = created_at;
  delivery.next_attempt_at = created_at;
  return delivery;
}

std::vector<int64_t> Ids(const std::vector<DeliveryRecord>& records) {
  std::vector<int64_t> ids;
  for (const DeliveryRecord& record : records) ids.push_back(record.id);
  return ids;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = absl::StrCat(::testing::TempDir(), "/imbridge_store_test_", getpid(),
                        "_", info->name(), "/data");
    std::filesystem::remove_all(std::filesystem::path(dir_).parent_path());
    Reopen();
  }

  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(std::filesystem::path(dir_).parent_path());
  }

  void Reopen(v1::Durability durability = v1::FULL) {
    store_.reset();
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenSqliteStore(dir_, durability);
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

  // Commits a new event and returns its id.
  absl::StatusOr<int64_t> AddEvent(const std::string& key,
                                   absl::Time received_at = kT0) {
    int64_t id = 0;
    IMB_RETURN_IF_ERROR(InTransaction([&]() -> absl::Status {
      IMB_ASSIGN_OR_RETURN(std::optional<int64_t> inserted,
                           store_->InsertEvent(Posted(key, "hi"), received_at));
      if (!inserted.has_value()) return absl::AlreadyExistsError(key);
      id = *inserted;
      return absl::OkStatus();
    }));
    return id;
  }

  // Commits a delivery and returns its id.
  absl::StatusOr<int64_t> AddDelivery(const DeliveryRecord& delivery) {
    int64_t id = 0;
    IMB_RETURN_IF_ERROR(InTransaction([&]() -> absl::Status {
      IMB_ASSIGN_OR_RETURN(id, store_->InsertDelivery(delivery));
      return absl::OkStatus();
    }));
    return id;
  }

  // Counts rows with a separate raw connection, to check what is on disk.
  int64_t CountRows(const std::string& table) {
    sqlite3* db = nullptr;
    int64_t count = -1;
    if (sqlite3_open_v2(DbPath().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
        SQLITE_OK) {
      std::string sql = absl::StrCat("SELECT count(*) FROM ", table);
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) ==
              SQLITE_OK &&
          sqlite3_step(stmt) == SQLITE_ROW) {
        count = sqlite3_column_int64(stmt, 0);
      }
      sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return count;
  }

  std::string DbPath() const { return dir_ + "/imbridge.db"; }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST(ChannelKeyTest, JoinsPartsAndOptionalThread) {
  EXPECT_EQ(ChannelKey(Channel("C1"), false), "slack/acme/C1");
  EXPECT_EQ(ChannelKey(Channel("C1"), true), "slack/acme/C1");
  EXPECT_EQ(ChannelKey(Channel("C1", "t9"), false), "slack/acme/C1");
  EXPECT_EQ(ChannelKey(Channel("C1", "t9"), true), "slack/acme/C1#t9");
}

TEST_F(StoreTest, DuplicateEventKeyIsRejectedAndWritesNothing) {
  ASSERT_OK_AND_ASSIGN(int64_t first, AddEvent("slack:T1:Ev1"));
  ASSERT_OK(store_->Begin());
  ASSERT_OK_AND_ASSIGN(std::optional<int64_t> dup,
                       store_->InsertEvent(Posted("slack:T1:Ev1", "x"), kT0));
  EXPECT_EQ(dup, std::nullopt);
  ASSERT_OK(store_->Commit());
  EXPECT_EQ(CountRows("events"), 1);

  ASSERT_OK_AND_ASSIGN(int64_t second, AddEvent("slack:T1:Ev2"));
  EXPECT_GT(second, first);
  EXPECT_EQ(CountRows("events"), 2);
}

TEST_F(StoreTest, DuplicateInsideOneTransactionIsRejected) {
  ASSERT_OK(store_->Begin());
  ASSERT_OK_AND_ASSIGN(std::optional<int64_t> a,
                       store_->InsertEvent(Posted("k1", "a"), kT0));
  ASSERT_OK_AND_ASSIGN(std::optional<int64_t> b,
                       store_->InsertEvent(Posted("k1", "b"), kT0));
  ASSERT_OK_AND_ASSIGN(std::optional<int64_t> c,
                       store_->InsertEvent(Posted("k2", "c"), kT0));
  ASSERT_OK(store_->Commit());
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(b, std::nullopt);
  ASSERT_TRUE(c.has_value());
  EXPECT_GT(*c, *a);
  EXPECT_EQ(CountRows("events"), 2);
}

TEST_F(StoreTest, DuplicateIsRecognisedAfterReopen) {
  ASSERT_OK(AddEvent("telegram:bot1:42").status());
  Reopen();
  ASSERT_OK(store_->Begin());
  ASSERT_OK_AND_ASSIGN(
      std::optional<int64_t> dup,
      store_->InsertEvent(Posted("telegram:bot1:42", ""), kT0));
  store_->Rollback();
  EXPECT_EQ(dup, std::nullopt);
}

TEST_F(StoreTest, EventWithoutKeyIsInvalid) {
  ASSERT_OK(store_->Begin());
  absl::StatusOr<std::optional<int64_t>> id =
      store_->InsertEvent(Posted("", "x"), kT0);
  store_->Rollback();
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, WriteOutsideTransactionFails) {
  absl::StatusOr<std::optional<int64_t>> id =
      store_->InsertEvent(Posted("k", "x"), kT0);
  EXPECT_EQ(id.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CountRows("events"), 0);
}

TEST_F(StoreTest, LoadPendingDeliveriesPagesInIdOrderWithEvents) {
  ASSERT_OK_AND_ASSIGN(int64_t e1, AddEvent("k1"));
  ASSERT_OK_AND_ASSIGN(int64_t e2, AddEvent("k2"));
  std::vector<int64_t> a_ids;
  ASSERT_OK(InTransaction([&]() -> absl::Status {
    for (int i = 0; i < 5; ++i) {
      IMB_ASSIGN_OR_RETURN(int64_t a, store_->InsertDelivery(Delivery(
                                          i % 2 ? e2 : e1, "A", At(i))));
      IMB_ASSIGN_OR_RETURN(int64_t b,
                           store_->InsertDelivery(Delivery(e1, "B", At(i))));
      if (b <= a) return absl::InternalError("ids do not increase");
      a_ids.push_back(a);
    }
    return absl::OkStatus();
  }));
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
  EXPECT_EQ(second.event_id, e2);
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
  EXPECT_EQ(second.event->key(), "k2");
  EXPECT_EQ(second.event->posted().text().text(), "hi");
  EXPECT_EQ(second.event->posted().sender().display_name(), "Ann");
  ASSERT_NE(page1[0].event, nullptr);
  EXPECT_EQ(page1[0].event->key(), "k1");
}

TEST_F(StoreTest, InfiniteTimesRoundTrip) {
  ASSERT_OK_AND_ASSIGN(int64_t e, AddEvent("k"));
  DeliveryRecord delivery = Delivery(e, "A", kT0);
  delivery.next_attempt_at = absl::InfinitePast();
  ASSERT_OK(AddDelivery(delivery).status());
  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> loaded,
                       store_->LoadPendingDeliveries("slack/acme/A", 0, 10));
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].next_attempt_at, absl::InfinitePast());
}

TEST_F(StoreTest, ListPendingTargetsAndCompleteDelivery) {
  ASSERT_OK_AND_ASSIGN(int64_t e, AddEvent("k"));
  DeliveryRecord threaded = Delivery(e, "C", kT0);
  threaded.target = Channel("C", "t1");
  threaded.target_key = ChannelKey(threaded.target, true);
  ASSERT_OK_AND_ASSIGN(int64_t a, AddDelivery(Delivery(e, "A", kT0)));
  ASSERT_OK_AND_ASSIGN(int64_t b1, AddDelivery(Delivery(e, "B", kT0)));
  ASSERT_OK_AND_ASSIGN(int64_t b2, AddDelivery(Delivery(e, "B", kT0)));
  ASSERT_OK(AddDelivery(threaded).status());
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> targets,
                       store_->ListPendingTargets());
  EXPECT_THAT(targets,
              ElementsAre("slack/acme/A", "slack/acme/B", "slack/acme/C#t1"));

  ASSERT_OK(InTransaction([&]() -> absl::Status {
    IMB_RETURN_IF_ERROR(store_->CompleteDelivery(b1));
    IMB_RETURN_IF_ERROR(store_->CompleteDelivery(b2));
    IMB_RETURN_IF_ERROR(store_->DeadLetterDelivery(a, "gone", At(1)));
    // Unknown ids are a no-op, so a batch is not aborted by them.
    IMB_RETURN_IF_ERROR(store_->CompleteDelivery(9999));
    return store_->RescheduleDelivery(9999, 1, At(2), "x");
  }));
  ASSERT_OK_AND_ASSIGN(targets, store_->ListPendingTargets());
  EXPECT_THAT(targets, ElementsAre("slack/acme/C#t1"));
  EXPECT_EQ(CountRows("deliveries"), 2);  // the thread's and the dead letter
}

TEST_F(StoreTest, RescheduleUpdatesAttemptAndError) {
  ASSERT_OK_AND_ASSIGN(int64_t e, AddEvent("k"));
  ASSERT_OK_AND_ASSIGN(int64_t id, AddDelivery(Delivery(e, "A", kT0)));
  ASSERT_OK(InTransaction([&] {
    return store_->RescheduleDelivery(id, 3, At(60), "429 rate limited");
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

TEST_F(StoreTest, DeadLettersCanBeListedRetriedAndDropped) {
  ASSERT_OK_AND_ASSIGN(int64_t e, AddEvent("k"));
  ASSERT_OK_AND_ASSIGN(int64_t d1, AddDelivery(Delivery(e, "A", kT0)));
  ASSERT_OK_AND_ASSIGN(int64_t d2, AddDelivery(Delivery(e, "A", kT0)));
  ASSERT_OK_AND_ASSIGN(int64_t d3, AddDelivery(Delivery(e, "A", kT0)));
  ASSERT_OK(InTransaction([&]() -> absl::Status {
    IMB_RETURN_IF_ERROR(store_->RescheduleDelivery(d1, 5, At(9), "timeout"));
    IMB_RETURN_IF_ERROR(store_->DeadLetterDelivery(d1, "ttl expired", At(10)));
    return store_->DeadLetterDelivery(d2, "403 forbidden", At(20));
  }));

  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> dead,
                       store_->ListDeadLetters(10));
  EXPECT_THAT(Ids(dead), ElementsAre(d2, d1));  // newest first
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].last_error, "403 forbidden");
  EXPECT_EQ(dead[1].last_error, "ttl expired");
  EXPECT_EQ(dead[1].attempts, 5);
  ASSERT_NE(dead[1].event, nullptr);
  EXPECT_EQ(dead[1].event->key(), "k");
  ASSERT_OK_AND_ASSIGN(dead, store_->ListDeadLetters(1));
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
  ASSERT_OK_AND_ASSIGN(dead, store_->ListDeadLetters(10));
  EXPECT_THAT(Ids(dead), ElementsAre(d2));

  ASSERT_OK(InTransaction([&] { return store_->DropDeadLetter(d2); }));
  ASSERT_OK_AND_ASSIGN(dead, store_->ListDeadLetters(10));
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

TEST_F(StoreTest, DeadLetterRefsPageByIdAndTargetsAreListed) {
  ASSERT_OK_AND_ASSIGN(int64_t e, AddEvent("k"));
  std::vector<int64_t> dead_ids;
  ASSERT_OK(InTransaction([&]() -> absl::Status {
    // Dead letters in two targets, a pending delivery between them.
    for (const char* chat : {"B", "A", "B", "pending", "A", "B"}) {
      IMB_ASSIGN_OR_RETURN(int64_t id,
                           store_->InsertDelivery(Delivery(e, chat, kT0)));
      if (std::string(chat) == "pending") continue;
      IMB_RETURN_IF_ERROR(store_->DeadLetterDelivery(id, "gone", At(1)));
      dead_ids.push_back(id);
    }
    return absl::OkStatus();
  }));

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

TEST_F(StoreTest, CountDeliveriesReportsOldestPending) {
  ASSERT_OK_AND_ASSIGN(Store::TargetCounts empty,
                       store_->CountDeliveries("slack/acme/A"));
  EXPECT_EQ(empty.pending, 0);
  EXPECT_EQ(empty.dead, 0);
  EXPECT_EQ(empty.oldest_pending, absl::InfiniteFuture());

  ASSERT_OK_AND_ASSIGN(int64_t e, AddEvent("k"));
  ASSERT_OK_AND_ASSIGN(int64_t first, AddDelivery(Delivery(e, "A", At(5))));
  ASSERT_OK(AddDelivery(Delivery(e, "A", At(7))).status());
  ASSERT_OK(AddDelivery(Delivery(e, "A", At(9))).status());
  ASSERT_OK(AddDelivery(Delivery(e, "B", At(1))).status());
  ASSERT_OK(InTransaction(
      [&] { return store_->DeadLetterDelivery(first, "no", At(10)); }));
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

TEST_F(StoreTest, MessageMap) {
  ASSERT_OK(InTransaction([&]() -> absl::Status {
    const std::vector<std::string> original = {"o1"};
    const std::vector<std::string> copies = {"c-part0", "c-part1", "c-part2"};
    IMB_RETURN_IF_ERROR(
        store_->AddMessages(7, "slack/acme/C1", original, false, kT0));
    IMB_RETURN_IF_ERROR(
        store_->AddMessages(7, "telegram/bot/42", copies, true, kT0));
    // Re-adding an existing pair changes nothing, even with other values.
    const std::vector<std::string> again = {"c-part1"};
    return store_->AddMessages(99, "telegram/bot/42", again, false, kT0);
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

TEST_F(StoreTest, RosterUpsertAndList) {
  RosterEntry ann{"slack", "acme", "U1", "Ann", v1::ONLINE, "", At(1)};
  RosterEntry bob{"telegram", "bot", "7", "Bob", v1::AWAY, "lunch", At(2)};
  ASSERT_OK(InTransaction([&]() -> absl::Status {
    IMB_RETURN_IF_ERROR(store_->UpsertRoster(ann));
    return store_->UpsertRoster(bob);
  }));
  ann.presence = v1::DND;
  ann.status_text = "in a meeting";
  ann.updated_at = At(3);
  ASSERT_OK(InTransaction([&] { return store_->UpsertRoster(ann); }));

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

TEST_F(StoreTest, BlobsRecordFindDeleteAndCollect) {
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
  ASSERT_OK_AND_ASSIGN(int64_t e1, AddEvent("k1"));
  ASSERT_OK_AND_ASSIGN(int64_t e2, AddEvent("k2"));
  ASSERT_OK_AND_ASSIGN(int64_t e3, AddEvent("k3"));
  ASSERT_OK(AddDelivery(Delivery(e1, "A", kT0)).status());
  ASSERT_OK_AND_ASSIGN(int64_t d2, AddDelivery(Delivery(e2, "A", kT0)));
  ASSERT_OK(InTransaction([&]() -> absl::Status {
    IMB_RETURN_IF_ERROR(store_->AddEventBlob(e1, kA, At(10)));
    IMB_RETURN_IF_ERROR(store_->AddEventBlob(e2, kB, At(10)));
    IMB_RETURN_IF_ERROR(store_->AddEventBlob(e3, kC, At(10)));
    return store_->DeadLetterDelivery(d2, "no", At(11));
  }));
  ASSERT_OK_AND_ASSIGN(std::optional<BlobInfo> a, store_->FindBlob(kA));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->last_used_at, At(10));  // AddEventBlob marks it used
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

  ASSERT_OK(InTransaction([&] { return store_->DeleteBlob(kC); }));
  ASSERT_OK_AND_ASSIGN(c, store_->FindBlob(kC));
  EXPECT_FALSE(c.has_value());
  ASSERT_OK_AND_ASSIGN(collectable, store_->ListCollectableBlobs(At(100)));
  EXPECT_THAT(collectable, ElementsAre(kB));
}

TEST_F(StoreTest, PruneEventsKeepsEventsThatDeliveriesNeed) {
  ASSERT_OK_AND_ASSIGN(int64_t old_pending, AddEvent("old-pending", At(0)));
  ASSERT_OK_AND_ASSIGN(int64_t old_dead, AddEvent("old-dead", At(0)));
  ASSERT_OK_AND_ASSIGN(int64_t old_done, AddEvent("old-done", At(0)));
  ASSERT_OK_AND_ASSIGN(int64_t recent, AddEvent("recent", At(100)));
  ASSERT_OK(AddDelivery(Delivery(old_pending, "A", At(0))).status());
  ASSERT_OK_AND_ASSIGN(int64_t dead,
                       AddDelivery(Delivery(old_dead, "A", At(0))));
  ASSERT_OK_AND_ASSIGN(int64_t done,
                       AddDelivery(Delivery(old_done, "A", At(0))));
  ASSERT_OK(InTransaction([&]() -> absl::Status {
    IMB_RETURN_IF_ERROR(store_->DeadLetterDelivery(dead, "no", At(1)));
    IMB_RETURN_IF_ERROR(store_->CompleteDelivery(done));
    IMB_RETURN_IF_ERROR(store_->AddEventBlob(old_done, "blob1", At(0)));
    IMB_RETURN_IF_ERROR(store_->AddEventBlob(old_pending, "blob2", At(0)));
    const std::vector<std::string> ids = {"n1"};
    return store_->AddMessages(old_done, "slack/acme/A", ids, true, At(0));
  }));

  int64_t pruned = -1;
  ASSERT_OK(InTransaction([&]() -> absl::Status {
    IMB_ASSIGN_OR_RETURN(pruned, store_->PruneEvents(At(50)));
    return absl::OkStatus();
  }));
  EXPECT_EQ(pruned, 1);
  EXPECT_EQ(CountRows("events"), 3);
  EXPECT_EQ(CountRows("event_blobs"), 1);  // blob2 of old_pending
  EXPECT_EQ(CountRows("messages"), 1);     // the message map is kept

  // The pruned key is forgotten; the kept ones still dedupe.
  ASSERT_OK(store_->Begin());
  ASSERT_OK_AND_ASSIGN(std::optional<int64_t> again,
                       store_->InsertEvent(Posted("old-done", ""), At(200)));
  ASSERT_OK_AND_ASSIGN(std::optional<int64_t> kept,
                       store_->InsertEvent(Posted("old-pending", ""), At(200)));
  store_->Rollback();
  ASSERT_TRUE(again.has_value());
  EXPECT_GT(*again, recent);  // ids are never reused
  EXPECT_FALSE(kept.has_value());

  // Events of the remaining deliveries still load.
  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> pending,
                       store_->LoadPendingDeliveries("slack/acme/A", 0, 10));
  ASSERT_EQ(pending.size(), 1u);
  ASSERT_NE(pending[0].event, nullptr);
  EXPECT_EQ(pending[0].event->key(), "old-pending");
}

TEST_F(StoreTest, IdsAreNotReusedAfterDeletingTheNewestRows) {
  ASSERT_OK_AND_ASSIGN(int64_t e, AddEvent("k1", At(0)));
  ASSERT_OK_AND_ASSIGN(int64_t d, AddDelivery(Delivery(e, "A", At(0))));
  ASSERT_OK(InTransaction([&]() -> absl::Status {
    IMB_RETURN_IF_ERROR(store_->CompleteDelivery(d));
    return store_->PruneEvents(At(1)).status();
  }));
  EXPECT_EQ(CountRows("events"), 0);
  Reopen();
  ASSERT_OK_AND_ASSIGN(int64_t e2, AddEvent("k2", At(2)));
  ASSERT_OK_AND_ASSIGN(int64_t d2, AddDelivery(Delivery(e2, "A", At(2))));
  EXPECT_GT(e2, e);
  EXPECT_GT(d2, d);
}

TEST_F(StoreTest, IdsStayUniqueAcrossRollbacks) {
  ASSERT_OK_AND_ASSIGN(int64_t e1, AddEvent("k1"));
  ASSERT_OK(store_->Begin());
  ASSERT_OK(store_->InsertEvent(Posted("k2", ""), kT0).status());
  store_->Rollback();
  ASSERT_OK_AND_ASSIGN(int64_t e3, AddEvent("k3"));
  EXPECT_GT(e3, e1);
  // A Rollback with no transaction open (say after a failed Begin) must not
  // hand out the ids of committed rows again.
  store_->Rollback();
  EXPECT_FALSE(store_->Commit().ok());
  ASSERT_OK_AND_ASSIGN(int64_t e4, AddEvent("k4"));
  EXPECT_GT(e4, e3);
  EXPECT_EQ(CountRows("events"), 3);
}

TEST_F(StoreTest, RollbackLeavesNothing) {
  ASSERT_OK(store_->Begin());
  ASSERT_OK_AND_ASSIGN(std::optional<int64_t> e,
                       store_->InsertEvent(Posted("k", "x"), kT0));
  ASSERT_TRUE(e.has_value());
  ASSERT_OK(store_->InsertDelivery(Delivery(*e, "A", kT0)).status());
  const std::vector<std::string> ids = {"n1"};
  ASSERT_OK(store_->AddMessages(*e, "slack/acme/A", ids, true, kT0));
  ASSERT_OK(store_->RecordBlob({"b", 1, kT0, kT0}));
  // Uncommitted rows are invisible to the read methods.
  ASSERT_OK_AND_ASSIGN(std::vector<DeliveryRecord> pending,
                       store_->LoadPendingDeliveries("slack/acme/A", 0, 10));
  EXPECT_THAT(pending, IsEmpty());
  store_->Rollback();
  store_->Rollback();  // a second rollback is harmless

  EXPECT_EQ(CountRows("events"), 0);
  EXPECT_EQ(CountRows("deliveries"), 0);
  EXPECT_EQ(CountRows("messages"), 0);
  EXPECT_EQ(CountRows("blobs"), 0);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> targets,
                       store_->ListPendingTargets());
  EXPECT_THAT(targets, IsEmpty());
  // The key was never accepted.
  ASSERT_OK(AddEvent("k").status());
}

TEST_F(StoreTest, DataSurvivesReopen) {
  ASSERT_OK_AND_ASSIGN(int64_t e, AddEvent("k"));
  ASSERT_OK_AND_ASSIGN(int64_t d, AddDelivery(Delivery(e, "A", At(3))));
  ASSERT_OK(InTransaction([&]() -> absl::Status {
    const std::vector<std::string> ids = {"n1", "n2"};
    IMB_RETURN_IF_ERROR(store_->AddMessages(e, "slack/acme/A", ids, true, kT0));
    IMB_RETURN_IF_ERROR(store_->UpsertRoster(
        {"slack", "acme", "U1", "Ann", v1::ONLINE, "", At(1)}));
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

TEST_F(StoreTest, RouterIdIsStableAcrossReopen) {
  std::string id = store_->router_id();
  EXPECT_THAT(id, MatchesRegex("[0-9a-f]{32}"));
  Reopen();
  EXPECT_EQ(store_->router_id(), id);

  absl::StatusOr<std::unique_ptr<Store>> other =
      OpenSqliteStore(dir_ + "/other", v1::FULL);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE((*other)->router_id(), id);
}

TEST_F(StoreTest, NewerSchemaIsRefused) {
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
                        "build knows 3"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(DbPath()));
}

TEST_F(StoreTest, UnusableDataDirIsNamedInTheError) {
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

TEST_F(StoreTest, ReadsRunConcurrentlyWithTheWriter) {
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
    ASSERT_OK(InTransaction([&]() -> absl::Status {
      for (int i = 0; i < 50; ++i) {
        IMB_ASSIGN_OR_RETURN(
            std::optional<int64_t> e,
            store_->InsertEvent(Posted(absl::StrCat(batch, "-", i), "x"), kT0));
        IMB_RETURN_IF_ERROR(
            store_->InsertDelivery(Delivery(e.value_or(0), "A", kT0)).status());
      }
      return absl::OkStatus();
    }));
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
TEST_F(StoreTest, ManyReadersShareThePoolWithoutMixingResults) {
  constexpr int kThreads = 10;
  ASSERT_OK(InTransaction([&]() -> absl::Status {
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i <= t; ++i) {
        IMB_ASSIGN_OR_RETURN(
            std::optional<int64_t> e,
            store_->InsertEvent(Posted(absl::StrCat(t, "-", i), "x"), kT0));
        IMB_RETURN_IF_ERROR(store_
                                ->InsertDelivery(Delivery(
                                    e.value_or(0), absl::StrCat("T", t), kT0))
                                .status());
      }
    }
    return absl::OkStatus();
  }));
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

}  // namespace
}  // namespace imbridge::bridge

namespace imbridge::bridge {
namespace {

TEST_F(StoreTest, DeadLettersAreCounted) {
  EXPECT_EQ(*store_->CountDeadLetters(), 0);
  int64_t a = 0, b = 0;
  ASSERT_TRUE(InTransaction([&] {
                IMB_ASSIGN_OR_RETURN(
                    auto e, store_->InsertEvent(Posted("k1", "x"), kT0));
                IMB_ASSIGN_OR_RETURN(
                    a, store_->InsertDelivery(Delivery(*e, "C1", kT0)));
                IMB_ASSIGN_OR_RETURN(
                    b, store_->InsertDelivery(Delivery(*e, "C2", kT0)));
                return store_->DeadLetterDelivery(a, "gone", kT0);
              }).ok());
  EXPECT_EQ(*store_->CountDeadLetters(), 1);
  ASSERT_TRUE(InTransaction([&] {
                return store_->DeadLetterDelivery(b, "gone", kT0);
              }).ok());
  EXPECT_EQ(*store_->CountDeadLetters(), 2);
}

TEST_F(StoreTest, RecordsArePutListedReplacedAndDeleted) {
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
}

TEST_F(StoreTest, ParticipantsAreListedMostRecentFirst) {
  v1::UserRef ann;
  ann.set_platform("slack");
  ann.set_id("U1");
  ann.set_display_name("Ann");
  v1::UserRef bob = ann;
  bob.set_id("U2");
  bob.set_display_name("Bob");
  absl::Time t0 = absl::FromUnixSeconds(1000);
  ASSERT_TRUE(
      InTransaction([&] {
        IMB_RETURN_IF_ERROR(store_->TouchParticipant("slack/w/C1", ann, t0));
        IMB_RETURN_IF_ERROR(
            store_->TouchParticipant("slack/w/C1", bob, t0 + absl::Seconds(1)));
        return store_->TouchParticipant("slack/w/C2", bob, t0);
      }).ok());
  ann.set_display_name("Ann B.");
  ASSERT_TRUE(InTransaction([&] {
                return store_->TouchParticipant("slack/w/C1", ann,
                                                t0 + absl::Seconds(2));
              }).ok());
  auto people = store_->ListParticipants("slack/w/C1");
  ASSERT_TRUE(people.ok());
  ASSERT_EQ(people->size(), 2u);
  EXPECT_EQ((*people)[0].display_name, "Ann B.");
  EXPECT_EQ((*people)[0].last_seen_at, t0 + absl::Seconds(2));
  EXPECT_EQ((*people)[1].user_id, "U2");
  EXPECT_EQ(store_->ListParticipants("slack/w/C3")->size(), 0u);
}

TEST_F(StoreTest, VersionOneDatabaseIsMigratedKeepingItsData) {
  ASSERT_TRUE(
      InTransaction([&] {
        return store_->InsertEvent(Posted("k1", "m1"), absl::Now()).status();
      }).ok());
  store_.reset();
  // Make the database look like one written by schema version 1.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP TABLE records; DROP TABLE participants; "
                         "DROP INDEX dead_letters_by_target; "
                         "PRAGMA user_version = 1",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  Reopen();
  ASSERT_TRUE(
      InTransaction([&] { return store_->PutRecord("link", "x", "X"); }).ok());
  EXPECT_EQ(store_->ListRecords("link")->size(), 1u);
  // The old event is still known (a duplicate key is refused).
  absl::StatusOr<std::optional<int64_t>> again;
  ASSERT_TRUE(InTransaction([&] {
                again = store_->InsertEvent(Posted("k1", "m1"), absl::Now());
                return again.status();
              }).ok());
  EXPECT_FALSE(again->has_value());
}

// A database written by schema version 2 (today's routers), created from the
// checked-in fixture: opening it upgrades it in place and every row is found.
TEST_F(StoreTest, VersionTwoDataDirIsUpgradedInPlaceAndFindsEverything) {
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
                       store_->ListDeadLetters(10));
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
  std::optional<int64_t> again;
  int64_t next_delivery = 0;
  ASSERT_OK(InTransaction([&]() -> absl::Status {
    IMB_ASSIGN_OR_RETURN(again,
                         store_->InsertEvent(Posted("alpha:1", "x"), kT0));
    IMB_ASSIGN_OR_RETURN(std::optional<int64_t> fresh,
                         store_->InsertEvent(Posted("alpha:4", "new"), kT0));
    if (!fresh.has_value() || *fresh != 4) {
      return absl::InternalError("the new event is not number 4");
    }
    IMB_ASSIGN_OR_RETURN(next_delivery,
                         store_->InsertDelivery(Delivery(*fresh, "B1", kT0)));
    return absl::OkStatus();
  }));
  EXPECT_FALSE(again.has_value());
  EXPECT_EQ(next_delivery, 4);
  // Retrying the old dead letter works on the upgraded schema.
  ASSERT_OK(InTransaction([&] { return store_->RetryDeadLetter(2, At(5)); }));
  ASSERT_OK_AND_ASSIGN(dead_targets, store_->ListDeadLetterTargets());
  EXPECT_THAT(dead_targets, IsEmpty());
}

}  // namespace
}  // namespace imbridge::bridge
