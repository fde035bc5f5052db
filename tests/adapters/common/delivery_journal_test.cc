#include "adapters/common/delivery_journal.h"

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using Ids = std::vector<std::string>;

class DeliveryJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "journal-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<DeliveryJournal> OpenJournal() {
    return OpenJournal(DeliveryJournal::Options());
  }
  std::unique_ptr<DeliveryJournal> OpenJournal(
      DeliveryJournal::Options options) {
    auto journal = DeliveryJournal::OpenInStateDir(dir_, options);
    EXPECT_TRUE(journal.ok()) << journal.status();
    return journal.ok() ? std::move(*journal) : nullptr;
  }

  // A step that records that it was called and returns `ids`.
  DeliveryJournal::StepCall Call(Ids ids) {
    return [this, ids]() -> absl::StatusOr<Ids> {
      calls_.push_back(ids.empty() ? "" : ids.front());
      return ids;
    };
  }

  std::string dir_;
  std::vector<std::string> calls_;
};

TEST_F(DeliveryJournalTest, RecordsIntentThenResult) {
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  auto empty = journal->Find("k1");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->completed);
  EXPECT_THAT(empty->steps, IsEmpty());

  absl::Time before = absl::Now() - absl::Seconds(1);
  ASSERT_TRUE(journal->RecordIntent("k1", "slack/work/C1", 0).ok());
  auto open = journal->Find("k1");
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->steps.size(), 1u);
  EXPECT_FALSE(open->steps[0].done);
  EXPECT_GE(open->steps[0].intent_at, before);
  EXPECT_EQ(open->DoneSteps(), 0u);

  ASSERT_TRUE(journal->RecordResult("k1", 0, {"1.000100"}).ok());
  ASSERT_TRUE(journal->RecordIntent("k1", "slack/work/C1", 1).ok());
  ASSERT_TRUE(journal->RecordResult("k1", 1, {"file:F1", "file:F2"}).ok());
  auto done = journal->Find("k1");
  ASSERT_TRUE(done.ok());
  EXPECT_FALSE(done->completed);
  EXPECT_EQ(done->DoneSteps(), 2u);
  EXPECT_THAT(done->NativeIds(), ElementsAre("1.000100", "file:F1", "file:F2"));
  ASSERT_TRUE(journal->MarkCompleted("k1").ok());
  auto completed = journal->Find("k1");
  ASSERT_TRUE(completed.ok());
  EXPECT_TRUE(completed->completed);
  // Another delivery is unaffected.
  auto other = journal->Find("k2");
  ASSERT_TRUE(other.ok());
  EXPECT_THAT(other->steps, IsEmpty());
}

TEST_F(DeliveryJournalTest, RunResumesAfterTheLastCompletedStep) {
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  bool fail_second = true;
  std::vector<DeliveryJournal::StepCall> steps = {
      Call({"m1"}),
      [&]() -> absl::StatusOr<Ids> {
        calls_.push_back("m2");
        if (fail_second) return absl::UnavailableError("429");
        return Ids{"m2"};
      },
      Call({"m3", "m4"}),
  };
  // A reconciler that must not be asked: the failed step did not die
  // half-way, the messenger answered.
  auto never =
      [](size_t,
         const DeliveryJournal::Step&) -> absl::StatusOr<std::optional<Ids>> {
    ADD_FAILURE() << "reconciler asked about a failed step";
    return std::nullopt;
  };
  auto first = journal->Run("k", "t", steps, never);
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(calls_, ElementsAre("m1", "m2"));
  auto recorded = journal->Find("k");
  ASSERT_TRUE(recorded.ok());
  ASSERT_EQ(recorded->steps.size(), 2u);
  EXPECT_TRUE(recorded->steps[1].failed);
  EXPECT_FALSE(recorded->steps[1].done);

  // The failed step is made again, and the first step is not.
  fail_second = false;
  calls_.clear();
  auto second = journal->Run("k", "t", steps, never);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT(*second, ElementsAre("m1", "m2", "m3", "m4"));
  EXPECT_THAT(calls_, ElementsAre("m2", "m3"));

  // A completed delivery returns its ids without calling anything.
  calls_.clear();
  auto third = journal->Run("k", "t", steps, nullptr);
  ASSERT_TRUE(third.ok());
  EXPECT_THAT(*third, ElementsAre("m1", "m2", "m3", "m4"));
  EXPECT_THAT(calls_, IsEmpty());
}

