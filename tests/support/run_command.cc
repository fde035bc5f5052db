#include "tests/support/run_command.h"

#include <stdio.h>
#include <sys/wait.h>

#include <cstdlib>

namespace imbridge::testing {

std::string RunCommand(const std::string& command, int* exit_code) {
  std::string out;
  *exit_code = -1;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), pipe)) > 0) out.append(chunk, n);
  int status = pclose(pipe);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::string BuildBinary(const std::string& relative_path) {
  const char* dir = std::getenv("IMBRIDGE_BUILD_DIR");
  return std::string(dir != nullptr ? dir : ".") + "/" + relative_path;
}

}  // namespace imbridge::testing
