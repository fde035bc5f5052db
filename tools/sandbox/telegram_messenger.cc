#include "tools/sandbox/telegram_messenger.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace imbridge::sandbox {
namespace {

using Fake = fakes::FakeTelegram;
using nlohmann::json;

Fake::Options FakeOptions(const v1::SandboxTelegram& config) {
  Fake::Options o;
  o.token = config.bot_token();
  o.bot_first_name = config.bot_name();
  o.bot_username = "imbridge_sandbox_bot";
  o.port = static_cast<uint16_t>(config.api_port());
  return o;
}

std::string FullName(const json& user) {
  std::string name = user.value("first_name", "");
  std::string last = user.value("last_name", "");
  if (!last.empty()) absl::StrAppend(&name, " ", last);
  return name;
}

// The file of a message (document, photo, ...), or null.
json FileOf(const json& message) {
  for (const char* kind :
       {"document", "video", "audio", "voice", "animation", "sticker"}) {
    if (message.contains(kind)) {
      const json& f = message[kind];
      return {{"id", f.value("file_id", "")},
              {"name", f.value("file_name", std::string(kind))},
              {"size", f.value("file_size", 0)},
              {"mime_type", f.value("mime_type", "")}};
    }
  }
  if (message.contains("photo") && message["photo"].is_array() &&
      !message["photo"].empty()) {
    const json& f = message["photo"].back();
    return {{"id", f.value("file_id", "")},
            {"name", "photo.jpg"},
            {"size", f.value("file_size", 0)},
            {"mime_type", "image/jpeg"}};
  }
  return nullptr;
}

}  // namespace

TelegramMessenger::TelegramMessenger(const v1::SandboxTelegram& config)
    : config_(config), fake_(FakeOptions(config)) {}

absl::Status TelegramMessenger::Start() {
  if (absl::Status s = fake_.Start(); !s.ok()) return s;
  chat_id_ = fake_.CreateChat("supergroup", config_.chat_title());
  for (const v1::SandboxPerson& p : config_.people()) {
    std::vector<std::string> parts =
        absl::StrSplit(p.name(), absl::MaxSplits(' ', 1), absl::SkipEmpty());
    Fake::User user = fake_.NewUser(parts.empty() ? p.name() : parts[0],
                                    parts.size() > 1 ? parts[1] : "");
    people_.push_back(user);
  }
  return absl::OkStatus();
}

void TelegramMessenger::Stop() { fake_.Stop(); }

std::vector<std::pair<std::string, std::string>> TelegramMessenger::Endpoints()
    const {
  return {{"TELEGRAM_API_URL", fake_.base_url()},
          {"TELEGRAM_CHAT_ID", absl::StrCat(chat_id_)}};
}

json TelegramMessenger::Snapshot() const {
  json out;
  out["title"] = config_.chat_title();
  out["chat_id"] = absl::StrCat(chat_id_);
  out["features"] = {{"delete", false}, {"presence", false}};
  out["presence_choices"] = json::array();
  json people = json::array();
  for (const Fake::User& u : people_) {
    std::string name = u.first_name;
    if (!u.last_name.empty()) absl::StrAppend(&name, " ", u.last_name);
    people.push_back(
        {{"id", absl::StrCat(u.id)}, {"name", name}, {"presence", ""}});
  }
  out["people"] = people;
  out["guests"] = json::array();
  out["bot"] = {{"name", config_.bot_name()}, {"presence", ""}, {"text", ""}};

  json messages = json::array();
  for (const Fake::Message& m : fake_.messages(chat_id_)) {
    const json& j = m.json;
    json v;
    v["id"] = absl::StrCat(m.message_id);
    v["bridged"] = m.from_bot;
    if (j.contains("from")) {
      v["user_id"] = absl::StrCat(j["from"].value("id", int64_t{0}));
      v["name"] = FullName(j["from"]);
    } else {
      v["user_id"] = "";
      v["name"] = config_.bot_name();
    }
    v["text"] = m.text();
    v["format"] = "telegram";
    v["entities"] = j.contains("entities")           ? j["entities"]
                    : j.contains("caption_entities") ? j["caption_entities"]
                                                     : json::array();
    v["time"] = m.date * 1000;
    v["reply_to"] =
        j.contains("reply_to_message")
            ? absl::StrCat(j["reply_to_message"].value("message_id", 0))
            : "";
    v["thread"] = j.contains("message_thread_id")
                      ? absl::StrCat(j.value("message_thread_id", 0))
                      : "";
    v["edited"] = m.edits > 0;
    v["deleted"] = m.deleted;
    json files = json::array();
    if (json f = FileOf(j); !f.is_null()) files.push_back(f);
    v["files"] = files;
    messages.push_back(std::move(v));
  }
  out["messages"] = messages;
  return out;
}

