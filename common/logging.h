#ifndef IMBRIDGE_COMMON_LOGGING_H_
#define IMBRIDGE_COMMON_LOGGING_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imbridge {

// Severity of a log line.
enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Parses "debug", "info", "warn" or "error"; empty means info.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);

// Process-wide logger settings. Call once at start, before other threads log.
// `component` names the process ("router", "adapter-slack"), `platform` the
// messenger it serves (empty for the router).
void InitLogging(std::string component, std::string platform, LogLevel level);

// A key/value pair added to a log line (link, event_key, peer, ...).
using LogField = std::pair<absl::string_view, absl::string_view>;

// Writes one JSON object per line to stderr:
// {"time":..., "level":..., "component":..., "platform":..., "msg":...,
// <fields>}. Thread-safe; a line is written with one write(2), so lines never
// interleave. Callers must never pass tokens, keys or secrets, in the message
// or a field.
void Log(LogLevel level, absl::string_view message,
         std::initializer_list<LogField> fields = {});

inline void LogDebug(absl::string_view m,
                     std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kDebug, m, f);
}
inline void LogInfo(absl::string_view m,
                    std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kInfo, m, f);
}
inline void LogWarn(absl::string_view m,
                    std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kWarn, m, f);
}
inline void LogError(absl::string_view m,
                     std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kError, m, f);
}

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_LOGGING_H_
