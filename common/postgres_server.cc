#include "common/postgres_server.h"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace imbridge {
namespace {

namespace fs = std::filesystem;

constexpr char kUser[] = "imbridge";

// Who runs the server: `nobody` when we are root (PostgreSQL refuses root),
// else ourselves.
struct RunAs {
  bool drop = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

absl::StatusOr<RunAs> ServerUser() {
  RunAs user;
  user.uid = geteuid();
  user.gid = getegid();
  if (user.uid != 0) return user;
  const passwd* nobody = getpwnam("nobody");
  if (nobody == nullptr) {
    return absl::FailedPreconditionError(
        "running as root and there is no user 'nobody' to run PostgreSQL as");
  }
  user.drop = true;
  user.uid = nobody->pw_uid;
  user.gid = nobody->pw_gid;
  return user;
}

// The directory of initdb and postgres: $IMBRIDGE_PG_BINDIR, else
// Debian's /usr/lib/postgresql/<newest>/bin.
absl::StatusOr<std::string> BinDir() {
  if (const char* env = std::getenv("IMBRIDGE_PG_BINDIR"); env && *env) {
    return std::string(env);
  }
  std::string best;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    std::string bin = (entry.path() / "bin").string();
    if (access((bin + "/initdb").c_str(), X_OK) == 0 &&
        access((bin + "/postgres").c_str(), X_OK) == 0 && bin > best) {
      best = bin;
    }
  }
  if (best.empty()) {
    return absl::FailedPreconditionError(
        "no PostgreSQL server found in /usr/lib/postgresql/*/bin (install "
        "Debian's postgresql: scripts/install-deps.sh)");
  }
  return best;
}

absl::Status Chown(const std::string& path, const RunAs& user) {
  if (!user.drop) return absl::OkStatus();
  if (chown(path.c_str(), user.uid, user.gid) != 0) {
    return absl::InternalError(
        absl::StrCat("chown ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

std::string Tail(const std::string& text, size_t n = 2000) {
  return text.size() <= n ? text : text.substr(text.size() - n);
}

// Forks and execs `argv` with stdout and stderr appended to `log`, as
// `user` if it says to drop privileges; with `tie_to_parent` the child gets
// SIGQUIT (PostgreSQL's immediate shutdown) when this thread dies. Returns
// the child's pid.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                            const std::string& log, const RunAs& user,
                            bool tie_to_parent) {
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int log_fd =
      open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(
        absl::StrCat("open ", log, ": ", std::strerror(errno)));
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    if (user.drop) {
      if (setgroups(0, nullptr) != 0 || setgid(user.gid) != 0 ||
          setuid(user.uid) != 0) {
        _exit(126);
      }
    }
    // After setuid, which clears it.
    if (tie_to_parent) {
      prctl(PR_SET_PDEATHSIG, SIGQUIT);
      if (getppid() != parent) _exit(125);
    }
    // The server outlives this process's connections; it must not hold any
    // of them (or their listeners) open.
    closefrom(STDERR_FILENO + 1);
    execv(args[0], args.data());
    _exit(127);
  }
  close(log_fd);
  return pid;
}

// Runs `argv` to completion; fails with its log on a non-zero exit.
absl::Status Run(const std::vector<std::string>& argv, const std::string& log,
                 const RunAs& user) {
  absl::StatusOr<pid_t> pid = Spawn(argv, log, user, /*tie_to_parent=*/false);
  if (!pid.ok()) return pid.status();
  int status = 0;
  while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(argv[0], " failed (status ", status,
                                          "): ", Tail(ReadFile(log))));
}

absl::StatusOr<std::string> MakeTempDir(const std::string& prefix) {
  std::string path = (fs::temp_directory_path() / (prefix + "XXXXXX")).string();
  if (mkdtemp(path.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("mkdtemp ", path, ": ", std::strerror(errno)));
  }
  return path;
}

// A free TCP port on 127.0.0.1 (it may be taken again before it is used:
// the caller retries).
absl::StatusOr<int> FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return absl::InternalError(absl::StrCat("bind: ", std::strerror(errno)));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// The initdb-made cluster every server copies, and the password of its
// user: made once per machine, PostgreSQL version and user, under a lock.
absl::StatusOr<std::string> Template(const std::string& bin_dir,
                                     const RunAs& user) {
  std::string version = fs::path(bin_dir).parent_path().filename().string();
  std::string root =
      (fs::temp_directory_path() /
       absl::StrCat("imbridge-pg-template-", version, "-", user.uid))
          .string();
  int lock = open((root + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0 || flock(lock, LOCK_EX) != 0) {
    if (lock >= 0) close(lock);
    return absl::InternalError(
        absl::StrCat("locking ", root, ".lock: ", std::strerror(errno)));
  }
  absl::Status status = [&]() -> absl::Status {
    if (fs::exists(root + "/data/PG_VERSION") &&
        fs::exists(root + "/password")) {
      return absl::OkStatus();
    }
    absl::StatusOr<std::string> work = MakeTempDir(root + ".tmp");
    if (!work.ok()) return work.status();
    absl::BitGen gen;
    std::string password =
        absl::StrFormat("pw%016x%016x", absl::Uniform<uint64_t>(gen),
                        absl::Uniform<uint64_t>(gen));
    std::ofstream(*work + "/password") << password << "\n";
    if (absl::Status s = Chown(*work, user); !s.ok()) return s;
    if (absl::Status s = Chown(*work + "/password", user); !s.ok()) return s;
    if (absl::Status s =
            Run({bin_dir + "/initdb", "-D", *work + "/data", "-U", kUser,
                 "--pwfile=" + *work + "/password", "--auth-host=scram-sha-256",
                 "--auth-local=trust", "-E", "UTF8", "--locale=C", "--no-sync",
                 "--no-instructions"},
                *work + "/initdb.log", user);
        !s.ok()) {
      fs::remove_all(*work);
      return s;
    }
    std::error_code ec;
    fs::remove_all(root, ec);
    fs::rename(*work, root, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("rename ", *work, " to ", root, ": ", ec.message()));
    }
    return absl::OkStatus();
  }();
  flock(lock, LOCK_UN);
  close(lock);
  if (!status.ok()) return status;
  return root;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start(
    const Options& options) {
  absl::StatusOr<RunAs> user = ServerUser();
  if (!user.ok()) return user.status();
  absl::StatusOr<std::string> bin_dir = BinDir();
  if (!bin_dir.ok()) return bin_dir.status();
  absl::StatusOr<std::string> root = Template(*bin_dir, *user);
  if (!root.ok()) return root.status();

  std::unique_ptr<PostgresServer> server(new PostgresServer());
  server->options_ = options;
  server->bin_dir_ = *bin_dir;
  absl::StatusOr<std::string> dir = MakeTempDir("imbridge-pg-");
  if (!dir.ok()) return dir.status();
  server->dir_ = *dir;
  server->password_ = std::string(
      absl::StripTrailingAsciiWhitespace(ReadFile(*root + "/password")));
  if (absl::Status s = Chown(server->dir_, *user); !s.ok()) return s;
  // cp -a keeps the owner (and the 0700 mode PostgreSQL insists on).
  if (absl::Status s =
          Run({"/bin/cp", "-a", *root + "/data", server->dir_ + "/data"},
              server->dir_ + "/cp.log", RunAs());
      !s.ok()) {
    return s;
  }
  if (absl::Status s = server->Launch(); !s.ok()) return s;
  return server;
}

absl::Status PostgresServer::Launch() {
  auto durability = [this](const char* setting) {
    return absl::StrCat(setting, "=", options_.durable ? "on" : "off");
  };
  absl::StatusOr<RunAs> user = ServerUser();
  if (!user.ok()) return user.status();
  const std::string log = dir_ + "/postgres.log";
  absl::Status last = absl::OkStatus();
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (port_ == 0 || attempt > 0) {
      absl::StatusOr<int> port = FreePort();
      if (!port.ok()) return port.status();
      port_ = *port;
    }
    const size_t log_start = ReadFile(log).size();
    absl::StatusOr<pid_t> pid =
        Spawn({bin_dir_ + "/postgres",
               "-D",
               dir_ + "/data",
               "-p",
               std::to_string(port_),
               "-k",
               dir_,
               "-h",
               "127.0.0.1",
               "-c",
               durability("fsync"),
               "-c",
               durability("full_page_writes"),
               "-c",
               "synchronous_commit=on",
               "-c",
               "shared_buffers=" + options_.shared_buffers,
               "-c",
               absl::StrCat("max_connections=", options_.max_connections),
               "-c",
               "logging_collector=off"},
              log, *user, /*tie_to_parent=*/true);
    if (!pid.ok()) return pid.status();
    pid_ = *pid;
    const std::string ping =
        absl::StrCat("host=", dir_, " port=", port_,
                     " dbname=postgres user=", kUser, " connect_timeout=5");
    const absl::Time deadline = absl::Now() + absl::Seconds(90);
    bool exited = false;
    while (absl::Now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited = true;
        pid_ = -1;
        break;
      }
      if (PQping(ping.c_str()) == PQPING_OK) return absl::OkStatus();
      absl::SleepFor(absl::Milliseconds(50));
    }
    std::string output = ReadFile(log).substr(log_start);
    if (!exited) {
      kill(pid_, SIGQUIT);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      return absl::DeadlineExceededError(absl::StrCat(
          "PostgreSQL did not accept connections within 90 s: ", Tail(output)));
    }
    last = absl::InternalError(
        absl::StrCat("PostgreSQL exited at start: ", Tail(output)));
    // Only a port taken meanwhile is worth another try.
    if (!absl::StrContains(output, "could not bind") &&
        !absl::StrContains(output, "already in use")) {
      return last;
    }
  }
  return last;
}

absl::Status PostgresServer::Stop() { return StopWith(SIGINT); }

absl::Status PostgresServer::Crash() { return StopWith(SIGQUIT); }

absl::Status PostgresServer::StopWith(int signal) {
  if (pid_ <= 0) return absl::OkStatus();
  kill(pid_, signal);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  return absl::DeadlineExceededError("PostgreSQL did not stop within 60 s");
}

absl::Status PostgresServer::Restart() {
  if (absl::Status s = Stop(); !s.ok()) return s;
  return Launch();
}

PostgresServer::~PostgresServer() {
  Stop().IgnoreError();
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

absl::StatusOr<std::string> PostgresServer::CreateDatabase() {
  std::string name = absl::StrCat("test_", getpid(), "_", ++databases_);
  absl::StatusOr<std::string> created =
      Query("postgres", absl::StrCat("CREATE DATABASE ", name));
  if (!created.ok()) return created.status();
  return name;
}

std::string PostgresServer::Dsn(absl::string_view database) const {
  return absl::StrCat("host=127.0.0.1 port=", port_, " dbname=", database,
                      " user=", kUser, " connect_timeout=10");
}

absl::StatusOr<std::string> PostgresServer::Query(absl::string_view database,
                                                  absl::string_view sql) const {
  std::string conninfo = absl::StrCat("host=", dir_, " port=", port_,
                                      " dbname=", database, " user=", kUser);
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(conninfo.c_str()),
                                                  PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(
        absl::StrCat("connecting: ", PQerrorMessage(conn.get())));
  }
  std::string text(sql);
  std::unique_ptr<PGresult, void (*)(PGresult*)> result(
      PQexec(conn.get(), text.c_str()), PQclear);
  ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    return absl::InternalError(
        absl::StrCat(sql, ": ", PQresultErrorMessage(result.get())));
  }
  if (status != PGRES_TUPLES_OK || PQntuples(result.get()) == 0) return "";
  return std::string(PQgetvalue(result.get(), 0, 0));
}

}  // namespace imbridge
