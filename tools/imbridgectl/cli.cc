#include "tools/imbridgectl/cli.h"

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/config_loader.h"

namespace imbridge::ctl {
namespace {

// A command-line flag: its name without "--", whether it takes a value, and
// its help line.
struct FlagSpec {
  const char* name;
  bool takes_value;
  const char* value_name;
  const char* help;
};

// One command: its words, its synopsis lines (after "imbridgectl"), what it
// does, and the flags it accepts besides the global ones.
struct CommandSpec {
  const char* name;
  std::vector<const char*> synopsis;
  const char* summary;
  std::vector<FlagSpec> flags;
};

const std::vector<FlagSpec>& GlobalFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {"router", true, "HOST:PORT",
       "router gRPC address (env IMBRIDGE_ROUTER; default 127.0.0.1:7700)"},
      {"token", true, "TOKEN",
       "admin token (env IMBRIDGE_ADMIN_TOKEN); prefer --token-file"},
      {"token-file", true, "FILE", "read the admin token from FILE"},
      {"json", false, nullptr,
       "print the answer as JSON (protobuf JSON mapping)"},
      {"timeout", true, "DURATION",
       "deadline of the call, e.g. 10s, 500ms (default 10s)"},
      {"help", false, nullptr, "show help (of a command: after its words)"},
  };
  return *flags;
}

const FlagSpec kMemberFlag{
    "member", true, "SPEC",
    "a member: platform:account:chat_id[#thread][:in|out|both] (repeat)"};
const FlagSpec kFileFlag{"file", true, "FILE",
                         "read the link (name and members) from a YAML file"};
const FlagSpec kAllFlag{"all", false, nullptr, "every dead letter"};

const std::vector<CommandSpec>& Commands() {
  static const auto* commands = new std::vector<CommandSpec>{
      {"link list",
       {"link list"},
       "Lists the links: those of the config file and the runtime ones.",
       {}},
      {"link show",
       {"link show NAME"},
       "Shows one link: members, options and webhooks.",
       {}},
      {"link create",
       {"link create NAME --member SPEC --member SPEC...",
        "link create [NAME] --file LINK.yaml"},
       "Creates a runtime link (stored in the router's database). The name "
       "must not be used by any link, from the config file or runtime.",
       {kMemberFlag, kFileFlag}},
      {"link update",
       {"link update NAME --member SPEC --member SPEC...",
        "link update [NAME] --file LINK.yaml"},
       "Replaces the members of a runtime link. Links from the config file "
       "are changed by editing the file.",
       {kMemberFlag, kFileFlag}},
      {"link delete",
       {"link delete NAME"},
       "Deletes a runtime link; deliveries already queued are still made.",
       {}},
      {"adapter list",
       {"adapter list"},
       "Lists the adapters attached to the router now.",
       {}},
      {"queue list",
       {"queue list"},
       "Lists the delivery queue of every target channel.",
       {}},
      {"deadletter list",
       {"deadletter list [--limit N] [--before ID]"},
       "Lists dead-lettered deliveries, newest (highest id) first, a page at "
       "a time; when more follow, the last line gives the command for the "
       "next page.",
       {{"limit", true, "N", "at most N, 1 to 1000 (default 100)"},
        {"before", true, "ID", "only dead letters with an id below ID"}}},
      {"deadletter retry",
       {"deadletter retry ID...", "deadletter retry --all"},
       "Puts dead letters back in their queues (attempts start again).",
       {kAllFlag}},
      {"deadletter drop",
       {"deadletter drop ID...", "deadletter drop --all"},
       "Removes dead letters for good.",
       {kAllFlag}},
      {"webhook create",
       {"webhook create --link LINK [--account A] [--description D]",
        "webhook create --link LINK --outgoing --url URL [--account A] "
        "[--description D]"},
       "Creates a generic webhook on a link: incoming (an external system "
       "POSTs messages with an API key) or outgoing (the link's messages are "
       "POSTed, signed, to URL). Prints the key or secret once.",
       {{"link", true, "LINK", "the link to attach the webhook to (required)"},
        {"outgoing", false, nullptr, "an outgoing webhook (needs --url)"},
        {"incoming", false, nullptr, "an incoming webhook (the default)"},
        {"url", true, "URL", "where an outgoing webhook POSTs (http/https)"},
        {"account", true, "ACCOUNT",
         "the webhook adapter's account (default \"default\")"},
        {"description", true, "TEXT", "a note for the operator"}}},
      {"webhook revoke",
       {"webhook revoke ID"},
       "Revokes a webhook; it is refused at once.",
       {}},
      {"webhook list",
       {"webhook list [--include-revoked]"},
       "Lists the webhooks (never their keys or secrets).",
       {{"include-revoked", false, nullptr, "also list revoked webhooks"}}},
      {"stats", {"stats"}, "Shows the router's totals and current state.", {}},
  };
  return *commands;
}

