// The PostgreSQL implementation of Store.
//
// Schema (kMigrations holds the authoritative text); version 1 holds what
// SQLite's version 4 holds (bridge/sqlite_store.cc), with two differences:
//   id_counters(name, value)         the highest event and delivery ids
//                                    handed out ("event", "delivery"):
//                                    SQLite keeps them in meta and in the
//                                    writer's memory; here the server
//                                    allocates them (see below)
//   meta(key, value)                 router_id only
// and since version 3 a third:
//   events.origin_chat, origin_id    a MessagePosted's original (its chat,
//                                    ChannelKey without thread, and native
//                                    id; '' for none): the original's
//                                    message-map row (group = the event's
//                                    id, part 0, not a copy) is kept here,
//                                    not in `messages`, until the event is
//                                    pruned (kFindMessage)
// Times are Unix milliseconds in bigint columns; InfinitePast/InfiniteFuture
// are the smallest/largest int64. Keys are `text COLLATE "C"`, so that they
// sort bytewise as in SQLite whatever the database's locale.
//
// One round trip per group commit, and one statement per table, not per
// row. Apply sends BEGIN, lock_counters, write_events, add_messages,
// complete_deliveries (each only when the batch has rows for it), the rarer
// rows one statement each, and COMMIT in one pipeline, and reads every
// result after the one sync. The rows travel as binary array parameters
// that the statements unnest. lock_counters locks the id_counters rows
// ("event", "delivery") until the commit, so that writers sharing the
// database take turns and each later statement (READ COMMITTED: a snapshot
// per statement) sees what the others committed. write_events is one
// statement of data-modifying CTEs: it drops the batch's events whose key is
// in the log or earlier in the batch, numbers the rest in arrival order
// from the event counter, inserts them (with their originals), their
// blob references and deliveries (numbered from the delivery counter, in
// order) and advances both counters; it returns each written event's
// position, id and first delivery id. (A statement per row spent most of
// the server's CPU starting and ending executors; one per table halved
// PostgreSQL's CPU per relayed event: docs/benchmarks.md, "PostgreSQL".)
// All of it is one transaction, so a
// failed batch hands its ids out again, exactly as the SQLite store does,
// and a duplicate consumes no id.

