#ifndef IMBRIDGE_TESTS_INTEGRATION_ADAPTER_PROCESS_H_
#define IMBRIDGE_TESTS_INTEGRATION_ADAPTER_PROCESS_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/integration/child_process.h"

namespace imbridge::testing {

// Runs a real adapter binary (for example "adapters/telegram/
// imbridge-adapter-telegram", relative to the build dir) as a child process
// with a YAML config written to a fresh temporary directory. The config gets
// `http.listen` and `http.port_file` appended under an `http:` key, so
// `config_body` must not have its own `http:` section (more fields of it,
// such as limits, go through set_http_fields()); the first Start() picks a
// free port and later starts reuse it. Not thread-safe.
class AdapterProcess {
 public:
  AdapterProcess(std::string binary, std::string config_body);
  ~AdapterProcess() = default;  // SIGKILLs a running adapter.

  // More fields of the `http:` block, one "name: value" a line (for
  // example "header_timeout_ms: 3000\n"); takes effect at the next Start().
  void set_http_fields(std::string fields) { http_fields_ = std::move(fields); }

  // Starts the binary and waits until its HTTP server listens.
  absl::Status Start();
  // SIGKILL, as a crash would.
  void Kill();
  // SIGTERM and wait; returns the exit status (or -1 on timeout).
  int Terminate(absl::Duration timeout = absl::Seconds(20));

  // The adapter's HTTP port (valid after the first Start()).
  int port() const { return port_; }
  std::string base_url() const;
  const std::string& dir() const { return dir_; }
  std::string config_path() const { return dir_ + "/adapter.yaml"; }
  // Everything the adapter wrote to stderr so far (its JSON log lines).
  std::string ReadLog() const;
  bool running() const { return process_.running(); }
  // The running process's id (-1 when none runs).
  pid_t pid() const { return process_.pid(); }

 private:
  std::string binary_;
  std::string config_body_;
  std::string http_fields_;
  std::string dir_;
  int port_ = 0;
  ChildProcess process_;
};

}  // namespace imbridge::testing

#endif  // IMBRIDGE_TESTS_INTEGRATION_ADAPTER_PROCESS_H_
