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
#include "imbridge/v1/teamspirit_config.pb.h"

namespace imbridge::adapters::teamspirit {

// The adapter's HTTP port when http.listen is not set.
inline constexpr uint16_t kDefaultPort = 7711;

// One account's configuration with every default applied and every rule
// checked (see TeamSpiritAccount in
// proto/imbridge/v1/teamspirit_config.proto).
struct TeamSpiritSettings {
  std::string account;
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
};

// Checks the accounts of `config` (loaded from `source`) and applies the
// defaults: `accounts`, or the single account a config without `accounts`
// has at the top level (`account`, `api_key`, ...; its webhook path
// defaults to "/teamspirit/events"). Errors are ConfigError(source,
// "field.path", reason) for the first problem: "accounts[1].api_key", or
// "api_key" for the top-level account; "accounts" when there is none, or
// when a top-level account field is set next to `accounts`.
absl::StatusOr<std::vector<TeamSpiritSettings>> AccountsFromConfig(
    absl::string_view source, const v1::TeamSpiritAdapterConfig& config);

// The whole config: router, http and log_level (ValidateAdapterBasics),
// then AccountsFromConfig().
absl::Status ValidateTeamSpiritConfig(
    absl::string_view source, const v1::TeamSpiritAdapterConfig& config);

}  // namespace imbridge::adapters::teamspirit

#endif  // IMBRIDGE_ADAPTERS_TEAMSPIRIT_SETTINGS_H_