#include "bridge/postgres_store.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "bridge/postgres_connection.h"
#include "bridge/queue_leases.h"
#include "bridge/sqlite_store.h"
#include "bridge/store.h"
#include "bridge/store_common.h"
#include "common/status_macros.h"
#include "imbridge/v1/config.pb.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge::bridge {
namespace {

// The libpq plumbing (postgres_connection.h).
using pg::ArrayParam;
using pg::Command;
using pg::Connection;
using pg::kBoolArrayOid;
using pg::kBoolOid;
using pg::kByteaArrayOid;
using pg::kByteaOid;
using pg::kInt8ArrayOid;
using pg::kInt8Oid;
using pg::kTextArrayOid;
using pg::kTextOid;
using pg::Params;
using pg::ResultError;
using pg::ResultPtr;
using pg::Rows;
using pg::Trimmed;

// Takes the advisory lock that serializes schema migrations of routers
// sharing a database.
constexpr int64_t kMigrationLock = 0x696d627269646765;  // "imbridge"

// One step of the schema: the SQL that takes schema_version from
// `version - 1` to `version`. Steps are never edited once released.
struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE meta (
  key text COLLATE "C" PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE id_counters (
  name text COLLATE "C" PRIMARY KEY,
  value bigint NOT NULL
);
INSERT INTO id_counters(name, value) VALUES ('event', 0), ('delivery', 0);

CREATE TABLE events (
  id bigint PRIMARY KEY,
  event_key text COLLATE "C" NOT NULL UNIQUE,
  received_at bigint NOT NULL,
  payload bytea NOT NULL
);
CREATE INDEX events_by_received_at ON events(received_at);

CREATE TABLE event_blobs (
  event_id bigint NOT NULL,
  blob_id text COLLATE "C" NOT NULL,
  PRIMARY KEY (event_id, blob_id)
);
CREATE INDEX event_blobs_by_blob ON event_blobs(blob_id);

CREATE TABLE deliveries (
  id bigint PRIMARY KEY,
  event_id bigint NOT NULL,
  target_key text COLLATE "C" NOT NULL,
  target bytea NOT NULL,
  link text NOT NULL,
  sender_name text NOT NULL,
  attempts bigint NOT NULL,
  created_at bigint NOT NULL,
  next_attempt_at bigint NOT NULL,
  last_error text NOT NULL,
  state smallint NOT NULL,
  dead_at bigint
);
CREATE INDEX deliveries_by_target ON deliveries(target_key, state, id);
CREATE INDEX dead_letters_by_time ON deliveries(dead_at) WHERE state = 1;
CREATE INDEX dead_letters_by_target ON deliveries(target_key) WHERE state = 1;
CREATE INDEX dead_letters_by_id ON deliveries(id) WHERE state = 1;

CREATE TABLE messages (
  channel_key text COLLATE "C" NOT NULL,
  native_id text COLLATE "C" NOT NULL,
  group_id bigint NOT NULL,
  part bigint NOT NULL,
  is_copy boolean NOT NULL,
  created_at bigint NOT NULL,
  PRIMARY KEY (channel_key, native_id)
);
CREATE INDEX messages_by_group ON messages(group_id, channel_key, part);

CREATE TABLE roster (
  platform text COLLATE "C" NOT NULL,
  account text COLLATE "C" NOT NULL,
  user_id text COLLATE "C" NOT NULL,
  display_name text NOT NULL,
  presence bigint NOT NULL,
  status_text text NOT NULL,
  updated_at bigint NOT NULL,
  PRIMARY KEY (platform, account, user_id)
);

CREATE TABLE blobs (
  blob_id text COLLATE "C" PRIMARY KEY,
  size bigint NOT NULL,
  created_at bigint NOT NULL,
  last_used_at bigint NOT NULL
);

CREATE TABLE records (
  kind text COLLATE "C" NOT NULL,
  name text COLLATE "C" NOT NULL,
  payload bytea NOT NULL,
  PRIMARY KEY (kind, name)
);

CREATE TABLE participants (
  channel_key text COLLATE "C" NOT NULL,
  user_id text COLLATE "C" NOT NULL,
  platform text NOT NULL,
  display_name text NOT NULL,
  last_seen_at bigint NOT NULL,
  PRIMARY KEY (channel_key, user_id)
);
)sql"},
    // Queue leases (bridge/queue_leases.h): which routers are alive, and
    // which one dispatches each target queue. Times are the server's.
    {2, R"sql(
CREATE TABLE routers (
  name text COLLATE "C" PRIMARY KEY,
  started_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);

CREATE TABLE queue_leases (
  target_key text COLLATE "C" PRIMARY KEY,
  holder text COLLATE "C" NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX queue_leases_by_holder ON queue_leases(holder);
)sql"},
    // An original's message-map row lives in its event's row (origin_chat,
    // origin_id) instead of a row of its own in `messages`: per relayed
    // message one heap row, one index entry (two in `messages` against one
    // in events_by_origin) and a speculative insertion less, a quarter of
    // write_events (docs/benchmarks.md). Rows written before stay in
    // `messages`; the map is both (kFindMessage).
    {3, R"sql(
ALTER TABLE events
  ADD COLUMN origin_chat text COLLATE "C" NOT NULL DEFAULT '',
  ADD COLUMN origin_id text COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX events_by_origin ON events(origin_chat, origin_id)
  WHERE origin_id <> '';
)sql"},
};

constexpr int kSchemaVersion =
    kMigrations[sizeof(kMigrations) / sizeof(kMigrations[0]) - 1].version;

// The columns ReadDelivery expects, from deliveries d joined with events e
// (IMB_EVENT_JOIN).
#define IMB_DELIVERY_COLUMNS                                          \
  "d.id, d.event_id, d.target_key, d.target, d.link, d.sender_name, " \
  "d.attempts, d.created_at, d.next_attempt_at, d.last_error, e.payload "
#define IMB_EVENT_JOIN "LEFT JOIN events e ON e.id = d.event_id "
// The writer's prepared statements, as (name, SQL).
const std::vector<std::pair<const char*, const char*>>& WriterStatements() {
  static const auto* statements = new std::vector<
      std::pair<const char*, const char*>>{
      // Batch start: locks the id counters until the commit, so that
      // writers sharing the database hand out ids one batch after another,
      // and the batch's later statements (each with a snapshot of its own)
      // see every event committed before.
      {"lock_counters", "SELECT value FROM id_counters FOR UPDATE"},
      // The batch's new events with their originals (origin_chat, origin_id),
      // blobs and deliveries, in one statement. $1 is the commit's time; per
      // event (in arrival order, no key twice: AddBatch leaves out the later
      // ones) $2 key, $3 payload, $4 original's chat and $5 its native id (''
      // for none); per delivery $6 its event's position in $2 (1-based), then
      // its columns $7..$14; per blob reference $15 the event's position and
      // $16 the blob id. An event whose key is in the log is not written, nor
      // anything of its entry, and takes no id; ids follow the arrival order,
      // delivery ids the order of $6. Returns per event written, in order, its
      // position and its id, and in every row the last delivery id handed out
      // before (the deliveries of the written events took the ids after it, in
      // the order given).
      //
      // The events' insert has no ON CONFLICT: a speculative insertion costs
      // an index probe and a WAL record more per row, 8 % of this statement,
      // and `fresh` has probed already. Every writer holds the counters' lock
      // until it commits, so no event key can be written between this
      // statement's snapshot and its insert. Keys repeated in the batch are
      // dropped by AddBatch for the same reason: a window over the keys here
      // cost another 8 % (docs/benchmarks.md).
      {"write_events",
       R"sql(
WITH counters AS (
  SELECT max(value) FILTER (WHERE name = 'event') AS last_event,
         max(value) FILTER (WHERE name = 'delivery') AS last_delivery
  FROM id_counters),
input AS (
  SELECT key COLLATE "C" AS key, payload, chat_key COLLATE "C" AS chat_key,
         native_id COLLATE "C" AS native_id, ord
  FROM unnest($2::text[], $3::bytea[], $4::text[], $5::text[])
       WITH ORDINALITY AS t(key, payload, chat_key, native_id, ord)),
fresh AS (
  SELECT i.key, i.payload, i.chat_key, i.native_id, i.ord,
         (SELECT last_event FROM counters)
           + row_number() OVER (ORDER BY i.ord) AS id
  FROM input i
  WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_key = i.key)),
inserted AS (
  INSERT INTO events(id, event_key, received_at, payload, origin_chat,
                     origin_id)
  SELECT id, key, $1::bigint, payload, chat_key, native_id FROM fresh
  ORDER BY id),
written AS (
  SELECT ord, id FROM fresh),
numbered AS (
  SELECT d.*, w.id AS event_id,
         (SELECT last_delivery FROM counters)
           + row_number() OVER (ORDER BY d.ord) AS id
  FROM unnest($6::bigint[], $7::text[], $8::bytea[], $9::text[], $10::text[],
              $11::bigint[], $12::bigint[], $13::bigint[], $14::text[])
       WITH ORDINALITY AS d(event_ord, target_key, target, link, sender_name,
                            attempts, created_at, next_attempt_at, last_error,
                            ord)
  JOIN written w ON w.ord = d.event_ord),
deliveries_written AS (
  INSERT INTO deliveries(id, event_id, target_key, target, link, sender_name,
                         attempts, created_at, next_attempt_at, last_error,
                         state)
  SELECT id, event_id, target_key, target, link, sender_name, attempts,
         created_at, next_attempt_at, last_error, 0
  FROM numbered ORDER BY id),
blob_refs AS (
  SELECT w.id AS event_id, b.blob_id COLLATE "C" AS blob_id
  FROM unnest($15::bigint[], $16::text[]) AS b(event_ord, blob_id)
  JOIN written w ON w.ord = b.event_ord),
blobs_linked AS (
  INSERT INTO event_blobs(event_id, blob_id)
  SELECT event_id, blob_id FROM blob_refs ON CONFLICT DO NOTHING),
blobs_used AS (
  UPDATE blobs SET last_used_at = greatest(last_used_at, $1::bigint)
  WHERE blob_id IN (SELECT blob_id FROM blob_refs)),
counted AS (
  UPDATE id_counters SET value = CASE name
    WHEN 'event' THEN coalesce((SELECT max(id) FROM written), value)
    WHEN 'delivery' THEN coalesce((SELECT max(id) FROM numbered), value)
    ELSE value END)
SELECT ord, id, (SELECT last_delivery FROM counters) FROM written ORDER BY ord
)sql"},
      // The copies' (and originals' given as rows) message-map rows: per
      // row $1 chat, $2 native id, $3 group, $4 part, $5 is_copy; $6 the
      // commit's time. The first of rows with the same (chat, native id)
      // wins, as does a row already there (for one in an event's row,
      // kFindMessage decides).
      {"add_messages",
       "INSERT INTO messages(channel_key, native_id, group_id, part,"
       " is_copy, created_at)"
       " SELECT c, n, g, p, k, $6::bigint FROM unnest($1::text[], $2::text[],"
       " $3::bigint[], $4::bigint[], $5::bool[]) WITH ORDINALITY"
       " AS t(c, n, g, p, k, ord) ORDER BY ord"
       " ON CONFLICT (channel_key, native_id) DO NOTHING"},
      {"complete_deliveries",
       "DELETE FROM deliveries WHERE id = ANY($1::bigint[])"},
      {"reschedule_delivery",
       "UPDATE deliveries SET attempts = $1, next_attempt_at = $2,"
       " last_error = $3 WHERE id = $4 AND state = 0"},
      {"dead_letter",
       "UPDATE deliveries SET state = 1, last_error = $1, dead_at = $2"
       " WHERE id = $3 AND state = 0"},
      {"upsert_roster",
       "INSERT INTO roster(platform, account, user_id, display_name,"
       " presence, status_text, updated_at)"
       " VALUES ($1, $2, $3, $4, $5, $6, $7)"
       " ON CONFLICT (platform, account, user_id) DO UPDATE SET"
       " display_name = excluded.display_name,"
       " presence = excluded.presence,"
       " status_text = excluded.status_text,"
       " updated_at = excluded.updated_at"},
      {"touch_participant",
       "INSERT INTO participants(channel_key, user_id, platform,"
       " display_name, last_seen_at) VALUES ($1, $2, $3, $4, $5)"
       " ON CONFLICT (channel_key, user_id) DO UPDATE SET"
       " platform = excluded.platform,"
       " display_name = excluded.display_name,"
       " last_seen_at = excluded.last_seen_at"},
      // Wakes the owners of queues given work (bridge/queue_leases.h).
      {"notify_work", "SELECT pg_notify('imbridge_queues', $1)"},
      {"move_queue",
       "UPDATE deliveries SET target_key = $1, target = $2"
       " WHERE target_key = $3 AND state = 0"},
  };
  return *statements;
}

// Store on PostgreSQL: one writer connection (the writer thread's) and a
// pool of read connections. Reads see committed data only.
class PostgresStore : public Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(
      const PostgresStoreOptions& options);

  absl::Status Apply(CommitBatch& batch) override;
  // Commits are durable when they return (synchronous_commit): nothing to
  // do.
  absl::Status Sync() override { return absl::OkStatus(); }

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
  absl::StatusOr<std::optional<std::string>> GetRecord(
      absl::string_view kind, absl::string_view name) override;
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ListRecords(
      absl::string_view kind) override;
  absl::StatusOr<std::vector<Participant>> ListParticipants(
      absl::string_view channel_key) override;

 private:
  // The read connections.
  using ReaderPool = ConnectionPool<Connection>;

  explicit PostgresStore(const PostgresStoreOptions& options)
      : options_(options), writer_(&options_, WriterStatements()) {}

  absl::Status Init();
  absl::Status Migrate();
  absl::Status RequireTransaction() const;
  // Inside the write transaction: NOTIFY kRecordsChannel with `kind`.
  absl::Status NotifyRecordsChanged(absl::string_view kind);
  // Appends the statements of `batch` to `commands`; fails, sending
  // nothing, on an entry that cannot be written.
  // `sent` gets, per event sent (the position write_events numbers from
  // 1), its index in batch.events: an event whose key came earlier in the
  // batch is not sent.
  absl::Status AddBatch(CommitBatch& batch, std::vector<Command>& commands,
                        std::vector<size_t>& sent);
  // Runs a read on a pooled connection.
  absl::StatusOr<Rows> Read(const char* sql, const Params& params = Params());
  static absl::StatusOr<DeliveryRecord> ReadDelivery(const Rows& rows, int row);
  absl::StatusOr<std::vector<DeliveryRecord>> ReadDeliveries(
      const char* sql, const Params& params);

  const PostgresStoreOptions options_;
  // Writer thread only.
  Connection writer_;
  bool in_transaction_ = false;
  ReaderPool readers_;
  std::string router_id_;
};

