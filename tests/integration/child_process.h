#ifndef IMBRIDGE_TESTS_INTEGRATION_CHILD_PROCESS_H_
#define IMBRIDGE_TESTS_INTEGRATION_CHILD_PROCESS_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace imbridge::testing {

// One of the project's binaries run as a child process for a test: started
// with `--config FILE`, its stderr appended to a log file, stdout discarded;
// ready once it has written a port number to a port file. Killed (SIGKILL)
// when destroyed. Not thread-safe.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess() { Kill(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Runs `binary` (an absolute path) with `--config config_path`, then
  // waits up to 30 s for `port_file` to hold a port (removed first). Fails
  // with the log's contents if the process exits first.
  absl::Status Start(const std::string& binary, const std::string& config_path,
                     const std::string& log_path, const std::string& port_file,
                     int* port);
  // SIGKILL, as a crash would.
  void Kill();
  // SIGTERM and wait; returns the exit status (or -1 on timeout, after a
  // SIGKILL).
  int Terminate(absl::Duration timeout);
  bool running() const { return pid_ > 0; }
  // The running process's id (-1 when none runs).
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// The whole contents of a file ("" if it cannot be read).
std::string ReadWholeFile(const std::string& path);

}  // namespace imbridge::testing

#endif  // IMBRIDGE_TESTS_INTEGRATION_CHILD_PROCESS_H_
