#include "tests/support/postgres_server.h"

#include <cstdlib>
#include <fstream>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

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

absl::StatusOr<TestDatabase> NewTestDatabase() {
  absl::StatusOr<PostgresServer*> server = SharedPostgresServer();
  if (!server.ok()) return server.status();
  absl::StatusOr<std::string> name = (*server)->CreateDatabase();
  if (!name.ok()) return name.status();
  return TestDatabase{*server, *std::move(name)};
}

std::string PostgresStoreYaml(const PostgresServer& server,
                              absl::string_view database,
                              const std::string& dir,
                              absl::string_view blob_dir) {
  const std::string password_file = dir + "/password";
  std::ofstream(password_file) << server.password() << "\n";
  return absl::StrCat(
      "postgres: {dsn: '", server.Dsn(database), "', password_file: '",
      password_file, "'",
      blob_dir.empty() ? "" : absl::StrCat(", blob_dir: '", blob_dir, "'"),
      "}");
}

}  // namespace imbridge::testing
