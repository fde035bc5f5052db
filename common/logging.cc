#include "common/logging.h"

#include <unistd.h>

#include <atomic>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace imbridge {
namespace {

struct LogSettings {
  std::string component = "imbridge";
  std::string platform;
};

LogSettings& Settings() {
  static LogSettings* settings = new LogSettings();
  return *settings;
}

std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  if (lower.empty() || lower == "info") return LogLevel::kInfo;
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "warn" || lower == "warning") return LogLevel::kWarn;
  if (lower == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown log level '", name, "' (expected debug, info, warn or error)"));
}

void InitLogging(std::string component, std::string platform, LogLevel level) {
  Settings().component = std::move(component);
  Settings().platform = std::move(platform);
  g_min_level.store(static_cast<int>(level));
}

void Log(LogLevel level, absl::string_view message,
         std::initializer_list<LogField> fields) {
  if (static_cast<int>(level) < g_min_level.load(std::memory_order_relaxed)) {
    return;
  }
  nlohmann::ordered_json line;
  line["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                  absl::UTCTimeZone());
  line["level"] = LevelName(level);
  line["component"] = Settings().component;
  if (!Settings().platform.empty()) line["platform"] = Settings().platform;
  line["msg"] = std::string(message);
  for (const auto& [key, value] : fields) {
    line[std::string(key)] = std::string(value);
  }
  std::string text =
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');
  // One write per line keeps concurrent lines whole.
  ssize_t ignored = ::write(STDERR_FILENO, text.data(), text.size());
  (void)ignored;
}

}  // namespace imbridge
