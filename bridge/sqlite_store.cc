// The SQLite implementation of Store.
//
// Schema (kMigrations holds the authoritative text). Version 1:
//   meta(key, value)                 router_id, last_event_id,
//                                    last_delivery_id (bounds of the ids
//                                    handed out, raised a block at a time)
//   events(id, event_key, received_at, payload)
//                                    the event log; payload is the serialized
//                                    v1::Event; unique on event_key
//   event_blobs(event_id, blob_id)   blobs an event refers to
//   deliveries(id, event_id, target_key, target, link, sender_name, attempts,
//              created_at, next_attempt_at, last_error, state, dead_at)
//                                    the outbox; state 0 = pending, 1 = dead
//                                    letter; finished deliveries are deleted
//   messages(channel_key, native_id, group_id, part, is_copy, created_at)
//                                    the message map, clustered by its unique
//                                    key (rows are small; saves an index)
//   roster(platform, account, user_id, ...)
//   blobs(blob_id, size, created_at, last_used_at)
// Version 2 adds:
//   records(kind, name, payload)     operator-made state (runtime links,
//                                    webhooks) as serialized protos
//   participants(channel_key, user_id, platform, display_name, last_seen_at)
//                                    who has spoken in which channel
// Version 3 adds:
//   dead_letters_by_target           a partial index of the dead letters by
//                                    target, so that the targets with dead
//                                    letters are found without reading them
// Version 4 adds:
//   dead_letters_by_id               a partial index of the dead letters by
//                                    id: pages of them (list, retry and drop
//                                    of all) never read pending deliveries
// Times are Unix milliseconds; InfinitePast/InfiniteFuture are stored as the
// smallest/largest int64.
//
// Event and delivery ids are integer primary keys allocated by the writer in
// insertion order, and never reused even when the newest rows are deleted:
// delivery ids are the outbox order and cursor (and adapters may remember
// them), and event ids name mirrored messages in the message map, which
// outlives the events. The highest ids handed out are kept in meta at each
// commit. This is AUTOINCREMENT without its per-row bookkeeping, which cost
// about 15% of insert throughput.
//
// Only the indexes a query needs exist. Pruning and blob collection, which
// run rarely, scan the outbox (pending and dead deliveries only) rather than
// keep an index on deliveries(event_id) up to date on every write.

#include "bridge/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "bridge/store.h"
#include "bridge/store_common.h"
#include "common/status_macros.h"
#include "imbridge/v1/config.pb.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge::bridge {
namespace {

constexpr int kBusyTimeoutMs = 5000;

// One step of the schema: the SQL that takes user_version from `version - 1`
// to `version`. Steps are applied in order and never edited once released;
// a schema change is a new step at the end.
struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value NOT NULL
) WITHOUT ROWID;

CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  event_key TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  payload BLOB NOT NULL
);
CREATE UNIQUE INDEX events_by_key ON events(event_key);
CREATE INDEX events_by_received_at ON events(received_at);

CREATE TABLE event_blobs (
  event_id INTEGER NOT NULL,
  blob_id TEXT NOT NULL,
  PRIMARY KEY (event_id, blob_id)
) WITHOUT ROWID;
CREATE INDEX event_blobs_by_blob ON event_blobs(blob_id);

CREATE TABLE deliveries (
  id INTEGER PRIMARY KEY,
  event_id INTEGER NOT NULL,
  target_key TEXT NOT NULL,
  target BLOB NOT NULL,
  link TEXT NOT NULL,
  sender_name TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  state INTEGER NOT NULL,
  dead_at INTEGER
);
CREATE INDEX deliveries_by_target ON deliveries(target_key, state);
CREATE INDEX dead_letters_by_time ON deliveries(dead_at) WHERE state = 1;

CREATE TABLE messages (
  channel_key TEXT NOT NULL,
  native_id TEXT NOT NULL,
  group_id INTEGER NOT NULL,
  part INTEGER NOT NULL,
  is_copy INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (channel_key, native_id)
) WITHOUT ROWID;
CREATE INDEX messages_by_group ON messages(group_id, channel_key, part);

CREATE TABLE roster (
  platform TEXT NOT NULL,
  account TEXT NOT NULL,
  user_id TEXT NOT NULL,
  display_name TEXT NOT NULL,
  presence INTEGER NOT NULL,
  status_text TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (platform, account, user_id)
) WITHOUT ROWID;

CREATE TABLE blobs (
  blob_id TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER NOT NULL
) WITHOUT ROWID;
)sql"},
    {2, R"sql(
CREATE TABLE records (
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  payload BLOB NOT NULL,
  PRIMARY KEY (kind, name)
) WITHOUT ROWID;

CREATE TABLE participants (
  channel_key TEXT NOT NULL,
  user_id TEXT NOT NULL,
  platform TEXT NOT NULL,
  display_name TEXT NOT NULL,
  last_seen_at INTEGER NOT NULL,
  PRIMARY KEY (channel_key, user_id)
) WITHOUT ROWID;
)sql"},
    {3, R"sql(
CREATE INDEX dead_letters_by_target ON deliveries(target_key) WHERE state = 1;
)sql"},
    {4, R"sql(
CREATE INDEX dead_letters_by_id ON deliveries(id) WHERE state = 1;
)sql"},
};

constexpr int kSchemaVersion =
    kMigrations[sizeof(kMigrations) / sizeof(kMigrations[0]) - 1].version;

// Resource and I/O trouble (disk full, locked, I/O error) may pass and is
// kUnavailable; everything else is kInternal.
absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  return absl::Status(
      CodeFor(rc),
      absl::StrCat("sqlite: ", what, ": ",
                   db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
                   " (code ", rc, ")"));
}

struct DbCloser {
  // close_v2 defers the close until every statement is finalized, so the
  // order in which owners are destroyed does not matter.
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

// A statement compiled once and reused for the life of its connection.
class Statement {
 public:
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  absl::Status Prepare(sqlite3* db, const char* sql) {
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_,
                                nullptr);
    if (rc != SQLITE_OK) {
      return SqliteError(db, rc, absl::StrCat("preparing \"", sql, "\""));
    }
    return absl::OkStatus();
  }

  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// One execution of a Statement: binds parameters in order, steps, reads
// columns, and resets the statement (ending its implicit read transaction)
// when it goes out of scope. Text and blobs are bound without copying, so
// they must outlive the Query.
class Query {
 public:
  explicit Query(const Statement& statement)
      : stmt_(statement.get()), db_(sqlite3_db_handle(stmt_)) {}
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  Query& Int(int64_t value) {
    return Check(sqlite3_bind_int64(stmt_, ++param_, value));
  }
  Query& Time(absl::Time value) { return Int(ToStoreMillis(value)); }
  Query& Text(absl::string_view value) {
    // A null pointer would bind SQL NULL; an empty view must bind "".
    return Check(sqlite3_bind_text64(stmt_, ++param_,
                                     value.data() ? value.data() : "",
                                     value.size(), SQLITE_STATIC, SQLITE_UTF8));
  }
  Query& Blob(absl::string_view value) {
    return Check(sqlite3_bind_blob64(stmt_, ++param_,
                                     value.data() ? value.data() : "",
                                     value.size(), SQLITE_STATIC));
  }

  // Advances to the next row: true if there is one, false when done.
  absl::StatusOr<bool> Step() {
    if (!bind_status_.ok()) return bind_status_;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, sqlite3_sql(stmt_));
  }

  // Runs a statement that returns no rows.
  absl::Status Run() {
    IMB_ASSIGN_OR_RETURN(bool row, Step());
    if (row) {
      return absl::InternalError(
          absl::StrCat("sqlite: unexpected row from ", sqlite3_sql(stmt_)));
    }
    return absl::OkStatus();
  }

