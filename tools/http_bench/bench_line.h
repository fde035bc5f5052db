// The machine-readable result line of imbridge-http-bench.
//
// One line per measured path, `HTTPBENCH key=value key=value ...`, keys in
// [a-z0-9_] and values without spaces, so that scripts and the smoke test can
// compare runs without parsing the tables.
#ifndef IMBRIDGE_TOOLS_HTTP_BENCH_BENCH_LINE_H_
#define IMBRIDGE_TOOLS_HTTP_BENCH_BENCH_LINE_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imbridge::tools {

inline constexpr char kBenchLinePrefix[] = "HTTPBENCH";

// Formats `fields` (in the given order) as one result line, without the
// trailing newline.
std::string FormatBenchLine(
    const std::vector<std::pair<std::string, std::string>>& fields);

// Parses a line made by FormatBenchLine. Fails on a missing prefix, a field
// without '=', an empty or invalid key, or a key given twice.
absl::StatusOr<std::map<std::string, std::string>> ParseBenchLine(
    absl::string_view line);

}  // namespace imbridge::tools

#endif  // IMBRIDGE_TOOLS_HTTP_BENCH_BENCH_LINE_H_
