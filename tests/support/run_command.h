#ifndef IMBRIDGE_TESTS_SUPPORT_RUN_COMMAND_H_
#define IMBRIDGE_TESTS_SUPPORT_RUN_COMMAND_H_

#include <string>

namespace imbridge::testing {

// Runs `command` through the shell and returns what it wrote to stdout (add
// "2>&1" to the command for stderr too) once it exited; *exit_code is its
// exit status, or -1 if it did not exit normally (a signal).
std::string RunCommand(const std::string& command, int* exit_code);

// A binary of this build: IMBRIDGE_BUILD_DIR (set by ctest) joined with
// `relative_path` ("tools/bench/imbridge-bench").
std::string BuildBinary(const std::string& relative_path);

}  // namespace imbridge::testing

#endif  // IMBRIDGE_TESTS_SUPPORT_RUN_COMMAND_H_
