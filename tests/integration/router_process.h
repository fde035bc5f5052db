#ifndef IMBRIDGE_TESTS_INTEGRATION_ROUTER_PROCESS_H_
#define IMBRIDGE_TESTS_INTEGRATION_ROUTER_PROCESS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/integration/child_process.h"

namespace imbridge::testing {

// Runs the real imbridge-router binary as a child process on 127.0.0.1 with
// a config written to a fresh temporary directory. The first Start() picks a
// free port; later starts reuse it, so adapters reconnect to the same address.
// Not thread-safe.
class RouterProcess {
 public:
  // `config_body` is YAML without `listen` and `data_dir` (added here); an
  // `http: {listen: 127.0.0.1:0}` is added unless the body has `http:`.
  explicit RouterProcess(std::string config_body);
  ~RouterProcess() = default;  // SIGKILLs a running router.

  absl::Status Start();
  // SIGKILL, as a crash would.
  void Kill();
  // SIGTERM and wait; returns the exit status (or -1 on timeout).
  int Terminate(absl::Duration timeout = absl::Seconds(20));

  int port() const { return port_; }
  std::string address() const;
  // The port of the router's HTTP server (/metrics), once started.
  int http_port() const;
  // The sum of the /metrics samples of `name` whose labels include every
  // `label="value"` of `labels` (0 when there are none); an error when
  // /metrics does not answer.
  absl::StatusOr<double> Metric(
      const std::string& name,
      const std::vector<std::pair<std::string, std::string>>& labels) const;
  // Polls /metrics until Metric(name, labels) is at least `at_least`; false
  // if it is not by `timeout` (nor when /metrics does not answer).
  bool WaitForMetric(
      const std::string& name,
      const std::vector<std::pair<std::string, std::string>>& labels,
      double at_least, absl::Duration timeout = absl::Seconds(30)) const;
  const std::string& dir() const { return dir_; }
  std::string data_dir() const { return dir_ + "/data"; }
  // Everything the router wrote to stderr so far (its JSON log lines).
  std::string ReadLog() const;
  bool running() const { return process_.running(); }
  // The running process's id (-1 when none runs).
  pid_t pid() const { return process_.pid(); }

 private:
  std::string config_body_;
  std::string dir_;
  int port_ = 0;
  ChildProcess process_;
};

// The path of a binary in the build tree (IMBRIDGE_BUILD_DIR/relative).
std::string BuildPath(const std::string& relative);

// A fresh empty directory under the test temp dir.
std::string MakeTempDir(const std::string& prefix);

}  // namespace imbridge::testing

#endif  // IMBRIDGE_TESTS_INTEGRATION_ROUTER_PROCESS_H_