const CommandSpec* FindCommand(absl::string_view name) {
  for (const CommandSpec& c : Commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

const FlagSpec* FindFlag(const std::vector<FlagSpec>& flags,
                         absl::string_view name) {
  for (const FlagSpec& f : flags) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

// Whether any command (or the globals) knows the flag, and so whether it
// takes a value; flags are parsed before the command is known.
const FlagSpec* FindAnyFlag(absl::string_view name) {
  if (const FlagSpec* f = FindFlag(GlobalFlags(), name)) return f;
  for (const CommandSpec& c : Commands()) {
    if (const FlagSpec* f = FindFlag(c.flags, name)) return f;
  }
  return nullptr;
}

void AppendFlagHelp(const std::vector<FlagSpec>& flags, std::string* out) {
  for (const FlagSpec& f : flags) {
    std::string left = absl::StrCat("  --", f.name);
    if (f.takes_value) absl::StrAppend(&left, " ", f.value_name);
    if (left.size() < 24)
      left.resize(24, ' ');
    else
      left += "  ";
    absl::StrAppend(out, left, f.help, "\n");
  }
}

// `text` broken into lines of at most `width` characters at spaces.
std::string Wrap(absl::string_view text, size_t width) {
  std::string out;
  size_t line = 0;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (line > 0 && line + 1 + word.size() > width) {
      out += '\n';
      line = 0;
    } else if (line > 0) {
      out += ' ';
      ++line;
    }
    absl::StrAppend(&out, word);
    line += word.size();
  }
  return out;
}

std::string CommandUsage(const CommandSpec& c) {
  std::string out;
  for (size_t i = 0; i < c.synopsis.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "usage: " : "       ", "imbridgectl ",
                    c.synopsis[i], "\n");
  }
  absl::StrAppend(&out, "\n", Wrap(c.summary, 78), "\n");
  if (!c.flags.empty()) {
    absl::StrAppend(&out, "\nflags:\n");
    AppendFlagHelp(c.flags, &out);
  }
  absl::StrAppend(&out, "\nglobal flags:\n");
  AppendFlagHelp(GlobalFlags(), &out);
  return out;
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string token = buffer.str();
  while (!token.empty() && absl::ascii_isspace(token.back())) token.pop_back();
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is empty"));
  }
  return token;
}

// A flag as found on the command line.
struct FoundFlag {
  std::string name;
  std::string value;
};

}  // namespace

std::string OverviewUsage() {
  std::string out =
      "usage: imbridgectl [global flags] COMMAND [args]\n\n"
      "Operates a running imbridge router over its Admin API.\n\n"
      "commands:\n";
  for (const CommandSpec& c : Commands()) {
    for (const char* s : c.synopsis) absl::StrAppend(&out, "  ", s, "\n");
  }
  absl::StrAppend(&out, "\nglobal flags:\n");
  AppendFlagHelp(GlobalFlags(), &out);
  absl::StrAppend(&out,
                  "\n'imbridgectl COMMAND --help' describes one command.\n"
                  "Exit status: 0 done, 1 the router refused or could not be "
                  "reached, 2 bad usage.\n");
  return out;
}