TEST_F(DeliveryJournalTest, AnOpenIntentGoesToTheReconciler) {
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  ASSERT_TRUE(journal->RecordIntent("found", "t", 0).ok());
  ASSERT_TRUE(journal->RecordIntent("missing", "t", 0).ok());
  std::vector<size_t> asked;
  auto reconcile = [&](size_t step, const DeliveryJournal::Step& recorded)
      -> absl::StatusOr<std::optional<Ids>> {
    asked.push_back(step);
    EXPECT_FALSE(recorded.done);
    if (calls_.empty() && asked.size() == 1) return Ids{"found-ts"};
    return std::nullopt;
  };
  auto found = journal->Run("found", "t", {Call({"new-ts"})}, reconcile);
  ASSERT_TRUE(found.ok());
  EXPECT_THAT(*found, ElementsAre("found-ts"));
  EXPECT_THAT(calls_, IsEmpty());

  auto missing = journal->Run("missing", "t", {Call({"new-ts"})}, reconcile);
  ASSERT_TRUE(missing.ok());
  EXPECT_THAT(*missing, ElementsAre("new-ts"));
  EXPECT_THAT(calls_, ElementsAre("new-ts"));
  EXPECT_THAT(asked, ElementsAre(0u, 0u));

  // A reconciler's error stops the delivery before any call.
  ASSERT_TRUE(journal->RecordIntent("unsure", "t", 0).ok());
  calls_.clear();
  auto unsure = journal->Run(
      "unsure", "t", {Call({"x"})},
      [](size_t,
         const DeliveryJournal::Step&) -> absl::StatusOr<std::optional<Ids>> {
        return absl::UnavailableError("history unavailable");
      });
  EXPECT_EQ(unsure.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(calls_, IsEmpty());
}

TEST_F(DeliveryJournalTest, KeepsEverythingAcrossReopen) {
  {
    auto journal = OpenJournal();
    ASSERT_NE(journal, nullptr);
    ASSERT_TRUE(journal->RecordIntent("k", "t", 0).ok());
    ASSERT_TRUE(journal->RecordResult("k", 0, {"a"}).ok());
    ASSERT_TRUE(journal->RecordIntent("k", "t", 1).ok());
    ASSERT_TRUE(journal->PutState("telegram/offset/bot", "42").ok());
    ASSERT_TRUE(journal->PutState("telegram/offset/bot", "43").ok());
    ASSERT_TRUE(journal->PutState("telegram/alias/bot/-1", "-1001").ok());
  }
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(dir_) /
                                      DeliveryJournal::kFileName));
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  auto record = journal->Find("k");
  ASSERT_TRUE(record.ok());
  ASSERT_EQ(record->steps.size(), 2u);
  EXPECT_TRUE(record->steps[0].done);
  EXPECT_FALSE(record->steps[1].done);
  EXPECT_THAT(record->NativeIds(), ElementsAre("a"));
  auto offset = journal->GetState("telegram/offset/bot");
  ASSERT_TRUE(offset.ok());
  EXPECT_EQ(offset->value_or(""), "43");
  auto none = journal->GetState("telegram/offset/other");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto aliases = journal->ListState("telegram/alias/");
  ASSERT_TRUE(aliases.ok());
  ASSERT_EQ(aliases->size(), 1u);
  EXPECT_EQ((*aliases)[0].first, "telegram/alias/bot/-1");
  EXPECT_EQ((*aliases)[0].second, "-1001");
}