  int64_t ColumnInt(int i) const { return sqlite3_column_int64(stmt_, i); }
  absl::Time ColumnTime(int i) const { return FromStoreMillis(ColumnInt(i)); }
  bool ColumnIsNull(int i) const {
    return sqlite3_column_type(stmt_, i) == SQLITE_NULL;
  }
  std::string ColumnText(int i) const {
    const unsigned char* text = sqlite3_column_text(stmt_, i);
    if (text == nullptr) return "";
    return std::string(reinterpret_cast<const char*>(text),
                       sqlite3_column_bytes(stmt_, i));
  }
  absl::string_view ColumnBlob(int i) const {
    const void* data = sqlite3_column_blob(stmt_, i);
    if (data == nullptr) return absl::string_view();
    return absl::string_view(static_cast<const char*>(data),
                             sqlite3_column_bytes(stmt_, i));
  }

  // Rows changed by the last Run() on this connection.
  int64_t Changes() const { return sqlite3_changes64(db_); }

 private:
  Query& Check(int rc) {
    if (rc != SQLITE_OK && bind_status_.ok()) {
      bind_status_ = SqliteError(db_, rc,
                                 absl::StrCat("binding parameter ", param_,
                                              " of ", sqlite3_sql(stmt_)));
    }
    return *this;
  }

  sqlite3_stmt* stmt_;
  sqlite3* db_;
  int param_ = 0;
  absl::Status bind_status_;
};

absl::Status Exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return absl::OkStatus();
  absl::Status status(
      CodeFor(rc),
      absl::StrCat(
          "sqlite: ", absl::StripLeadingAsciiWhitespace(sql).substr(0, 60),
          ": ", error != nullptr ? error : sqlite3_errstr(rc), " (code ", rc,
          ")"));
  sqlite3_free(error);
  return status;
}

// Runs a one-off query (a pragma, a lookup at open) and returns its first
// row's first column, read by `column`.
template <typename T>
absl::StatusOr<T> QueryOne(sqlite3* db, const char* sql,
                           T (Query::*column)(int) const) {
  Statement statement;
  IMB_RETURN_IF_ERROR(statement.Prepare(db, sql));
  Query query(statement);
  IMB_ASSIGN_OR_RETURN(bool row, query.Step());
  if (!row) {
    return absl::InternalError(absl::StrCat("sqlite: no result: ", sql));
  }
  return (query.*column)(0);
}

absl::StatusOr<std::string> QueryText(sqlite3* db, const char* sql) {
  return QueryOne<std::string>(db, sql, &Query::ColumnText);
}

absl::StatusOr<int64_t> QueryInt(sqlite3* db, const char* sql) {
  return QueryOne<int64_t>(db, sql, &Query::ColumnInt);
}

absl::StatusOr<DbPtr> OpenConnection(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    return SqliteError(db.get(), rc, absl::StrCat("opening ", path));
  }
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  return db;
}

absl::Status NewerSchemaError(int64_t version) {
  return absl::FailedPreconditionError(
      absl::StrCat("made by a newer imbridge: schema version ", version,
                   ", this build knows ", kSchemaVersion));
}

// Brings the schema to kSchemaVersion in one transaction and makes sure the
// meta row `router_id` exists. Refuses a schema newer than this build.
absl::Status Migrate(sqlite3* db) {
  IMB_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  absl::Status status = [&]() -> absl::Status {
    IMB_ASSIGN_OR_RETURN(int64_t version, QueryInt(db, "PRAGMA user_version"));
    if (version > kSchemaVersion) {
      return NewerSchemaError(version);
    }
    for (const Migration& migration : kMigrations) {
      if (migration.version <= version) continue;
      absl::Status step = Exec(db, migration.sql);
      if (!step.ok()) {
        return absl::Status(
            step.code(), absl::StrCat("migrating to schema version ",
                                      migration.version, ": ", step.message()));
      }
    }
    if (version != kSchemaVersion) {
      IMB_RETURN_IF_ERROR(Exec(
          db, absl::StrCat("PRAGMA user_version = ", kSchemaVersion).c_str()));
    }
    Statement insert_id;
    IMB_RETURN_IF_ERROR(
        insert_id.Prepare(db,
                          "INSERT INTO meta(key, value) VALUES('router_id', ?) "
                          "ON CONFLICT(key) DO NOTHING"));
    std::string router_id = NewStoreRouterId();
    return Query(insert_id).Text(router_id).Run();
  }();
  if (!status.ok()) {
    Exec(db, "ROLLBACK").IgnoreError();
    return status;
  }
  return Exec(db, "COMMIT");
}

