#include "emulators/telegram/fake_telegram.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/http/percent_decode.h"

namespace imbridge::fakes {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxDownloadBytes = 20ull << 20;
constexpr uint64_t kMaxUploadBytes = 50ull << 20;
constexpr uint64_t kMaxPhotoBytes = 10ull << 20;
constexpr size_t kMaxText = 4096;
constexpr size_t kMaxCaption = 1024;

// Parameters that carry JSON when sent as strings (form, multipart, query).
bool IsJsonField(const std::string& name) {
  return name == "entities" || name == "caption_entities" ||
         name == "reply_parameters" || name == "media" ||
         name == "allowed_updates" || name == "reply_markup" ||
         name == "link_preview_options";
}

// UTF-16 length of a UTF-8 string (independent of the adapter's code).
size_t Utf16Length(const std::string& s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    n += (c >= 0xF0) ? 2 : 1;
  }
  return n;
}

// Adds a string-valued parameter, parsing JSON fields and integers.
void AddParam(json& params, const std::string& name, const std::string& value) {
  if (IsJsonField(name)) {
    json j = json::parse(value, nullptr, false);
    params[name] = j.is_discarded() ? json(value) : j;
    return;
  }
  int64_t number = 0;
  if (absl::SimpleAtoi(value, &number) && name != "text" && name != "caption" &&
      name != "secret_token" && name != "url") {
    params[name] = number;
    return;
  }
  if (value == "true" || value == "false") {
    params[name] = value == "true";
    return;
  }
  params[name] = value;
}

void ParseForm(absl::string_view body, json& params) {
  for (absl::string_view pair : absl::StrSplit(body, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    AddParam(params, PercentDecode(kv.first, true),
             PercentDecode(kv.second, true));
  }
}

// A minimal multipart/form-data parser; returns false on a malformed body.
bool ParseMultipart(absl::string_view content_type, absl::string_view body,
                    json& params, std::map<std::string, std::string>& files) {
  size_t b = content_type.find("boundary=");
  if (b == absl::string_view::npos) return false;
  std::string boundary(content_type.substr(b + 9));
  if (size_t semi = boundary.find(';'); semi != std::string::npos) {
    boundary.resize(semi);
  }
  boundary = std::string(absl::StripAsciiWhitespace(boundary));
  if (boundary.size() >= 2 && boundary.front() == '"') {
    boundary = boundary.substr(1, boundary.size() - 2);
  }
  const std::string delimiter = "--" + boundary;
  size_t pos = body.find(delimiter);
  if (pos == absl::string_view::npos) return false;
  while (true) {
    pos += delimiter.size();
    if (body.substr(pos, 2) == "--") return true;  // closing delimiter
    if (body.substr(pos, 2) != "\r\n") return false;
    pos += 2;
    size_t header_end = body.find("\r\n\r\n", pos);
    if (header_end == absl::string_view::npos) return false;
    absl::string_view headers = body.substr(pos, header_end - pos);
    size_t data_start = header_end + 4;
    size_t next = body.find("\r\n" + delimiter, data_start);
    if (next == absl::string_view::npos) return false;
    absl::string_view data = body.substr(data_start, next - data_start);
    std::string name, filename, type;
    for (absl::string_view line : absl::StrSplit(headers, "\r\n")) {
      std::string lower = absl::AsciiStrToLower(line);
      if (absl::StartsWith(lower, "content-disposition:")) {
        for (absl::string_view attr : absl::StrSplit(line, ';')) {
          attr = absl::StripAsciiWhitespace(attr);
          auto value = [&](absl::string_view a) {
            absl::string_view v = a.substr(a.find('=') + 1);
            if (v.size() >= 2 && v.front() == '"')
              v = v.substr(1, v.size() - 2);
            return std::string(v);
          };
          if (absl::StartsWith(attr, "name=")) name = value(attr);
          if (absl::StartsWith(attr, "filename=")) filename = value(attr);
        }
      } else if (absl::StartsWith(lower, "content-type:")) {
        type = std::string(absl::StripAsciiWhitespace(line.substr(13)));
      }
    }
    if (name.empty()) return false;
    if (!filename.empty()) {
      files[name] = std::string(data);
      params[name] = {{"filename", filename},
                      {"content_type", type},
                      {"size", data.size()}};
    } else {
      AddParam(params, name, std::string(data));
    }
    pos = next + 2;
  }
}

int64_t IntParam(const json& p, const char* name, int64_t fallback = 0) {
  auto it = p.find(name);
  if (it == p.end()) return fallback;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    int64_t v = 0;
    if (absl::SimpleAtoi(it->get<std::string>(), &v)) return v;
  }
  return fallback;
}

std::string StringParam(const json& p, const char* name) {
  auto it = p.find(name);
  if (it == p.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  return "";
}

// Checks entities against a text; returns an error description or "".
std::string CheckEntities(const std::string& text, const json& entities) {
  if (entities.is_null()) return "";
  if (!entities.is_array()) return "can't parse entities: not an array";
  size_t len = Utf16Length(text);
  for (const json& e : entities) {
    if (!e.is_object() || !e.contains("type") || !e.contains("offset") ||
        !e.contains("length") || !e["offset"].is_number_integer() ||
        !e["length"].is_number_integer()) {
      return "can't parse entities: an entity lacks type, offset or length";
    }
    int64_t offset = e["offset"].get<int64_t>();
    int64_t length = e["length"].get<int64_t>();
    if (offset < 0 || length <= 0 ||
        static_cast<size_t>(offset + length) > len) {
      return absl::StrCat("can't parse entities: entity ", e.dump(),
                          " is out of the text's ", len, " UTF-16 units");
    }
    if (e["type"] == "text_link" &&
        (!e.contains("url") || !e["url"].is_string())) {
      return "can't parse entities: text_link without url";
    }
  }
  return "";
}

}  // namespace

