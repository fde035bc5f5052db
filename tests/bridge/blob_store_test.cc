// Blob files and their rows shared by two routers on one PostgreSQL
// database and one blob directory (store.postgres.blob_dir): one router's
// collection never removes a file the other just stored. Each "router" is
// a PostgresStore and a BlobStore of its own, as in two processes.

#include "bridge/blob_store.h"

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bridge/postgres_store.h"
#include "bridge/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"

namespace imbridge::bridge {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kContent[] = "the same attachment, uploaded twice";
constexpr uint64_t kMaxBytes = 1 << 20;

// One router: its own connections to the shared database, and its own
// BlobStore on the shared directory.
struct Router {
  std::unique_ptr<Store> store;
  std::unique_ptr<BlobStore> blobs;
};

class SharedBlobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::TestDatabase> database = testing::NewTestDatabase();
    ASSERT_TRUE(database.ok()) << database.status();
    server_ = database->server;
    database_ = database->name;
    std::string tmpl = ::testing::TempDir() + "/shared-blobs-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    for (Router* r : {&a_, &b_}) {
      PostgresStoreOptions options;
      options.dsn = server_->Dsn(database_);
      options.password = server_->password();
      options.pool_size = 1;
      auto store = OpenPostgresStore(options);
      ASSERT_TRUE(store.ok()) << store.status();
      r->store = *std::move(store);
      r->blobs = std::make_unique<BlobStore>(dir_, kMaxBytes);
      ASSERT_TRUE(r->blobs->Init().ok());
    }
  }

  void TearDown() override {
    for (Router* r : {&a_, &b_}) {
      r->blobs.reset();
      r->store.reset();
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // `router` receives kContent and stores it as used at `at`, as PutBlob
  // does; returns its id.
  std::string Upload(Router& router, absl::Time at) {
    auto upload = router.blobs->StartUpload();
    EXPECT_TRUE(upload.ok()) << upload.status();
    EXPECT_TRUE((*upload)->Append(kContent).ok());
    auto finished = (*upload)->Finish();
    EXPECT_TRUE(finished.ok()) << finished.status();
    BlobInfo info{finished->first, finished->second, at, at};
    EXPECT_TRUE(router.store->Begin().ok());
    absl::Status stored = StoreUploadedBlob(*router.store, **upload, info);
    EXPECT_TRUE(stored.ok()) << stored;
    EXPECT_TRUE(router.store->Commit().ok());
    return finished->first;
  }

  // Whether `router` can read blob `id` whole.
  bool Readable(Router& router, const std::string& id) {
    auto reader = router.blobs->Open(id);
    if (!reader.ok()) return false;
    auto data = (*reader)->Read(kMaxBytes);
    return data.ok() && *data == kContent;
  }

  testing::PostgresServer* server_ = nullptr;
  std::string database_;
  std::string dir_;
  Router a_, b_;
};

// A listed the blob as collectable; B stored it again before A got to it:
// A's collection finds it used and keeps file and row.
TEST_F(SharedBlobsTest, CollectionKeepsABlobStoredAgainSinceItWasListed) {
  const absl::Time now = absl::Now();
  const std::string id = Upload(b_, now - absl::Hours(100));
  auto candidates = a_.store->ListCollectableBlobs(now - absl::Hours(72));
  ASSERT_TRUE(candidates.ok());
  ASSERT_THAT(*candidates, ElementsAre(id));

  Upload(b_, now);

  ASSERT_TRUE(a_.store->Begin().ok());
  auto removed =
      CollectBlobs(*a_.store, *a_.blobs, *candidates, now - absl::Hours(72));
  ASSERT_TRUE(removed.ok()) << removed.status();
  ASSERT_TRUE(a_.store->Commit().ok());
  EXPECT_EQ(*removed, 0);
  EXPECT_TRUE(Readable(a_, id));
  EXPECT_TRUE(Readable(b_, id));
  auto row = b_.store->FindBlob(id);
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->last_used_at,
            absl::FromUnixMillis(absl::ToUnixMillis(now)));
}

// A's collection has deleted the blob's row (not committed yet) when B
// stores the same blob: B's store waits for A's commit and places its file
// after A removed the old one, so the blob is there, file and row, once
// both committed. (With the file placed before its row, A's removal took
// B's new file.)
TEST_F(SharedBlobsTest, StoreDuringACollectionWaitsAndKeepsTheFile) {
  const absl::Time now = absl::Now();
  const std::string id = Upload(b_, now - absl::Hours(100));

  ASSERT_TRUE(a_.store->Begin().ok());
  auto deleted = a_.store->DeleteBlob(id, now - absl::Hours(72));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  ASSERT_TRUE(*deleted);

  std::thread store_again([&] { Upload(b_, now); });
  // B waits on the row A deleted.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  bool waiting = false;
  while (!waiting && absl::Now() < deadline) {
    auto waiters = server_->Query(
        database_,
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database()");
    waiting = waiters.ok() && *waiters == "1";
    if (!waiting) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(waiting) << "B's store did not wait for A's collection";
  // A removes the file it collected and commits.
  ASSERT_TRUE(a_.blobs->Remove(id).ok());
  ASSERT_TRUE(a_.store->Commit().ok());
  store_again.join();

  EXPECT_TRUE(Readable(a_, id));
  auto row = a_.store->FindBlob(id);
  ASSERT_TRUE(row.ok() && row->has_value());
  auto candidates = a_.store->ListCollectableBlobs(now - absl::Hours(72));
  ASSERT_TRUE(candidates.ok());
  EXPECT_THAT(*candidates, IsEmpty());
}

// Leftovers of interrupted uploads are removed only once abandoned: the
// directory is shared, and another router's upload may be in progress.
TEST_F(SharedBlobsTest, InitKeepsUploadsInProgress) {
  auto upload = b_.blobs->StartUpload();
  ASSERT_TRUE(upload.ok());
  ASSERT_TRUE((*upload)->Append(kContent).ok());
  BlobStore restarted(dir_, kMaxBytes);
  ASSERT_TRUE(restarted.Init().ok());
  ASSERT_TRUE((*upload)->Append(kContent).ok());
  auto finished = (*upload)->Finish();
  ASSERT_TRUE(finished.ok()) << finished.status();
  ASSERT_TRUE((*upload)->Place().ok());
  EXPECT_EQ(finished->second, 2 * (sizeof(kContent) - 1));
  EXPECT_EQ(restarted.RemoveAbandonedUploads(), 0);
}

}  // namespace
}  // namespace imbridge::bridge
