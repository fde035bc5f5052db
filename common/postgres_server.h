#ifndef IMBRIDGE_COMMON_POSTGRES_SERVER_H_
#define IMBRIDGE_COMMON_POSTGRES_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imbridge {

// A real PostgreSQL server (Debian's postgresql-15) of a process's own, in a
// temporary directory, on 127.0.0.1 and a free port: the tests'
// (tests/support/postgres_server.h, with fsync off) and imbridge-bench's
// (with fsync on, as in production). It lives here, not in tests/, so that
// tools can start one without depending on the tests.
//
// The cluster is made by `initdb` once per machine and user (a template in
// the temp dir, made under a file lock) and copied for each server, so that
// a test pays for a server start, not an initdb. PostgreSQL refuses to run
// as root: when the tests run as root the cluster belongs to `nobody` and
// the server runs as that user. The server's log is <dir>/postgres.log.
//
// TCP connections (the store's) authenticate user "imbridge" with
// password(); the Unix socket in the directory trusts it (for the tests'
// own queries). The server dies with the thread that started it (parent
// death signal, an immediate shutdown) if the test process dies without
// stopping it; the destructor stops it as `pg_ctl stop -m fast` does
// (SIGINT) and removes the directory. Not thread-safe.
class PostgresServer {
 public:
  // How the server runs.
  struct Options {
    // fsync, full_page_writes and synchronous_commit on, as a production
    // server runs; off (the tests' default) trades crash safety of the
    // server's own files for speed.
    bool durable = false;
    // The server's shared_buffers and max_connections.
    std::string shared_buffers = "16MB";
    int max_connections = 60;
  };

  // Starts a server; retries with another port if the one picked was taken
  // meanwhile. Fails with the server's log if it does not come up.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start(
      const Options& options);
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start() {
    return Start(Options());
  }
  ~PostgresServer();

  int port() const { return port_; }
  // The postmaster's process id (-1 while stopped).
  pid_t pid() const { return pid_; }
  // The password of user "imbridge" over TCP.
  const std::string& password() const { return password_; }
  // The directory holding the cluster, the socket and the log.
  const std::string& dir() const { return dir_; }

  // Creates an empty database and returns its name.
  absl::StatusOr<std::string> CreateDatabase();
  // A libpq connection string to `database` over TCP, without the password.
  std::string Dsn(absl::string_view database) const;
  // Runs `sql` in `database` over the Unix socket and returns the first
  // column of the first row ("" if there is none).
  absl::StatusOr<std::string> Query(absl::string_view database,
                                    absl::string_view sql) const;

  // Stops the server (fast shutdown: clients are disconnected) and starts
  // it again on the same port, keeping its data: for reconnection tests.
  absl::Status Stop();
  absl::Status Restart();
  // Stops the server as a crash would (SIGQUIT, PostgreSQL's immediate
  // shutdown: no checkpoint, clients cut off mid-statement); the next
  // Restart() starts it with crash recovery.
  absl::Status Crash();

 private:
  PostgresServer() = default;
  absl::Status Launch();
  // Sends `signal` to the server (SIGINT: fast shutdown, SIGQUIT: immediate)
  // and waits for it to exit.
  absl::Status StopWith(int signal);

  Options options_;
  std::string bin_dir_;
  std::string dir_;
  std::string password_;
  int port_ = 0;
  pid_t pid_ = -1;
  int databases_ = 0;
};

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_POSTGRES_SERVER_H_
