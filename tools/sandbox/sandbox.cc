#include "tools/sandbox/sandbox.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "tools/sandbox/bitrix24_messenger.h"
#include "tools/sandbox/botsplash_messenger.h"
#include "tools/sandbox/slack_messenger.h"
#include "tools/sandbox/teamspirit_messenger.h"
#include "tools/sandbox/telegram_messenger.h"

namespace imbridge::sandbox {
namespace {

using nlohmann::json;

// The string field `name` of `body` ("" when absent); false if not a string.
bool Field(const json& body, const char* name, std::string* out) {
  out->clear();
  if (!body.contains(name) || body[name].is_null()) return true;
  if (!body[name].is_string()) return false;
  *out = body[name].get<std::string>();
  return true;
}

absl::Status Required(const char* name, const std::string& value) {
  if (value.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' is required"));
  }
  return absl::OkStatus();
}

}  // namespace

Sandbox::Sandbox(const v1::SandboxConfig& config) {
  messengers_.push_back(
      std::make_unique<TeamSpiritMessenger>(config.teamspirit()));
  messengers_.push_back(std::make_unique<SlackMessenger>(config.slack()));
  messengers_.push_back(std::make_unique<TelegramMessenger>(config.telegram()));
  if (config.has_bitrix24()) {
    messengers_.push_back(
        std::make_unique<Bitrix24Messenger>(config.bitrix24()));
  }
  if (config.has_botsplash()) {
    messengers_.push_back(
        std::make_unique<BotsplashMessenger>(config.botsplash()));
  }
  absl::MutexLock lock(&mu_);
  dirty_.assign(messengers_.size(), false);
  shown_messages_.resize(messengers_.size());
  shown_roster_.resize(messengers_.size());
  refresher_ = std::make_unique<Executor>(1);
}

Sandbox::~Sandbox() { Stop(); }

absl::Status Sandbox::Start() {
  for (size_t i = 0; i < messengers_.size(); ++i) {
    messengers_[i]->OnChange([this, i] { MarkDirty(i); });
  }
  for (const auto& m : messengers_) {
    if (absl::Status s = m->Start(); !s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("the emulated ", m->name(), " server: ", s.message()));
    }
  }
  for (size_t i = 0; i < messengers_.size(); ++i) MarkDirty(i);
  return absl::OkStatus();
}

void Sandbox::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  refresher_.reset();  // Finishes the refreshes already posted.
  events_.Close();
  for (const auto& m : messengers_) m->Stop();
}

std::vector<std::pair<std::string, std::string>> Sandbox::Endpoints() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& m : messengers_) {
    for (auto& kv : m->Endpoints()) out.push_back(std::move(kv));
  }
  return out;
}

json Sandbox::State() const {
  json out;
  out["last_event_id"] = events_.last_id();
  out["order"] = json::array();
  out["messengers"] = json::object();
  for (const auto& m : messengers_) {
    out["order"].push_back(m->name());
    out["messengers"][m->name()] = m->Snapshot();
  }
  return out;
}

Messenger* Sandbox::Find(const std::string& name) const {
  for (const auto& m : messengers_) {
    if (m->name() == name) return m.get();
  }
  return nullptr;
}

absl::StatusOr<json> Sandbox::Act(const std::string& messenger,
                                  const std::string& action, const json& body) {
  Messenger* m = Find(messenger);
  if (m == nullptr) {
    return absl::NotFoundError(absl::StrCat("no messenger '", messenger, "'"));
  }
  if (!body.is_object()) {
    return absl::InvalidArgumentError("the body must be a JSON object");
  }
  std::string user, text, reply_to, id, status, name, mime_type, content;
  if (!Field(body, "user", &user) || !Field(body, "text", &text) ||
      !Field(body, "reply_to", &reply_to) || !Field(body, "id", &id) ||
      !Field(body, "status", &status) || !Field(body, "name", &name) ||
      !Field(body, "mime_type", &mime_type) ||
      !Field(body, "content_base64", &content)) {
    return absl::InvalidArgumentError("every field must be a string");
  }
  if (absl::Status s = Required("user", user); !s.ok()) return s;
  if (action == "post") {
    if (absl::Status s = Required("text", text); !s.ok()) return s;
    absl::StatusOr<std::string> posted = m->Post({user, text, reply_to});
    if (!posted.ok()) return posted.status();
    return json{{"id", *posted}};
  }
  if (action == "edit") {
    if (absl::Status s = Required("id", id); !s.ok()) return s;
    if (absl::Status s = Required("text", text); !s.ok()) return s;
    if (absl::Status s = m->Edit(user, id, text); !s.ok()) return s;
    return json::object();
  }
  if (action == "delete") {
    if (absl::Status s = Required("id", id); !s.ok()) return s;
    if (absl::Status s = m->Delete(user, id); !s.ok()) return s;
    return json::object();
  }
  if (action == "upload") {
    if (absl::Status s = Required("name", name); !s.ok()) return s;
    UploadRequest upload;
    if (!absl::Base64Unescape(content, &upload.content)) {
      return absl::InvalidArgumentError("'content_base64' is not base64");
    }
    upload.user = user;
    upload.name = name;
    upload.mime_type =
        mime_type.empty() ? "application/octet-stream" : mime_type;
    upload.text = text;
    upload.reply_to = reply_to;
    absl::StatusOr<std::string> posted = m->Upload(upload);
    if (!posted.ok()) return posted.status();
    return json{{"id", *posted}};
  }
  if (action == "presence") {
    if (absl::Status s = Required("status", status); !s.ok()) return s;
    if (absl::Status s = m->SetPresence(user, status); !s.ok()) return s;
    return json::object();
  }
  return absl::NotFoundError(absl::StrCat("no action '", action, "'"));
}

absl::StatusOr<FileBody> Sandbox::Download(const std::string& messenger,
                                           const std::string& file_id) {
  Messenger* m = Find(messenger);
  if (m == nullptr) {
    return absl::NotFoundError(absl::StrCat("no messenger '", messenger, "'"));
  }
  return m->Download(file_id);
}

void Sandbox::MarkDirty(size_t index) {
  absl::MutexLock lock(&mu_);
  if (stopped_ || dirty_[index]) return;
  dirty_[index] = true;
  // Posted under mu_: Stop() sets stopped_ before it destroys refresher_.
  refresher_->Post([this, index] { Refresh(index); });
}

void Sandbox::Refresh(size_t index) {
  {
    absl::MutexLock lock(&mu_);
    dirty_[index] = false;
  }
  const std::string name = messengers_[index]->name();
  json snapshot = messengers_[index]->Snapshot();
  json roster = {{"messenger", name},
                 {"people", snapshot["people"]},
                 {"guests", snapshot["guests"]},
                 {"bot", snapshot["bot"]}};
  std::string roster_text = roster.dump();
  if (roster_text != shown_roster_[index]) {
    shown_roster_[index] = roster_text;
    events_.Publish("roster", roster);
  }
  std::map<std::string, std::string>& shown = shown_messages_[index];
  for (const json& message : snapshot["messages"]) {
    std::string id = message["id"].get<std::string>();
    std::string text = message.dump();
    auto it = shown.find(id);
    if (it != shown.end() && it->second == text) continue;
    shown[id] = text;
    events_.Publish("message", {{"messenger", name}, {"message", message}});
  }
}

}  // namespace imbridge::sandbox