std::string FakeTelegram::Message::text() const {
  if (json.contains("text") && json["text"].is_string()) {
    return json["text"].get<std::string>();
  }
  if (json.contains("caption") && json["caption"].is_string()) {
    return json["caption"].get<std::string>();
  }
  return "";
}

FakeTelegram::FakeTelegram() : FakeTelegram(Options()) {}

FakeTelegram::FakeTelegram(Options options) : options_(std::move(options)) {
  std::string id(options_.token.substr(0, options_.token.find(':')));
  if (!absl::SimpleAtoi(id, &bot_id_)) bot_id_ = 1;
}

FakeTelegram::~FakeTelegram() { Stop(); }

absl::Status FakeTelegram::Start() {
  HttpServer::Options o;
  o.host = "127.0.0.1";
  o.port = options_.port;
  o.max_body_bytes = options_.max_body_bytes;
  o.request_timeout = absl::Seconds(120);
  o.stop_grace = absl::Seconds(1);
  HttpHandler serve = [this](HttpRequest request,
                             std::shared_ptr<Responder> responder) {
    Serve(std::move(request), std::move(responder));
  };
  absl::Status status = server_.Start(o, {{"GET", "/bot", serve},
                                          {"POST", "/bot", serve},
                                          {"GET", "/file/bot", serve}});
  if (!status.ok()) return status;
  pump_ = std::thread([this] { PumpLoop(); });
  return absl::OkStatus();
}

void FakeTelegram::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (pump_.joinable()) pump_.join();
  std::vector<std::thread> delayed;
  {
    absl::MutexLock lock(&mu_);
    delayed.swap(delayed_);
  }
  for (std::thread& t : delayed) t.join();
  server_.Stop();
}

void FakeTelegram::DelayDownloads(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  download_delay_ = delay;
}

uint16_t FakeTelegram::port() const { return server_.port(); }

std::string FakeTelegram::base_url() const { return server_.base_url(); }

FakeTelegram::Answer FakeTelegram::Error(int code,
                                         const std::string& description,
                                         json parameters) {
  Answer a;
  a.status = code;
  a.body = {{"ok", false}, {"error_code", code}, {"description", description}};
  if (!parameters.is_null()) a.body["parameters"] = std::move(parameters);
  return a;
}

FakeTelegram::Answer FakeTelegram::Ok(json result) {
  Answer a;
  a.body = {{"ok", true}, {"result", std::move(result)}};
  return a;
}

json FakeTelegram::UserJson(const User& user) {
  json j = {{"id", user.id},
            {"is_bot", user.is_bot},
            {"first_name", user.first_name}};
  if (!user.last_name.empty()) j["last_name"] = user.last_name;
  if (!user.username.empty()) j["username"] = user.username;
  return j;
}

json FakeTelegram::BotUserJson() const {
  return {{"id", bot_id_},
          {"is_bot", true},
          {"first_name", options_.bot_first_name},
          {"username", options_.bot_username}};
}

json FakeTelegram::ChatJsonLocked(const Chat& chat) const {
  json j = {{"id", chat.id}, {"type", chat.type}};
  if (!chat.title.empty()) j["title"] = chat.title;
  if (chat.is_forum) j["is_forum"] = true;
  return j;
}

FakeTelegram::User FakeTelegram::NewUser(const std::string& first_name,
                                         const std::string& last_name,
                                         const std::string& username) {
  User u;
  {
    absl::MutexLock lock(&mu_);
    u.id = next_user_id_++;
  }
  u.first_name = first_name;
  u.last_name = last_name;
  u.username = username;
  return u;
}

int64_t FakeTelegram::CreateChat(const std::string& type,
                                 const std::string& title, bool is_forum) {
  absl::MutexLock lock(&mu_);
  int64_t seq = next_chat_seq_++;
  Chat chat;
  chat.type = type;
  chat.title = title;
  chat.is_forum = is_forum && type == "supergroup";
  if (type == "private") {
    chat.id = 9000000 + seq;
  } else if (type == "group") {
    chat.id = -(4000000 + seq);
  } else {
    chat.id = -(1001000000000 + seq);
  }
  int64_t id = chat.id;
  chats_[id] = std::move(chat);
  return id;
}

FakeTelegram::Chat* FakeTelegram::FindChatLocked(const json& chat_id) {
  int64_t id = 0;
  if (chat_id.is_number_integer()) {
    id = chat_id.get<int64_t>();
  } else if (!chat_id.is_string() ||
             !absl::SimpleAtoi(chat_id.get<std::string>(), &id)) {
    return nullptr;
  }
  auto it = chats_.find(id);
  return it == chats_.end() ? nullptr : &it->second;
}

FakeTelegram::Message* FakeTelegram::FindMessageLocked(int64_t chat_id,
                                                       int64_t message_id) {
  auto it = chats_.find(chat_id);
  if (it == chats_.end()) return nullptr;
  for (Message& m : it->second.messages) {
    if (m.message_id == message_id) return &m;
  }
  return nullptr;
}

