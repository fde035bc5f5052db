#ifndef IMBRIDGE_TESTS_SUPPORT_POSTGRES_SERVER_H_
#define IMBRIDGE_TESTS_SUPPORT_POSTGRES_SERVER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/postgres_server.h"

namespace imbridge::testing {

// The tests' PostgreSQL server: common/postgres_server.h (shared with
// imbridge-bench), started with fsync off.
using ::imbridge::PostgresServer;

// The server shared by all tests of a test binary: started on first use
// (from the main thread), stopped when the process exits. Fails the same
// way every time if it cannot start.
absl::StatusOr<PostgresServer*> SharedPostgresServer();

// A new empty database on SharedPostgresServer(): the server and the name.
struct TestDatabase {
  PostgresServer* server;
  std::string name;
};
absl::StatusOr<TestDatabase> NewTestDatabase();

// The `postgres:` entry of a router config's `store:` block for `database`
// on `server`: "postgres: {dsn: '...', password_file: '<dir>/password'}",
// with `blob_dir: '...'` unless `blob_dir` is empty (routers sharing the
// database must share it). Writes the password to <dir>/password, so that
// the config never holds it.
std::string PostgresStoreYaml(const PostgresServer& server,
                              absl::string_view database,
                              const std::string& dir,
                              absl::string_view blob_dir = "");

}  // namespace imbridge::testing

#endif  // IMBRIDGE_TESTS_SUPPORT_POSTGRES_SERVER_H_