absl::StatusOr<std::unique_ptr<Store>> PostgresStore::Open(
    const PostgresStoreOptions& options) {
  if (options.pool_size < 1 || options.pool_size > kMaxPostgresPoolSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("store: postgres pool_size is ", options.pool_size,
                     "; it must be 1 to ", kMaxPostgresPoolSize));
  }
  IMB_RETURN_IF_ERROR(CheckPostgresDsn(options.dsn));
  auto store = std::unique_ptr<PostgresStore>(new PostgresStore(options));
  IMB_RETURN_IF_ERROR(store->Init());
  return store;
}

absl::Status PostgresStore::Init() {
  IMB_RETURN_IF_ERROR(Migrate());
  IMB_ASSIGN_OR_RETURN(
      Rows id, writer_.Exec("SELECT value FROM meta WHERE key = 'router_id'"));
  if (id.size() != 1) {
    return absl::InternalError("postgres: meta has no router_id");
  }
  router_id_ = id.Text(0, 0);
  for (int i = 0; i < options_.pool_size; ++i) {
    readers_.Add(std::make_unique<Connection>(
        &options_, std::vector<std::pair<const char*, const char*>>()));
  }
  // Connect every reader now, so that a bad pool fails at start.
  for (int i = 0; i < options_.pool_size; ++i) {
    IMB_RETURN_IF_ERROR(Read("SELECT 1").status());
  }
  return absl::OkStatus();
}

absl::Status PostgresStore::Migrate() {
  // Statements run at connect are prepared against tables that may not
  // exist yet: migrate on a connection of its own first.
  Connection conn(&options_, {});
  IMB_RETURN_IF_ERROR(conn.ExecScript("BEGIN"));
  absl::Status status = [&]() -> absl::Status {
    IMB_RETURN_IF_ERROR(conn.Exec("SELECT pg_advisory_xact_lock($1)",
                                  Params().Int(kMigrationLock))
                            .status());
    IMB_RETURN_IF_ERROR(conn.ExecScript(
        "CREATE TABLE IF NOT EXISTS schema_version (version bigint NOT NULL)"));
    IMB_ASSIGN_OR_RETURN(Rows rows,
                         conn.Exec("SELECT coalesce(max(version), 0) FROM "
                                   "schema_version"));
    int64_t version = rows.Int(0, 0);
    if (version > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "store: the database has schema version ", version,
          " but this build knows ", kSchemaVersion,
          "; it was written by a newer imbridge-router (downgrades are not "
          "supported)"));
    }
    for (const Migration& m : kMigrations) {
      if (m.version <= version) continue;
      IMB_RETURN_IF_ERROR(conn.ExecScript(m.sql));
    }
    if (version < kSchemaVersion) {
      IMB_RETURN_IF_ERROR(conn.ExecScript("DELETE FROM schema_version"));
      IMB_RETURN_IF_ERROR(
          conn.Exec("INSERT INTO schema_version(version) VALUES ($1)",
                    Params().Int(kSchemaVersion))
              .status());
    }
    std::string router_id = NewStoreRouterId();
    return conn
        .Exec(
            "INSERT INTO meta(key, value) VALUES ('router_id', $1) "
            "ON CONFLICT (key) DO NOTHING",
            Params().Text(router_id))
        .status();
  }();
  if (!status.ok()) {
    conn.RollbackIfOpen();
    return status;
  }
  return conn.ExecScript("COMMIT");
}

absl::Status PostgresStore::RequireTransaction() const {
  // A connection that broke ended the transaction with it: writing on a new
  // one would commit half of it.
  if (!in_transaction_ ||
      PQtransactionStatus(writer_.get()) != PQTRANS_INTRANS) {
    return absl::FailedPreconditionError(
        "store: write outside a transaction (call Begin first; a failed "
        "statement may have ended it)");
  }
  return absl::OkStatus();
}

absl::Status PostgresStore::Begin() {
  IMB_RETURN_IF_ERROR(writer_.ExecScript("BEGIN"));
  in_transaction_ = true;
  return absl::OkStatus();
}

absl::Status PostgresStore::Commit() {
  if (!in_transaction_) {
    return absl::FailedPreconditionError("store: Commit without Begin");
  }
  in_transaction_ = false;
  if (PQtransactionStatus(writer_.get()) != PQTRANS_INTRANS) {
    writer_.RollbackIfOpen();
    return absl::FailedPreconditionError(
        "store: the transaction failed or its connection broke; nothing of "
        "it was written");
  }
  absl::Status status = writer_.ExecScript("COMMIT");
  if (!status.ok()) writer_.RollbackIfOpen();
  return status;
}

void PostgresStore::Rollback() {
  in_transaction_ = false;
  writer_.RollbackIfOpen();
}

absl::Status PostgresStore::Apply(CommitBatch& batch) {
  if (in_transaction_) {
    return absl::FailedPreconditionError(
        "store: Apply inside an operator transaction");
  }
  if (batch.empty()) return absl::OkStatus();
  for (NewEvent& entry : batch.events) {
    entry.id = 0;
    for (DeliveryRecord& d : entry.deliveries) d.id = d.event_id = 0;
  }
  std::vector<Command> commands;
  commands.push_back({"BEGIN", false, Params()});
  commands.push_back({"lock_counters", true, Params()});
  std::vector<size_t> sent;
  IMB_RETURN_IF_ERROR(AddBatch(batch, commands, sent));
  // The queues given work wake their owners (maybe other routers) when the
  // transaction commits: NOTIFY is delivered on commit only.
  QueueWork work;
  for (const NewEvent& entry : batch.events) {
    for (const DeliveryRecord& d : entry.deliveries) {
      if (work.written.empty() || work.written.back() != d.target_key) {
        work.written.push_back(d.target_key);
      }
    }
  }
  for (const QueueMove& m : batch.moves) work.reload.push_back(m.to_key);
  if (!work.written.empty() || !work.reload.empty()) {
    std::sort(work.written.begin(), work.written.end());
    work.written.erase(std::unique(work.written.begin(), work.written.end()),
                       work.written.end());
    commands.push_back({"notify_work", true,
                        std::move(Params().OwnedText(QueueWorkPayload(work)))});
  }
  commands.push_back({"COMMIT", false, Params()});
  absl::StatusOr<std::vector<Rows>> results = writer_.Pipeline(commands);
  if (!results.ok()) {
    writer_.RollbackIfOpen();
    return results.status();
  }
  if (PQtransactionStatus(writer_.get()) != PQTRANS_IDLE) {
    // COMMIT did not end the transaction: nothing of it was written.
    writer_.RollbackIfOpen();
    return absl::UnavailableError("postgres: the commit did not complete");
  }
  if (batch.events.empty()) return absl::OkStatus();
  // Results follow the statements: BEGIN, lock_counters, write_events (a
  // row per event written: its position, its id and the last delivery id
  // before the batch's).
  const Rows& written = (*results)[2];
  int64_t delivery_id = 0;
  for (int row = 0; row < written.size(); ++row) {
    const int64_t position = written.Int(row, 0);
    if (position < 1 || position > static_cast<int64_t>(sent.size())) {
      return absl::InternalError("postgres: write_events returned a bad row");
    }
    if (row == 0) delivery_id = written.Int(row, 2);
    NewEvent& entry = batch.events[sent[static_cast<size_t>(position - 1)]];
    entry.id = written.Int(row, 1);
    for (DeliveryRecord& d : entry.deliveries) {
      d.id = ++delivery_id;
      d.event_id = entry.id;
    }
  }
  return absl::OkStatus();
}