TEST_F(DeliveryJournalTest, FindsTheNativeIdsOfATargetAcrossReopen) {
  {
    auto journal = OpenJournal();
    ASSERT_NE(journal, nullptr);
    ASSERT_TRUE(journal->RecordIntent("k", "b24/chat1", 0).ok());
    ASSERT_TRUE(journal->RecordResult("k", 0, {"10"}).ok());
    ASSERT_TRUE(journal->RecordIntent("k", "b24/chat1", 1).ok());
    ASSERT_TRUE(journal->RecordResult("k", 1, {"11", "12"}).ok());
  }
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  for (const char* id : {"10", "11", "12"}) {
    auto found = journal->HasNativeId("b24/chat1", id);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_TRUE(*found) << id;
  }
  // Another id, a prefix of one, or the same id in another target: no.
  for (auto [target, id] : std::vector<std::pair<std::string, std::string>>{
           {"b24/chat1", "13"}, {"b24/chat1", "1"}, {"b24/chat2", "10"}}) {
    auto found = journal->HasNativeId(target, id);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_FALSE(*found) << target << " " << id;
  }
}

TEST_F(DeliveryJournalTest, PrunesByAgeAndByCount) {
  DeliveryJournal::Options options;
  options.retention = absl::Hours(1);
  options.max_deliveries = 3;
  auto journal = OpenJournal(options);
  ASSERT_NE(journal, nullptr);
  for (int i = 0; i < 5; ++i) {
    std::string key = absl::StrCat("k", i);
    ASSERT_TRUE(journal->Run(key, "t", {Call({key})}, nullptr).ok());
    // Distinct completion times (milliseconds) make "oldest" well defined.
    absl::SleepFor(absl::Milliseconds(3));
  }
  ASSERT_TRUE(journal->RecordIntent("open", "t", 0).ok());
  // Count bound: the two oldest completed go; the open one stays.
  auto pruned = journal->Prune(absl::Now());
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 2u);
  EXPECT_THAT(journal->Find("k0")->steps, IsEmpty());
  EXPECT_THAT(journal->Find("k1")->steps, IsEmpty());
  EXPECT_TRUE(journal->Find("k4")->completed);
  EXPECT_EQ(journal->Find("open")->steps.size(), 1u);
  // Age: everything is older than the retention two hours from now.
  pruned = journal->Prune(absl::Now() + absl::Hours(2));
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(*pruned, 4u);
  EXPECT_THAT(journal->Find("open")->steps, IsEmpty());
  EXPECT_FALSE(journal->Find("k4")->completed);
}

// Runs `sql` on the SQLite file at `path`.
void RunSql(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
}

// A delivery's state values go when its record is pruned (by age or by
// count); plain state values stay.
TEST_F(DeliveryJournalTest, DeliveryStateIsPrunedWithItsDelivery) {
  DeliveryJournal::Options options;
  options.retention = absl::Hours(1);
  options.max_deliveries = 2;
  auto journal = OpenJournal(options);
  ASSERT_NE(journal, nullptr);
  for (int i = 0; i < 3; ++i) {
    std::string key = absl::StrCat("k", i);
    ASSERT_TRUE(journal->Run(key, "t", {Call({key})}, nullptr).ok());
    ASSERT_TRUE(
        journal->PutDeliveryState(key, absl::StrCat("parts/", i), "2").ok());
    absl::SleepFor(absl::Milliseconds(3));
  }
  ASSERT_TRUE(journal->PutState("offset", "7").ok());
  auto pruned = journal->Prune(absl::Now());
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 1u);
  EXPECT_FALSE(journal->GetState("parts/0")->has_value());
  EXPECT_EQ(journal->GetState("parts/1")->value_or(""), "2");
  EXPECT_EQ(journal->GetState("parts/2")->value_or(""), "2");
  pruned = journal->Prune(absl::Now() + absl::Hours(2));
  ASSERT_TRUE(pruned.ok());
  EXPECT_FALSE(journal->GetState("parts/1")->has_value());
  EXPECT_FALSE(journal->GetState("parts/2")->has_value());
  EXPECT_EQ(journal->GetState("offset")->value_or(""), "7");
  auto listed = journal->ListState("parts/");
  ASSERT_TRUE(listed.ok());
  EXPECT_THAT(*listed, IsEmpty());
}