FakeTelegram::Message& FakeTelegram::AddMessageLocked(Chat& chat, json message,
                                                      bool from_bot) {
  Message m;
  m.chat_id = chat.id;
  m.message_id = chat.next_message_id++;
  m.from_bot = from_bot;
  m.date = absl::ToUnixSeconds(absl::Now());
  message["message_id"] = m.message_id;
  message["date"] = m.date;
  message["chat"] = ChatJsonLocked(chat);
  m.json = std::move(message);
  chat.messages.push_back(std::move(m));
  ++version_;
  return chat.messages.back();
}

int64_t FakeTelegram::QueueUpdateLocked(json update) {
  int64_t id = next_update_id_++;
  update["update_id"] = id;
  updates_.push_back(std::move(update));
  ++version_;
  return id;
}

int64_t FakeTelegram::PushUpdate(json update) {
  int64_t id = 0;
  {
    absl::MutexLock lock(&mu_);
    id = QueueUpdateLocked(std::move(update));
  }
  Notify({"update", 0, 0, ""});
  return id;
}

int64_t FakeTelegram::PersonMessage(int64_t chat_id, const User* from,
                                    json fields, int64_t thread_id,
                                    int64_t reply_to) {
  int64_t message_id = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = chats_.find(chat_id);
    if (it == chats_.end()) return 0;
    Chat& chat = it->second;
    const bool channel = chat.type == "channel";
    if (channel) {
      fields["sender_chat"] = ChatJsonLocked(chat);
    } else if (from != nullptr) {
      fields["from"] = UserJson(*from);
    }
    if (thread_id != 0 && chat.is_forum) {
      fields["message_thread_id"] = thread_id;
      fields["is_topic_message"] = true;
    }
    int64_t reply = reply_to != 0 ? reply_to : (chat.is_forum ? thread_id : 0);
    if (reply != 0) {
      if (Message* r = FindMessageLocked(chat_id, reply)) {
        json nested = r->json;
        nested.erase("reply_to_message");
        fields["reply_to_message"] = std::move(nested);
      }
    }
    Message& m = AddMessageLocked(chat, std::move(fields), false);
    message_id = m.message_id;
    QueueUpdateLocked({{channel ? "channel_post" : "message", m.json}});
  }
  Notify({"message", chat_id, message_id, ""});
  return message_id;
}

int64_t FakeTelegram::PostMessage(int64_t chat_id, const User& from,
                                  const std::string& text,
                                  const PostOptions& options) {
  json fields = {{"text", text}};
  if (options.entities.is_array() && !options.entities.empty()) {
    fields["entities"] = options.entities;
  }
  return PersonMessage(chat_id, &from, std::move(fields), options.thread_id,
                       options.reply_to);
}

bool FakeTelegram::EditMessage(int64_t chat_id, int64_t message_id,
                               const std::string& text, const json& entities) {
  {
    absl::MutexLock lock(&mu_);
    Message* m = FindMessageLocked(chat_id, message_id);
    if (m == nullptr || m->deleted) return false;
    const char* field = m->json.contains("text") ? "text" : "caption";
    const char* entities_field =
        m->json.contains("text") ? "entities" : "caption_entities";
    m->json[field] = text;
    if (entities.is_array() && !entities.empty()) {
      m->json[entities_field] = entities;
    } else {
      m->json.erase(entities_field);
    }
    m->json["edit_date"] = absl::ToUnixSeconds(absl::Now());
    ++m->edits;
    const bool channel = chats_[chat_id].type == "channel";
    QueueUpdateLocked(
        {{channel ? "edited_channel_post" : "edited_message", m->json}});
  }
  Notify({"edit", chat_id, message_id, ""});
  return true;
}

FakeTelegram::StoredFile& FakeTelegram::StoreFileLocked(
    std::string bytes, uint64_t size, const std::string& extension) {
  uint64_t seq = next_file_seq_++;
  StoredFile f;
  f.file_id = absl::StrCat("BQACAgIAAx0F", seq, "fileid");
  f.file_unique_id = absl::StrCat("AgAD", seq);
  f.path = absl::StrCat("documents/file_", seq, extension);
  f.size = size != 0 ? size : bytes.size();
  f.bytes = std::move(bytes);
  file_paths_[f.path] = f.file_id;
  std::string id = f.file_id;
  return files_[id] = std::move(f);
}