absl::Status PostgresStore::AddBatch(CommitBatch& batch,
                                     std::vector<Command>& commands,
                                     std::vector<size_t>& sent) {
  const absl::Time now = batch.now;
  sent.clear();
  if (!batch.events.empty()) {
    ArrayParam keys(kTextOid, kTextArrayOid),
        payloads(kByteaOid, kByteaArrayOid), chats(kTextOid, kTextArrayOid),
        natives(kTextOid, kTextArrayOid);
    ArrayParam event_of(kInt8Oid, kInt8ArrayOid),
        target_keys(kTextOid, kTextArrayOid),
        targets(kByteaOid, kByteaArrayOid), links(kTextOid, kTextArrayOid),
        senders(kTextOid, kTextArrayOid), attempts(kInt8Oid, kInt8ArrayOid),
        created(kInt8Oid, kInt8ArrayOid), next_attempt(kInt8Oid, kInt8ArrayOid),
        errors(kTextOid, kTextArrayOid);
    ArrayParam blob_event_of(kInt8Oid, kInt8ArrayOid),
        blob_ids(kTextOid, kTextArrayOid);
    std::string bytes;
    absl::flat_hash_set<absl::string_view> seen_keys;
    seen_keys.reserve(batch.events.size());
    sent.reserve(batch.events.size());
    for (size_t index = 0; index < batch.events.size(); ++index) {
      NewEvent& entry = batch.events[index];
      if (entry.event == nullptr || entry.event->key().empty()) {
        return absl::InvalidArgumentError("store: event has no key");
      }
      const v1::Event& event = *entry.event;
      if (!seen_keys.insert(event.key()).second) continue;  // a duplicate
      sent.push_back(index);
      const int64_t position = static_cast<int64_t>(sent.size());
      keys.Add(event.key());
      if (entry.payload.empty()) {
        if (!event.SerializeToString(&bytes)) {
          return absl::InvalidArgumentError(
              absl::StrCat("store: cannot serialize event ", event.key()));
        }
        payloads.Add(bytes);
      } else {
        payloads.Add(entry.payload);
      }
      // No original, no origin chat: events_by_origin leaves the row out.
      chats.Add(entry.original_message_id.empty()
                    ? absl::string_view()
                    : absl::string_view(entry.original_chat_key));
      natives.Add(entry.original_message_id);
      for (const std::string& blob_id : entry.blob_ids) {
        blob_event_of.AddInt(position);
        blob_ids.Add(blob_id);
      }
      for (const DeliveryRecord& delivery : entry.deliveries) {
        if (delivery.target_key.empty()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "store: a delivery of ", event.key(), " has no target"));
        }
        if (!delivery.target.SerializeToString(&bytes)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "store: cannot serialize the target of ", delivery.target_key));
        }
        event_of.AddInt(position);
        target_keys.Add(delivery.target_key);
        targets.Add(bytes);
        links.Add(delivery.link);
        senders.Add(delivery.sender_name);
        attempts.AddInt(delivery.attempts);
        created.AddInt(ToStoreMillis(delivery.created_at));
        next_attempt.AddInt(ToStoreMillis(delivery.next_attempt_at));
        errors.Add(delivery.last_error);
      }
    }
    Params params;
    params.Time(now);
    for (ArrayParam* array :
         {&keys, &payloads, &chats, &natives, &event_of, &target_keys, &targets,
          &links, &senders, &attempts, &created, &next_attempt, &errors,
          &blob_event_of, &blob_ids}) {
      params.Array(std::move(*array));
    }
    commands.push_back({"write_events", true, std::move(params)});
  }
  ArrayParam chats(kTextOid, kTextArrayOid), natives(kTextOid, kTextArrayOid),
      groups(kInt8Oid, kInt8ArrayOid), parts(kInt8Oid, kInt8ArrayOid),
      copies(kBoolOid, kBoolArrayOid);
  bool any_message = false;
  for (const MessageRows& rows : batch.messages) {
    for (size_t part = 0; part < rows.native_ids.size(); ++part) {
      // An empty id cannot be looked up; skip it rather than fail the batch.
      if (rows.native_ids[part].empty()) continue;
      chats.Add(rows.channel_key);
      natives.Add(rows.native_ids[part]);
      groups.AddInt(rows.group_id);
      parts.AddInt(static_cast<int64_t>(part));
      copies.AddBool(rows.is_copy);
      any_message = true;
    }
  }
  if (any_message) {
    Params params;
    for (ArrayParam* array : {&chats, &natives, &groups, &parts, &copies}) {
      params.Array(std::move(*array));
    }
    commands.push_back({"add_messages", true, std::move(params.Time(now))});
  }
  if (!batch.completed.empty()) {
    ArrayParam ids(kInt8Oid, kInt8ArrayOid);
    for (int64_t id : batch.completed) ids.AddInt(id);
    commands.push_back({"complete_deliveries", true,
                        std::move(Params().Array(std::move(ids)))});
  }
  for (const DeliveryRetry& r : batch.retries) {
    commands.push_back({"reschedule_delivery", true,
                        std::move(Params()
                                      .Int(r.attempts)
                                      .Time(r.next_attempt_at)
                                      .Text(r.last_error)
                                      .Int(r.id))});
  }
  for (const DeliveryDeadLetter& d : batch.dead_letters) {
    commands.push_back(
        {"dead_letter", true,
         std::move(Params().Text(d.reason).Time(now).Int(d.id))});
  }
  for (const RosterEntry& entry : batch.roster) {
    commands.push_back({"upsert_roster", true,
                        std::move(Params()
                                      .Text(entry.platform)
                                      .Text(entry.account)
                                      .Text(entry.user_id)
                                      .Text(entry.display_name)
                                      .Int(entry.presence)
                                      .Text(entry.status_text)
                                      .Time(entry.updated_at))});
  }
  for (const ParticipantSeen& p : batch.participants) {
    commands.push_back({"touch_participant", true,
                        std::move(Params()
                                      .Text(p.channel_key)
                                      .Text(p.user.id())
                                      .Text(p.user.platform())
                                      .Text(p.user.display_name())
                                      .Time(now))});
  }
  for (const QueueMove& m : batch.moves) {
    std::string target;
    if (!m.to_target.SerializeToString(&target)) {
      return absl::InvalidArgumentError(
          absl::StrCat("store: cannot serialize the target of ", m.to_key));
    }
    commands.push_back({"move_queue", true,
                        std::move(Params()
                                      .Text(m.to_key)
                                      .OwnedBytes(std::move(target))
                                      .Text(m.from_key))});
  }
  return absl::OkStatus();
}

absl::Status PostgresStore::RetryDeadLetter(int64_t id, absl::Time now) {
  IMB_RETURN_IF_ERROR(RequireTransaction());
  IMB_ASSIGN_OR_RETURN(
      Rows rows,
      writer_.Exec("UPDATE deliveries SET state = 0, attempts = 0, "
                   "created_at = $1, next_attempt_at = $1, last_error = '', "
                   "dead_at = NULL WHERE id = $2 AND state = 1 "
                   "RETURNING target_key",
                   Params().Time(now).Int(id)));
  if (rows.size() == 0) {
    return absl::NotFoundError(absl::StrCat("no dead letter with id ", id));
  }
  // The queue's owner, maybe another router, reads it again from the
  // start (the delivery keeps its old id) once this commits.
  QueueWork work;
  work.reload.push_back(rows.Text(0, 0));
  return writer_
      .Exec("SELECT pg_notify($1, $2)",
            Params().Text(kQueueWorkChannel).OwnedText(QueueWorkPayload(work)))
      .status();
}

absl::Status PostgresStore::DropDeadLetter(int64_t id) {
  IMB_RETURN_IF_ERROR(RequireTransaction());
  IMB_ASSIGN_OR_RETURN(
      Rows rows,
      writer_.Exec(
          "DELETE FROM deliveries WHERE id = $1 AND state = 1 RETURNING id",
          Params().Int(id)));
  if (rows.size() == 0) {
    return absl::NotFoundError(absl::StrCat("no dead letter with id ", id));
  }
  return absl::OkStatus();
}

absl::Status PostgresStore::RecordBlob(const BlobInfo& blob) {
  IMB_RETURN_IF_ERROR(RequireTransaction());
  return writer_
      .Exec(
          "INSERT INTO blobs(blob_id, size, created_at, last_used_at) "
          "VALUES ($1, $2, $3, $4) ON CONFLICT (blob_id) DO UPDATE SET "
          "last_used_at = greatest(blobs.last_used_at, "
          "excluded.last_used_at)",
          Params()
              .Text(blob.blob_id)
              .Int(static_cast<int64_t>(blob.size))
              .Time(blob.created_at)
              .Time(blob.last_used_at))
      .status();
}