// A journal of schema version 1 (no delivery state) opens with its state
// kept, and takes delivery state from then on.
TEST_F(DeliveryJournalTest, OpensAVersionOneJournal) {
  std::string path =
      (std::filesystem::path(dir_) / DeliveryJournal::kFileName).string();
  RunSql(path,
         "CREATE TABLE deliveries (key TEXT PRIMARY KEY, target TEXT NOT NULL, "
         "created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, completed "
         "INTEGER NOT NULL) WITHOUT ROWID;"
         "CREATE TABLE steps (key TEXT NOT NULL, step INTEGER NOT NULL, "
         "intent_at INTEGER NOT NULL, done INTEGER NOT NULL, failed INTEGER "
         "NOT NULL, native_ids TEXT NOT NULL, PRIMARY KEY (key, step)) WITHOUT "
         "ROWID;"
         "CREATE TABLE state (name TEXT PRIMARY KEY, value TEXT NOT NULL) "
         "WITHOUT ROWID;"
         "INSERT INTO state VALUES('offset', '41');"
         "PRAGMA user_version = 1;");
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(journal->GetState("offset")->value_or(""), "41");
  ASSERT_TRUE(journal->Run("k", "t", {Call({"a"})}, nullptr).ok());
  ASSERT_TRUE(journal->PutDeliveryState("k", "parts/a", "3").ok());
  EXPECT_EQ(journal->GetState("parts/a")->value_or(""), "3");
  auto pruned = journal->Prune(absl::Now() + absl::Hours(24 * 8));
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_FALSE(journal->GetState("parts/a")->has_value());
  EXPECT_EQ(journal->GetState("offset")->value_or(""), "41");
}

TEST_F(DeliveryJournalTest, CorruptFileIsAClearError) {
  std::string path =
      (std::filesystem::path(dir_) / DeliveryJournal::kFileName).string();
  {
    std::ofstream out(path);
    out << std::string(8192, 'x');
  }
  auto journal = DeliveryJournal::OpenInStateDir(dir_);
  ASSERT_FALSE(journal.ok());
  EXPECT_EQ(journal.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(journal.status().message(), HasSubstr(path));
  EXPECT_THAT(journal.status().message(), HasSubstr("move the file away"));
  // Nothing changed: the file is as it was.
  EXPECT_EQ(std::filesystem::file_size(path), 8192u);
}

TEST_F(DeliveryJournalTest, RefusesOtherDatabasesAndNewerJournals) {
  std::string path =
      (std::filesystem::path(dir_) / DeliveryJournal::kFileName).string();
  RunSql(path, "CREATE TABLE notes(text TEXT)");
  auto other = DeliveryJournal::OpenInStateDir(dir_);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(other.status().message(), HasSubstr("not a delivery journal"));
  std::filesystem::remove(path);

  ASSERT_NE(OpenJournal(), nullptr);
  RunSql(path, "PRAGMA user_version = 99");
  auto newer = DeliveryJournal::OpenInStateDir(dir_);
  EXPECT_EQ(newer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(newer.status().message(), HasSubstr("newer imbridge"));
}

TEST_F(DeliveryJournalTest, InMemoryWithoutStateDir) {
  auto journal = DeliveryJournal::OpenInStateDir("");
  ASSERT_TRUE(journal.ok());
  EXPECT_EQ((*journal)->path(), "");
  ASSERT_TRUE((*journal)->Run("k", "t", {Call({"a"})}, nullptr).ok());
  EXPECT_TRUE((*journal)->Find("k")->completed);
  EXPECT_THAT(calls_, ElementsAre("a"));
}

TEST_F(DeliveryJournalTest, EmptyKeyRunsWithoutJournaling) {
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  ASSERT_TRUE(journal->Run("", "t", {Call({"a"}), Call({"b"})}, nullptr).ok());
  ASSERT_TRUE(journal->Run("", "t", {Call({"a"}), Call({"b"})}, nullptr).ok());
  EXPECT_THAT(calls_, ElementsAre("a", "b", "a", "b"));
}

}  // namespace
}  // namespace imbridge::adapters
