#include "tests/support/postgres_server.h"

#include <cstdlib>
#include <memory>

#include "absl/status/statusor.h"

namespace imbridge::testing {

absl::StatusOr<PostgresServer*> SharedPostgresServer() {
  static absl::StatusOr<std::unique_ptr<PostgresServer>>* server =
      new absl::StatusOr<std::unique_ptr<PostgresServer>>(
          PostgresServer::Start());
  // Stopped at exit; a crash leaves it to the parent death signal.
  static const bool registered = [] {
    std::atexit([] {
      if (server->ok()) server->value().reset();
    });
    return true;
  }();
  (void)registered;
  if (!server->ok()) return server->status();
  return server->value().get();
}

}  // namespace imbridge::testing