absl::StatusOr<bool> PostgresStore::DeleteBlob(absl::string_view blob_id,
                                               absl::Time unused_before) {
  IMB_RETURN_IF_ERROR(RequireTransaction());
  // The DELETE locks the row until the commit; another router's RecordBlob
  // of it waits for that, and then inserts it anew.
  IMB_ASSIGN_OR_RETURN(
      Rows rows,
      writer_.Exec("DELETE FROM blobs WHERE blob_id = $1 AND last_used_at < $2 "
                   "AND NOT EXISTS (SELECT 1 FROM event_blobs eb JOIN "
                   "deliveries d ON d.event_id = eb.event_id WHERE "
                   "eb.blob_id = $1) RETURNING 1",
                   Params().Text(blob_id).Time(unused_before)));
  return rows.size() > 0;
}

absl::StatusOr<int64_t> PostgresStore::PruneEvents(absl::Time before) {
  IMB_RETURN_IF_ERROR(RequireTransaction());
  // The message map is kept: the originals of the events about to go move
  // into `messages`. A row already there for the same native id stays; that
  // is the one case in which pruning changes which row counts (a native id
  // given to two messages of one chat).
  IMB_RETURN_IF_ERROR(
      writer_
          .Exec("INSERT INTO messages(channel_key, native_id, group_id, part, "
                "is_copy, created_at) SELECT origin_chat, origin_id, id, 0, "
                "false, received_at FROM events WHERE received_at < $1 AND "
                "origin_id <> '' AND id NOT IN (SELECT event_id FROM "
                "deliveries) ORDER BY id ON CONFLICT (channel_key, native_id) "
                "DO NOTHING",
                Params().Time(before))
          .status());
  IMB_RETURN_IF_ERROR(
      writer_
          .Exec("DELETE FROM event_blobs WHERE event_id IN (SELECT id FROM "
                "events WHERE received_at < $1 AND id NOT IN (SELECT event_id "
                "FROM deliveries))",
                Params().Time(before))
          .status());
  IMB_ASSIGN_OR_RETURN(
      Rows rows,
      writer_.Exec("WITH gone AS (DELETE FROM events WHERE received_at < $1 "
                   "AND id NOT IN (SELECT event_id FROM deliveries) "
                   "RETURNING 1) SELECT count(*) FROM gone",
                   Params().Time(before)));
  return rows.Int(0, 0);
}

absl::Status PostgresStore::PutRecord(absl::string_view kind,
                                      absl::string_view name,
                                      absl::string_view payload) {
  IMB_RETURN_IF_ERROR(RequireTransaction());
  IMB_RETURN_IF_ERROR(
      writer_
          .Exec("INSERT INTO records(kind, name, payload) VALUES ($1, $2, $3) "
                "ON CONFLICT (kind, name) DO UPDATE SET payload = "
                "excluded.payload",
                Params().Text(kind).Text(name).Bytes(payload))
          .status());
  return NotifyRecordsChanged(kind);
}

absl::Status PostgresStore::NotifyRecordsChanged(absl::string_view kind) {
  // Every router reads the records again once this commits (NOTIFY is
  // delivered on commit only), so that a link or webhook made through one
  // router's Admin API holds on all of them.
  return writer_
      .Exec("SELECT pg_notify($1, $2)",
            Params().Text(kRecordsChannel).Text(kind))
      .status();
}

absl::Status PostgresStore::DeleteRecord(absl::string_view kind,
                                         absl::string_view name) {
  IMB_RETURN_IF_ERROR(RequireTransaction());
  IMB_ASSIGN_OR_RETURN(
      Rows rows,
      writer_.Exec(
          "DELETE FROM records WHERE kind = $1 AND name = $2 RETURNING 1",
          Params().Text(kind).Text(name)));
  if (rows.size() == 0) {
    return absl::NotFoundError(absl::StrCat("no ", kind, " named ", name));
  }
  return NotifyRecordsChanged(kind);
}

absl::StatusOr<Rows> PostgresStore::Read(const char* sql,
                                         const Params& params) {
  ReaderPool::Lease r = readers_.Acquire();
  return r->Exec(sql, params);
}

absl::StatusOr<std::vector<std::string>> PostgresStore::ListPendingTargets() {
  // Walks the distinct targets through the index instead of scanning every
  // pending row.
  IMB_ASSIGN_OR_RETURN(
      Rows rows,
      Read("WITH RECURSIVE t(key) AS ("
           " SELECT (SELECT min(target_key) FROM deliveries WHERE state = 0)"
           " UNION ALL"
           " SELECT (SELECT min(target_key) FROM deliveries"
           "  WHERE state = 0 AND target_key > t.key)"
           " FROM t WHERE t.key IS NOT NULL)"
           " SELECT key FROM t WHERE key IS NOT NULL"));
  std::vector<std::string> targets;
  for (int i = 0; i < rows.size(); ++i) targets.push_back(rows.Text(i, 0));
  return targets;
}

absl::StatusOr<DeliveryRecord> PostgresStore::ReadDelivery(const Rows& rows,
                                                           int row) {
  DeliveryRecord record;
  record.id = rows.Int(row, 0);
  record.event_id = rows.Int(row, 1);
  record.target_key = rows.Text(row, 2);
  record.link = rows.Text(row, 4);
  record.sender_name = rows.Text(row, 5);
  record.attempts = static_cast<int>(rows.Int(row, 6));
  record.created_at = rows.Time(row, 7);
  record.next_attempt_at = rows.Time(row, 8);
  record.last_error = rows.Text(row, 9);
  std::optional<absl::string_view> payload;
  if (!rows.IsNull(row, 10)) payload = rows.Bytes(row, 10);
  IMB_RETURN_IF_ERROR(
      ParseDeliveryColumns(rows.Bytes(row, 3), payload, record));
  return record;
}

absl::StatusOr<std::vector<DeliveryRecord>> PostgresStore::ReadDeliveries(
    const char* sql, const Params& params) {
  IMB_ASSIGN_OR_RETURN(Rows rows, Read(sql, params));
  std::vector<DeliveryRecord> records;
  records.reserve(rows.size());
  for (int i = 0; i < rows.size(); ++i) {
    IMB_ASSIGN_OR_RETURN(DeliveryRecord record, ReadDelivery(rows, i));
    records.push_back(std::move(record));
  }
  return records;
}

absl::StatusOr<std::vector<DeliveryRecord>>
PostgresStore::LoadPendingDeliveries(absl::string_view target_key,
                                     int64_t after_id, int limit) {
  if (limit <= 0) return std::vector<DeliveryRecord>();
  // Ordered by the whole of deliveries_by_target (the same order as by id,
  // since the WHERE fixes the first two columns): ordered by id alone, the
  // planner walked deliveries_pkey from the cursor and filtered out every
  // other queue's rows (a page of 256 of one queue in 16 read 4,468 rows).
  return ReadDeliveries("SELECT " IMB_DELIVERY_COLUMNS
                        "FROM deliveries d " IMB_EVENT_JOIN
                        "WHERE d.target_key = $1 AND d.state = 0 AND d.id > $2 "
                        "ORDER BY d.target_key, d.state, d.id LIMIT $3",
                        Params().Text(target_key).Int(after_id).Int(limit));
}

absl::StatusOr<std::vector<DeliveryRecord>> PostgresStore::ListDeadLetters(
    int64_t before_id, int limit) {
  if (limit <= 0) return std::vector<DeliveryRecord>();
  return ReadDeliveries(
      "SELECT " IMB_DELIVERY_COLUMNS "FROM deliveries d " IMB_EVENT_JOIN
      "WHERE d.state = 1 AND d.id < $1 ORDER BY d.id DESC LIMIT $2",
      Params()
          .Int(before_id > 0 ? before_id : std::numeric_limits<int64_t>::max())
          .Int(limit));
}

absl::StatusOr<int64_t> PostgresStore::CountDeadLetters() {
  IMB_ASSIGN_OR_RETURN(Rows rows,
                       Read("SELECT count(*) FROM deliveries WHERE state = 1"));
  return rows.Int(0, 0);
}

absl::StatusOr<std::vector<DeadLetterRef>> PostgresStore::ListDeadLetterRefs(
    int64_t after_id, int limit) {
  std::vector<DeadLetterRef> refs;
  if (limit <= 0) return refs;
  IMB_ASSIGN_OR_RETURN(Rows rows,
                       Read("SELECT id, target_key FROM deliveries "
                            "WHERE id > $1 AND state = 1 ORDER BY id LIMIT $2",
                            Params().Int(after_id).Int(limit)));
  for (int i = 0; i < rows.size(); ++i) {
    refs.push_back({rows.Int(i, 0), rows.Text(i, 1)});
  }
  return refs;
}