absl::StatusOr<v1::LinkMember> ParseMemberSpec(absl::string_view spec) {
  v1::LinkMember member;
  absl::string_view rest = spec;
  size_t colon = rest.find(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("member '", spec,
                     "': expected platform:account:chat_id[#thread][:in|out|"
                     "both]"));
  }
  member.set_platform(std::string(rest.substr(0, colon)));
  rest.remove_prefix(colon + 1);
  colon = rest.find(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("member '", spec, "': expected platform:account:chat_id"));
  }
  member.set_account(std::string(rest.substr(0, colon)));
  rest.remove_prefix(colon + 1);
  size_t last = rest.rfind(':');
  if (last != absl::string_view::npos) {
    std::string direction = absl::AsciiStrToLower(rest.substr(last + 1));
    bool known = true;
    if (direction == "in") {
      member.set_direction(v1::IN);
    } else if (direction == "out") {
      member.set_direction(v1::OUT);
    } else if (direction == "both") {
      member.set_direction(v1::BOTH);
    } else {
      known = false;
    }
    if (known) rest = rest.substr(0, last);
  }
  size_t hash = rest.find('#');
  if (hash != absl::string_view::npos) {
    member.set_thread_id(std::string(rest.substr(hash + 1)));
    rest = rest.substr(0, hash);
    if (member.thread_id().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("member '", spec, "': empty thread after '#'"));
    }
  }
  member.set_chat_id(std::string(rest));
  if (member.platform().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("member '", spec, "': empty platform"));
  }
  if (member.account().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("member '", spec, "': empty account"));
  }
  if (member.chat_id().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("member '", spec, "': empty chat id"));
  }
  return member;
}

std::string FormatMemberSpec(const v1::LinkMember& member) {
  std::string out = absl::StrCat(member.platform(), ":", member.account(), ":",
                                 member.chat_id());
  if (!member.thread_id().empty())
    absl::StrAppend(&out, "#", member.thread_id());
  if (member.direction() == v1::IN) absl::StrAppend(&out, ":in");
  if (member.direction() == v1::OUT) absl::StrAppend(&out, ":out");
  return out;
}

absl::StatusOr<absl::Duration> ParseTimeout(absl::string_view text) {
  absl::Duration d;
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &d)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--timeout '", text, "': expected a duration such as 10s or 500ms"));
  }
  if (d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--timeout must be positive");
  }
  return d;
}

