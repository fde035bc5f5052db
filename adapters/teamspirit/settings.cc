#include "adapters/teamspirit/settings.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/config_loader.h"

namespace imbridge::adapters::teamspirit {
namespace {

bool IsBlank(absl::string_view s) {
  return absl::StripAsciiWhitespace(s).empty();
}

bool IsHttpUrl(absl::string_view url) {
  return (absl::StartsWith(url, "http://") && url.size() > 7) ||
         (absl::StartsWith(url, "https://") && url.size() > 8);
}

}  // namespace

std::vector<std::string> TeamSpiritSettings::Capabilities() const {
  if (send_only) return {};
  std::vector<std::string> caps = {"edits", "deletes", "threads", "files",
                                   "presence"};
  if (membership_notices) caps.push_back("membership");
  return caps;
}

absl::StatusOr<TeamSpiritSettings> SettingsFromConfig(
    absl::string_view source, const v1::TeamSpiritAdapterConfig& config) {
  TeamSpiritSettings s;
  absl::StatusOr<LogLevel> level = ParseLogLevel(config.log_level());
  if (!level.ok()) {
    return ConfigError(source, "log_level", level.status().message());
  }
  s.log_level = *level;

  if (config.account().empty()) {
    return ConfigError(
        source, "account",
        "required (the account name used in the router's links)");
  }
  if (config.account().find(':') != std::string::npos) {
    return ConfigError(source, "account", "must not contain ':'");
  }
  s.account = config.account();

  const bool has_key = !config.api_key().empty();
  const bool has_hook = !config.incoming_webhook_url().empty();
  if (has_key && has_hook) {
    return ConfigError(source, "incoming_webhook_url",
                       "only for send-only mode; remove it or api_key");
  }
  if (!has_key && !has_hook) {
    return ConfigError(source, "api_key",
                       "required (or incoming_webhook_url for send-only mode)");
  }
  if (has_key) {
    if (IsBlank(config.api_key())) {
      return ConfigError(source, "api_key", "is blank");
    }
    if (!IsHttpUrl(config.api_base_url())) {
      return ConfigError(
          source, "api_base_url",
          "required in bot mode: an http:// or https:// URL such as "
          "https://ts.example.com/api/v1");
    }
    if (IsBlank(config.webhook_secret())) {
      return ConfigError(source, "webhook_secret",
                         "required in bot mode (or webhook_secret_file)");
    }
    s.api_key = config.api_key();
    s.api_base_url = config.api_base_url();
    s.webhook_secret = config.webhook_secret();
  } else {
    s.send_only = true;
    if (!IsHttpUrl(config.incoming_webhook_url())) {
      return ConfigError(source, "incoming_webhook_url",
                         "must be an http:// or https:// URL");
    }
    if (!config.webhook_secret().empty()) {
      return ConfigError(source, "webhook_secret",
                         "needs api_key: send-only mode receives nothing");
    }
    if (!config.api_base_url().empty()) {
      return ConfigError(source, "api_key",
                         "required when api_base_url is set");
    }
    s.incoming_webhook_url = config.incoming_webhook_url();
  }

  if (!config.webhook_path().empty()) {
    const std::string& p = config.webhook_path();
    if (p[0] != '/') {
      return ConfigError(source, "webhook_path", "must start with '/'");
    }
    if (p == "/healthz" || p == "/readyz" || p == "/metrics") {
      return ConfigError(source, "webhook_path",
                         absl::StrCat("'", p, "' is reserved"));
    }
    s.webhook_path = p;
  }
  if (config.requests_per_second() > 1000) {
    return ConfigError(source, "requests_per_second", "at most 1000");
  }
  if (config.requests_per_second() > 0) {
    s.requests_per_second = config.requests_per_second();
  }
  if (config.max_file_bytes() > 0) s.max_file_bytes = config.max_file_bytes();
  if (!config.external_user_prefix().empty()) {
    s.external_user_prefix = config.external_user_prefix();
  }
  s.post_as_bot = config.post_as_bot();
  s.membership_notices = config.membership_notices();
  if (config.api_timeout_ms() > 0) {
    s.api_timeout = absl::Milliseconds(config.api_timeout_ms());
  }

  const v1::TeamSpiritBotPresence& bp = config.bot_presence();
  s.bot_presence_enabled = !bp.has_enabled() || bp.enabled();
  if (bp.degraded_after_failures() > 0) {
    s.bot_presence.degraded_after_failures =
        static_cast<int>(bp.degraded_after_failures());
  }
  if (bp.degraded_after_detached_seconds() > 0) {
    s.bot_presence.degraded_after_detached =
        absl::Seconds(bp.degraded_after_detached_seconds());
  }
  if (!bp.online_text().empty()) s.bot_presence.online_text = bp.online_text();
  if (!bp.away_text().empty()) s.bot_presence.away_text = bp.away_text();
  if (!bp.offline_text().empty()) {
    s.bot_presence.offline_text = bp.offline_text();
  }

  const v1::TeamSpiritApiPaths& paths = config.api_paths();
  struct PathField {
    const char* name;
    const std::string& value;
    std::string* target;
  };
  const PathField fields[] = {
      {"me", paths.me(), &s.api_paths.me},
      {"chat", paths.chat(), &s.api_paths.chat},
      {"messages", paths.messages(), &s.api_paths.messages},
      {"message", paths.message(), &s.api_paths.message},
      {"files", paths.files(), &s.api_paths.files},
      {"file_content", paths.file_content(), &s.api_paths.file_content},
      {"presence", paths.presence(), &s.api_paths.presence},
      {"external_user", paths.external_user(), &s.api_paths.external_user},
      {"members", paths.members(), &s.api_paths.members},
  };
  for (const PathField& f : fields) {
    if (f.value.empty()) continue;
    if (f.value[0] != '/') {
      return ConfigError(source, absl::StrCat("api_paths.", f.name),
                         "must start with '/'");
    }
    *f.target = f.value;
  }
  return s;
}

}  // namespace imbridge::adapters::teamspirit