int64_t FakeTelegram::UploadFile(int64_t chat_id, const User& from,
                                 const Upload& upload) {
  json fields;
  {
    absl::MutexLock lock(&mu_);
    std::string extension;
    if (size_t dot = upload.name.rfind('.'); dot != std::string::npos) {
      extension = upload.name.substr(dot);
    }
    StoredFile& f =
        StoreFileLocked(upload.bytes, upload.declared_size, extension);
    json file = {{"file_id", f.file_id},
                 {"file_unique_id", f.file_unique_id},
                 {"file_size", f.size}};
    if (upload.kind == "photo") {
      json small = {{"file_id", f.file_id + "small"},
                    {"file_unique_id", f.file_unique_id + "s"},
                    {"file_size", 100},
                    {"width", 90},
                    {"height", 90}};
      file["width"] = 1280;
      file["height"] = 960;
      fields["photo"] = json::array({small, file});
    } else {
      if (!upload.name.empty() && upload.kind != "voice" &&
          upload.kind != "sticker") {
        file["file_name"] = upload.name;
      }
      if (!upload.mime_type.empty() && upload.kind != "sticker") {
        file["mime_type"] = upload.mime_type;
      }
      if (upload.kind == "sticker") {
        file["is_animated"] = false;
        file["is_video"] = false;
        file["emoji"] = "\xF0\x9F\x98\x80";
      }
      fields[upload.kind] = file;
      if (upload.kind == "animation") fields["document"] = file;
    }
    if (!upload.caption.empty()) fields["caption"] = upload.caption;
    if (upload.caption_entities.is_array() &&
        !upload.caption_entities.empty()) {
      fields["caption_entities"] = upload.caption_entities;
    }
    if (!upload.media_group_id.empty()) {
      fields["media_group_id"] = upload.media_group_id;
    }
  }
  return PersonMessage(chat_id, &from, std::move(fields), upload.thread_id,
                       upload.reply_to);
}

int64_t FakeTelegram::AddMember(int64_t chat_id, const User& user) {
  json fields = {{"new_chat_members", json::array({UserJson(user)})}};
  return PersonMessage(chat_id, &user, std::move(fields), 0, 0);
}

int64_t FakeTelegram::RemoveMember(int64_t chat_id, const User& user) {
  json fields = {{"left_chat_member", UserJson(user)}};
  return PersonMessage(chat_id, &user, std::move(fields), 0, 0);
}

int64_t FakeTelegram::CreateTopic(int64_t chat_id, const std::string& name) {
  json fields = {
      {"forum_topic_created", {{"name", name}, {"icon_color", 7322096}}}};
  User creator;
  creator.id = 1;
  creator.first_name = "Admin";
  int64_t id = PersonMessage(chat_id, &creator, std::move(fields), 0, 0);
  // The topic's id is its first message's id; that message is in the topic.
  absl::MutexLock lock(&mu_);
  if (Message* m = FindMessageLocked(chat_id, id)) {
    m->json["message_thread_id"] = id;
    m->json["is_topic_message"] = true;
  }
  return id;
}

int64_t FakeTelegram::MigrateToSupergroup(int64_t chat_id) {
  int64_t new_id = 0;
  std::string title;
  {
    absl::MutexLock lock(&mu_);
    auto it = chats_.find(chat_id);
    if (it == chats_.end() || it->second.type != "group") return 0;
    title = it->second.title;
    new_id = -(1001000000000 + next_chat_seq_++);
    it->second.migrated_to = new_id;
    Chat chat;
    chat.id = new_id;
    chat.type = "supergroup";
    chat.title = title;
    chats_[new_id] = std::move(chat);
  }
  User admin;
  admin.id = 1;
  admin.first_name = "Admin";
  PersonMessage(chat_id, &admin, {{"migrate_to_chat_id", new_id}}, 0, 0);
  PersonMessage(new_id, &admin, {{"migrate_from_chat_id", chat_id}}, 0, 0);
  return new_id;
}

void FakeTelegram::AgeMessage(int64_t chat_id, int64_t message_id,
                              absl::Duration age) {
  absl::MutexLock lock(&mu_);
  if (Message* m = FindMessageLocked(chat_id, message_id)) {
    m->date = absl::ToUnixSeconds(absl::Now() - age);
    m->json["date"] = m->date;
  }
}

void FakeTelegram::SetWebhook(const std::string& url,
                              const std::string& secret_token) {
  absl::MutexLock lock(&mu_);
  webhook_url_ = url;
  webhook_secret_ = secret_token;
  ++version_;
}

void FakeTelegram::FailNext(const std::string& method, int count,
                            Failure failure) {
  absl::MutexLock lock(&mu_);
  for (int i = 0; i < count; ++i) failures_[method].push_back(failure);
}

std::vector<FakeTelegram::ApiCall> FakeTelegram::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

std::vector<FakeTelegram::ApiCall> FakeTelegram::calls(
    const std::string& method) const {
  absl::MutexLock lock(&mu_);
  std::vector<ApiCall> out;
  for (const ApiCall& c : calls_) {
    if (c.method == method) out.push_back(c);
  }
  return out;
}

std::vector<FakeTelegram::WebhookAttempt> FakeTelegram::webhook_attempts()
    const {
  absl::MutexLock lock(&mu_);
  return attempts_;
}

std::vector<FakeTelegram::Message> FakeTelegram::messages(
    int64_t chat_id) const {
  absl::MutexLock lock(&mu_);
  auto it = chats_.find(chat_id);
  return it == chats_.end() ? std::vector<Message>() : it->second.messages;
}

std::vector<FakeTelegram::Message> FakeTelegram::bot_messages(
    int64_t chat_id) const {
  std::vector<Message> out;
  for (Message& m : messages(chat_id)) {
    if (m.from_bot && !m.deleted) out.push_back(std::move(m));
  }
  return out;
}

absl::optional<FakeTelegram::Message> FakeTelegram::message(
    int64_t chat_id, int64_t message_id) const {
  absl::MutexLock lock(&mu_);
  auto it = chats_.find(chat_id);
  if (it == chats_.end()) return absl::nullopt;
  for (const Message& m : it->second.messages) {
    if (m.message_id == message_id) return m;
  }
  return absl::nullopt;
}

size_t FakeTelegram::pending_updates() const {
  absl::MutexLock lock(&mu_);
  return updates_.size();
}