absl::StatusOr<std::optional<DeadLetterRef>> PostgresStore::FindDeadLetter(
    int64_t id) {
  IMB_ASSIGN_OR_RETURN(
      Rows rows,
      Read("SELECT id, target_key FROM deliveries WHERE id = $1 AND state = 1",
           Params().Int(id)));
  if (rows.size() == 0) return std::optional<DeadLetterRef>();
  return std::optional<DeadLetterRef>(
      DeadLetterRef{rows.Int(0, 0), rows.Text(0, 1)});
}

absl::StatusOr<std::vector<std::pair<std::string, v1::ChannelRef>>>
PostgresStore::ListDeadLetterTargets() {
  IMB_ASSIGN_OR_RETURN(
      Rows rows,
      Read("SELECT DISTINCT ON (target_key) target_key, target "
           "FROM deliveries WHERE state = 1 ORDER BY target_key, id"));
  std::vector<std::pair<std::string, v1::ChannelRef>> targets;
  for (int i = 0; i < rows.size(); ++i) {
    v1::ChannelRef target;
    absl::string_view bytes = rows.Bytes(i, 1);
    if (!target.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return absl::InternalError(absl::StrCat("store: a dead letter of ",
                                              rows.Text(i, 0),
                                              " has a corrupt target"));
    }
    targets.emplace_back(rows.Text(i, 0), std::move(target));
  }
  return targets;
}

absl::StatusOr<Store::TargetCounts> PostgresStore::CountDeliveries(
    absl::string_view target_key) {
  // One statement: one round trip and one snapshot.
  IMB_ASSIGN_OR_RETURN(Rows rows,
                       Read("SELECT"
                            " (SELECT count(*) FROM deliveries"
                            "  WHERE target_key = $1 AND state = 0),"
                            " (SELECT created_at FROM deliveries"
                            "  WHERE target_key = $1 AND state = 0"
                            "  ORDER BY target_key, state, id LIMIT 1),"
                            " (SELECT count(*) FROM deliveries"
                            "  WHERE target_key = $1 AND state = 1)",
                            Params().Text(target_key)));
  TargetCounts counts;
  counts.pending = rows.Int(0, 0);
  if (!rows.IsNull(0, 1)) counts.oldest_pending = rows.Time(0, 1);
  counts.dead = rows.Int(0, 2);
  return counts;
}

// The message map: the rows of `messages` and, since schema version 3, the
// originals kept in their events' rows (origin_chat, origin_id, found
// through events_by_origin). Where a native id has several rows (a row
// already there is never replaced, but an event's original is written
// without looking at `messages`), the oldest counts, an original before a
// row of the same commit, then the lowest group: the row the map would
// have kept had all of them been one table's. kFindMessage ranks them in
// the server, FindMessages in its loop; `later` is 0 for an original in its
// event, 1 for a row of `messages`.
constexpr char kFindMessage[] =
    "SELECT group_id, is_copy FROM ("
    "SELECT group_id, is_copy, created_at, 1 AS later FROM messages"
    " WHERE channel_key = $1 AND native_id = $2"
    " UNION ALL SELECT id, false, received_at, 0 FROM events"
    " WHERE origin_chat = $1 AND origin_id = $2 AND origin_id <> ''"
    ") m ORDER BY created_at, later, group_id LIMIT 1";

std::optional<MessageLocation> ReadLocation(const Rows& rows) {
  if (rows.size() == 0) return std::nullopt;
  MessageLocation location;
  location.group_id = rows.Int(0, 0);
  location.is_copy = rows.Bool(0, 1);
  return location;
}

absl::StatusOr<std::optional<MessageLocation>> PostgresStore::FindMessage(
    absl::string_view channel_key, absl::string_view native_id) {
  IMB_ASSIGN_OR_RETURN(
      Rows rows,
      Read(kFindMessage, Params().Text(channel_key).Text(native_id)));
  return ReadLocation(rows);
}

absl::StatusOr<std::vector<std::optional<MessageLocation>>>
PostgresStore::FindMessages(
    absl::Span<const std::pair<std::string, std::string>> messages) {
  std::vector<std::optional<MessageLocation>> found;
  if (messages.empty()) return found;
  // One statement over two arrays: one round trip, one snapshot, one plan.
  std::vector<absl::string_view> channel_keys, native_ids;
  for (const auto& [channel_key, native_id] : messages) {
    channel_keys.push_back(channel_key);
    native_ids.push_back(native_id);
  }
  // Every row of every key, ranked below. Each key is probed through the
  // index (OFFSET 0 keeps each sub-select per key): as `messages` grows
  // faster than its statistics, the planner would otherwise pick a hash
  // join over a sequential scan of it, ten times slower
  // (docs/benchmarks.md).
  IMB_ASSIGN_OR_RETURN(
      Rows rows, Read("SELECT k.ord, m.group_id, m.is_copy, m.created_at, 1"
                      " FROM unnest($1::text[], $2::text[]) WITH ORDINALITY"
                      " AS k(channel_key, native_id, ord) CROSS JOIN LATERAL"
                      " (SELECT group_id, is_copy, created_at FROM messages"
                      " WHERE channel_key = k.channel_key COLLATE \"C\""
                      " AND native_id = k.native_id COLLATE \"C\" OFFSET 0) m"
                      " UNION ALL SELECT k.ord, e.id, false, e.received_at, 0"
                      " FROM unnest($1::text[], $2::text[]) WITH ORDINALITY"
                      " AS k(channel_key, native_id, ord) CROSS JOIN LATERAL"
                      " (SELECT id, received_at FROM events"
                      " WHERE origin_chat = k.channel_key COLLATE \"C\""
                      " AND origin_id = k.native_id COLLATE \"C\""
                      " AND origin_id <> '' OFFSET 0) e",
                      Params().TextArray(channel_keys).TextArray(native_ids)));
  found.resize(messages.size());
  // The rank of the row in found[i], as (time, later, group).
  std::vector<std::tuple<int64_t, int64_t, int64_t>> rank(messages.size());
  for (int i = 0; i < rows.size(); ++i) {
    const int64_t ord = rows.Int(i, 0);
    if (ord < 1 || ord > static_cast<int64_t>(found.size())) continue;
    const size_t at = static_cast<size_t>(ord - 1);
    std::tuple<int64_t, int64_t, int64_t> row_rank(
        rows.Int(i, 3), rows.Int(i, 4), rows.Int(i, 1));
    if (found[at].has_value() && rank[at] <= row_rank) continue;
    found[at] = MessageLocation{rows.Int(i, 1), rows.Bool(i, 2)};
    rank[at] = row_rank;
  }
  return found;
}

absl::StatusOr<std::vector<std::string>> PostgresStore::FindMessagesInChannel(
    int64_t group_id, absl::string_view channel_key) {
  IMB_ASSIGN_OR_RETURN(Rows rows,
                       Read("SELECT native_id FROM ("
                            "SELECT native_id, part FROM messages "
                            "WHERE group_id = $1 AND channel_key = $2 "
                            "UNION SELECT origin_id, 0 FROM events "
                            "WHERE id = $1 AND origin_chat = $2 "
                            "AND origin_id <> '') m ORDER BY part, native_id",
                            Params().Int(group_id).Text(channel_key)));
  std::vector<std::string> native_ids;
  for (int i = 0; i < rows.size(); ++i) native_ids.push_back(rows.Text(i, 0));
  return native_ids;
}