// Store on SQLite in WAL mode with one writer connection and a pool of read
// connections.
//
// The writer connection belongs to the writer thread (the Store contract
// guarantees a single caller), so it takes no lock. A read method borrows a
// read connection from `readers_` for its duration; reads see committed data
// only.
//
// The WAL is copied into the database file by PASSIVE checkpoints on a
// thread of its own. Under a steady stream of commits those never catch up
// with the writer, and SQLite starts the WAL over only at a transaction that
// finds it wholly copied. So once the WAL passes `wal_restart_bytes` (the
// writer's commit says so through SQLite's WAL hook, which wakes the
// checkpointer) the checkpointer copies all but the last few frames and
// flushes the database file, then holds the writer between two
// transactions (`write_gate_`) while it copies the rest and waits for the
// readers of older snapshots to finish (a RESTART checkpoint). The writer's
// next transaction writes the WAL from its start again, over blocks the file
// already has, and truncates it to `wal_restart_bytes`.
class SqliteStore : public Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(
      const std::string& data_dir, v1::Durability durability,
      int read_connections, int64_t wal_restart_bytes);
  ~SqliteStore() override;

  absl::Status Apply(CommitBatch& batch) override;
  absl::Status Sync() override;

  absl::Status Begin() override;
  absl::Status Commit() override;
  void Rollback() override;

  absl::Status RetryDeadLetter(int64_t id, absl::Time now) override;
  absl::Status DropDeadLetter(int64_t id) override;
  absl::Status RecordBlob(const BlobInfo& blob) override;
  absl::StatusOr<bool> DeleteBlob(absl::string_view blob_id,
                                  absl::Time unused_before) override;
  absl::StatusOr<int64_t> PruneEvents(absl::Time before) override;
  absl::Status PutRecord(absl::string_view kind, absl::string_view name,
                         absl::string_view payload) override;
  absl::Status DeleteRecord(absl::string_view kind,
                            absl::string_view name) override;

  std::string router_id() const override { return router_id_; }
  absl::StatusOr<std::vector<std::string>> ListPendingTargets() override;
  absl::StatusOr<std::vector<DeliveryRecord>> LoadPendingDeliveries(
      absl::string_view target_key, int64_t after_id, int limit) override;
  absl::StatusOr<std::vector<DeliveryRecord>> ListDeadLetters(
      int64_t before_id, int limit) override;
  absl::StatusOr<int64_t> CountDeadLetters() override;
  absl::StatusOr<std::vector<DeadLetterRef>> ListDeadLetterRefs(
      int64_t after_id, int limit) override;
  absl::StatusOr<std::optional<DeadLetterRef>> FindDeadLetter(
      int64_t id) override;
  absl::StatusOr<std::vector<std::pair<std::string, v1::ChannelRef>>>
  ListDeadLetterTargets() override;
  absl::StatusOr<TargetCounts> CountDeliveries(
      absl::string_view target_key) override;
  absl::StatusOr<std::optional<MessageLocation>> FindMessage(
      absl::string_view channel_key, absl::string_view native_id) override;
  absl::StatusOr<std::vector<std::optional<MessageLocation>>> FindMessages(
      absl::Span<const std::pair<std::string, std::string>> messages) override;
  absl::StatusOr<std::vector<std::string>> FindMessagesInChannel(
      int64_t group_id, absl::string_view channel_key) override;
  absl::StatusOr<std::vector<RosterEntry>> ListRoster(
      absl::string_view platform) override;
  absl::StatusOr<std::optional<BlobInfo>> FindBlob(
      absl::string_view blob_id) override;
  absl::StatusOr<std::vector<std::string>> ListCollectableBlobs(
      absl::Time before) override;
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ListRecords(
      absl::string_view kind) override;
  absl::StatusOr<std::vector<Participant>> ListParticipants(
      absl::string_view channel_key) override;

 private:
  // The writer connection's statements.
  struct Writer {
    DbPtr db;
    Statement begin, commit, rollback;
    Statement insert_event, add_event_blob, touch_blob;
    Statement insert_delivery, complete_delivery, reschedule_delivery;
    Statement save_last_id;
    Statement dead_letter, retry_dead_letter, drop_dead_letter;
    Statement add_message, upsert_roster, record_blob, delete_blob;
    Statement prune_event_blobs, prune_events;
    Statement put_record, delete_record, touch_participant, move_queue;
  };
  // A read connection's statements.
  struct Reader {
    DbPtr db;
    Statement pending_targets, load_pending, dead_letters;
    Statement count_pending, head_of_queue, count_dead;
    Statement count_dead_letters, dead_letter_refs, find_dead_letter,
        dead_letter_targets;
    Statement find_message, messages_in_channel, roster_all, roster_of_platform;
    Statement find_blob, collectable_blobs;
    Statement list_records, list_participants;
  };

  // The read connections.
  using ReaderPool = ConnectionPool<Reader>;

  SqliteStore() = default;

  absl::Status Init(const std::string& path, v1::Durability durability,
                    int read_connections, int64_t wal_restart_bytes);
  absl::Status PrepareWriter();
  static absl::Status PrepareReader(Reader& r);
  absl::Status RequireTransaction() const;
  // Apply's statements, inside its transaction.
  absl::Status WriteBatch(CommitBatch& batch);
  absl::Status WriteEvent(NewEvent& entry, absl::Time now);
  absl::Status WriteMessages(const MessageRows& rows, absl::Time now);
  // Reads a row selected with IMB_DELIVERY_COLUMNS.
  static absl::StatusOr<DeliveryRecord> ReadDelivery(const Query& query);

  // Copies the WAL into the database file in the background (PASSIVE
  // checkpoints never block the writer), so that commits do not pay for it.
  void RunCheckpoints();
  // The checkpoint connection's busy handler: RestartWal's RESTART waits
  // for readers of older snapshots by polling every kReaderPoll µs, for
  // kReaderWait µs at most. (SQLite's busy timeout sleeps 1, 2, 5, 10 ms...
  // between tries, so a read of a tenth of a millisecond held the writer
  // for a millisecond or more.)
  static constexpr int64_t kReaderPoll = 100;
  static constexpr int64_t kReaderWait = 100'000;
  static int WaitForReaders(void* unused, int tries);
  // One checkpoint (PASSIVE unless `mode` says otherwise): the frames left
  // to copy after it; `wal_frames`, if set, gets the WAL's length in frames.
  int Checkpoint(int mode = SQLITE_CHECKPOINT_PASSIVE,
                 int* wal_frames = nullptr);
  // SQLite's WAL hook of the writer connection, after each commit.
  static int OnWalCommit(void* store, sqlite3* db, const char* name,
                         int wal_frames);
  // Makes the writer's next transaction start the WAL over (see the class
  // comment).
  void RestartWal();
  // The writer's transaction holds `write_gate_` from Begin to its end.
  void HoldGate() ABSL_NO_THREAD_SAFETY_ANALYSIS;
  void ReleaseGate() ABSL_NO_THREAD_SAFETY_ANALYSIS;

  Writer w_;
  // The WAL file, for Sync(): with durability FULL commits are written to
  // it without an fsync (synchronous = NORMAL) and Sync() makes them
  // durable. -1 with durability NORMAL.
  int wal_fd_ = -1;
  // The database file, for RestartWal's sync before it holds the writer.
  int db_fd_ = -1;
  DbPtr checkpoint_db_;
  int64_t wal_restart_bytes_ = 0;
  int64_t page_size_ = 4096;
  // Held by the writer during a transaction, by the checkpointer while it
  // copies the WAL's last frames before a restart.
  absl::Mutex write_gate_;
  // Writer thread: whether it holds write_gate_.
  bool gate_held_ = false;
  absl::Mutex checkpoint_mu_;
  bool stop_checkpoints_ ABSL_GUARDED_BY(checkpoint_mu_) = false;
  // The WAL passed wal_restart_bytes_ at a commit.
  bool restart_wanted_ ABSL_GUARDED_BY(checkpoint_mu_) = false;
  std::thread checkpointer_;
  ReaderPool readers_;
  std::string router_id_;
  // Writer thread: whether Begin succeeded and neither Commit nor Rollback
  // has ended the transaction since (SQLite may have ended it on an error);
  // the highest ids handed out, the bounds meta holds for them (see
  // Commit), and their values when it began.
  bool in_transaction_ = false;
  int64_t last_event_id_ = 0;
  int64_t last_delivery_id_ = 0;
  int64_t reserved_event_id_ = 0;
  int64_t reserved_delivery_id_ = 0;
  int64_t begin_event_id_ = 0;
  int64_t begin_delivery_id_ = 0;
  int64_t begin_reserved_event_id_ = 0;
  int64_t begin_reserved_delivery_id_ = 0;
  // Writer thread: serialization buffers reused across calls.
  std::string payload_;
  std::string target_;
};

// The columns ReadDelivery expects, from deliveries d joined with events e
// (IMB_EVENT_JOIN).
#define IMB_DELIVERY_COLUMNS                                          \
  "d.id, d.event_id, d.target_key, d.target, d.link, d.sender_name, " \
  "d.attempts, d.created_at, d.next_attempt_at, d.last_error, e.payload "
#define IMB_EVENT_JOIN "LEFT JOIN events e ON e.id = d.event_id "

absl::StatusOr<std::unique_ptr<Store>> SqliteStore::Open(
    const std::string& data_dir, v1::Durability durability,
    int read_connections, int64_t wal_restart_bytes) {
  if (data_dir.empty()) {
    return absl::InvalidArgumentError("store: data_dir is empty");
  }
  if (read_connections < 1 || read_connections > kMaxReadConnections) {
    return absl::InvalidArgumentError(
        absl::StrCat("store: read_connections is ", read_connections,
                     "; it must be 1 to ", kMaxReadConnections));
  }
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "store: cannot create data directory ", data_dir, ": ", ec.message()));
  }
  if (access(data_dir.c_str(), W_OK | X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("store: data directory ", data_dir, " is not writable"));
  }
  std::string path = (std::filesystem::path(data_dir) / "imbridge.db").string();
  auto store = std::unique_ptr<SqliteStore>(new SqliteStore());
  absl::Status status =
      store->Init(path, durability, read_connections, wal_restart_bytes);
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("store ", path, ": ", status.message()));
  }
  return store;
}

