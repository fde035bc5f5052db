#include "tools/sandbox/bitrix24_messenger.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/http/http_client.h"

namespace imbridge::sandbox {
namespace {

using Fake = emulators::FakeBitrix24;
using nlohmann::json;

// The bot's code, as the adapter's --register uses by default.
constexpr char kBotCode[] = "imbridge";

Fake::Options FakeOptions(const v1::SandboxBitrix24& config) {
  Fake::Options o;
  o.webhook_code = config.webhook_code();
  o.port = static_cast<uint16_t>(config.api_port());
  // The sandbox is one person typing: no query limit in the way.
  o.drain_per_second = 50;
  return o;
}

}  // namespace

Bitrix24Messenger::Bitrix24Messenger(const v1::SandboxBitrix24& config)
    : config_(config), fake_(FakeOptions(config)) {}

absl::Status Bitrix24Messenger::Start() {
  if (absl::Status s = fake_.Start(); !s.ok()) return s;
  // The bot is registered through the portal's REST API, as an
  // administrator would with `--register`.
  HttpClient http;
  json fields = {{"code", kBotCode},
                 {"type", "supervisor"},
                 {"eventMode", "fetch"},
                 {"botToken", config_.bot_token()},
                 {"properties", {{"name", config_.bot_name()}}}};
  absl::StatusOr<HttpResponse> r =
      http.PostJson(fake_.webhook_url() + "imbot.v2.Bot.register",
                    json({{"fields", fields}}).dump());
  if (!r.ok()) return r.status();
  bot_id_ = fake_.bot_id(kBotCode);
  if (r->status != 200 || bot_id_ == 0) {
    return absl::InternalError(
        absl::StrCat("registering the bot: HTTP ", r->status, " ", r->body));
  }
  chat_id_ = fake_.CreateChat(config_.chat_title());
  for (const v1::SandboxPerson& p : config_.people()) {
    Person person{fake_.NewUser(p.name()), p.name()};
    fake_.AddToChat(chat_id_, person.id);
    people_.push_back(person);
  }
  // The bot joins last: the people were there before the bridge, so their
  // joining is no event of its.
  fake_.AddToChat(chat_id_, bot_id_);
  return absl::OkStatus();
}

void Bitrix24Messenger::Stop() { fake_.Stop(); }

std::vector<std::pair<std::string, std::string>> Bitrix24Messenger::Endpoints()
    const {
  return {{"BITRIX24_WEBHOOK_URL", fake_.webhook_url()},
          {"BITRIX24_BOT_ID", absl::StrCat(bot_id_)},
          {"BITRIX24_CHAT_ID", absl::StrCat("chat", chat_id_)}};
}

json Bitrix24Messenger::Snapshot() const {
  json out;
  out["title"] = config_.chat_title();
  out["chat_id"] = absl::StrCat("chat", chat_id_);
  out["features"] = {{"delete", true}, {"presence", false}};
  out["presence_choices"] = json::array();
  json people = json::array();
  for (const Person& p : people_) {
    people.push_back(
        {{"id", absl::StrCat(p.id)}, {"name", p.name}, {"presence", ""}});
  }
  out["people"] = people;
  out["guests"] = json::array();
  out["bot"] = {{"name", config_.bot_name()}, {"presence", ""}, {"text", ""}};
  json messages = json::array();
  for (const Fake::Message& m :
       fake_.messages(chat_id_, /*author=*/0, /*with_deleted=*/true)) {
    json v;
    v["id"] = absl::StrCat(m.id);
    v["user_id"] = absl::StrCat(m.author_id);
    v["bridged"] = m.author_id == bot_id_;
    v["name"] = m.author_id == bot_id_ ? config_.bot_name()
                                       : fake_.user_name(m.author_id);
    v["text"] = m.text;
    v["format"] = "bbcode";
    v["entities"] = json::array();
    v["time"] = absl::ToUnixMillis(m.date);
    v["reply_to"] = m.reply_id != 0 ? absl::StrCat(m.reply_id) : "";
    v["thread"] = "";
    v["edited"] = m.edits > 0;
    v["deleted"] = m.deleted;
    json files = json::array();
    for (int64_t file_id : m.file_ids) {
      absl::optional<Fake::File> f = fake_.file(file_id);
      if (!f.has_value()) continue;
      files.push_back({{"id", absl::StrCat(file_id)},
                       {"name", f->name},
                       {"size", f->bytes.size()},
                       {"mime_type", ""}});
    }
    v["files"] = files;
    messages.push_back(std::move(v));
  }
  out["messages"] = messages;
  return out;
}

absl::StatusOr<Bitrix24Messenger::Person> Bitrix24Messenger::FindPerson(
    const std::string& user) const {
  for (const Person& p : people_) {
    if (absl::StrCat(p.id) == user) return p;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("no person '", user, "' in the Bitrix24 chat"));
}

absl::StatusOr<int64_t> Bitrix24Messenger::OwnMessage(
    const Person& person, const std::string& id) const {
  int64_t message_id = 0;
  absl::optional<Fake::Message> m;
  if (absl::SimpleAtoi(id, &message_id)) m = fake_.message(message_id);
  if (!m.has_value() || m->deleted || m->chat_id != chat_id_) {
    return absl::NotFoundError("no such message");
  }
  if (m->author_id != person.id) {
    return absl::PermissionDeniedError("not the poster");
  }
  return message_id;
}

absl::StatusOr<std::string> Bitrix24Messenger::Post(
    const PostRequest& request) {
  absl::StatusOr<Person> from = FindPerson(request.user);
  if (!from.ok()) return from.status();
  int64_t reply = 0;
  if (!request.reply_to.empty()) {
    absl::optional<Fake::Message> target;
    if (absl::SimpleAtoi(request.reply_to, &reply)) {
      target = fake_.message(reply);
    }
    if (!target.has_value() || target->deleted || target->chat_id != chat_id_) {
      return absl::InvalidArgumentError(
          absl::StrCat("no message '", request.reply_to, "' to reply to"));
    }
  }
  int64_t id = fake_.PostMessage(chat_id_, from->id, request.text, reply);
  if (id == 0) return absl::InternalError("the chat is gone");
  return absl::StrCat(id);
}

absl::Status Bitrix24Messenger::Edit(const std::string& user,
                                     const std::string& id,
                                     const std::string& text) {
  absl::StatusOr<Person> from = FindPerson(user);
  if (!from.ok()) return from.status();
  absl::StatusOr<int64_t> message = OwnMessage(*from, id);
  if (!message.ok()) return message.status();
  if (!fake_.EditMessage(*message, text)) {
    return absl::NotFoundError("no such message");
  }
  return absl::OkStatus();
}

absl::Status Bitrix24Messenger::Delete(const std::string& user,
                                       const std::string& id) {
  absl::StatusOr<Person> from = FindPerson(user);
  if (!from.ok()) return from.status();
  absl::StatusOr<int64_t> message = OwnMessage(*from, id);
  if (!message.ok()) return message.status();
  if (!fake_.DeleteMessage(*message)) {
    return absl::NotFoundError("no such message");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Bitrix24Messenger::Upload(
    const UploadRequest& request) {
  absl::StatusOr<Person> from = FindPerson(request.user);
  if (!from.ok()) return from.status();
  if (!request.reply_to.empty()) {
    return absl::InvalidArgumentError(
        "a file cannot be a reply in the emulated Bitrix24");
  }
  int64_t id = fake_.PostFile(chat_id_, from->id, request.name, request.content,
                              request.text);
  if (id == 0) return absl::InternalError("the chat is gone");
  return absl::StrCat(id);
}

absl::Status Bitrix24Messenger::SetPresence(const std::string&,
                                            const std::string&) {
  return absl::UnimplementedError(
      "Bitrix24 does not show a person's presence to bots");
}

absl::StatusOr<FileBody> Bitrix24Messenger::Download(
    const std::string& file_id) {
  int64_t id = 0;
  absl::optional<Fake::File> f;
  if (absl::SimpleAtoi(file_id, &id)) f = fake_.file(id);
  if (!f.has_value()) return absl::NotFoundError("no such file");
  return FileBody{f->name, "", f->bytes};
}

void Bitrix24Messenger::OnChange(std::function<void()> fn) {
  fake_.OnChange(std::move(fn));
}

}  // namespace imbridge::sandbox
