#include "tests/integration/adapter_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/router_process.h"

namespace imbridge::testing {

AdapterProcess::AdapterProcess(std::string binary, std::string config_body)
    : binary_(std::move(binary)),
      config_body_(std::move(config_body)),
      dir_(MakeTempDir("imbridge-adapter")) {}

AdapterProcess::~AdapterProcess() { Kill(); }

std::string AdapterProcess::base_url() const {
  return absl::StrCat("http://127.0.0.1:", port_);
}

absl::Status AdapterProcess::Start() {
  if (pid_ > 0) return absl::FailedPreconditionError("already running");
  std::string port_file = dir_ + "/adapter.port";
  {
    std::ofstream out(config_path());
    out << config_body_ << "\n"
        << "http:\n"
        << "  listen: 127.0.0.1:" << port_ << "\n"
        << "  port_file: " << port_file << "\n";
  }
  ::unlink(port_file.c_str());
  std::string binary = BuildPath(binary_);
  std::string log = dir_ + "/adapter.log";
  std::string config = config_path();
  pid_ = fork();
  if (pid_ == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, STDOUT_FILENO);
    execl(binary.c_str(), binary.c_str(), "--config", config.c_str(), nullptr);
    _exit(127);
  }
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    std::ifstream in(port_file);
    std::string text;
    int port = 0;
    if (in >> text && absl::SimpleAtoi(text, &port) && port > 0) {
      port_ = port;
      return absl::OkStatus();
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat(binary_, " exited at start: ", ReadLog()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(binary_, " did not start within 30 s: ", ReadLog()));
}

void AdapterProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

int AdapterProcess::Terminate(absl::Duration timeout) {
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

std::string AdapterProcess::ReadLog() const {
  std::ifstream in(dir_ + "/adapter.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace imbridge::testing
