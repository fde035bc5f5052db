#include "tests/integration/router_process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace imbridge::testing {

std::string BuildPath(const std::string& relative) {
  const char* build = std::getenv("IMBRIDGE_BUILD_DIR");
  return absl::StrCat(build != nullptr ? build : ".", "/", relative);
}

std::string MakeTempDir(const std::string& prefix) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl =
      absl::StrCat(base != nullptr ? base : "/tmp", "/", prefix, "-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) abort();
  return tmpl;
}

RouterProcess::RouterProcess(std::string config_body)
    : config_body_(std::move(config_body)),
      dir_(MakeTempDir("imbridge-router")) {}

RouterProcess::~RouterProcess() { Kill(); }

std::string RouterProcess::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

absl::Status RouterProcess::Start() {
  if (pid_ > 0) return absl::FailedPreconditionError("already running");
  std::string config_path = dir_ + "/router.yaml";
  {
    std::ofstream out(config_path);
    out << "listen: 127.0.0.1:" << port_ << "\n"
        << "data_dir: " << data_dir() << "\n"
        << config_body_ << "\n";
    // The HTTP server (metrics) on a free port too, unless the test sets it.
    if (config_body_.rfind("http:", 0) != 0 &&
        config_body_.find("\nhttp:") == std::string::npos) {
      out << "http: {listen: '127.0.0.1:0'}\n";
    }
  }
  std::string port_file = data_dir() + "/router.port";
  ::unlink(port_file.c_str());
  std::string binary = BuildPath("bridge/imbridge-router");
  std::string log = dir_ + "/router.log";
  pid_ = fork();
  if (pid_ == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, STDOUT_FILENO);
    execl(binary.c_str(), binary.c_str(), "--config", config_path.c_str(),
          nullptr);
    _exit(127);
  }
  ++starts_;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    std::ifstream in(port_file);
    std::string text;
    if (in >> text) {
      int port = 0;
      if (absl::SimpleAtoi(text, &port) && port > 0) {
        port_ = port;
        return absl::OkStatus();
      }
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("router exited at start: ", ReadLog()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("router did not start within 30 s");
}

void RouterProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

int RouterProcess::Terminate(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  Kill();
  return -1;
}

int RouterProcess::http_port() const {
  std::ifstream in(data_dir() + "/router.http.port");
  int port = 0;
  in >> port;
  return port;
}

std::string RouterProcess::ReadLog() const {
  std::ifstream in(dir_ + "/router.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace imbridge::testing