ParseOutcome ParseCommandLine(const std::vector<std::string>& args,
                              const EnvLookup& env) {
  ParseOutcome outcome;
  std::vector<std::string> words;
  std::vector<FoundFlag> flags;
  bool help = false;

  // Splits words from flags; a flag's value is taken from "=..." or the next
  // argument.
  std::string flag_error;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      words.insert(words.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg == "-h") {
      help = true;
      continue;
    }
    if (!absl::StartsWith(arg, "--")) {
      if (absl::StartsWith(arg, "-") && arg.size() > 1 && flag_error.empty() &&
          !absl::ascii_isdigit(static_cast<unsigned char>(arg[1]))) {
        flag_error = absl::StrCat("unknown flag '", arg, "'");
      }
      words.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const FlagSpec* spec = FindAnyFlag(name);
    if (spec == nullptr) {
      if (flag_error.empty()) {
        flag_error = absl::StrCat("unknown flag '--", name, "'");
      }
      continue;
    }
    if (name == "help") {
      help = true;
      continue;
    }
    if (spec->takes_value && !has_value) {
      if (i + 1 >= args.size()) {
        if (flag_error.empty()) {
          flag_error = absl::StrCat("--", name, " needs a value (",
                                    spec->value_name, ")");
        }
        continue;
      }
      value = args[++i];
    } else if (!spec->takes_value && has_value) {
      if (flag_error.empty()) {
        flag_error = absl::StrCat("--", name, " takes no value");
      }
      continue;
    }
    flags.push_back({name, value});
  }

  // The command: one word ("stats") or two ("link create"); "help" shows
  // the usage of what follows.
  if (!words.empty() && words[0] == "help") {
    help = true;
    words.erase(words.begin());
  }
  const CommandSpec* command = nullptr;
  size_t consumed = 0;
  if (!words.empty()) {
    command = FindCommand(words[0]);
    consumed = 1;
    if (command == nullptr && words.size() >= 2) {
      command = FindCommand(absl::StrCat(words[0], " ", words[1]));
      consumed = 2;
    }
  }
  outcome.usage = command != nullptr ? CommandUsage(*command) : OverviewUsage();
  if (help) {
    outcome.kind = ParseOutcome::kHelp;
    return outcome;
  }
  if (!flag_error.empty()) {
    outcome.error = flag_error;
    return outcome;
  }
  if (command == nullptr) {
    outcome.error =
        words.empty()
            ? std::string("no command given")
            : absl::StrCat(
                  "unknown command '",
                  absl::StrJoin(
                      words.begin(),
                      words.begin() + std::min<size_t>(2, words.size()), " "),
                  "'");
    return outcome;
  }
  std::vector<std::string> positional(words.begin() + consumed, words.end());

  // Flags: global ones anywhere, the command's own, each once (except
  // --member).
  Invocation& inv = outcome.invocation;
  inv.command = command->name;
  std::multimap<std::string, std::string> values;
  for (const FoundFlag& f : flags) {
    if (FindFlag(GlobalFlags(), f.name) == nullptr &&
        FindFlag(command->flags, f.name) == nullptr) {
      outcome.error =
          absl::StrCat("'", command->name, "' has no flag --", f.name);
      return outcome;
    }
    if (f.name != "member" && values.count(f.name) > 0) {
      outcome.error = absl::StrCat("--", f.name, " given twice");
      return outcome;
    }
    values.emplace(f.name, f.value);
  }
  auto has = [&](const char* name) { return values.count(name) > 0; };
  auto get = [&](const char* name) {
    auto it = values.find(name);
    return it == values.end() ? std::string() : it->second;
  };
  auto fail = [&](std::string message) {
    outcome.error = std::move(message);
    outcome.kind = ParseOutcome::kError;
    return outcome;
  };

  // Global options.
  if (has("router")) {
    inv.global.router = get("router");
  } else if (const char* r = env("IMBRIDGE_ROUTER"); r != nullptr && *r) {
    inv.global.router = r;
  }
  if (inv.global.router.empty()) return fail("--router is empty");
  if (has("token") && has("token-file")) {
    return fail("give either --token or --token-file, not both");
  }
  if (has("token")) {
    inv.global.token = get("token");
  } else if (has("token-file")) {
    absl::StatusOr<std::string> token = ReadTokenFile(get("token-file"));
    if (!token.ok()) {
      return fail(absl::StrCat("--token-file: ", token.status().message()));
    }
    inv.global.token = *std::move(token);
  } else if (const char* t = env("IMBRIDGE_ADMIN_TOKEN"); t != nullptr) {
    inv.global.token = t;
  }
  inv.global.json = has("json");
  if (has("timeout")) {
    absl::StatusOr<absl::Duration> timeout = ParseTimeout(get("timeout"));
    if (!timeout.ok()) return fail(std::string(timeout.status().message()));
    inv.global.timeout = *timeout;
  }

  // The command's own arguments.
  const std::string name = command->name;
  auto want_positionals = [&](size_t n, const char* what) -> bool {
    if (positional.size() < n) {
      fail(absl::StrCat("'", name, "' needs ", what));
      return false;
    }
    if (positional.size() > n) {
      fail(absl::StrCat("unexpected argument '", positional[n], "'"));
      return false;
    }
    return true;
  };

  if (name == "link list" || name == "adapter list" || name == "queue list" ||
      name == "stats" || name == "webhook list" || name == "deadletter list") {
    if (!want_positionals(0, "")) return outcome;
    inv.include_revoked = has("include-revoked");
    if (has("limit")) {
      uint32_t limit = 0;
      if (!absl::SimpleAtoi(get("limit"), &limit) || limit == 0 ||
          limit > 1000) {
        return fail(absl::StrCat("--limit '", get("limit"),
                                 "': expected a number from 1 to 1000"));
      }
      inv.limit = limit;
    }
    if (has("before")) {
      uint64_t before = 0;
      if (!absl::SimpleAtoi(get("before"), &before) || before == 0) {
        return fail(absl::StrCat("--before '", get("before"),
                                 "' is not a dead letter id"));
      }
      inv.before_id = before;
    }
  } else if (name == "link show" || name == "link delete" ||
             name == "webhook revoke") {
    if (!want_positionals(
            1, name == "webhook revoke" ? "the webhook id" : "the link name")) {
      return outcome;
    }
    inv.name = positional[0];
    if (inv.name.empty()) return fail("the name is empty");
  } else if (name == "link create" || name == "link update") {
    if (positional.size() > 1) {
      return fail(absl::StrCat("unexpected argument '", positional[1], "'"));
    }
    std::string link_name = positional.empty() ? "" : positional[0];
    if (has("file")) {
      if (has("member"))
        return fail("give either --member or --file, not both");
      absl::Status status = LoadConfigFile(get("file"), &inv.link);
      if (!status.ok()) return fail(std::string(status.message()));
      if (!link_name.empty() && !inv.link.name().empty() &&
          link_name != inv.link.name()) {
        return fail(absl::StrCat("the name '", link_name,
                                 "' differs from the file's name '",
                                 inv.link.name(), "'"));
      }
      if (!link_name.empty()) inv.link.set_name(link_name);
      if (inv.link.name().empty()) {
        return fail("the link needs a name (in the file or as NAME)");
      }
    } else {
      if (link_name.empty())
        return fail(absl::StrCat("'", name, "' needs NAME"));
      if (!has("member")) {
        return fail("give the members with --member SPEC (or --file)");
      }
      inv.link.set_name(link_name);
      auto range = values.equal_range("member");
      for (auto it = range.first; it != range.second; ++it) {
        absl::StatusOr<v1::LinkMember> member = ParseMemberSpec(it->second);
        if (!member.ok()) return fail(std::string(member.status().message()));
        *inv.link.add_members() = *std::move(member);
      }
    }
  } else if (name == "deadletter retry" || name == "deadletter drop") {
    bool all = has("all");
    if (all && !positional.empty()) {
      return fail("give either dead letter ids or --all, not both");
    }
    if (!all && positional.empty()) {
      return fail("give the dead letter ids (see 'deadletter list') or --all");
    }
    inv.dead_letters.set_all(all);
    for (const std::string& id : positional) {
      uint64_t value = 0;
      if (!absl::SimpleAtoi(id, &value) || value == 0) {
        return fail(absl::StrCat("'", id, "' is not a dead letter id"));
      }
      inv.dead_letters.add_ids(value);
    }
  } else if (name == "webhook create") {
    if (!want_positionals(0, "")) return outcome;
    if (!has("link") || get("link").empty()) {
      return fail("'webhook create' needs --link LINK");
    }
    if (has("outgoing") && has("incoming")) {
      return fail("give either --incoming or --outgoing, not both");
    }
    inv.webhook.set_link(get("link"));
    if (has("outgoing")) {
      if (get("url").empty()) return fail("--outgoing needs --url URL");
      std::string lower = absl::AsciiStrToLower(get("url"));
      if (!absl::StartsWith(lower, "http://") &&
          !absl::StartsWith(lower, "https://")) {
        return fail(absl::StrCat("--url '", get("url"),
                                 "': expected an http:// or https:// URL"));
      }
      inv.webhook.set_direction(v1::OUTGOING);
      inv.webhook.set_url(get("url"));
    } else {
      if (has("url")) return fail("--url is only for --outgoing webhooks");
      inv.webhook.set_direction(v1::INCOMING);
    }
    inv.webhook.set_account(get("account"));
    inv.webhook.set_description(get("description"));
  }
  outcome.kind = ParseOutcome::kRun;
  return outcome;
}

}  // namespace imbridge::ctl