absl::Status SqliteStore::Init(const std::string& path,
                               v1::Durability durability, int read_connections,
                               int64_t wal_restart_bytes) {
  wal_restart_bytes_ = wal_restart_bytes;
  IMB_ASSIGN_OR_RETURN(
      w_.db, OpenConnection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  sqlite3* db = w_.db.get();
  // Refuse a newer database before changing anything in it.
  IMB_ASSIGN_OR_RETURN(int64_t version, QueryInt(db, "PRAGMA user_version"));
  if (version > kSchemaVersion) return NewerSchemaError(version);
  IMB_ASSIGN_OR_RETURN(std::string mode,
                       QueryText(db, "PRAGMA journal_mode = WAL"));
  if (mode != "wal") {
    return absl::UnavailableError(
        absl::StrCat("cannot switch to WAL mode (journal_mode is ", mode, ")"));
  }
  // Commits never wait for the disk: with durability FULL, Sync() makes
  // them durable on another thread. (In WAL mode NORMAL writes each commit
  // to the WAL file at once and fsyncs only at checkpoints.)
  IMB_RETURN_IF_ERROR(Exec(db, "PRAGMA synchronous = NORMAL"));
  // A bigger page cache for group commits; keep the WAL file from staying
  // large after a burst (and after each restart, RestartWal).
  IMB_RETURN_IF_ERROR(Exec(
      db,
      absl::StrCat("PRAGMA cache_size = -4096; PRAGMA journal_size_limit = ",
                   wal_restart_bytes_, "; PRAGMA temp_store = MEMORY")
          .c_str()));
  IMB_ASSIGN_OR_RETURN(page_size_, QueryInt(db, "PRAGMA page_size"));
  IMB_RETURN_IF_ERROR(Migrate(db));
  IMB_RETURN_IF_ERROR(PrepareWriter());
  IMB_ASSIGN_OR_RETURN(
      router_id_,
      QueryText(db, "SELECT value FROM meta WHERE key = 'router_id'"));
  IMB_ASSIGN_OR_RETURN(
      last_event_id_,
      QueryInt(db,
               "SELECT max(coalesce((SELECT max(id) FROM events), 0), "
               "coalesce((SELECT value FROM meta WHERE key = 'last_event_id'), "
               "0))"));
  IMB_ASSIGN_OR_RETURN(
      last_delivery_id_,
      QueryInt(db,
               "SELECT max(coalesce((SELECT max(id) FROM deliveries), 0), "
               "coalesce((SELECT value FROM meta "
               "WHERE key = 'last_delivery_id'), 0))"));
  reserved_event_id_ = last_event_id_;
  reserved_delivery_id_ = last_delivery_id_;

  if (durability != v1::NORMAL) {
    // The WAL exists now (Migrate wrote to it) and stays while the writer
    // has the database open. Its directory entry is made durable once.
    std::string wal = path + "-wal";
    wal_fd_ = open(wal.c_str(), O_RDONLY | O_CLOEXEC);
    if (wal_fd_ < 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot open ", wal, ": ", strerror(errno)));
    }
    int dir_fd = open(std::filesystem::path(path).parent_path().c_str(),
                      O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
      fsync(dir_fd);
      close(dir_fd);
    }
  }

  // The writer never checkpoints; RunCheckpoints does, on its own thread.
  IMB_RETURN_IF_ERROR(Exec(db, "PRAGMA wal_autocheckpoint = 0"));
  sqlite3_wal_hook(db, &SqliteStore::OnWalCommit, this);
  IMB_ASSIGN_OR_RETURN(checkpoint_db_,
                       OpenConnection(path, SQLITE_OPEN_READWRITE));
  IMB_RETURN_IF_ERROR(
      Exec(checkpoint_db_.get(), durability == v1::NORMAL
                                     ? "PRAGMA synchronous = NORMAL"
                                     : "PRAGMA synchronous = FULL"));
  // Only RestartWal's RESTART checkpoint waits on this connection, for the
  // readers of older snapshots, while it holds the writer: a long read
  // makes it give up (the next restart tries again) rather than hold the
  // writer for seconds.
  sqlite3_busy_handler(checkpoint_db_.get(), &SqliteStore::WaitForReaders,
                       nullptr);
  db_fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (db_fd_ < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  }
  checkpointer_ = std::thread([this] { RunCheckpoints(); });

  for (int i = 0; i < read_connections; ++i) {
    auto reader = std::make_unique<Reader>();
    IMB_ASSIGN_OR_RETURN(reader->db,
                         OpenConnection(path, SQLITE_OPEN_READONLY));
    IMB_RETURN_IF_ERROR(PrepareReader(*reader));
    readers_.Add(std::move(reader));
  }
  return absl::OkStatus();
}

SqliteStore::~SqliteStore() {
  {
    absl::MutexLock lock(&checkpoint_mu_);
    stop_checkpoints_ = true;
  }
  if (checkpointer_.joinable()) checkpointer_.join();
  if (wal_fd_ >= 0) close(wal_fd_);
  if (db_fd_ >= 0) close(db_fd_);
}

absl::Status SqliteStore::Sync() {
  if (wal_fd_ < 0) return absl::OkStatus();
  // fdatasync flushes the file's data written through any descriptor,
  // here the writer's commits.
  if (fdatasync(wal_fd_) != 0) {
    return absl::UnavailableError(
        absl::StrCat("store: syncing the WAL: ", strerror(errno)));
  }
  return absl::OkStatus();
}

void SqliteStore::RunCheckpoints() {
  // If a restart did not happen (a reader outlasted the checkpoint
  // connection's 100 ms busy timeout), the writer is not held again before
  // this much time has passed.
  constexpr absl::Duration kRestartSpacing = absl::Milliseconds(50);
  while (true) {
    int wal_frames = 0;
    Checkpoint(SQLITE_CHECKPOINT_PASSIVE, &wal_frames);
    const bool restart = wal_frames * page_size_ >= wal_restart_bytes_;
    if (restart) RestartWal();
    absl::MutexLock lock(&checkpoint_mu_);
    if (restart) {
      checkpoint_mu_.AwaitWithTimeout(absl::Condition(&stop_checkpoints_),
                                      kRestartSpacing);
    }
    restart_wanted_ = false;
    checkpoint_mu_.AwaitWithTimeout(
        absl::Condition(
            +[](SqliteStore* s)
                 ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->checkpoint_mu_) {
                   return s->stop_checkpoints_ || s->restart_wanted_;
                 },
            this),
        absl::Milliseconds(200));
    if (stop_checkpoints_) return;
  }
}

int SqliteStore::OnWalCommit(void* store, sqlite3* /*db*/, const char* /*name*/,
                             int wal_frames) {
  auto* self = static_cast<SqliteStore*>(store);
  if (wal_frames * self->page_size_ >= self->wal_restart_bytes_) {
    absl::MutexLock lock(&self->checkpoint_mu_);
    self->restart_wanted_ = true;
  }
  return SQLITE_OK;
}

int SqliteStore::WaitForReaders(void* /*unused*/, int tries) {
  if (static_cast<int64_t>(tries) * kReaderPoll >= kReaderWait) return 0;
  absl::SleepFor(absl::Microseconds(kReaderPoll));
  return 1;
}

int SqliteStore::Checkpoint(int mode, int* wal_frames) {
  int frames = 0;
  int checkpointed = 0;
  int rc = sqlite3_wal_checkpoint_v2(checkpoint_db_.get(), nullptr, mode,
                                     &frames, &checkpointed);
  if (wal_frames != nullptr) *wal_frames = frames;
  return rc == SQLITE_OK ? frames - checkpointed : frames;
}

void SqliteStore::RestartWal() {
  // What the writer adds while a checkpoint copies is what the next one
  // copies; a few rounds leave only the frames of the last few commits.
  constexpr int kRounds = 8;
  constexpr int kHeldTailFrames = 128;
  for (int round = 0; round < kRounds; ++round) {
    if (Checkpoint() <= kHeldTailFrames) break;
  }
  // SQLite syncs the database file only at a checkpoint that copies the
  // whole WAL, which under a steady writer is this restart's, with the
  // writer held: every page the passive checkpoints copied since the last
  // restart (tens of MiB) was flushed then, 5 to 17 ms. Flushed here, the
  // held checkpoint flushes only the last round's pages. (A failure here
  // is that checkpoint's to report.)
  fdatasync(db_fd_);
  Checkpoint();
  // The writer waits at its next Begin (for the copy of a few frames and
  // the checkpoint's syncs). RESTART also waits (the connection's busy
  // handler) until no reader is left on a snapshot that needs the WAL, so
  // the writer's next transaction finds the WAL wholly copied and unused,
  // and starts it over.
  absl::MutexLock gate(&write_gate_);
  Checkpoint(SQLITE_CHECKPOINT_RESTART);
}