bool FakeTelegram::WaitFor(const std::function<bool()>& predicate,
                           absl::Duration timeout) const {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (predicate()) return true;
    if (absl::Now() >= deadline) return false;
    uint64_t seen;
    {
      absl::MutexLock lock(&mu_);
      seen = version_;
    }
    absl::MutexLock lock(&mu_);
    auto changed = [this, seen]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return version_ != seen;
    };
    mu_.AwaitWithTimeout(absl::Condition(&changed), absl::Milliseconds(50));
  }
}

bool FakeTelegram::WaitForCalls(const std::string& method, size_t n,
                                absl::Duration timeout) const {
  return WaitFor([&] { return calls(method).size() >= n; }, timeout);
}

int FakeTelegram::Subscribe(std::function<void(const Change&)> fn) {
  absl::MutexLock lock(&mu_);
  int id = next_subscriber_++;
  subscribers_[id] = std::move(fn);
  return id;
}

void FakeTelegram::Unsubscribe(int id) {
  absl::MutexLock lock(&mu_);
  subscribers_.erase(id);
}

void FakeTelegram::Notify(const Change& change) {
  std::vector<std::function<void(const Change&)>> fns;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, fn] : subscribers_) fns.push_back(fn);
  }
  for (const auto& fn : fns) fn(change);
}

void FakeTelegram::Serve(HttpRequest request,
                         std::shared_ptr<Responder> responder) {
  // File downloads.
  const std::string file_prefix =
      absl::StrCat("/file/bot", options_.token, "/");
  if (absl::StartsWith(request.path, "/file/bot")) {
    std::string content;
    bool found = false;
    if (absl::StartsWith(request.path, file_prefix)) {
      std::string path =
          PercentDecode(request.path.substr(file_prefix.size()), false);
      absl::MutexLock lock(&mu_);
      auto p = file_paths_.find(path);
      if (p != file_paths_.end()) {
        content = files_[p->second].bytes;
        found = true;
      }
    }
    if (found) {
      absl::MutexLock lock(&mu_);
      if (download_delay_ > absl::ZeroDuration() && !stopping_) {
        delayed_.emplace_back([this, responder, content = std::move(content),
                               until = absl::Now() + download_delay_] {
          {
            absl::MutexLock lock(&mu_);
            mu_.AwaitWithDeadline(absl::Condition(&stopping_), until);
          }
          responder->Respond(200, "application/octet-stream", content);
        });
        return;
      }
    }
    if (found) {
      responder->Respond(200, "application/octet-stream", std::move(content));
    } else {
      responder->Respond(404, "application/json",
                         Error(404, "Not Found").body.dump());
    }
    return;
  }
  // Methods: /bot<token>/<method>.
  absl::string_view rest = absl::StripPrefix(request.path, "/bot");
  size_t slash = rest.find('/');
  std::string token(rest.substr(0, slash));
  std::string method(slash == absl::string_view::npos ? ""
                                                      : rest.substr(slash + 1));
  ApiCall call;
  call.method = method;
  call.at = absl::Now();
  call.params = json::object();
  Answer answer;
  bool deferred = false;
  bool parsed = true;
  if (token == options_.token) {
    ParseForm(request.query, call.params);
    absl::string_view type = request.Header("Content-Type");
    if (absl::StartsWith(type, "application/json")) {
      json body = json::parse(request.body, nullptr, false);
      if (body.is_object()) {
        for (auto& [k, v] : body.items()) call.params[k] = v;
      } else if (!request.body.empty()) {
        parsed = false;
      }
    } else if (absl::StartsWith(type, "multipart/form-data")) {
      parsed = ParseMultipart(type, request.body, call.params, call.files);
    } else if (!request.body.empty()) {
      ParseForm(request.body, call.params);
    }
  }
  // The call is recorded before it takes effect, so that a test seeing the
  // effect also sees the call.
  SlowAnswers::Slot slot = slow_.Take(method);
  size_t index = 0;
  json params = call.params;
  std::map<std::string, std::string> files = call.files;
  {
    absl::MutexLock lock(&mu_);
    index = calls_.size();
    calls_.push_back(std::move(call));
  }
  if (token != options_.token) {
    answer = Error(401, "Unauthorized");
  } else if (!parsed) {
    answer = Error(400, "Bad Request: can't parse request body");
  } else {
    answer = Dispatch(method, params, files, responder, &deferred, index);
  }
  {
    absl::MutexLock lock(&mu_);
    calls_[index].status = deferred ? 200 : answer.status;
    ++version_;
  }
  Notify({"call", 0, 0, method});
  if (!deferred) {
    slow_.Respond(std::move(slot), responder, answer.status, "application/json",
                  answer.body.dump());
  }
}

void FakeTelegram::DelayAnswers(const std::string& method,
                                absl::Duration delay) {
  slow_.Set(method, delay);
}