absl::StatusOr<std::vector<RosterEntry>> PostgresStore::ListRoster(
    absl::string_view platform) {
  IMB_ASSIGN_OR_RETURN(
      Rows rows,
      Read("SELECT platform, account, user_id, display_name, presence, "
           "status_text, updated_at FROM roster "
           "WHERE $1 = '' OR platform = $1 "
           "ORDER BY platform, account, user_id",
           Params().Text(platform)));
  std::vector<RosterEntry> entries;
  for (int i = 0; i < rows.size(); ++i) {
    RosterEntry entry;
    entry.platform = rows.Text(i, 0);
    entry.account = rows.Text(i, 1);
    entry.user_id = rows.Text(i, 2);
    entry.display_name = rows.Text(i, 3);
    int presence = static_cast<int>(rows.Int(i, 4));
    entry.presence = v1::Presence_IsValid(presence)
                         ? static_cast<v1::Presence>(presence)
                         : v1::PRESENCE_UNSPECIFIED;
    entry.status_text = rows.Text(i, 5);
    entry.updated_at = rows.Time(i, 6);
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::StatusOr<std::optional<BlobInfo>> PostgresStore::FindBlob(
    absl::string_view blob_id) {
  IMB_ASSIGN_OR_RETURN(Rows rows,
                       Read("SELECT blob_id, size, created_at, last_used_at "
                            "FROM blobs WHERE blob_id = $1",
                            Params().Text(blob_id)));
  if (rows.size() == 0) return std::optional<BlobInfo>();
  BlobInfo blob;
  blob.blob_id = rows.Text(0, 0);
  blob.size = static_cast<uint64_t>(rows.Int(0, 1));
  blob.created_at = rows.Time(0, 2);
  blob.last_used_at = rows.Time(0, 3);
  return std::optional<BlobInfo>(std::move(blob));
}

absl::StatusOr<std::vector<std::string>> PostgresStore::ListCollectableBlobs(
    absl::Time before) {
  IMB_ASSIGN_OR_RETURN(
      Rows rows,
      Read("SELECT blob_id FROM blobs WHERE last_used_at < $1 AND blob_id "
           "NOT IN (SELECT eb.blob_id FROM deliveries d JOIN event_blobs eb "
           "ON eb.event_id = d.event_id) ORDER BY last_used_at, blob_id",
           Params().Time(before)));
  std::vector<std::string> blob_ids;
  for (int i = 0; i < rows.size(); ++i) blob_ids.push_back(rows.Text(i, 0));
  return blob_ids;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
PostgresStore::ListRecords(absl::string_view kind) {
  IMB_ASSIGN_OR_RETURN(
      Rows rows,
      Read("SELECT name, payload FROM records WHERE kind = $1 ORDER BY name",
           Params().Text(kind)));
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = 0; i < rows.size(); ++i) {
    out.emplace_back(rows.Text(i, 0), rows.Text(i, 1));
  }
  return out;
}

absl::StatusOr<std::optional<std::string>> PostgresStore::GetRecord(
    absl::string_view kind, absl::string_view name) {
  IMB_ASSIGN_OR_RETURN(
      Rows rows,
      Read("SELECT payload FROM records WHERE kind = $1 AND name = $2",
           Params().Text(kind).Text(name)));
  if (rows.size() == 0) return std::nullopt;
  return std::optional<std::string>(rows.Text(0, 0));
}

absl::StatusOr<std::vector<Participant>> PostgresStore::ListParticipants(
    absl::string_view channel_key) {
  IMB_ASSIGN_OR_RETURN(
      Rows rows, Read("SELECT user_id, platform, display_name, last_seen_at "
                      "FROM participants WHERE channel_key = $1 "
                      "ORDER BY last_seen_at DESC, user_id",
                      Params().Text(channel_key)));
  std::vector<Participant> out;
  for (int i = 0; i < rows.size(); ++i) {
    Participant p;
    p.user_id = rows.Text(i, 0);
    p.platform = rows.Text(i, 1);
    p.display_name = rows.Text(i, 2);
    p.last_seen_at = rows.Time(i, 3);
    out.push_back(std::move(p));
  }
  return out;
}

#undef IMB_DELIVERY_COLUMNS
#undef IMB_EVENT_JOIN

// A table copied by MigrateSqliteToPostgres: its name and columns (the same
// in both schemas), each with how it is sent: 'i' bigint, 's' smallint,
// 'n' bigint or NULL, 'b' boolean (an integer in SQLite), 't' text, 'x'
// bytes.
struct CopiedTable {
  const char* name;
  std::vector<std::pair<const char*, char>> columns;
};

const std::vector<CopiedTable>& CopiedTables() {
  static const auto* tables = new std::vector<CopiedTable>{
      {"events",
       {{"id", 'i'},
        {"event_key", 't'},
        {"received_at", 'i'},
        {"payload", 'x'}}},
      {"event_blobs", {{"event_id", 'i'}, {"blob_id", 't'}}},
      {"deliveries",
       {{"id", 'i'},
        {"event_id", 'i'},
        {"target_key", 't'},
        {"target", 'x'},
        {"link", 't'},
        {"sender_name", 't'},
        {"attempts", 'i'},
        {"created_at", 'i'},
        {"next_attempt_at", 'i'},
        {"last_error", 't'},
        {"state", 's'},
        {"dead_at", 'n'}}},
      {"messages",
       {{"channel_key", 't'},
        {"native_id", 't'},
        {"group_id", 'i'},
        {"part", 'i'},
        {"is_copy", 'b'},
        {"created_at", 'i'}}},
      {"roster",
       {{"platform", 't'},
        {"account", 't'},
        {"user_id", 't'},
        {"display_name", 't'},
        {"presence", 'i'},
        {"status_text", 't'},
        {"updated_at", 'i'}}},
      {"blobs",
       {{"blob_id", 't'},
        {"size", 'i'},
        {"created_at", 'i'},
        {"last_used_at", 'i'}}},
      {"records", {{"kind", 't'}, {"name", 't'}, {"payload", 'x'}}},
      {"participants",
       {{"channel_key", 't'},
        {"user_id", 't'},
        {"platform", 't'},
        {"display_name", 't'},
        {"last_seen_at", 'i'}}},
  };
  return *tables;
}

// COPY data buffered before each PQputCopyData.
constexpr size_t kCopyChunkBytes = 1 << 20;

// Appends the low `bytes` bytes of `value`, big-endian (network order).
void PutBigEndian(std::string& out, uint64_t value, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

// Reads SQLite; closes it when destroyed.
struct SqliteReader {
  sqlite3* db = nullptr;
  ~SqliteReader() { sqlite3_close_v2(db); }
  absl::Status Error(absl::string_view what) const {
    return absl::InternalError(
        absl::StrCat("sqlite: ", what, ": ", sqlite3_errmsg(db)));
  }
};

// Copies one table from `from` into `to`, inside `to`'s open transaction
// (a blocking connection), with one COPY ... FROM STDIN in PostgreSQL's
// binary format: the rows stream in large chunks, with neither a round trip
// nor a statement per row.
absl::StatusOr<int64_t> CopyTable(const SqliteReader& from, Connection& to,
                                  const CopiedTable& table) {
  std::string columns;
  for (size_t i = 0; i < table.columns.size(); ++i) {
    absl::StrAppend(&columns, i > 0 ? ", " : "", table.columns[i].first);
  }
  const std::string select =
      absl::StrCat("SELECT ", columns, " FROM ", table.name);
  const std::string copy = absl::StrCat("COPY ", table.name, "(", columns,
                                        ") FROM STDIN (FORMAT binary)");
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(from.db, select.c_str(), -1, &raw, nullptr) !=
      SQLITE_OK) {
    return from.Error(select);
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw,
                                                             sqlite3_finalize);
  IMB_RETURN_IF_ERROR(to.Ensure());
  PGconn* conn = to.get();
  ResultPtr started(PQexec(conn, copy.c_str()));
  if (PQresultStatus(started.get()) != PGRES_COPY_IN) {
    return ResultError(conn, started.get(), copy);
  }
  // The header: signature, flags, header extension length.
  std::string buffer("PGCOPY\n\377\r\n\0", 11);
  PutBigEndian(buffer, 0, 4);
  PutBigEndian(buffer, 0, 4);
  auto send = [&]() -> absl::Status {
    if (PQputCopyData(conn, buffer.data(), static_cast<int>(buffer.size())) !=
        1) {
      return ResultError(conn, nullptr, "sending COPY data");
    }
    buffer.clear();
    return absl::OkStatus();
  };
  const int ncolumns = static_cast<int>(table.columns.size());
  int64_t copied = 0;
  absl::Status status = absl::OkStatus();
  while (status.ok()) {
    int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      status = from.Error(select);
      break;
    }
    // A row: its field count, then each field's length (-1: NULL) and
    // bytes, as the parameters of Params are sent.
    PutBigEndian(buffer, static_cast<uint64_t>(ncolumns), 2);
    for (int col = 0; col < ncolumns; ++col) {
      switch (table.columns[col].second) {
        case 'n':
          if (sqlite3_column_type(stmt.get(), col) == SQLITE_NULL) {
            PutBigEndian(buffer, 0xffffffff, 4);
            break;
          }
          [[fallthrough]];
        case 'i':
        case 's': {
          const int width = table.columns[col].second == 's' ? 2 : 8;
          PutBigEndian(buffer, static_cast<uint64_t>(width), 4);
          PutBigEndian(
              buffer,
              static_cast<uint64_t>(sqlite3_column_int64(stmt.get(), col)),
              width);
          break;
        }
        case 'b':
          PutBigEndian(buffer, 1, 4);
          buffer.push_back(sqlite3_column_int64(stmt.get(), col) != 0 ? 1 : 0);
          break;
        case 't':
        case 'x': {
          const void* data = sqlite3_column_blob(stmt.get(), col);
          const int size =
              data != nullptr ? sqlite3_column_bytes(stmt.get(), col) : 0;
          PutBigEndian(buffer, static_cast<uint64_t>(size), 4);
          buffer.append(static_cast<const char*>(data), size);
          break;
        }
      }
    }
    ++copied;
    if (buffer.size() >= kCopyChunkBytes) status = send();
  }
  if (status.ok()) {
    PutBigEndian(buffer, 0xffff, 2);  // the trailer: a field count of -1
    status = send();
  }
  // Ending with an error message makes the server abort the COPY.
  if (PQputCopyEnd(conn, status.ok() ? nullptr : "reading SQLite failed") !=
          1 &&
      status.ok()) {
    status = ResultError(conn, nullptr, "ending COPY");
  }
  ResultPtr result(PQgetResult(conn));
  if (status.ok() && PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    status = ResultError(conn, result.get(), copy);
  }
  while (ResultPtr(PQgetResult(conn)) != nullptr) {
  }
  IMB_RETURN_IF_ERROR(status);
  return copied;
}

absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> CopyFromSqlite(
    const std::string& sqlite_data_dir, const PostgresStoreOptions& options) {
  const std::string path = sqlite_data_dir + "/imbridge.db";
  if (access(path.c_str(), R_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat("there is no SQLite store ", path, ": ", strerror(errno)));
  }
  // Open both as the router would: the SQLite store upgraded to its current
  // schema, the PostgreSQL one created or migrated.
  {
    IMB_ASSIGN_OR_RETURN(std::unique_ptr<Store> sqlite,
                         OpenSqliteStore(sqlite_data_dir, v1::FULL, 1));
  }
  IMB_ASSIGN_OR_RETURN(std::unique_ptr<Store> target,
                       OpenPostgresStore(options));
  target.reset();

  SqliteReader from;
  if (sqlite3_open_v2(path.c_str(), &from.db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    return from.Error(absl::StrCat("opening ", path));
  }
  // One read transaction: a consistent copy even if something writes.
  if (sqlite3_exec(from.db, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return from.Error("BEGIN");
  }

  Connection to(&options, {});
  IMB_RETURN_IF_ERROR(to.ExecScript("BEGIN"));
  // COPY streams its data: this connection blocks while it sends.
  if (PQsetnonblocking(to.get(), 0) != 0) {
    return ResultError(to.get(), nullptr, "setting blocking mode");
  }
  auto copy =
      [&]() -> absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> {
    IMB_RETURN_IF_ERROR(to.Exec("SELECT pg_advisory_xact_lock($1)",
                                Params().Int(kMigrationLock))
                            .status());
    for (const CopiedTable& table : CopiedTables()) {
      IMB_ASSIGN_OR_RETURN(
          Rows rows,
          to.Exec(absl::StrCat("SELECT EXISTS (SELECT 1 FROM ", table.name, ")")
                      .c_str()));
      if (rows.Bool(0, 0)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the PostgreSQL database is not empty (table ", table.name,
            " has rows); migrate into a new database"));
      }
    }
    std::vector<std::pair<std::string, int64_t>> copied;
    for (const CopiedTable& table : CopiedTables()) {
      IMB_ASSIGN_OR_RETURN(int64_t n, CopyTable(from, to, table));
      copied.emplace_back(table.name, n);
    }
    // The router id and the highest ids handed out.
    sqlite3_stmt* raw = nullptr;
    const char* meta =
        "SELECT (SELECT value FROM meta WHERE key = 'router_id'),"
        " max(coalesce((SELECT max(id) FROM events), 0),"
        "  coalesce((SELECT value FROM meta WHERE key = 'last_event_id'), 0)),"
        " max(coalesce((SELECT max(id) FROM deliveries), 0),"
        "  coalesce((SELECT value FROM meta WHERE key = 'last_delivery_id'),"
        "  0))";
    if (sqlite3_prepare_v2(from.db, meta, -1, &raw, nullptr) != SQLITE_OK) {
      return from.Error("reading meta");
    }
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(
        raw, sqlite3_finalize);
    if (sqlite3_step(stmt.get()) != SQLITE_ROW) return from.Error("meta");
    const unsigned char* router_id = sqlite3_column_text(stmt.get(), 0);
    std::string id =
        router_id != nullptr ? reinterpret_cast<const char*>(router_id) : "";
    if (!id.empty()) {
      IMB_RETURN_IF_ERROR(
          to.Exec("UPDATE meta SET value = $1 WHERE key = 'router_id'",
                  Params().Text(id))
              .status());
    }
    IMB_RETURN_IF_ERROR(
        to.Exec("UPDATE id_counters SET value = CASE name "
                "WHEN 'event' THEN $1 WHEN 'delivery' THEN $2 ELSE value END",
                Params()
                    .Int(sqlite3_column_int64(stmt.get(), 1))
                    .Int(sqlite3_column_int64(stmt.get(), 2)))
            .status());
    return copied;
  };
  auto copied = copy();
  if (!copied.ok()) {
    to.RollbackIfOpen();
    return copied.status();
  }
  IMB_RETURN_IF_ERROR(to.ExecScript("COMMIT"));
  return copied;
}

}  // namespace

absl::StatusOr<std::vector<std::pair<std::string, int64_t>>>
MigrateSqliteToPostgres(const std::string& sqlite_data_dir,
                        const PostgresStoreOptions& options) {
  auto copied = CopyFromSqlite(sqlite_data_dir, options);
  if (!copied.ok()) {
    return absl::Status(
        copied.status().code(),
        absl::StrCat("migrating ", sqlite_data_dir,
                     " to PostgreSQL: ", copied.status().message()));
  }
  return copied;
}

absl::Status CheckPostgresDsn(absl::string_view dsn) {
  if (dsn.empty()) {
    return absl::InvalidArgumentError("the connection string is empty");
  }
  char* error = nullptr;
  std::string text(dsn);
  PQconninfoOption* options = PQconninfoParse(text.c_str(), &error);
  if (options == nullptr) {
    // libpq's message names the bad keyword, not the string's values.
    std::string reason =
        error != nullptr ? Trimmed(error) : "out of memory parsing it";
    PQfreemem(error);
    return absl::InvalidArgumentError(
        absl::StrCat("not a valid libpq connection string: ", reason));
  }
  bool has_password = false;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (std::strcmp(o->keyword, "password") == 0 && o->val != nullptr &&
        o->val[0] != '\0') {
      has_password = true;
    }
  }
  PQconninfoFree(options);
  if (has_password) {
    return absl::InvalidArgumentError(
        "holds a password; put it in password_file or the environment "
        "variable IMBRIDGE_PG_PASSWORD instead, so that it is never logged");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(
    const PostgresStoreOptions& options) {
  absl::StatusOr<std::unique_ptr<Store>> store = PostgresStore::Open(options);
  if (!store.ok()) {
    return absl::Status(
        store.status().code(),
        absl::StrCat("store (postgres): ", store.status().message()));
  }
  return store;
}

PostgresStoreOptions PostgresOptionsFromConfig(const v1::StoreOptions& store) {
  PostgresStoreOptions options;
  options.dsn = store.postgres().dsn();
  options.password = store.postgres().password();
  if (options.password.empty()) {
    if (const char* env = std::getenv("IMBRIDGE_PG_PASSWORD")) {
      options.password = env;
    }
  }
  options.pool_size = store.postgres().pool_size() > 0
                          ? static_cast<int>(store.postgres().pool_size())
                          : kDefaultPostgresPoolSize;
  options.durability = store.durability();
  return options;
}

}  // namespace imbridge::bridge
