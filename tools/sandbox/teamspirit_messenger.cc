#include "tools/sandbox/teamspirit_messenger.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace imbridge::sandbox {
namespace {

using Fake = fakes::FakeTeamSpirit;
using nlohmann::json;

Fake::Options FakeOptions(const v1::SandboxTeamSpirit& config) {
  Fake::Options o;
  o.port = static_cast<uint16_t>(config.api_port());
  o.webhook_initial_backoff = absl::Milliseconds(200);
  o.webhook_max_backoff = absl::Seconds(2);
  return o;
}

}  // namespace

TeamSpiritMessenger::TeamSpiritMessenger(const v1::SandboxTeamSpirit& config)
    : config_(config),
      people_(config_.people(), "the TeamSpirit chat",
              {"online", "away", "dnd", "offline"}),
      fake_(FakeOptions(config)) {}

absl::Status TeamSpiritMessenger::Start() {
  fake_.AddBot(kBotId, config_.bot_name(), config_.api_key());
  std::vector<std::string> members = {kBotId};
  for (const auto& [id, name] : people_.list()) {
    fake_.AddUser(id, name);
    members.push_back(id);
  }
  fake_.AddChat(config_.chat_id(), config_.chat_title(), members);
  fake_.SetOutgoingWebhook(config_.webhook_url(), config_.webhook_secret());
  if (absl::Status s = fake_.Start(); !s.ok()) return s;
  // Everybody starts online (the webhooks wait for the adapter).
  for (const auto& [id, name] : people_.list()) {
    if (absl::Status s = SetPresence(id, "online"); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void TeamSpiritMessenger::Stop() { fake_.Stop(); }

std::vector<std::pair<std::string, std::string>>
TeamSpiritMessenger::Endpoints() const {
  return {{"TEAMSPIRIT_API_URL", fake_.api_base_url()},
          {"TEAMSPIRIT_CHAT_ID", config_.chat_id()}};
}

json TeamSpiritMessenger::Snapshot() const {
  json out;
  out["title"] = config_.chat_title();
  out["chat_id"] = config_.chat_id();
  out["features"] = {{"delete", true}, {"presence", true}};
  out["presence_choices"] = people_.PresenceChoicesJson();
  out["people"] = people_.PeopleJson();
  json guests = json::array();
  for (const Fake::ExternalUser& u : fake_.ExternalUsers()) {
    guests.push_back(
        {{"id", u.id}, {"name", u.name}, {"presence", u.presence.status}});
  }
  out["guests"] = guests;
  Fake::Presence bot = fake_.BotPresence(kBotId);
  out["bot"] = {{"name", config_.bot_name()},
                {"presence", bot.status},
                {"text", bot.text}};

  json messages = json::array();
  const int64_t now = absl::ToUnixMillis(absl::Now());
  for (const Fake::Message& m : fake_.Messages(config_.chat_id(), true)) {
    json v;
    v["id"] = m.id;
    v["user_id"] = m.user_id;
    const bool bridged = m.user_id == kBotId;
    v["bridged"] = bridged;
    if (bridged) {
      v["name"] = m.author ? m.author->name : config_.bot_name();
    } else {
      v["name"] = people_.NameOf(m.user_id);
    }
    v["text"] = m.text;
    v["format"] = "teamspirit";
    v["reply_to"] = m.reply_to;
    v["thread"] = m.thread_id;
    v["edited"] = m.edited;
    v["deleted"] = m.deleted;
    json files = json::array();
    for (const std::string& f : m.file_ids) {
      std::optional<Fake::File> file = fake_.GetFile(f);
      if (!file) continue;
      files.push_back(FileJson(file->id, file->name, file->content.size(),
                               file->mime_type));
    }
    v["files"] = files;
    {
      absl::MutexLock lock(&mu_);
      v["time"] = first_seen_.emplace(m.id, now).first->second;
    }
    messages.push_back(std::move(v));
  }
  out["messages"] = messages;
  return out;
}

absl::StatusOr<Fake::PostOptions> TeamSpiritMessenger::ReplyOptions(
    const std::string& reply_to) const {
  Fake::PostOptions options;
  if (reply_to.empty()) return options;
  std::optional<Fake::Message> parent = fake_.GetMessage(reply_to);
  if (!parent || parent->deleted) {
    return absl::InvalidArgumentError(
        absl::StrCat("no message '", reply_to, "' to reply to"));
  }
  // A reply continues the parent's thread, or starts one under the parent.
  options.reply_to = reply_to;
  options.thread_id =
      parent->thread_id.empty() ? parent->id : parent->thread_id;
  return options;
}

absl::StatusOr<std::string> TeamSpiritMessenger::Post(
    const PostRequest& request) {
  if (absl::Status s = people_.Check(request.user); !s.ok()) return s;
  absl::StatusOr<Fake::PostOptions> options = ReplyOptions(request.reply_to);
  if (!options.ok()) return options.status();
  return fake_.PostAsUser(request.user, config_.chat_id(), request.text,
                          *options);
}

absl::Status TeamSpiritMessenger::Edit(const std::string& user,
                                       const std::string& id,
                                       const std::string& text) {
  if (absl::Status s = people_.Check(user); !s.ok()) return s;
  return fake_.EditAsUser(user, id, text);
}

absl::Status TeamSpiritMessenger::Delete(const std::string& user,
                                         const std::string& id) {
  if (absl::Status s = people_.Check(user); !s.ok()) return s;
  return fake_.DeleteAsUser(user, id);
}

absl::StatusOr<std::string> TeamSpiritMessenger::Upload(
    const UploadRequest& request) {
  if (absl::Status s = people_.Check(request.user); !s.ok()) return s;
  absl::StatusOr<Fake::PostOptions> options = ReplyOptions(request.reply_to);
  if (!options.ok()) return options.status();
  options->file_ids.push_back(fake_.UploadAsUser(
      request.user, request.name, request.mime_type, request.content));
  return fake_.PostAsUser(request.user, config_.chat_id(), request.text,
                          *options);
}

absl::Status TeamSpiritMessenger::SetPresence(const std::string& user,
                                              const std::string& status) {
  if (absl::Status s = people_.SetPresence(user, status); !s.ok()) return s;
  fake_.SetUserPresence(user, status);
  return absl::OkStatus();
}

absl::StatusOr<FileBody> TeamSpiritMessenger::Download(
    const std::string& file_id) {
  std::optional<Fake::File> file = fake_.GetFile(file_id);
  if (!file) return absl::NotFoundError("no such file");
  return FileBody{file->name, file->mime_type, file->content};
}

void TeamSpiritMessenger::OnChange(std::function<void()> fn) {
  fake_.AddListener([fn = std::move(fn)](const Fake::Change&) { fn(); });
}

}  // namespace imbridge::sandbox
