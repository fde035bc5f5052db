#ifndef IMBRIDGE_BRIDGE_POSTGRES_STORE_H_
#define IMBRIDGE_BRIDGE_POSTGRES_STORE_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bridge/store.h"
#include "imbridge/v1/config.pb.h"

namespace imbridge::bridge {

// Read connections of the PostgreSQL store's pool unless the config says
// otherwise (store.postgres.pool_size), and the most it accepts.
inline constexpr int kDefaultPostgresPoolSize = 4;
inline constexpr int kMaxPostgresPoolSize = 64;

// Where the PostgreSQL store connects and how.
struct PostgresStoreOptions {
  // libpq connection string (keyword=value or a postgresql:// URI), without
  // a password.
  std::string dsn;
  // The password, sent apart from `dsn`; empty for none (libpq may still
  // find one in ~/.pgpass). Never part of a log line or an error.
  std::string password;
  // Read connections, besides the writer's: 1 to kMaxPostgresPoolSize.
  int pool_size = kDefaultPostgresPoolSize;
  // FULL: a commit returns once PostgreSQL has it on disk
  // (synchronous_commit on). NORMAL: synchronous_commit off, so a crash of
  // the database server may lose the last commits (never corrupts).
  v1::Durability durability = v1::FULL;
};

// Checks a connection string as the router's config would have it: it
// parses, and it holds no password (that comes from password_file or the
// environment, so that it is never logged). Returns the reason, without the
// string itself, on failure.
absl::Status CheckPostgresDsn(absl::string_view dsn);

// Opens the store in the PostgreSQL database `options.dsn` names, creating
// its tables or migrating them up to the current schema version in place
// (one schema_version row; migrations run under an advisory lock). Fails,
// changing nothing, if the database was made by a newer imbridge, the server
// is unreachable, or `pool_size` is out of range.
//
// Each Store::Apply is one round trip: the whole group commit is sent as one
// pipeline (libpq pipeline mode) inside one transaction, and it returns
// once COMMIT returned, so with durability FULL Sync() has nothing left to
// do. Reads borrow one of `pool_size` connections. A connection that broke
// (server restart, network) is reconnected on its next use; the call that
// found it broken fails with kUnavailable.
absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(
    const PostgresStoreOptions& options);

// The options of store.postgres in the router's config, with the password
// from the config, or else from the environment variable
// IMBRIDGE_PG_PASSWORD.
PostgresStoreOptions PostgresOptionsFromConfig(const v1::StoreOptions& store);

// Copies the state of the SQLite store in `sqlite_data_dir` into the
// PostgreSQL database `options` names, in one transaction, each table
// streamed with one COPY: the event log,
// the outbox with its dead letters, the message map, links and webhooks
// made at runtime (records), roster, participants, blob metadata, the
// router id and the highest ids handed out (so that ids are never reused).
// The SQLite store is first opened as the router would open it (which
// upgrades an old schema in place); it is otherwise only read. Refuses with
// kFailedPrecondition, changing nothing, a database that already holds
// state. Returns (table, rows copied) per table. Blob files stay in the data
// directory.
absl::StatusOr<std::vector<std::pair<std::string, int64_t>>>
MigrateSqliteToPostgres(const std::string& sqlite_data_dir,
                        const PostgresStoreOptions& options);

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_POSTGRES_STORE_H_
