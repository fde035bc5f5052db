#include "tools/sandbox/sandbox_config.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/config_loader.h"
#include "common/logging.h"

namespace imbridge::sandbox {
namespace {

void AddPerson(google::protobuf::RepeatedPtrField<v1::SandboxPerson>* people,
               const std::string& id, const std::string& name) {
  v1::SandboxPerson* p = people->Add();
  p->set_id(id);
  p->set_name(name);
}

void ApplyDefaults(v1::SandboxConfig* c) {
  if (c->listen().empty()) c->set_listen("127.0.0.1:8080");
  v1::SandboxTeamSpirit* ts = c->mutable_teamspirit();
  if (ts->chat_id().empty()) ts->set_chat_id("c-sandbox");
  if (ts->chat_title().empty()) ts->set_chat_title("Sandbox");
  if (ts->bot_name().empty()) ts->set_bot_name("Bridge");
  if (ts->people().empty()) {
    AddPerson(ts->mutable_people(), "u-yuki", "Yuki Tanaka");
    AddPerson(ts->mutable_people(), "u-kenji", "Kenji Sato");
  }
  v1::SandboxSlack* slack = c->mutable_slack();
  if (slack->team_id().empty()) slack->set_team_id("T0SANDBOX");
  if (slack->channel_id().empty()) slack->set_channel_id("C0SANDBOX");
  if (slack->channel_name().empty()) slack->set_channel_name("sandbox");
  if (slack->people().empty()) {
    AddPerson(slack->mutable_people(), "U0ANN", "Ann Lee");
    AddPerson(slack->mutable_people(), "U0BOB", "Bob Stone");
  }
  v1::SandboxTelegram* tg = c->mutable_telegram();
  if (tg->chat_title().empty()) tg->set_chat_title("Sandbox");
  if (tg->bot_name().empty()) tg->set_bot_name("Bridge");
  if (tg->people().empty()) {
    AddPerson(tg->mutable_people(), "", "Carla Diaz");
    AddPerson(tg->mutable_people(), "", "Dmitri Ivanov");
  }
  if (c->has_bitrix24()) {
    v1::SandboxBitrix24* b24 = c->mutable_bitrix24();
    if (b24->chat_title().empty()) b24->set_chat_title("Sandbox");
    if (b24->bot_name().empty()) b24->set_bot_name("Bridge");
    if (b24->people().empty()) {
      AddPerson(b24->mutable_people(), "", "Elena Petrova");
      AddPerson(b24->mutable_people(), "", "Felix Braun");
    }
  }
  if (c->has_botsplash()) {
    v1::SandboxBotsplash* bsp = c->mutable_botsplash();
    if (bsp->app_id().empty()) bsp->set_app_id("sandbox");
    if (bsp->listener_id().empty()) bsp->set_listener_id("sandbox");
    if (bsp->direct_message_path().empty()) {
      bsp->set_direct_message_path("/message/visitor");
    }
    if (bsp->update_visitor_path().empty()) {
      bsp->set_update_visitor_path("/visitor/{idType}/{idValue}");
    }
    if (bsp->customers().empty()) {
      AddPerson(bsp->mutable_customers(), "crm-jane", "Jane Doe");
    }
  }
}

absl::Status CheckPeople(
    absl::string_view source, absl::string_view path,
    const google::protobuf::RepeatedPtrField<v1::SandboxPerson>& people,
    bool ids) {
  std::set<std::string> seen;
  for (int i = 0; i < people.size(); ++i) {
    std::string field = absl::StrCat(path, "[", i, "]");
    if (people[i].name().empty()) {
      return ConfigError(source, absl::StrCat(field, ".name"), "required");
    }
    if (!ids) continue;
    if (people[i].id().empty()) {
      return ConfigError(source, absl::StrCat(field, ".id"), "required");
    }
    if (!seen.insert(people[i].id()).second) {
      return ConfigError(source, absl::StrCat(field, ".id"),
                         absl::StrCat("'", people[i].id(), "' is used twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckUrl(absl::string_view source, absl::string_view field,
                      const std::string& url) {
  if (url.empty()) return ConfigError(source, field, "required");
  if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) {
    return ConfigError(source, field, "must be an http:// or https:// URL");
  }
  return absl::OkStatus();
}

absl::Status Check(absl::string_view source, const v1::SandboxConfig& c) {
  if (!ParseLogLevel(c.log_level()).ok()) {
    return ConfigError(source, "log_level",
                       "must be one of debug, info, warn, error");
  }
  if (c.listen().find(':') == std::string::npos) {
    return ConfigError(source, "listen", "must be host:port");
  }
  for (const auto& [field, port] :
       {std::pair<const char*, uint32_t>{"teamspirit.api_port",
                                         c.teamspirit().api_port()},
        {"slack.api_port", c.slack().api_port()},
        {"telegram.api_port", c.telegram().api_port()},
        {"bitrix24.api_port", c.bitrix24().api_port()},
        {"botsplash.api_port", c.botsplash().api_port()}}) {
    if (port > 65535) return ConfigError(source, field, "must be 0..65535");
  }
  const v1::SandboxTeamSpirit& ts = c.teamspirit();
  if (ts.api_key().empty()) {
    return ConfigError(source, "teamspirit.api_key",
                       "required (or api_key_file)");
  }
  if (ts.webhook_secret().empty()) {
    return ConfigError(source, "teamspirit.webhook_secret",
                       "required (or webhook_secret_file)");
  }
  if (absl::Status s =
          CheckUrl(source, "teamspirit.webhook_url", ts.webhook_url());
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckPeople(source, "teamspirit.people", ts.people(), true);
      !s.ok()) {
    return s;
  }
  const v1::SandboxSlack& slack = c.slack();
  if (slack.bot_token().empty()) {
    return ConfigError(source, "slack.bot_token",
                       "required (or bot_token_file)");
  }
  if (slack.signing_secret().empty()) {
    return ConfigError(source, "slack.signing_secret",
                       "required (or signing_secret_file)");
  }
  if (absl::Status s = CheckUrl(source, "slack.events_url", slack.events_url());
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckPeople(source, "slack.people", slack.people(), true);
      !s.ok()) {
    return s;
  }
  const v1::SandboxTelegram& tg = c.telegram();
  const size_t colon = tg.bot_token().find(':');
  if (colon == std::string::npos || colon == 0 ||
      colon + 1 == tg.bot_token().size() ||
      tg.bot_token().find_first_not_of("0123456789") != colon) {
    return ConfigError(source, "telegram.bot_token",
                       "required (or bot_token_file), as <bot id>:<secret>");
  }
  if (absl::Status s =
          CheckPeople(source, "telegram.people", tg.people(), false);
      !s.ok()) {
    return s;
  }
  if (c.has_bitrix24()) {
    const v1::SandboxBitrix24& b24 = c.bitrix24();
    const std::string& code = b24.webhook_code();
    if (code.size() < 8 || code.size() > 64 ||
        !std::all_of(code.begin(), code.end(),
                     [](char ch) { return absl::ascii_isalnum(ch); })) {
      return ConfigError(source, "bitrix24.webhook_code",
                         "required (or webhook_code_file): 8-64 characters of "
                         "a-z, A-Z, 0-9");
    }
    if (b24.bot_token().empty() || b24.bot_token().size() > 40) {
      return ConfigError(source, "bitrix24.bot_token",
                         "required (or bot_token_file), at most 40 characters");
    }
    if (absl::Status s =
            CheckPeople(source, "bitrix24.people", b24.people(), false);
        !s.ok()) {
      return s;
    }
  }
  if (!c.has_botsplash()) return absl::OkStatus();
  const v1::SandboxBotsplash& bsp = c.botsplash();
  if (bsp.api_key().empty()) {
    return ConfigError(source, "botsplash.api_key",
                       "required (or api_key_file)");
  }
  if (bsp.reply_secret().empty()) {
    return ConfigError(source, "botsplash.reply_secret",
                       "required (or reply_secret_file)");
  }
  if (absl::Status s = CheckUrl(source, "botsplash.reply_url", bsp.reply_url());
      !s.ok()) {
    return s;
  }
  return CheckPeople(source, "botsplash.customers", bsp.customers(), true);
}

}  // namespace

absl::StatusOr<v1::SandboxConfig> ParseSandboxConfig(absl::string_view yaml,
                                                     absl::string_view source) {
  v1::SandboxConfig config;
  if (absl::Status s = LoadConfigYaml(yaml, source, &config); !s.ok()) return s;
  ApplyDefaults(&config);
  if (absl::Status s = Check(source, config); !s.ok()) return s;
  return config;
}

absl::StatusOr<v1::SandboxConfig> LoadSandboxConfig(const std::string& path) {
  v1::SandboxConfig config;
  if (absl::Status s = LoadConfigFile(path, &config); !s.ok()) return s;
  ApplyDefaults(&config);
  if (absl::Status s = Check(path, config); !s.ok()) return s;
  return config;
}

}  // namespace imbridge::sandbox