absl::StatusOr<Fake::User> TelegramMessenger::Person(
    const std::string& user) const {
  for (const Fake::User& u : people_) {
    if (absl::StrCat(u.id) == user) return u;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("no person '", user, "' in the Telegram group"));
}

absl::StatusOr<int64_t> TelegramMessenger::ReplyTarget(
    const std::string& reply_to) const {
  if (reply_to.empty()) return 0;
  int64_t id = 0;
  if (!absl::SimpleAtoi(reply_to, &id) || !fake_.message(chat_id_, id) ||
      fake_.message(chat_id_, id)->deleted) {
    return absl::InvalidArgumentError(
        absl::StrCat("no message '", reply_to, "' to reply to"));
  }
  return id;
}

absl::StatusOr<std::string> TelegramMessenger::Post(
    const PostRequest& request) {
  absl::StatusOr<Fake::User> from = Person(request.user);
  if (!from.ok()) return from.status();
  absl::StatusOr<int64_t> reply = ReplyTarget(request.reply_to);
  if (!reply.ok()) return reply.status();
  Fake::PostOptions options;
  options.reply_to = *reply;
  int64_t id = fake_.PostMessage(chat_id_, *from, request.text, options);
  if (id == 0) return absl::InternalError("the group is gone");
  return absl::StrCat(id);
}

absl::Status TelegramMessenger::Edit(const std::string& user,
                                     const std::string& id,
                                     const std::string& text) {
  absl::StatusOr<Fake::User> from = Person(user);
  if (!from.ok()) return from.status();
  int64_t message_id = 0;
  if (!absl::SimpleAtoi(id, &message_id)) {
    return absl::NotFoundError("no such message");
  }
  absl::optional<Fake::Message> m = fake_.message(chat_id_, message_id);
  if (!m || m->deleted) return absl::NotFoundError("no such message");
  if (!m->json.contains("from") ||
      m->json["from"].value("id", int64_t{0}) != from->id) {
    return absl::PermissionDeniedError("not the poster");
  }
  if (!fake_.EditMessage(chat_id_, message_id, text)) {
    return absl::NotFoundError("no such message");
  }
  return absl::OkStatus();
}

absl::Status TelegramMessenger::Delete(const std::string&, const std::string&) {
  return absl::UnimplementedError(
      "Telegram does not tell bots about deleted messages, so the bridge "
      "cannot mirror a delete made in Telegram");
}

absl::StatusOr<std::string> TelegramMessenger::Upload(
    const UploadRequest& request) {
  absl::StatusOr<Fake::User> from = Person(request.user);
  if (!from.ok()) return from.status();
  absl::StatusOr<int64_t> reply = ReplyTarget(request.reply_to);
  if (!reply.ok()) return reply.status();
  Fake::Upload upload;
  upload.kind = "document";
  upload.name = request.name;
  upload.mime_type = request.mime_type;
  upload.bytes = request.content;
  upload.caption = request.text;
  upload.reply_to = *reply;
  int64_t id = fake_.UploadFile(chat_id_, *from, upload);
  if (id == 0) return absl::InternalError("the group is gone");
  return absl::StrCat(id);
}

absl::Status TelegramMessenger::SetPresence(const std::string&,
                                            const std::string&) {
  return absl::UnimplementedError(
      "Telegram does not show a person's presence to bots");
}

absl::StatusOr<FileBody> TelegramMessenger::Download(
    const std::string& file_id) {
  // Through the Bot API, as the adapter does: getFile, then the file path.
  const std::string base =
      absl::StrCat(fake_.base_url(), "/bot", config_.bot_token());
  absl::StatusOr<HttpResponse> info = http_.PostJson(
      absl::StrCat(base, "/getFile"), json({{"file_id", file_id}}).dump());
  if (!info.ok()) return info.status();
  json answer = json::parse(info->body, nullptr, false);
  if (info->status != 200 || !answer.is_object() ||
      !answer.value("ok", false)) {
    return absl::NotFoundError("no such file");
  }
  const std::string path = answer["result"].value("file_path", "");
  absl::StatusOr<HttpResponse> file = http_.Get(absl::StrCat(
      fake_.base_url(), "/file/bot", config_.bot_token(), "/", path));
  if (!file.ok()) return file.status();
  if (file->status != 200) return absl::NotFoundError("no such file");
  FileBody body;
  body.content = std::move(file->body);
  // The name and type are in the message that carries the file.
  for (const Fake::Message& m : fake_.messages(chat_id_)) {
    json f = FileOf(m.json);
    if (!f.is_null() && f.value("id", "") == file_id) {
      body.name = f.value("name", "");
      body.mime_type = f.value("mime_type", "");
    }
  }
  return body;
}

void TelegramMessenger::OnChange(std::function<void()> fn) {
  fake_.Subscribe([fn = std::move(fn)](const Fake::Change& change) {
    if (change.kind != "call" && change.kind != "update") fn();
  });
}

}  // namespace imbridge::sandbox