FakeTelegram::Answer FakeTelegram::Dispatch(
    const std::string& method, const json& p,
    const std::map<std::string, std::string>& files,
    const std::shared_ptr<Responder>& responder, bool* deferred,
    size_t call_index) {
  Answer answer;
  Change change;
  {
    absl::MutexLock lock(&mu_);
    auto failure = failures_.find(method);
    if (failure != failures_.end() && !failure->second.empty()) {
      Failure f = failure->second.front();
      failure->second.pop_front();
      json parameters;
      if (f.retry_after > 0) parameters["retry_after"] = f.retry_after;
      if (f.migrate_to_chat_id != 0) {
        parameters["migrate_to_chat_id"] = f.migrate_to_chat_id;
      }
      return Error(f.error_code, f.description, parameters);
    }
    if (method == "getMe") return Ok(BotUserJson());
    if (method == "setWebhook") {
      webhook_url_ = StringParam(p, "url");
      webhook_secret_ = StringParam(p, "secret_token");
      if (p.value("drop_pending_updates", false)) updates_.clear();
      ++version_;
      return Ok(true);
    }
    if (method == "deleteWebhook") {
      webhook_url_.clear();
      webhook_secret_.clear();
      if (p.value("drop_pending_updates", false)) updates_.clear();
      ++version_;
      return Ok(true);
    }
    if (method == "getWebhookInfo") {
      return Ok({{"url", webhook_url_},
                 {"has_custom_certificate", false},
                 {"pending_update_count", updates_.size()}});
    }
    if (method == "getUpdates") {
      if (!webhook_url_.empty()) {
        return Error(409,
                     "Conflict: can't use getUpdates method while webhook is "
                     "active; use deleteWebhook to delete the webhook first");
      }
      int64_t offset = IntParam(p, "offset");
      int64_t limit = std::clamp<int64_t>(IntParam(p, "limit", 100), 1, 100);
      int64_t timeout = IntParam(p, "timeout");
      if (offset > 0) {
        while (!updates_.empty() &&
               updates_.front()["update_id"].get<int64_t>() < offset) {
          updates_.pop_front();
        }
      }
      if (updates_.empty() && timeout > 0) {
        PendingPoll poll;
        poll.responder = responder;
        poll.offset = offset;
        poll.limit = static_cast<int>(limit);
        poll.deadline = absl::Now() + absl::Seconds(timeout);
        polls_.push_back(std::move(poll));
        *deferred = true;
        return Answer();
      }
      json result = json::array();
      for (const json& u : updates_) {
        if (static_cast<int64_t>(result.size()) >= limit) break;
        result.push_back(u);
      }
      return Ok(std::move(result));
    }
    if (method == "sendMessage") {
      answer = SendMessageLocked(p);
      change.kind = "message";
    } else if (method == "editMessageText" || method == "editMessageCaption") {
      answer = EditLocked(method, p);
      change.kind = "edit";
    } else if (method == "deleteMessage") {
      answer = DeleteLocked(p);
      change.kind = "delete";
    } else if (method == "getFile") {
      return GetFileLocked(p);
    } else if (method == "sendMediaGroup") {
      answer = SendMediaGroupLocked(p, files);
      change.kind = "message";
    } else if (method == "sendDocument" || method == "sendPhoto" ||
               method == "sendVideo" || method == "sendAudio" ||
               method == "sendVoice" || method == "sendAnimation" ||
               method == "sendSticker") {
      answer = SendFileLocked(method, p, files);
      change.kind = "message";
    } else {
      return Error(404, "Not Found: method not found");
    }
    // Visible together with the effect.
    calls_[call_index].status = answer.status;
  }
  if (answer.status == 200) {
    change.chat_id = IntParam(p, "chat_id");
    change.message_id = IntParam(p, "message_id");
    Notify(change);
  }
  return answer;
}

absl::optional<FakeTelegram::Answer> FakeTelegram::PrepareSendLocked(
    const json& p, Chat** chat_out, json* message) {
  auto chat_id = p.find("chat_id");
  if (chat_id == p.end()) return Error(400, "Bad Request: chat_id is empty");
  Chat* chat = FindChatLocked(*chat_id);
  if (chat == nullptr) return Error(400, "Bad Request: chat not found");
  if (chat->migrated_to != 0) {
    return Error(400,
                 "Bad Request: group chat was upgraded to a supergroup chat",
                 {{"migrate_to_chat_id", chat->migrated_to}});
  }
  if (chat->type == "channel") {
    (*message)["sender_chat"] = ChatJsonLocked(*chat);
  } else {
    (*message)["from"] = BotUserJson();
  }
  int64_t thread = IntParam(p, "message_thread_id");
  if (thread != 0) {
    Message* root = FindMessageLocked(chat->id, thread);
    if (!chat->is_forum || root == nullptr ||
        !root->json.contains("forum_topic_created")) {
      return Error(400, "Bad Request: message thread not found");
    }
    (*message)["message_thread_id"] = thread;
    (*message)["is_topic_message"] = true;
  }
  auto reply = p.find("reply_parameters");
  if (reply != p.end() && reply->is_object()) {
    int64_t reply_id = IntParam(*reply, "message_id");
    bool allow = reply->value("allow_sending_without_reply", false);
    Message* target = FindMessageLocked(chat->id, reply_id);
    if (target == nullptr || target->deleted) {
      if (!allow)
        return Error(400, "Bad Request: message to be replied not found");
    } else {
      json nested = target->json;
      nested.erase("reply_to_message");
      (*message)["reply_to_message"] = std::move(nested);
    }
  }
  *chat_out = chat;
  return absl::nullopt;
}

