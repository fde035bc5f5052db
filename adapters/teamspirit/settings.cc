#include "adapters/teamspirit/settings.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "adapters/common/adapter_runtime.h"
#include "common/config_loader.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"

namespace imbridge::adapters::teamspirit {
namespace {

bool IsBlank(absl::string_view s) {
  return absl::StripAsciiWhitespace(s).empty();
}

bool IsHttpUrl(absl::string_view url) {
  return (absl::StartsWith(url, "http://") && url.size() > 7) ||
         (absl::StartsWith(url, "https://") && url.size() > 8);
}

// The fields of TeamSpiritAdapterConfig that are not the single account's.
bool IsProcessField(absl::string_view name) {
  return name == "router" || name == "http" || name == "log_level" ||
         name == "state_dir" || name == "accounts";
}

// The first top-level account field set in `config` ("" when none).
std::string FirstTopLevelAccountField(
    const v1::TeamSpiritAdapterConfig& config) {
  std::vector<const google::protobuf::FieldDescriptor*> set;
  config.GetReflection()->ListFields(config, &set);
  for (const google::protobuf::FieldDescriptor* field : set) {
    if (!IsProcessField(field->name())) return field->name();
  }
  return "";
}

// The single account written at the top level of a config without
// `accounts`.
v1::TeamSpiritAccount TopLevelAccount(const v1::TeamSpiritAdapterConfig& c) {
  v1::TeamSpiritAccount a;
  a.set_name(c.account());
  a.set_api_base_url(c.api_base_url());
  a.set_api_key(c.api_key());
  a.set_webhook_secret(c.webhook_secret());
  a.set_webhook_path(c.webhook_path());
  a.set_incoming_webhook_url(c.incoming_webhook_url());
  a.set_requests_per_second(c.requests_per_second());
  a.set_max_file_bytes(c.max_file_bytes());
  a.set_external_user_prefix(c.external_user_prefix());
  a.set_post_as_bot(c.post_as_bot());
  a.set_membership_notices(c.membership_notices());
  *a.mutable_bot_presence() = c.bot_presence();
  *a.mutable_api_paths() = c.api_paths();
  a.set_api_timeout_ms(c.api_timeout_ms());
  return a;
}

// Checks one account. `prefix` is put before field names in errors
// ("accounts[0]." or "" for the top-level account); `name_field` is where
// its name is ("name" or "account").
absl::StatusOr<TeamSpiritSettings> AccountSettings(
    absl::string_view source, absl::string_view prefix,
    absl::string_view name_field, const v1::TeamSpiritAccount& config) {
  auto error = [&](absl::string_view field, absl::string_view reason) {
    return ConfigError(source, absl::StrCat(prefix, field), reason);
  };
  TeamSpiritSettings s;
  if (config.name().empty()) {
    return error(name_field,
                 "required (the account name used in the router's links)");
  }
  for (char c : config.name()) {
    if (c == ':' || c == '/' || static_cast<unsigned char>(c) <= 0x20) {
      return error(name_field,
                   "must not contain ':', '/', spaces or control characters");
    }
  }
  s.account = config.name();

  const bool has_key = !config.api_key().empty();
  const bool has_hook = !config.incoming_webhook_url().empty();
  if (has_key && has_hook) {
    return error("incoming_webhook_url",
                 "only for send-only mode; remove it or api_key");
  }
  if (!has_key && !has_hook) {
    return error("api_key",
                 "required (or incoming_webhook_url for send-only mode)");
  }
  if (has_key) {
    if (IsBlank(config.api_key())) return error("api_key", "is blank");
    if (!IsHttpUrl(config.api_base_url())) {
      return error("api_base_url",
                   "required in bot mode: an http:// or https:// URL such as "
                   "https://ts.example.com/api/v1");
    }
    if (IsBlank(config.webhook_secret())) {
      return error("webhook_secret",
                   "required in bot mode (or webhook_secret_file)");
    }
    s.api_key = config.api_key();
    s.api_base_url = config.api_base_url();
    s.webhook_secret = config.webhook_secret();
  } else {
    s.send_only = true;
    if (!IsHttpUrl(config.incoming_webhook_url())) {
      return error("incoming_webhook_url",
                   "must be an http:// or https:// URL");
    }
    if (!config.webhook_secret().empty()) {
      return error("webhook_secret",
                   "needs api_key: send-only mode receives nothing");
    }
    if (!config.api_base_url().empty()) {
      return error("api_key", "required when api_base_url is set");
    }
    s.incoming_webhook_url = config.incoming_webhook_url();
  }

  if (!config.webhook_path().empty()) {
    const std::string& p = config.webhook_path();
    if (p[0] != '/') return error("webhook_path", "must start with '/'");
    if (p == "/healthz" || p == "/readyz" || p == "/metrics") {
      return error("webhook_path", absl::StrCat("'", p, "' is reserved"));
    }
    s.webhook_path = p;
  }
  if (config.requests_per_second() > 1000) {
    return error("requests_per_second", "at most 1000");
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
      return error(absl::StrCat("api_paths.", f.name), "must start with '/'");
    }
    *f.target = f.value;
  }
  return s;
}

}  // namespace

absl::StatusOr<std::vector<TeamSpiritSettings>> AccountsFromConfig(
    absl::string_view source, const v1::TeamSpiritAdapterConfig& config) {
  std::vector<TeamSpiritSettings> accounts;
  const std::string top_level = FirstTopLevelAccountField(config);
  if (config.accounts().empty()) {
    if (top_level.empty()) {
      return ConfigError(source, "accounts",
                         "at least one account is required");
    }
    absl::StatusOr<TeamSpiritSettings> single =
        AccountSettings(source, "", "account", TopLevelAccount(config));
    if (!single.ok()) return single.status();
    accounts.push_back(*std::move(single));
    return accounts;
  }
  if (!top_level.empty()) {
    return ConfigError(
        source, top_level,
        "a field of the single top-level account; with `accounts` it "
        "belongs in each account (accounts[].name for `account`)");
  }
  absl::flat_hash_set<std::string> names, paths;
  for (int i = 0; i < config.accounts_size(); ++i) {
    const v1::TeamSpiritAccount& account = config.accounts(i);
    const std::string prefix = absl::StrCat("accounts[", i, "].");
    absl::StatusOr<TeamSpiritSettings> s =
        AccountSettings(source, prefix, "name", account);
    if (!s.ok()) return s.status();
    if (account.webhook_path().empty()) {
      s->webhook_path = absl::StrCat("/teamspirit/", s->account, "/events");
    }
    if (!names.insert(s->account).second) {
      return ConfigError(source, prefix + "name",
                         absl::StrCat("'", s->account, "' is used twice"));
    }
    if (!s->send_only && !paths.insert(s->webhook_path).second) {
      return ConfigError(source, prefix + "webhook_path",
                         absl::StrCat("'", s->webhook_path,
                                      "' is another account's webhook path"));
    }
    accounts.push_back(*std::move(s));
  }
  return accounts;
}

absl::Status ValidateTeamSpiritConfig(
    absl::string_view source, const v1::TeamSpiritAdapterConfig& config) {
  absl::Status s = ValidateAdapterBasics(source, config.router(), config.http(),
                                         config.log_level());
  if (!s.ok()) return s;
  return AccountsFromConfig(source, config).status();
}

}  // namespace imbridge::adapters::teamspirit