void SqliteStore::HoldGate() {
  write_gate_.Lock();
  gate_held_ = true;
}

void SqliteStore::ReleaseGate() {
  if (!gate_held_) return;
  gate_held_ = false;
  write_gate_.Unlock();
}

absl::Status SqliteStore::PrepareWriter() {
  sqlite3* db = w_.db.get();
  const std::pair<Statement*, const char*> statements[] = {
      {&w_.begin, "BEGIN IMMEDIATE"},
      {&w_.commit, "COMMIT"},
      {&w_.rollback, "ROLLBACK"},
      {&w_.insert_event,
       "INSERT INTO events(id, event_key, received_at, payload) "
       "VALUES(?, ?, ?, ?) "
       "ON CONFLICT(event_key) DO NOTHING"},
      {&w_.add_event_blob,
       "INSERT INTO event_blobs(event_id, blob_id) VALUES(?, ?) "
       "ON CONFLICT DO NOTHING"},
      {&w_.touch_blob,
       "UPDATE blobs SET last_used_at = max(last_used_at, ?) "
       "WHERE blob_id = ?"},
      {&w_.insert_delivery,
       "INSERT INTO deliveries(id, event_id, target_key, target, link, "
       "sender_name, attempts, created_at, next_attempt_at, last_error, state) "
       "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"},
      {&w_.save_last_id,
       "INSERT INTO meta(key, value) VALUES(?, ?) "
       "ON CONFLICT(key) DO UPDATE SET value = excluded.value"},
      {&w_.complete_delivery, "DELETE FROM deliveries WHERE id = ?"},
      {&w_.reschedule_delivery,
       "UPDATE deliveries SET attempts = ?, next_attempt_at = ?, "
       "last_error = ? WHERE id = ? AND state = 0"},
      {&w_.dead_letter,
       "UPDATE deliveries SET state = 1, last_error = ?, dead_at = ? "
       "WHERE id = ? AND state = 0"},
      {&w_.retry_dead_letter,
       "UPDATE deliveries SET state = 0, attempts = 0, created_at = ?, "
       "next_attempt_at = ?, last_error = '', dead_at = NULL "
       "WHERE id = ? AND state = 1"},
      {&w_.drop_dead_letter,
       "DELETE FROM deliveries WHERE id = ? AND state = 1"},
      {&w_.add_message,
       "INSERT INTO messages(channel_key, native_id, group_id, part, is_copy, "
       "created_at) VALUES(?, ?, ?, ?, ?, ?) "
       "ON CONFLICT(channel_key, native_id) DO NOTHING"},
      {&w_.upsert_roster,
       "INSERT OR REPLACE INTO roster(platform, account, user_id, "
       "display_name, presence, status_text, updated_at) "
       "VALUES(?, ?, ?, ?, ?, ?, ?)"},
      {&w_.record_blob,
       "INSERT INTO blobs(blob_id, size, created_at, last_used_at) "
       "VALUES(?, ?, ?, ?) ON CONFLICT(blob_id) DO UPDATE SET "
       "last_used_at = max(last_used_at, excluded.last_used_at)"},
      {&w_.delete_blob,
       "DELETE FROM blobs WHERE blob_id = ?1 AND last_used_at < ?2 AND "
       "?1 NOT IN (SELECT eb.blob_id FROM deliveries d JOIN event_blobs eb "
       "ON eb.event_id = d.event_id)"},
      {&w_.prune_event_blobs,
       "DELETE FROM event_blobs WHERE event_id IN (SELECT id FROM events "
       "WHERE received_at < ? AND id NOT IN (SELECT event_id FROM "
       "deliveries))"},
      {&w_.prune_events,
       "DELETE FROM events WHERE received_at < ? "
       "AND id NOT IN (SELECT event_id FROM deliveries)"},
      {&w_.move_queue,
       "UPDATE deliveries SET target_key = ?, target = ? "
       "WHERE target_key = ? AND state = 0"},
      {&w_.put_record,
       "INSERT OR REPLACE INTO records(kind, name, payload) VALUES(?, ?, ?)"},
      {&w_.delete_record, "DELETE FROM records WHERE kind = ? AND name = ?"},
      {&w_.touch_participant,
       "INSERT OR REPLACE INTO participants(channel_key, user_id, platform, "
       "display_name, last_seen_at) VALUES(?, ?, ?, ?, ?)"},
  };
  for (const auto& [statement, sql] : statements) {
    IMB_RETURN_IF_ERROR(statement->Prepare(db, sql));
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::PrepareReader(Reader& r) {
  sqlite3* db = r.db.get();
  const std::pair<Statement*, const char*> statements[] = {
      // Walks the distinct targets through the index instead of scanning
      // every pending row.
      {&r.pending_targets,
       "WITH RECURSIVE t(key) AS ("
       " SELECT (SELECT min(target_key) FROM deliveries WHERE state = 0)"
       " UNION ALL"
       " SELECT (SELECT min(target_key) FROM deliveries"
       "  WHERE state = 0 AND target_key > t.key)"
       " FROM t WHERE t.key IS NOT NULL)"
       " SELECT key FROM t WHERE key IS NOT NULL"},
      {&r.load_pending,
       "SELECT " IMB_DELIVERY_COLUMNS "FROM deliveries d " IMB_EVENT_JOIN
       "WHERE d.target_key = ? AND d.state = 0 AND d.id > ? "
       "ORDER BY d.id LIMIT ?"},
      // Pages of dead letters walk the partial index by id, so that pending
      // deliveries between them are never read.
      {&r.dead_letters,
       "SELECT " IMB_DELIVERY_COLUMNS
       "FROM deliveries d INDEXED BY dead_letters_by_id " IMB_EVENT_JOIN
       "WHERE d.state = 1 AND d.id < ? ORDER BY d.id DESC LIMIT ?"},
      // Counts through the partial index of dead letters.
      {&r.count_dead_letters,
       "SELECT count(*) FROM deliveries INDEXED BY dead_letters_by_time "
       "WHERE state = 1"},
      {&r.dead_letter_refs,
       "SELECT id, target_key FROM deliveries INDEXED BY dead_letters_by_id "
       "WHERE id > ? AND state = 1 ORDER BY id LIMIT ?"},
      {&r.find_dead_letter,
       "SELECT id, target_key FROM deliveries WHERE id = ? AND state = 1"},
      // Walks the distinct targets through the partial index of dead
      // letters; takes each one's channel from one of its rows.
      {&r.dead_letter_targets,
       "WITH RECURSIVE t(key) AS ("
       " SELECT (SELECT min(target_key) FROM deliveries"
       "  INDEXED BY dead_letters_by_target WHERE state = 1)"
       " UNION ALL"
       " SELECT (SELECT min(target_key) FROM deliveries"
       "  INDEXED BY dead_letters_by_target"
       "  WHERE state = 1 AND target_key > t.key)"
       " FROM t WHERE t.key IS NOT NULL)"
       " SELECT key, (SELECT target FROM deliveries"
       "  INDEXED BY dead_letters_by_target"
       "  WHERE state = 1 AND target_key = t.key LIMIT 1)"
       " FROM t WHERE key IS NOT NULL"},
      // Counts from the indexes alone; reading every pending row for
      // min(created_at) cost a chat command or a /metrics scrape tens of
      // milliseconds per target with a backlog.
      {&r.count_pending,
       "SELECT count(*) FROM deliveries WHERE target_key = ? AND state = 0"},
      {&r.head_of_queue,
       "SELECT created_at FROM deliveries WHERE target_key = ? AND state = 0 "
       "ORDER BY id LIMIT 1"},
      {&r.count_dead,
       "SELECT count(*) FROM deliveries INDEXED BY dead_letters_by_target "
       "WHERE target_key = ? AND state = 1"},
      {&r.find_message,
       "SELECT group_id, is_copy FROM messages "
       "WHERE channel_key = ? AND native_id = ?"},
      {&r.messages_in_channel,
       "SELECT native_id FROM messages WHERE group_id = ? AND channel_key = ? "
       "ORDER BY part"},
      {&r.roster_all,
       "SELECT platform, account, user_id, display_name, presence, "
       "status_text, updated_at FROM roster "
       "ORDER BY platform, account, user_id"},
      {&r.roster_of_platform,
       "SELECT platform, account, user_id, display_name, presence, "
       "status_text, updated_at FROM roster WHERE platform = ? "
       "ORDER BY platform, account, user_id"},
      {&r.find_blob,
       "SELECT blob_id, size, created_at, last_used_at FROM blobs "
       "WHERE blob_id = ?"},
      {&r.collectable_blobs,
       "SELECT blob_id FROM blobs WHERE last_used_at < ? AND blob_id NOT IN "
       "(SELECT eb.blob_id FROM deliveries d JOIN event_blobs eb "
       "ON eb.event_id = d.event_id) "
       "ORDER BY last_used_at, blob_id"},
      {&r.list_records,
       "SELECT name, payload FROM records WHERE kind = ? ORDER BY name"},
      {&r.list_participants,
       "SELECT user_id, platform, display_name, last_seen_at "
       "FROM participants WHERE channel_key = ? "
       "ORDER BY last_seen_at DESC, user_id"},
  };
  for (const auto& [statement, sql] : statements) {
    IMB_RETURN_IF_ERROR(statement->Prepare(db, sql));
  }
  return absl::OkStatus();
}

#undef IMB_DELIVERY_COLUMNS
#undef IMB_EVENT_JOIN

absl::Status SqliteStore::RequireTransaction() const {
  if (sqlite3_get_autocommit(w_.db.get())) {
    return absl::FailedPreconditionError(
        "store: write outside a transaction (call Begin first; a failed "
        "statement may have ended it)");
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::Begin() {
  HoldGate();
  absl::Status begun = Query(w_.begin).Run();
  if (!begun.ok()) {
    ReleaseGate();
    return begun;
  }
  in_transaction_ = true;
  begin_event_id_ = last_event_id_;
  begin_delivery_id_ = last_delivery_id_;
  begin_reserved_event_id_ = reserved_event_id_;
  begin_reserved_delivery_id_ = reserved_delivery_id_;
  return absl::OkStatus();
}

absl::Status SqliteStore::Commit() {
  // meta holds a bound of the ids handed out, raised kIdBlock at a time:
  // its page is written once per block, not in every commit (a commit of a
  // few events writes about 15 pages). The store opens above the bound, so
  // ids are never reused, even those of rows deleted since; a restart
  // skips what was left of the block.
  constexpr int64_t kIdBlock = 4096;
  absl::Status status = absl::OkStatus();
  if (last_event_id_ > reserved_event_id_) {
    reserved_event_id_ = last_event_id_ + kIdBlock;
    status = Query(w_.save_last_id)
                 .Text("last_event_id")
                 .Int(reserved_event_id_)
                 .Run();
  }
  if (status.ok() && last_delivery_id_ > reserved_delivery_id_) {
    reserved_delivery_id_ = last_delivery_id_ + kIdBlock;
    status = Query(w_.save_last_id)
                 .Text("last_delivery_id")
                 .Int(reserved_delivery_id_)
                 .Run();
  }
  if (status.ok()) status = Query(w_.commit).Run();
  if (status.ok()) {
    in_transaction_ = false;
    ReleaseGate();
    return status;
  }
  // A failed COMMIT may leave the transaction open; end it so that the
  // writer starts clean.
  Rollback();
  return status;
}

void SqliteStore::Rollback() {
  // The ids of rolled-back rows were never visible; hand them out again.
  if (in_transaction_) {
    last_event_id_ = begin_event_id_;
    last_delivery_id_ = begin_delivery_id_;
    reserved_event_id_ = begin_reserved_event_id_;
    reserved_delivery_id_ = begin_reserved_delivery_id_;
    in_transaction_ = false;
  }
  if (!sqlite3_get_autocommit(w_.db.get())) {
    Query(w_.rollback).Run().IgnoreError();
  }
  ReleaseGate();
}

absl::Status SqliteStore::Apply(CommitBatch& batch) {
  if (in_transaction_) {
    return absl::FailedPreconditionError(
        "store: Apply inside an operator transaction");
  }
  if (batch.empty()) return absl::OkStatus();
  IMB_RETURN_IF_ERROR(Begin());
  absl::Status status = WriteBatch(batch);
  if (status.ok()) {
    status = Commit();  // rolls back itself when it fails
  } else {
    Rollback();
  }
  if (!status.ok()) {
    // Nothing was written: no ids either.
    for (NewEvent& entry : batch.events) {
      entry.id = 0;
      for (DeliveryRecord& d : entry.deliveries) d.id = d.event_id = 0;
    }
  }
  return status;
}

absl::Status SqliteStore::WriteBatch(CommitBatch& batch) {
  const absl::Time now = batch.now;
  for (NewEvent& entry : batch.events) {
    IMB_RETURN_IF_ERROR(WriteEvent(entry, now));
  }
  for (const MessageRows& rows : batch.messages) {
    IMB_RETURN_IF_ERROR(WriteMessages(rows, now));
  }
  for (int64_t id : batch.completed) {
    IMB_RETURN_IF_ERROR(Query(w_.complete_delivery).Int(id).Run());
  }
  for (const DeliveryRetry& r : batch.retries) {
    IMB_RETURN_IF_ERROR(Query(w_.reschedule_delivery)
                            .Int(r.attempts)
                            .Time(r.next_attempt_at)
                            .Text(r.last_error)
                            .Int(r.id)
                            .Run());
  }
  for (const DeliveryDeadLetter& d : batch.dead_letters) {
    IMB_RETURN_IF_ERROR(
        Query(w_.dead_letter).Text(d.reason).Time(now).Int(d.id).Run());
  }
  for (const RosterEntry& entry : batch.roster) {
    IMB_RETURN_IF_ERROR(Query(w_.upsert_roster)
                            .Text(entry.platform)
                            .Text(entry.account)
                            .Text(entry.user_id)
                            .Text(entry.display_name)
                            .Int(entry.presence)
                            .Text(entry.status_text)
                            .Time(entry.updated_at)
                            .Run());
  }
  for (const ParticipantSeen& p : batch.participants) {
    IMB_RETURN_IF_ERROR(Query(w_.touch_participant)
                            .Text(p.channel_key)
                            .Text(p.user.id())
                            .Text(p.user.platform())
                            .Text(p.user.display_name())
                            .Time(now)
                            .Run());
  }
  for (const QueueMove& m : batch.moves) {
    if (!m.to_target.SerializeToString(&target_)) {
      return absl::InvalidArgumentError(
          absl::StrCat("store: cannot serialize the target of ", m.to_key));
    }
    IMB_RETURN_IF_ERROR(Query(w_.move_queue)
                            .Text(m.to_key)
                            .Blob(target_)
                            .Text(m.from_key)
                            .Run());
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::WriteEvent(NewEvent& entry, absl::Time now) {
  entry.id = 0;
  if (entry.event == nullptr || entry.event->key().empty()) {
    return absl::InvalidArgumentError("store: event has no key");
  }
  const v1::Event& event = *entry.event;
  absl::string_view payload = entry.payload;
  if (payload.empty()) {
    if (!event.SerializeToString(&payload_)) {
      return absl::InvalidArgumentError(
          absl::StrCat("store: cannot serialize event ", event.key()));
    }
    payload = payload_;
  }
  {
    Query query(w_.insert_event);
    query.Int(last_event_id_ + 1).Text(event.key()).Time(now).Blob(payload);
    IMB_RETURN_IF_ERROR(query.Run());
    if (query.Changes() == 0) return absl::OkStatus();  // duplicate
  }
  entry.id = ++last_event_id_;
  if (!entry.original_message_id.empty()) {
    IMB_RETURN_IF_ERROR(Query(w_.add_message)
                            .Text(entry.original_chat_key)
                            .Text(entry.original_message_id)
                            .Int(entry.id)
                            .Int(0)
                            .Int(0)
                            .Time(now)
                            .Run());
  }
  for (const std::string& blob_id : entry.blob_ids) {
    IMB_RETURN_IF_ERROR(
        Query(w_.add_event_blob).Int(entry.id).Text(blob_id).Run());
    IMB_RETURN_IF_ERROR(Query(w_.touch_blob).Time(now).Text(blob_id).Run());
  }
  for (DeliveryRecord& delivery : entry.deliveries) {
    if (delivery.target_key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("store: a delivery of ", event.key(), " has no target"));
    }
    if (!delivery.target.SerializeToString(&target_)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "store: cannot serialize the target of ", delivery.target_key));
    }
    delivery.event_id = entry.id;
    IMB_RETURN_IF_ERROR(Query(w_.insert_delivery)
                            .Int(last_delivery_id_ + 1)
                            .Int(entry.id)
                            .Text(delivery.target_key)
                            .Blob(target_)
                            .Text(delivery.link)
                            .Text(delivery.sender_name)
                            .Int(delivery.attempts)
                            .Time(delivery.created_at)
                            .Time(delivery.next_attempt_at)
                            .Text(delivery.last_error)
                            .Run());
    delivery.id = ++last_delivery_id_;
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::WriteMessages(const MessageRows& rows,
                                        absl::Time now) {
  for (size_t part = 0; part < rows.native_ids.size(); ++part) {
    // An empty id cannot be looked up; skip it rather than fail the batch.
    if (rows.native_ids[part].empty()) continue;
    IMB_RETURN_IF_ERROR(Query(w_.add_message)
                            .Text(rows.channel_key)
                            .Text(rows.native_ids[part])
                            .Int(rows.group_id)
                            .Int(static_cast<int64_t>(part))
                            .Int(rows.is_copy ? 1 : 0)
                            .Time(now)
                            .Run());
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::RetryDeadLetter(int64_t id, absl::Time now) {
  IMB_RETURN_IF_ERROR(RequireTransaction());
  Query query(w_.retry_dead_letter);
  IMB_RETURN_IF_ERROR(query.Time(now).Time(now).Int(id).Run());
  if (query.Changes() == 0) {
    return absl::NotFoundError(absl::StrCat("no dead letter with id ", id));
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::DropDeadLetter(int64_t id) {
  IMB_RETURN_IF_ERROR(RequireTransaction());
  Query query(w_.drop_dead_letter);
  IMB_RETURN_IF_ERROR(query.Int(id).Run());
  if (query.Changes() == 0) {
    return absl::NotFoundError(absl::StrCat("no dead letter with id ", id));
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::RecordBlob(const BlobInfo& blob) {
  IMB_RETURN_IF_ERROR(RequireTransaction());
  return Query(w_.record_blob)
      .Text(blob.blob_id)
      .Int(static_cast<int64_t>(blob.size))
      .Time(blob.created_at)
      .Time(blob.last_used_at)
      .Run();
}

absl::StatusOr<bool> SqliteStore::DeleteBlob(absl::string_view blob_id,
                                             absl::Time unused_before) {
  IMB_RETURN_IF_ERROR(RequireTransaction());
  Query query(w_.delete_blob);
  IMB_RETURN_IF_ERROR(query.Text(blob_id).Time(unused_before).Run());
  return query.Changes() > 0;
}

absl::StatusOr<int64_t> SqliteStore::PruneEvents(absl::Time before) {
  IMB_RETURN_IF_ERROR(RequireTransaction());
  IMB_RETURN_IF_ERROR(Query(w_.prune_event_blobs).Time(before).Run());
  Query query(w_.prune_events);
  IMB_RETURN_IF_ERROR(query.Time(before).Run());
  return query.Changes();
}

absl::StatusOr<std::vector<std::string>> SqliteStore::ListPendingTargets() {
  ReaderPool::Lease r = readers_.Acquire();
  Query query(r->pending_targets);
  std::vector<std::string> targets;
  while (true) {
    IMB_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    targets.push_back(query.ColumnText(0));
  }
  return targets;
}

absl::StatusOr<DeliveryRecord> SqliteStore::ReadDelivery(const Query& query) {
  DeliveryRecord record;
  record.id = query.ColumnInt(0);
  record.event_id = query.ColumnInt(1);
  record.target_key = query.ColumnText(2);
  record.link = query.ColumnText(4);
  record.sender_name = query.ColumnText(5);
  record.attempts = static_cast<int>(query.ColumnInt(6));
  record.created_at = query.ColumnTime(7);
  record.next_attempt_at = query.ColumnTime(8);
  record.last_error = query.ColumnText(9);
  std::optional<absl::string_view> payload;
  if (!query.ColumnIsNull(10)) payload = query.ColumnBlob(10);
  IMB_RETURN_IF_ERROR(
      ParseDeliveryColumns(query.ColumnBlob(3), payload, record));
  return record;
}

absl::StatusOr<std::vector<DeliveryRecord>> SqliteStore::LoadPendingDeliveries(
    absl::string_view target_key, int64_t after_id, int limit) {
  std::vector<DeliveryRecord> records;
  if (limit <= 0) return records;
  ReaderPool::Lease r = readers_.Acquire();
  Query query(r->load_pending);
  query.Text(target_key).Int(after_id).Int(limit);
  while (true) {
    IMB_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    IMB_ASSIGN_OR_RETURN(DeliveryRecord record, ReadDelivery(query));
    records.push_back(std::move(record));
  }
  return records;
}

absl::StatusOr<std::vector<DeliveryRecord>> SqliteStore::ListDeadLetters(
    int64_t before_id, int limit) {
  std::vector<DeliveryRecord> records;
  if (limit <= 0) return records;
  ReaderPool::Lease r = readers_.Acquire();
  Query query(r->dead_letters);
  query.Int(before_id > 0 ? before_id : std::numeric_limits<int64_t>::max())
      .Int(limit);
  while (true) {
    IMB_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    IMB_ASSIGN_OR_RETURN(DeliveryRecord record, ReadDelivery(query));
    records.push_back(std::move(record));
  }
  return records;
}

absl::StatusOr<Store::TargetCounts> SqliteStore::CountDeliveries(
    absl::string_view target_key) {
  ReaderPool::Lease r = readers_.Acquire();
  TargetCounts counts;
  {
    Query query(r->count_pending);
    query.Text(target_key);
    IMB_ASSIGN_OR_RETURN(bool row, query.Step());
    if (row) counts.pending = query.ColumnInt(0);
  }
  if (counts.pending > 0) {
    Query query(r->head_of_queue);
    query.Text(target_key);
    IMB_ASSIGN_OR_RETURN(bool row, query.Step());
    if (row) counts.oldest_pending = query.ColumnTime(0);
  }
  Query query(r->count_dead);
  query.Text(target_key);
  IMB_ASSIGN_OR_RETURN(bool row, query.Step());
  if (row) counts.dead = query.ColumnInt(0);
  return counts;
}

// Reads the message-map row a find_message statement selects, if any.
absl::StatusOr<std::optional<MessageLocation>> ReadLocation(Query& query) {
  IMB_ASSIGN_OR_RETURN(bool row, query.Step());
  if (!row) return std::optional<MessageLocation>();
  MessageLocation location;
  location.group_id = query.ColumnInt(0);
  location.is_copy = query.ColumnInt(1) != 0;
  return std::optional<MessageLocation>(location);
}

absl::StatusOr<std::optional<MessageLocation>> SqliteStore::FindMessage(
    absl::string_view channel_key, absl::string_view native_id) {
  ReaderPool::Lease r = readers_.Acquire();
  Query query(r->find_message);
  query.Text(channel_key).Text(native_id);
  return ReadLocation(query);
}

absl::StatusOr<std::vector<std::optional<MessageLocation>>>
SqliteStore::FindMessages(
    absl::Span<const std::pair<std::string, std::string>> messages) {
  std::vector<std::optional<MessageLocation>> found;
  if (messages.empty()) return found;
  ReaderPool::Lease r = readers_.Acquire();
  sqlite3* db = r->db.get();
  // One read transaction for all of them: a transaction per lookup (WAL
  // read lock, file locks) cost more than the lookup itself.
  IMB_RETURN_IF_ERROR(Exec(db, "BEGIN"));
  absl::Status status = absl::OkStatus();
  found.reserve(messages.size());
  for (const auto& [channel_key, native_id] : messages) {
    Query query(r->find_message);
    query.Text(channel_key).Text(native_id);
    absl::StatusOr<std::optional<MessageLocation>> location =
        ReadLocation(query);
    if (!location.ok()) {
      status = location.status();
      break;
    }
    found.push_back(*location);
  }
  Exec(db, "COMMIT").IgnoreError();  // a read: nothing to lose
  IMB_RETURN_IF_ERROR(status);
  return found;
}

absl::StatusOr<std::vector<std::string>> SqliteStore::FindMessagesInChannel(
    int64_t group_id, absl::string_view channel_key) {
  ReaderPool::Lease r = readers_.Acquire();
  Query query(r->messages_in_channel);
  query.Int(group_id).Text(channel_key);
  std::vector<std::string> native_ids;
  while (true) {
    IMB_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    native_ids.push_back(query.ColumnText(0));
  }
  return native_ids;
}

absl::StatusOr<std::vector<RosterEntry>> SqliteStore::ListRoster(
    absl::string_view platform) {
  ReaderPool::Lease r = readers_.Acquire();
  Query query(platform.empty() ? r->roster_all : r->roster_of_platform);
  if (!platform.empty()) query.Text(platform);
  std::vector<RosterEntry> entries;
  while (true) {
    IMB_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    RosterEntry entry;
    entry.platform = query.ColumnText(0);
    entry.account = query.ColumnText(1);
    entry.user_id = query.ColumnText(2);
    entry.display_name = query.ColumnText(3);
    int presence = static_cast<int>(query.ColumnInt(4));
    entry.presence = v1::Presence_IsValid(presence)
                         ? static_cast<v1::Presence>(presence)
                         : v1::PRESENCE_UNSPECIFIED;
    entry.status_text = query.ColumnText(5);
    entry.updated_at = query.ColumnTime(6);
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::StatusOr<std::optional<BlobInfo>> SqliteStore::FindBlob(
    absl::string_view blob_id) {
  ReaderPool::Lease r = readers_.Acquire();
  Query query(r->find_blob);
  query.Text(blob_id);
  IMB_ASSIGN_OR_RETURN(bool row, query.Step());
  if (!row) return std::optional<BlobInfo>();
  BlobInfo blob;
  blob.blob_id = query.ColumnText(0);
  blob.size = static_cast<uint64_t>(query.ColumnInt(1));
  blob.created_at = query.ColumnTime(2);
  blob.last_used_at = query.ColumnTime(3);
  return std::optional<BlobInfo>(std::move(blob));
}

absl::StatusOr<std::vector<std::string>> SqliteStore::ListCollectableBlobs(
    absl::Time before) {
  ReaderPool::Lease r = readers_.Acquire();
  Query query(r->collectable_blobs);
  query.Time(before);
  std::vector<std::string> blob_ids;
  while (true) {
    IMB_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    blob_ids.push_back(query.ColumnText(0));
  }
  return blob_ids;
}

}  // namespace

absl::Status SqliteStore::PutRecord(absl::string_view kind,
                                    absl::string_view name,
                                    absl::string_view payload) {
  IMB_RETURN_IF_ERROR(RequireTransaction());
  return Query(w_.put_record).Text(kind).Text(name).Blob(payload).Run();
}

absl::Status SqliteStore::DeleteRecord(absl::string_view kind,
                                       absl::string_view name) {
  IMB_RETURN_IF_ERROR(RequireTransaction());
  Query query(w_.delete_record);
  IMB_RETURN_IF_ERROR(query.Text(kind).Text(name).Run());
  if (query.Changes() == 0) {
    return absl::NotFoundError(absl::StrCat("no ", kind, " named ", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> SqliteStore::CountDeadLetters() {
  ReaderPool::Lease r = readers_.Acquire();
  Query query(r->count_dead_letters);
  IMB_ASSIGN_OR_RETURN(bool row, query.Step());
  return row ? query.ColumnInt(0) : 0;
}

absl::StatusOr<std::vector<DeadLetterRef>> SqliteStore::ListDeadLetterRefs(
    int64_t after_id, int limit) {
  std::vector<DeadLetterRef> refs;
  if (limit <= 0) return refs;
  ReaderPool::Lease r = readers_.Acquire();
  Query query(r->dead_letter_refs);
  query.Int(after_id).Int(limit);
  while (true) {
    IMB_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    refs.push_back({query.ColumnInt(0), query.ColumnText(1)});
  }
  return refs;
}

absl::StatusOr<std::optional<DeadLetterRef>> SqliteStore::FindDeadLetter(
    int64_t id) {
  ReaderPool::Lease r = readers_.Acquire();
  Query query(r->find_dead_letter);
  query.Int(id);
  IMB_ASSIGN_OR_RETURN(bool row, query.Step());
  if (!row) return std::optional<DeadLetterRef>();
  return std::optional<DeadLetterRef>(
      DeadLetterRef{query.ColumnInt(0), query.ColumnText(1)});
}

absl::StatusOr<std::vector<std::pair<std::string, v1::ChannelRef>>>
SqliteStore::ListDeadLetterTargets() {
  ReaderPool::Lease r = readers_.Acquire();
  Query query(r->dead_letter_targets);
  std::vector<std::pair<std::string, v1::ChannelRef>> targets;
  while (true) {
    IMB_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    v1::ChannelRef target;
    absl::string_view bytes = query.ColumnBlob(1);
    if (!target.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return absl::InternalError(absl::StrCat("store: a dead letter of ",
                                              query.ColumnText(0),
                                              " has a corrupt target"));
    }
    targets.emplace_back(query.ColumnText(0), std::move(target));
  }
  return targets;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
SqliteStore::ListRecords(absl::string_view kind) {
  ReaderPool::Lease r = readers_.Acquire();
  Query query(r->list_records);
  query.Text(kind);
  std::vector<std::pair<std::string, std::string>> out;
  while (true) {
    IMB_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    out.emplace_back(query.ColumnText(0), std::string(query.ColumnBlob(1)));
  }
  return out;
}

absl::StatusOr<std::vector<Participant>> SqliteStore::ListParticipants(
    absl::string_view channel_key) {
  ReaderPool::Lease r = readers_.Acquire();
  Query query(r->list_participants);
  query.Text(channel_key);
  std::vector<Participant> out;
  while (true) {
    IMB_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    Participant p;
    p.user_id = query.ColumnText(0);
    p.platform = query.ColumnText(1);
    p.display_name = query.ColumnText(2);
    p.last_seen_at = query.ColumnTime(3);
    out.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(
    const std::string& data_dir, v1::Durability durability,
    int read_connections, int64_t wal_restart_bytes) {
  return SqliteStore::Open(data_dir, durability, read_connections,
                           wal_restart_bytes);
}

std::string ChannelKey(const v1::ChannelRef& channel, bool with_thread) {
  std::string key = absl::StrCat(channel.platform(), "/", channel.account(),
                                 "/", channel.chat_id());
  if (with_thread && !channel.thread_id().empty()) {
    absl::StrAppend(&key, "#", channel.thread_id());
  }
  return key;
}

}  // namespace imbridge::bridge
