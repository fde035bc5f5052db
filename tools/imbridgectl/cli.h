#ifndef IMBRIDGE_TOOLS_IMBRIDGECTL_CLI_H_
#define IMBRIDGE_TOOLS_IMBRIDGECTL_CLI_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "imbridge/v1/admin.pb.h"
#include "imbridge/v1/config.pb.h"

namespace imbridge::ctl {

// Options every command shares.
struct GlobalOptions {
  // Router gRPC address, host:port: --router, else $IMBRIDGE_ROUTER, else
  // "127.0.0.1:7700".
  std::string router = "127.0.0.1:7700";
  // The admin token: --token, else the contents of --token-file (trailing
  // whitespace removed), else $IMBRIDGE_ADMIN_TOKEN; may be empty (the router
  // then answers UNAUTHENTICATED). Never printed.
  std::string token;
  // --json: print the answer as protobuf's JSON mapping.
  bool json = false;
  // --timeout: deadline of each call. Default 10 s.
  absl::Duration timeout = absl::Seconds(10);
};

// One parsed command line, ready to run. Only the fields of `command` are
// set.
struct Invocation {
  GlobalOptions global;
  // "link create", "link list", ..., "stats".
  std::string command;
  // link create|update: the link (from --member flags or --file).
  v1::Link link;
  // link show|delete: the link's name; webhook revoke: the webhook id.
  std::string name;
  // deadletter retry|drop: which dead letters.
  v1::DeadLetterSelection dead_letters;
  // deadletter list: --limit (0 = the router's default) and --before (0 =
  // from the newest).
  uint32_t limit = 0;
  uint64_t before_id = 0;
  // webhook create.
  v1::CreateWebhookRequest webhook;
  // webhook list: --include-revoked.
  bool include_revoked = false;
};

// What ParseCommandLine found.
struct ParseOutcome {
  enum Kind {
    kRun,    // `invocation` is ready.
    kHelp,   // --help: print `usage` to stdout, exit 0.
    kError,  // Print `error` and `usage` to stderr, exit 2.
  };
  Kind kind = kError;
  Invocation invocation;
  std::string error;
  // The usage text of the command (or of the whole tool).
  std::string usage;
};

// Looks up an environment variable; returns nullptr when unset.
using EnvLookup = std::function<const char*(const char*)>;

// Parses the arguments after the program name. Global flags may appear
// anywhere; "--flag value" and "--flag=value" both work; "--" ends flags.
// Reads --token-file and a link's --file (LoadConfigFile) while parsing; an
// unreadable or invalid file is a usage error naming it. Never blocks beyond
// reading those files; thread-compatible.
ParseOutcome ParseCommandLine(const std::vector<std::string>& args,
                              const EnvLookup& env);

// The tool's overview (every command with its synopsis).
std::string OverviewUsage();

// Parses one link member, "platform:account:chat_id[#thread][:in|out|both]".
// Colons inside chat_id are kept (only a final ":in", ":out" or ":both" is a
// direction); the thread is what follows the first '#'. InvalidArgument
// naming the problem for an empty platform, account or chat id.
absl::StatusOr<v1::LinkMember> ParseMemberSpec(absl::string_view spec);

// The inverse of ParseMemberSpec, with the direction only when not BOTH.
std::string FormatMemberSpec(const v1::LinkMember& member);

// Parses --timeout: a Go-style duration ("10s", "1m30s", "500ms") or a plain
// number of seconds. InvalidArgument unless positive.
absl::StatusOr<absl::Duration> ParseTimeout(absl::string_view text);

}  // namespace imbridge::ctl

#endif  // IMBRIDGE_TOOLS_IMBRIDGECTL_CLI_H_