FakeTelegram::Answer FakeTelegram::SendMessageLocked(const json& p) {
  std::string text = StringParam(p, "text");
  if (text.empty()) return Error(400, "Bad Request: message text is empty");
  if (Utf16Length(text) > kMaxText) {
    return Error(400, "Bad Request: message is too long");
  }
  json entities = p.contains("entities") ? p["entities"] : json();
  if (std::string e = CheckEntities(text, entities); !e.empty()) {
    return Error(400, "Bad Request: " + e);
  }
  json message = {{"text", text}};
  if (entities.is_array() && !entities.empty()) message["entities"] = entities;
  Chat* chat = nullptr;
  if (auto error = PrepareSendLocked(p, &chat, &message)) return *error;
  return Ok(AddMessageLocked(*chat, std::move(message), true).json);
}

FakeTelegram::Answer FakeTelegram::SendFileLocked(
    const std::string& method, const json& p,
    const std::map<std::string, std::string>& files) {
  static const std::map<std::string, std::string> kField = {
      {"sendDocument", "document"}, {"sendPhoto", "photo"},
      {"sendVideo", "video"},       {"sendAudio", "audio"},
      {"sendVoice", "voice"},       {"sendAnimation", "animation"},
      {"sendSticker", "sticker"}};
  const std::string field = kField.at(method);
  std::string caption = StringParam(p, "caption");
  if (Utf16Length(caption) > kMaxCaption) {
    return Error(400, "Bad Request: message caption is too long");
  }
  json caption_entities =
      p.contains("caption_entities") ? p["caption_entities"] : json();
  if (std::string e = CheckEntities(caption, caption_entities); !e.empty()) {
    return Error(400, "Bad Request: " + e);
  }
  auto upload = files.find(field);
  if (upload == files.end()) {
    return Error(400, absl::StrCat("Bad Request: there is no ", field,
                                   " in the request"));
  }
  if (upload->second.size() > kMaxUploadBytes ||
      (field == "photo" && upload->second.size() > kMaxPhotoBytes)) {
    return Error(413, "Request Entity Too Large");
  }
  json message;
  Chat* chat = nullptr;
  if (auto error = PrepareSendLocked(p, &chat, &message)) return *error;
  const json& meta = p[field];
  std::string name = meta.value("filename", "");
  StoredFile& f = StoreFileLocked(upload->second, 0, "");
  json file = {{"file_id", f.file_id},
               {"file_unique_id", f.file_unique_id},
               {"file_size", f.size}};
  if (field == "photo") {
    message["photo"] = json::array({file});
  } else {
    if (!name.empty()) file["file_name"] = name;
    std::string type = meta.value("content_type", "");
    if (!type.empty()) file["mime_type"] = type;
    message[field] = file;
  }
  if (!caption.empty()) message["caption"] = caption;
  if (caption_entities.is_array() && !caption_entities.empty()) {
    message["caption_entities"] = caption_entities;
  }
  return Ok(AddMessageLocked(*chat, std::move(message), true).json);
}

FakeTelegram::Answer FakeTelegram::SendMediaGroupLocked(
    const json& p, const std::map<std::string, std::string>& files) {
  auto media = p.find("media");
  if (media == p.end() || !media->is_array() || media->size() < 2 ||
      media->size() > 10) {
    return Error(400, "Bad Request: media must include 2-10 items");
  }
  json base;
  Chat* chat = nullptr;
  if (auto error = PrepareSendLocked(p, &chat, &base)) return *error;
  std::string group = absl::StrCat(13000000000000000 + next_group_seq_++);
  json result = json::array();
  std::vector<json> messages;
  for (const json& item : *media) {
    std::string type = item.value("type", "");
    std::string ref = item.value("media", "");
    if (!absl::StartsWith(ref, "attach://")) {
      return Error(400, "Bad Request: wrong HTTP URL specified");
    }
    auto upload = files.find(ref.substr(9));
    if (upload == files.end()) {
      return Error(400,
                   "Bad Request: wrong file identifier/HTTP URL specified");
    }
    if (type != "photo" && type != "video" && type != "document" &&
        type != "audio") {
      return Error(400, "Bad Request: unsupported media type");
    }
    json message = base;
    StoredFile& f = StoreFileLocked(upload->second, 0, "");
    json file = {{"file_id", f.file_id},
                 {"file_unique_id", f.file_unique_id},
                 {"file_size", f.size}};
    if (type == "photo") {
      message["photo"] = json::array({file});
    } else {
      const json& meta = p[ref.substr(9)];
      file["file_name"] = meta.value("filename", "");
      message[type] = file;
    }
    message["media_group_id"] = group;
    if (item.contains("caption")) message["caption"] = item["caption"];
    if (item.contains("caption_entities")) {
      message["caption_entities"] = item["caption_entities"];
    }
    messages.push_back(std::move(message));
  }
  for (json& m : messages) {
    result.push_back(AddMessageLocked(*chat, std::move(m), true).json);
  }
  return Ok(std::move(result));
}

