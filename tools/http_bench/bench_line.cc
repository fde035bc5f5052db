#include "tools/http_bench/bench_line.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace imbridge::tools {
namespace {

bool ValidKey(absl::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  }
  return true;
}

}  // namespace

std::string FormatBenchLine(
    const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string line = kBenchLinePrefix;
  for (const auto& [key, value] : fields) {
    absl::StrAppend(&line, " ", key, "=", value.empty() ? "-" : value);
  }
  return line;
}

absl::StatusOr<std::map<std::string, std::string>> ParseBenchLine(
    absl::string_view line) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(line, ' ', absl::SkipEmpty());
  if (parts.empty() || parts[0] != kBenchLinePrefix) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a result line (no ", kBenchLinePrefix, " prefix)"));
  }
  std::map<std::string, std::string> fields;
  for (size_t i = 1; i < parts.size(); ++i) {
    size_t eq = parts[i].find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("field '", parts[i], "' has no '='"));
    }
    absl::string_view key = parts[i].substr(0, eq);
    if (!ValidKey(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("field '", parts[i], "' has an invalid key"));
    }
    if (!fields.emplace(std::string(key), std::string(parts[i].substr(eq + 1)))
             .second) {
      return absl::InvalidArgumentError(
          absl::StrCat("key '", key, "' is given twice"));
    }
  }
  return fields;
}

}  // namespace imbridge::tools
