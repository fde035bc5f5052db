#ifndef IMBRIDGE_TOOLS_IMBRIDGECTL_COMMANDS_H_
#define IMBRIDGE_TOOLS_IMBRIDGECTL_COMMANDS_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tools/imbridgectl/admin_client.h"
#include "tools/imbridgectl/cli.h"

namespace imbridge::ctl {

// Exit statuses of imbridgectl.
inline constexpr int kExitOk = 0;
inline constexpr int kExitCallFailed = 1;
inline constexpr int kExitUsage = 2;

// Runs one parsed command against the router: makes the Admin call and
// prints the answer to `out` (a table, or JSON with --json). When the call
// fails prints "imbridgectl: <CODE>: <message>" to `err` and returns
// kExitCallFailed; otherwise kExitOk. `now` turns timestamps into ages.
// Blocks for the call.
int RunCommand(const Invocation& invocation, AdminClient& client,
               std::ostream& out, std::ostream& err, absl::Time now);

// The whole tool: parses `args` (without the program name), connects to the
// router and runs the command. Returns the exit status.
int Main(const std::vector<std::string>& args, const EnvLookup& env,
         std::ostream& out, std::ostream& err);

// The one-line error for a failed call: "imbridgectl: CODE: message".
std::string CallError(const absl::Status& status);

}  // namespace imbridge::ctl

#endif  // IMBRIDGE_TOOLS_IMBRIDGECTL_COMMANDS_H_
