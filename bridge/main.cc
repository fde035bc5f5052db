// imbridge-router: the message bus that adapters attach to.
//
//   imbridge-router --config FILE [--check-config]
//   imbridge-router --config FILE --migrate-from-sqlite DATA_DIR

#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "absl/synchronization/mutex.h"
#include "bridge/postgres_store.h"
#include "bridge/router.h"
#include "bridge/router_config.h"
#include "common/logging.h"
#include "common/process_allocator.h"

namespace {

int Usage() {
  std::fprintf(
      stderr,
      "usage: imbridge-router --config FILE [--check-config]\n"
      "       imbridge-router --check-config FILE\n"
      "  --config FILE     the router's YAML config (see "
      "docs/configuration.md)\n"
      "  --check-config    validate the config and exit\n"
      "  --migrate-from-sqlite DATA_DIR\n"
      "                    copy the SQLite store of DATA_DIR into the\n"
      "                    config's store.postgres database (which\n"
      "                    must be empty) and exit\n");
  return 2;
}

// --migrate-from-sqlite: copies `data_dir`'s SQLite store into the
// config's PostgreSQL database.
int MigrateFromSqlite(const imbridge::v1::RouterConfig& config,
                      const std::string& data_dir) {
  if (!config.store().has_postgres()) {
    std::fprintf(stderr,
                 "imbridge-router: --migrate-from-sqlite needs store.postgres "
                 "in the config (the database to copy into)\n");
    return 1;
  }
  auto copied = imbridge::bridge::MigrateSqliteToPostgres(
      data_dir, imbridge::bridge::PostgresOptionsFromConfig(config.store()));
  if (!copied.ok()) {
    std::fprintf(stderr, "imbridge-router: %s\n",
                 std::string(copied.status().message()).c_str());
    return 1;
  }
  for (const auto& [table, rows] : *copied) {
    std::printf("%s: %lld rows\n", table.c_str(), static_cast<long long>(rows));
  }
  std::printf("migrated %s to PostgreSQL\n", data_dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, so absl::Mutex (the router's locks
  // and gRPC's) checks each lock for a lock-order cycle, in a graph shared
  // by all threads under one global lock: 1-2 % of the router's CPU. The
  // tests keep the check; the shipped programs turn it off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string config_path;
  bool check_only = false;
  std::string migrate_from;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else if (arg == "--check-config") {
      check_only = true;
      // `--check-config FILE` names the file to check, as `--config` does.
      if (i + 1 < argc && argv[i + 1][0] != '-') config_path = argv[++i];
    } else if (arg == "--migrate-from-sqlite" && i + 1 < argc) {
      migrate_from = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      Usage();
      return 0;
    } else {
      std::fprintf(stderr, "imbridge-router: unknown argument '%s'\n",
                   arg.c_str());
      return Usage();
    }
  }
  if (config_path.empty()) return Usage();

  absl::StatusOr<imbridge::v1::RouterConfig> config =
      imbridge::bridge::LoadRouterConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "imbridge-router: invalid config: %s\n",
                 std::string(config.status().message()).c_str());
    return 1;
  }
  if (check_only) {
    std::printf("%s: OK\n", config_path.c_str());
    return 0;
  }
  if (!migrate_from.empty()) return MigrateFromSqlite(*config, migrate_from);
  imbridge::InitLogging("router", "",
                        *imbridge::ParseLogLevel(config->log_level()));

  // gRPC runs many threads; a few malloc arenas keep the heap compact.
  imbridge::ConfigureProcessAllocator();

  // Signals are taken by sigwait below, on this thread only.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::string data_dir = config->data_dir();
  auto router = imbridge::bridge::Router::Start(*std::move(config));
  if (!router.ok()) {
    imbridge::LogError("router failed to start",
                       {{"error", router.status().message()}});
    return 1;
  }
  {
    std::string port = std::to_string((*router)->port());
    if (absl::Status s = imbridge::bridge::WritePortFile(
            data_dir + "/router.port", (*router)->port());
        !s.ok()) {
      // The router serves; only a supervisor reading the file is affected.
      imbridge::LogError("cannot write the port file",
                         {{"error", s.message()}});
    }
    std::printf("imbridge-router listening on port %s\n", port.c_str());
    std::fflush(stdout);
  }
  int signal = 0;
  sigwait(&signals, &signal);
  imbridge::LogInfo("signal received", {{"signal", strsignal(signal)}});
  (*router)->Shutdown();
  return 0;
}
