#ifndef IMBRIDGE_BRIDGE_SQLITE_STORE_H_
#define IMBRIDGE_BRIDGE_SQLITE_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "bridge/store.h"
#include "imbridge/v1/config.pb.h"

namespace imbridge::bridge {

// Read connections of the store's pool unless the config says otherwise
// (store.read_connections), and the most it accepts.
inline constexpr int kDefaultReadConnections = 4;
inline constexpr int kMaxReadConnections = 64;

// The WAL size at which the store has the writer start the WAL file over
// (and truncates it to this size): what bounds it under a steady stream of
// commits, which checkpoints alone never catch up with.
inline constexpr int64_t kDefaultWalRestartBytes = int64_t{64} << 20;

// Opens (creating if needed) the SQLite store in `data_dir`/imbridge.db, in
// WAL mode, applying schema migrations up to the current version in place.
// Commits are safe from a process crash when they return; with durability
// FULL, Store::Sync() puts them on disk (an fdatasync of the WAL), and NORMAL
// may lose the last commits on power loss. Reads go through a pool of
// `read_connections` read-only connections (WAL readers block neither each
// other nor the writer): that many reads run at once, more wait for a free
// connection. The WAL file stays near `wal_restart_bytes` however long the
// commits go on. Fails with a clear message, changing nothing, if
// `read_connections` is not in 1..kMaxReadConnections; fails if the
// directory is not writable or the database was made by a newer imbridge.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(
    const std::string& data_dir, v1::Durability durability,
    int read_connections = kDefaultReadConnections,
    int64_t wal_restart_bytes = kDefaultWalRestartBytes);

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_SQLITE_STORE_H_
