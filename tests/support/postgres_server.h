#ifndef IMBRIDGE_TESTS_SUPPORT_POSTGRES_SERVER_H_
#define IMBRIDGE_TESTS_SUPPORT_POSTGRES_SERVER_H_

#include "absl/status/statusor.h"
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

}  // namespace imbridge::testing

#endif  // IMBRIDGE_TESTS_SUPPORT_POSTGRES_SERVER_H_
