#ifndef IMBRIDGE_ADAPTERS_TEAMSPIRIT_SETTINGS_H_
#define IMBRIDGE_ADAPTERS_TEAMSPIRIT_SETTINGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/teamspirit/bot_presence.h"
#include "adapters/teamspirit/teamspirit_api.h"
#include "common/logging.h"
#include "imbridge/v1/teamspirit_config.pb.h"

namespace imbridge::adapters::teamspirit {

// The adapter's HTTP port when http.listen is not set.
inline constexpr uint16_t kDefaultPort = 7711;

// The adapter's configuration with every default applied and every rule
// checked (see proto/imbridge/v1/teamspirit_config.proto).
struct TeamSpiritSettings {
  std::string account;
  LogLevel log_level = LogLevel::kInfo;
  // True without a bot account: deliveries go to the incoming webhook.
  bool send_only = false;
  std::string api_base_url;
  std::string api_key;         // Secret.
  std::string webhook_secret;  // Secret.
  std::string webhook_path = "/teamspirit/events";
  std::string incoming_webhook_url;  // Secret.
  double requests_per_second = 20;
  uint64_t max_file_bytes = 100ull << 20;
  std::string external_user_prefix = "imb-";
  bool post_as_bot = false;
  bool membership_notices = false;
  bool bot_presence_enabled = true;
  BotPresence::Options bot_presence;
  TsApiPaths api_paths;
  absl::Duration api_timeout = absl::Seconds(30);

  // What the adapter announces to the router in Hello.
  std::vector<std::string> Capabilities() const;
};

// Checks `config` (loaded from `source`) and applies the defaults. Errors
// are ConfigError(source, "field.path", reason) for the first problem.
absl::StatusOr<TeamSpiritSettings> SettingsFromConfig(
    absl::string_view source, const v1::TeamSpiritAdapterConfig& config);

}  // namespace imbridge::adapters::teamspirit

#endif  // IMBRIDGE_ADAPTERS_TEAMSPIRIT_SETTINGS_H_