FakeTelegram::Answer FakeTelegram::EditLocked(const std::string& method,
                                              const json& p) {
  Chat* chat = FindChatLocked(p.contains("chat_id") ? p["chat_id"] : json());
  if (chat == nullptr) return Error(400, "Bad Request: chat not found");
  Message* m = FindMessageLocked(chat->id, IntParam(p, "message_id"));
  if (m == nullptr || m->deleted || !m->from_bot) {
    return Error(400, "Bad Request: message to edit not found");
  }
  const bool caption = method == "editMessageCaption";
  const char* text_field = caption ? "caption" : "text";
  const char* entities_field = caption ? "caption_entities" : "entities";
  if (!caption && !m->json.contains("text")) {
    return Error(400, "Bad Request: there is no text in the message to edit");
  }
  if (caption && m->json.contains("text")) {
    return Error(400,
                 "Bad Request: there is no caption in the message to edit");
  }
  std::string text = StringParam(p, text_field);
  if (!caption && text.empty()) {
    return Error(400, "Bad Request: message text is empty");
  }
  if (Utf16Length(text) > (caption ? kMaxCaption : kMaxText)) {
    return Error(400, caption ? "Bad Request: message caption is too long"
                              : "Bad Request: message is too long");
  }
  json entities = p.contains(entities_field) ? p[entities_field] : json();
  if (std::string e = CheckEntities(text, entities); !e.empty()) {
    return Error(400, "Bad Request: " + e);
  }
  if (entities.is_array() && entities.empty()) entities = json();
  json old_entities =
      m->json.contains(entities_field) ? m->json[entities_field] : json();
  if (m->json.value(text_field, "") == text && old_entities == entities) {
    return Error(400,
                 "Bad Request: message is not modified: specified new message "
                 "content and reply markup are exactly the same as a current "
                 "content and reply markup of the message");
  }
  m->json[text_field] = text;
  if (entities.is_null()) {
    m->json.erase(entities_field);
  } else {
    m->json[entities_field] = entities;
  }
  m->json["edit_date"] = absl::ToUnixSeconds(absl::Now());
  ++m->edits;
  ++version_;
  return Ok(m->json);
}

FakeTelegram::Answer FakeTelegram::DeleteLocked(const json& p) {
  Chat* chat = FindChatLocked(p.contains("chat_id") ? p["chat_id"] : json());
  if (chat == nullptr) return Error(400, "Bad Request: chat not found");
  Message* m = FindMessageLocked(chat->id, IntParam(p, "message_id"));
  if (m == nullptr || m->deleted) {
    return Error(400, "Bad Request: message to delete not found");
  }
  if (absl::FromUnixSeconds(m->date) < absl::Now() - absl::Hours(48)) {
    return Error(400, "Bad Request: message can't be deleted for everyone");
  }
  m->deleted = true;
  ++version_;
  return Ok(true);
}

FakeTelegram::Answer FakeTelegram::GetFileLocked(const json& p) {
  auto it = files_.find(StringParam(p, "file_id"));
  if (it == files_.end()) return Error(400, "Bad Request: invalid file_id");
  const StoredFile& f = it->second;
  if (f.size > kMaxDownloadBytes) {
    return Error(400, "Bad Request: file is too big");
  }
  return Ok({{"file_id", f.file_id},
             {"file_unique_id", f.file_unique_id},
             {"file_size", f.size},
             {"file_path", f.path}});
}

void FakeTelegram::PumpLoop() {
  while (true) {
    std::vector<std::pair<std::shared_ptr<Responder>, std::string>> answers;
    json push;
    std::string url, secret;
    {
      absl::MutexLock lock(&mu_);
      uint64_t seen = version_;
      auto woken = [this, seen]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || version_ != seen ||
               (!webhook_url_.empty() && !updates_.empty());
      };
      mu_.AwaitWithTimeout(absl::Condition(&woken), absl::Milliseconds(20));
      if (stopping_) {
        for (PendingPoll& poll : polls_) {
          answers.emplace_back(
              poll.responder,
              json{{"ok", true}, {"result", json::array()}}.dump());
        }
        polls_.clear();
      } else {
        absl::Time now = absl::Now();
        for (auto it = polls_.begin(); it != polls_.end();) {
          json result = json::array();
          if (webhook_url_.empty()) {
            for (const json& u : updates_) {
              if (static_cast<int>(result.size()) >= it->limit) break;
              result.push_back(u);
            }
          }
          if (!result.empty() || now >= it->deadline) {
            answers.emplace_back(it->responder,
                                 json{{"ok", true}, {"result", result}}.dump());
            it = polls_.erase(it);
          } else {
            ++it;
          }
        }
        if (!webhook_url_.empty() && !updates_.empty()) {
          push = updates_.front();
          url = webhook_url_;
          secret = webhook_secret_;
        }
      }
    }
    for (auto& [responder, body] : answers) {
      responder->Respond(200, "application/json", std::move(body));
    }
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    if (push.is_null()) continue;
    HttpClientRequest request;
    request.method = "POST";
    request.url = url;
    request.headers = {{"Content-Type", "application/json"}};
    if (!secret.empty()) {
      request.headers.emplace_back("X-Telegram-Bot-Api-Secret-Token", secret);
    }
    request.body = push.dump();
    request.timeout = absl::Seconds(30);
    absl::StatusOr<HttpResponse> response = http_.Send(request);
    int status = response.ok() ? response->status : 0;
    bool delivered = status >= 200 && status < 300;
    {
      absl::MutexLock lock(&mu_);
      attempts_.push_back(
          {push["update_id"].get<int64_t>(), status, absl::Now()});
      if (delivered && !updates_.empty() &&
          updates_.front()["update_id"] == push["update_id"]) {
        updates_.pop_front();
      }
      ++version_;
      if (!delivered) {
        auto stop = [this]()
                        ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
        mu_.AwaitWithTimeout(absl::Condition(&stop),
                             options_.webhook_retry_delay);
      }
    }
  }
}

}  // namespace imbridge::fakes
