#include "emulators/bitrix24/fake_bitrix24.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/http/percent_decode.h"
#include "common/http/php_form.h"

namespace imbridge::emulators {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxMessageChars = 20000;
constexpr size_t kMaxFileBytes = 100ull << 20;
constexpr size_t kMaxBatchCommands = 50;

// A flat query string as a JSON object of strings.
json ParseQuery(absl::string_view query) {
  json out = json::object();
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    out[PercentDecode(kv.first, true)] = PercentDecode(kv.second, true);
  }
  return out;
}

int64_t IntParam(const json& params, const char* name) {
  auto it = params.find(name);
  if (it == params.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  int64_t v = 0;
  if (it->is_string() && absl::SimpleAtoi(it->get<std::string>(), &v)) return v;
  return 0;
}

std::string StringParam(const json& params, const char* name) {
  auto it = params.find(name);
  if (it == params.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

size_t Chars(absl::string_view s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

// "chat12" -> 12.
int64_t ChatIdOfDialog(const std::string& dialog) {
  int64_t id = 0;
  if (absl::StartsWith(dialog, "chat") &&
      absl::SimpleAtoi(dialog.substr(4), &id)) {
    return id;
  }
  return 0;
}

}  // namespace

FakeBitrix24::FakeBitrix24() : FakeBitrix24(Options()) {}

FakeBitrix24::FakeBitrix24(Options options)
    : options_(std::move(options)),
      drain_per_second_(options_.drain_per_second),
      bucket_capacity_(options_.bucket_capacity) {
  absl::MutexLock lock(&mu_);
  bucket_at_ = absl::Now();
  IssueTokensLocked();
}

FakeBitrix24::~FakeBitrix24() { Stop(); }

absl::Status FakeBitrix24::Start() {
  HttpServer::Options o;
  o.port = options_.port;
  o.max_body_bytes = 200 << 20;  // base64 of a 100 MB file
  o.request_timeout = absl::Seconds(60);
  HttpHandler serve = [this](HttpRequest request,
                             std::shared_ptr<Responder> responder) {
    Serve(std::move(request), std::move(responder));
  };
  return server_.Start(o, {{"GET", "/rest/", serve},
                           {"POST", "/rest/", serve},
                           {"GET", "/oauth/token", serve},
                           {"GET", "/download/", serve}});
}

void FakeBitrix24::Stop() { server_.Stop(); }

std::string FakeBitrix24::base_url() const { return server_.base_url(); }
std::string FakeBitrix24::webhook_url() const {
  return absl::StrCat(base_url(), "/rest/", options_.webhook_user, "/",
                      options_.webhook_code, "/");
}
std::string FakeBitrix24::rest_url() const {
  return absl::StrCat(base_url(), "/rest/");
}
std::string FakeBitrix24::oauth_url() const {
  return absl::StrCat(base_url(), "/oauth/token/");
}

void FakeBitrix24::IssueTokensLocked() {
  ++next_id_;
  access_token_ = absl::StrCat("fakeaccess", next_id_, "x0123456789");
  refresh_token_ = absl::StrCat("fakerefresh", next_id_, "y0123456789");
  access_expires_ = absl::Now() + options_.access_token_lifetime;
}

std::string FakeBitrix24::access_token() const {
  absl::MutexLock lock(&mu_);
  return access_token_;
}
std::string FakeBitrix24::refresh_token() const {
  absl::MutexLock lock(&mu_);
  return refresh_token_;
}
void FakeBitrix24::ExpireAccessToken() {
  absl::MutexLock lock(&mu_);
  access_expires_ = absl::Now() - absl::Seconds(1);
}
int FakeBitrix24::refreshes() const {
  absl::MutexLock lock(&mu_);
  return refreshes_;
}

void FakeBitrix24::SetBucket(double drain_per_second, double capacity) {
  absl::MutexLock lock(&mu_);
  drain_per_second_ = drain_per_second;
  bucket_capacity_ = capacity;
  bucket_level_ = 0;
  bucket_at_ = absl::Now();
}

void FakeBitrix24::FailNext(const std::string& method, int count, int status,
                            const std::string& error, int after) {
  absl::MutexLock lock(&mu_);
  // Status 0: a call that works.
  for (int i = 0; i < after; ++i) failures_[method].push_back({0, ""});
  for (int i = 0; i < count; ++i) failures_[method].push_back({status, error});
}

FakeBitrix24::Answer FakeBitrix24::Ok(json result) const {
  absl::Time now = absl::Now();
  double t = absl::ToUnixMicros(now) / 1e6;
  Answer a;
  a.body = {{"result", std::move(result)},
            {"time",
             {{"start", t},
              {"finish", t},
              {"duration", 0.001},
              {"processing", 0.001},
              {"date_start", absl::FormatTime(now)},
              {"date_finish", absl::FormatTime(now)},
              {"operating_reset_at", absl::ToUnixSeconds(now) + 600},
              {"operating", 0}}}};
  return a;
}

FakeBitrix24::Answer FakeBitrix24::Error(int status, const std::string& code,
                                         const std::string& description) {
  Answer a;
  a.status = status;
  a.body = {{"error", code}, {"error_description", description}};
  return a;
}

void FakeBitrix24::Serve(HttpRequest request,
                         std::shared_ptr<Responder> responder) {
  auto send = [&](const Answer& a) {
    responder->Respond(a.status, "application/json; charset=utf-8",
                       a.body.dump());
  };
  if (absl::StartsWith(request.path, "/download/")) {
    // /download/<file id>/<sig>
    std::vector<std::string> parts =
        absl::StrSplit(request.path.substr(10), '/');
    int64_t id = 0;
    bool headers = !request.Header("User-Agent").empty() &&
                   !request.Header("Accept").empty() &&
                   !request.Header("Accept-Language").empty() &&
                   !request.Header("Referer").empty();
    std::string bytes;
    bool found = false;
    if (parts.size() == 2 && absl::SimpleAtoi(parts[0], &id) && headers) {
      absl::MutexLock lock(&mu_);
      auto f = files_.find(id);
      if (f != files_.end() && parts[1] == absl::StrCat("sig", id * 7919)) {
        bytes = f->second.bytes;
        found = true;
      }
    }
    if (!found) {
      responder->Respond(404, "text/html", "<html>404 Not Found</html>");
      return;
    }
    responder->Respond(200, "application/octet-stream", std::move(bytes));
    return;
  }
  // Reads do not change the portal.
  NotifyOnExit notify(this);
  notify.armed = !absl::EndsWith(request.path, "Event.get") &&
                 !absl::EndsWith(request.path, "Bot.list") &&
                 !absl::EndsWith(request.path, "File.download");
  json params = ParseQuery(request.query);
  if (!request.body.empty()) {
    json body = json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      send(Error(400, "INVALID_REQUEST", "Malformed JSON body"));
      return;
    }
    for (auto& [k, v] : body.items()) params[k] = v;
  }
  absl::MutexLock lock(&mu_);
  if (absl::StartsWith(request.path, "/oauth/token")) {
    send(Refresh(params));
    return;
  }
  // /rest/<method> or /rest/<user>/<code>/<method>
  std::vector<std::string> parts = absl::StrSplit(request.path.substr(6), '/');
  std::string method;
  bool webhook_auth = false;
  if (parts.size() == 1) {
    method = parts[0];
  } else if (parts.size() == 3) {
    method = parts[2];
    webhook_auth = true;
    if (parts[0] != options_.webhook_user ||
        parts[1] != options_.webhook_code) {
      Answer a = Error(401, "NO_AUTH_FOUND", "Wrong authorization data");
      calls_.push_back({method, params, a.status, absl::Now()});
      send(a);
      return;
    }
  } else {
    send(Error(404, "ERROR_METHOD_NOT_FOUND", "Method not found!"));
    return;
  }
  if (absl::EndsWith(method, ".json")) method.resize(method.size() - 5);
  Answer a = Rest(method, params, webhook_auth);
  calls_.push_back({method, params, a.status, absl::Now()});
  send(a);
}

FakeBitrix24::Answer FakeBitrix24::Refresh(const json& params) {
  if (StringParam(params, "grant_type") != "refresh_token" ||
      StringParam(params, "client_id") != options_.client_id ||
      StringParam(params, "client_secret") != options_.client_secret) {
    return Error(401, "invalid_client", "invalid client credentials");
  }
  if (StringParam(params, "refresh_token") != refresh_token_) {
    return Error(400, "invalid_grant", "Invalid refresh token");
  }
  IssueTokensLocked();
  ++refreshes_;
  Answer a;
  a.body = {{"access_token", access_token_},
            {"expires", absl::ToUnixSeconds(access_expires_)},
            {"expires_in", 3600},
            {"scope", "imbot,im,disk"},
            {"domain", "fake.bitrix24.test"},
            {"server_endpoint", oauth_url()},
            {"status", "L"},
            {"client_endpoint", rest_url()},
            {"member_id", "fakememberid"},
            {"user_id", 1},
            {"refresh_token", refresh_token_}};
  return a;
}

FakeBitrix24::Answer FakeBitrix24::Rest(const std::string& method,
                                        const json& params, bool webhook_auth) {
  // The leaky bucket.
  absl::Time now = absl::Now();
  bucket_level_ =
      std::max(0.0, bucket_level_ - absl::ToDoubleSeconds(now - bucket_at_) *
                                        drain_per_second_);
  bucket_at_ = now;
  if (bucket_level_ + 1 > bucket_capacity_) {
    return Error(503, "QUERY_LIMIT_EXCEEDED", "Too many requests");
  }
  bucket_level_ += 1;
  if (!webhook_auth) {
    std::string auth = StringParam(params, "auth");
    if (auth.empty())
      return Error(401, "NO_AUTH_FOUND", "Wrong authorization data");
    if (auth != access_token_) {
      return Error(401, "invalid_token",
                   "The access token provided is invalid.");
    }
    if (now >= access_expires_) {
      return Error(401, "expired_token",
                   "The access token provided has expired.");
    }
  }
  if (absl::optional<Answer> failure =
          InjectedFailureLocked(method, /*any_method=*/true)) {
    return *failure;
  }
  if (method == "batch") return Batch(params, webhook_auth);
  return Execute(method, params, webhook_auth);
}

absl::optional<FakeBitrix24::Answer> FakeBitrix24::InjectedFailureLocked(
    const std::string& method, bool any_method) {
  for (const std::string& key : {method, std::string("*")}) {
    if (key == "*" && !any_method) break;
    auto f = failures_.find(key);
    if (f != failures_.end() && !f->second.empty()) {
      Failure failure = f->second.front();
      f->second.pop_front();
      if (failure.status == 0) return absl::nullopt;
      return Error(failure.status, failure.error, "injected failure");
    }
  }
  return absl::nullopt;
}

FakeBitrix24::Answer FakeBitrix24::Batch(const json& params,
                                         bool webhook_auth) {
  json cmd = params.value("cmd", json());
  if (!cmd.is_object() && !cmd.is_array()) {
    return Error(400, "INVALID_ARG_VALUE", "cmd must be an array");
  }
  if (cmd.size() > kMaxBatchCommands) {
    return Error(400, "ERROR_BATCH_LENGTH_EXCEEDED",
                 "Max batch length exceeded");
  }
  const bool halt = IntParam(params, "halt") != 0 ||
                    (params.contains("halt") && params["halt"].is_boolean() &&
                     params["halt"].get<bool>());
  json results = json::object();
  json errors = json::object();
  size_t index = 0;
  for (auto it = cmd.begin(); it != cmd.end(); ++it, ++index) {
    const std::string key = cmd.is_object() ? it.key() : absl::StrCat(index);
    if (!it->is_string()) {
      errors[key] = {{"error", "INVALID_REQUEST"},
                     {"error_description", "a command must be a string"}};
      if (halt) break;
      continue;
    }
    const std::string command = it->get<std::string>();
    const size_t question = command.find('?');
    std::string method = command.substr(0, question);
    absl::StatusOr<json> command_params =
        ParsePhpForm(question == std::string::npos
                         ? absl::string_view()
                         : absl::string_view(command).substr(question + 1));
    Answer a;
    if (!command_params.ok()) {
      a = Error(400, "INVALID_REQUEST",
                std::string(command_params.status().message()));
    } else if (method == "batch") {
      a = Error(400, "ERROR_BATCH_METHOD_NOT_ALLOWED",
                "Method is not allowed for batch usage");
    } else if (absl::optional<Answer> failure =
                   InjectedFailureLocked(method, /*any_method=*/false)) {
      a = *failure;
    } else {
      a = Execute(method, *command_params, webhook_auth);
    }
    calls_.push_back({method,
                      command_params.ok() ? *command_params : json::object(),
                      a.status, absl::Now(), /*batched=*/true});
    if (a.status == 200) {
      results[key] = a.body["result"];
    } else {
      errors[key] = a.body;
      if (halt) break;
    }
  }
  return Ok({{"result", results},
             // PHP writes an empty array, not an empty object.
             {"result_error", errors.empty() ? json::array() : errors},
             {"result_total", json::array()},
             {"result_next", json::array()},
             {"result_time", json::object()}});
}

FakeBitrix24::Answer FakeBitrix24::Execute(const std::string& method,
                                           const json& params,
                                           bool webhook_auth) {
  if (method == "imbot.v2.Bot.register") {
    json fields = params.value("fields", json::object());
    std::string code = StringParam(fields, "code");
    if (code.empty()) return Error(400, "CODE_ERROR", "Bot code is empty");
    for (const auto& [id, bot] : bots_) {
      if (bot.code == code) {
        return Error(400, "BOT_CODE_ALREADY_EXISTS", "Bot code already exists");
      }
    }
    Bot bot;
    bot.id = ++next_id_;
    bot.code = code;
    bot.type = fields.value("type", "bot");
    bot.token = StringParam(fields, "botToken");
    if (bot.token.size() > 40) return Error(400, "BOT_TOKEN_ERROR", "Too long");
    bot.name = fields.value("properties", json::object()).value("name", code);
    users_[bot.id] = bot.name;
    bots_[bot.id] = bot;
    return Ok({{"bot", {{"id", bot.id}, {"code", code}, {"type", bot.type}}}});
  }
  if (method == "imbot.v2.Bot.list") {
    json list = json::array();
    for (const auto& [id, bot] : bots_) {
      list.push_back({{"id", id}, {"code", bot.code}, {"type", bot.type}});
    }
    return Ok({{"bots", list}});
  }

  int64_t bot_id = IntParam(params, "botId");
  auto bot = bots_.find(bot_id);
  if (bot == bots_.end()) return Error(400, "BOT_NOT_FOUND", "Bot not found");
  if (webhook_auth && !bot->second.token.empty() &&
      StringParam(params, "botToken") != bot->second.token) {
    return Error(403, "ACCESS_DENIED", "Wrong botToken");
  }
  json fields = params.value("fields", json::object());

  if (method == "imbot.v2.Event.get") {
    int64_t offset = IntParam(params, "offset");
    int64_t limit = params.contains("limit") ? IntParam(params, "limit") : 100;
    if (limit < 1 || limit > 1000) {
      return Error(400, "INVALID_LIMIT", "limit must be 1..1000");
    }
    bot->second.acked_offset = std::max(bot->second.acked_offset, offset);
    // Events up to the offset are forgotten.
    json events = json::array();
    int64_t next = offset;
    bool more = false;
    for (const Event& e : events_) {
      if (e.bot_id != bot_id || e.id <= offset) continue;
      if (static_cast<int64_t>(events.size()) == limit) {
        more = true;
        break;
      }
      events.push_back(e.json);
      next = e.id;
    }
    return Ok({{"events", events}, {"nextOffset", next}, {"hasMore", more}});
  }
  if (method == "imbot.v2.Chat.Message.send" ||
      method == "imbot.v2.File.upload") {
    int64_t chat_id = ChatIdOfDialog(StringParam(params, "dialogId"));
    auto chat = chats_.find(chat_id);
    if (chat == chats_.end()) {
      return Error(400, "DIALOG_ID_EMPTY", "Dialog not found");
    }
    Message m;
    m.chat_id = chat_id;
    m.author_id = bot_id;
    m.text = StringParam(fields, "message");
    if (Chars(m.text) > kMaxMessageChars) {
      return Error(400, "MESSAGE_TOO_LONG", "Message is too long");
    }
    if (method == "imbot.v2.File.upload") {
      std::string bytes;
      std::string content = StringParam(fields, "content");
      if (StringParam(fields, "name").empty() ||
          !absl::Base64Unescape(content, &bytes)) {
        return Error(400, "FILE_ERROR", "name and base64 content required");
      }
      if (bytes.size() > kMaxFileBytes) {
        return Error(400, "FILE_TOO_BIG", "File is over 100 MB");
      }
      File f;
      f.id = ++next_id_;
      f.name = StringParam(fields, "name");
      f.bytes = std::move(bytes);
      files_[f.id] = f;
      m.file_ids.push_back(f.id);
    } else {
      if (m.text.empty()) return Error(400, "MESSAGE_EMPTY", "Message empty");
      m.reply_id = IntParam(fields, "replyId");
      if (m.reply_id != 0 && messages_.count(m.reply_id) == 0) {
        return Error(400, "REPLY_ID_ERROR", "Message to reply to not found");
      }
    }
    int64_t id = AddMessageLocked(m);
    EmitLocked(chat->second, "ONIMBOTV2MESSAGEADD",
               {{"message", MessageJsonLocked(messages_[id])},
                {"user", UserJsonLocked(bot_id)}});
    if (method == "imbot.v2.File.upload") {
      return Ok({{"messageId", id}, {"fileId", m.file_ids[0]}});
    }
    return Ok({{"id", id}});
  }
  if (method == "imbot.v2.Chat.Message.update" ||
      method == "imbot.v2.Chat.Message.delete") {
    auto m = messages_.find(IntParam(params, "messageId"));
    if (m == messages_.end() || m->second.deleted) {
      return Error(400, "MESSAGE_NOT_FOUND", "Message not found");
    }
    if (m->second.author_id != bot_id) {
      return Error(403, "ACCESS_DENIED", "Not the bot's message");
    }
    Chat& chat = chats_[m->second.chat_id];
    if (method == "imbot.v2.Chat.Message.delete") {
      m->second.deleted = true;
      EmitLocked(chat, "ONIMBOTV2MESSAGEDELETE", {{"messageId", m->first}});
    } else {
      std::string text = StringParam(fields, "message");
      if (Chars(text) > kMaxMessageChars) {
        return Error(400, "MESSAGE_TOO_LONG", "Message is too long");
      }
      m->second.text = text;
      ++m->second.edits;
      EmitLocked(chat, "ONIMBOTV2MESSAGEUPDATE",
                 {{"message", MessageJsonLocked(m->second)},
                  {"user", UserJsonLocked(bot_id)}});
    }
    return Ok(true);
  }
  if (method == "imbot.v2.File.download") {
    int64_t id = IntParam(params, "fileId");
    if (files_.count(id) == 0) return Error(400, "FILE_NOT_FOUND", "No file");
    return Ok({{"downloadUrl", absl::StrCat(base_url(), "/download/", id,
                                            "/sig", id * 7919)}});
  }
  return Error(404, "ERROR_METHOD_NOT_FOUND", "Method not found!");
}

json FakeBitrix24::ChatJson(const Chat& chat) {
  return {{"id", chat.id},
          {"dialogId", absl::StrCat("chat", chat.id)},
          {"title", chat.title},
          {"type", "chat"}};
}

json FakeBitrix24::UserJsonLocked(int64_t user_id) const {
  auto u = users_.find(user_id);
  return {{"id", user_id},
          {"name", u == users_.end() ? "" : u->second},
          {"isBot", bots_.count(user_id) > 0}};
}

json FakeBitrix24::MessageJsonLocked(const Message& m) const {
  json files = json::array();
  for (int64_t id : m.file_ids) {
    const File& f = files_.at(id);
    files.push_back({{"id", id},
                     {"name", f.name},
                     {"size", f.bytes.size()},
                     {"type", "file"}});
  }
  json p = {{"files", files}};
  if (m.reply_id != 0) p["replyId"] = m.reply_id;
  return {{"id", m.id},
          {"chatId", m.chat_id},
          {"authorId", m.author_id},
          {"date", absl::FormatTime(absl::Now())},
          {"text", m.text},
          {"isSystem", false},
          {"uuid", absl::StrCat("uuid-", m.id)},
          {"params", p}};
}

int64_t FakeBitrix24::AddMessageLocked(Message m) {
  m.id = ++next_id_;
  m.date = absl::Now();
  messages_[m.id] = m;
  return m.id;
}

void FakeBitrix24::EmitLocked(const Chat& chat, const std::string& type,
                              json data) {
  data["chat"] = ChatJson(chat);
  for (int64_t member : chat.members) {
    auto bot = bots_.find(member);
    if (bot == bots_.end()) continue;
    json d = data;
    d["bot"] = {{"id", member}, {"code", bot->second.code}};
    Event e;
    e.id = next_event_id_++;
    e.bot_id = member;
    e.json = {{"eventId", e.id},
              {"type", type},
              {"date", absl::FormatTime(absl::Now())},
              {"data", std::move(d)}};
    events_.push_back(std::move(e));
  }
}

FakeBitrix24::NotifyOnExit::~NotifyOnExit() {
  if (!armed) return;
  for (const auto& fn : fake_->listeners_) fn();
}

void FakeBitrix24::OnChange(std::function<void()> fn) {
  listeners_.push_back(std::move(fn));
}

std::string FakeBitrix24::user_name(int64_t id) const {
  absl::MutexLock lock(&mu_);
  auto u = users_.find(id);
  return u == users_.end() ? "" : u->second;
}

int64_t FakeBitrix24::NewUser(const std::string& name) {
  NotifyOnExit notify(this);
  absl::MutexLock lock(&mu_);
  int64_t id = ++next_id_;
  users_[id] = name;
  return id;
}

int64_t FakeBitrix24::CreateChat(const std::string& title) {
  NotifyOnExit notify(this);
  absl::MutexLock lock(&mu_);
  Chat chat;
  chat.id = ++next_id_;
  chat.title = title;
  chats_[chat.id] = chat;
  return chat.id;
}

void FakeBitrix24::AddToChat(int64_t chat_id, int64_t user_id) {
  NotifyOnExit notify(this);
  absl::MutexLock lock(&mu_);
  auto chat = chats_.find(chat_id);
  if (chat == chats_.end()) return;
  chat->second.members.push_back(user_id);
  EmitLocked(
      chat->second,
      bots_.count(user_id) ? "ONIMBOTV2JOINCHAT" : "ONIMBOTV2CHATUSERADD",
      {{"user", UserJsonLocked(user_id)}});
}

void FakeBitrix24::RemoveFromChat(int64_t chat_id, int64_t user_id) {
  NotifyOnExit notify(this);
  absl::MutexLock lock(&mu_);
  auto chat = chats_.find(chat_id);
  if (chat == chats_.end()) return;
  EmitLocked(chat->second, "ONIMBOTV2CHATUSERDELETE",
             {{"user", UserJsonLocked(user_id)}});
  auto& m = chat->second.members;
  m.erase(std::remove(m.begin(), m.end(), user_id), m.end());
}

int64_t FakeBitrix24::PostMessage(int64_t chat_id, int64_t user_id,
                                  const std::string& text, int64_t reply_id) {
  NotifyOnExit notify(this);
  absl::MutexLock lock(&mu_);
  auto chat = chats_.find(chat_id);
  if (chat == chats_.end()) return 0;
  Message m;
  m.chat_id = chat_id;
  m.author_id = user_id;
  m.text = text;
  m.reply_id = reply_id;
  int64_t id = AddMessageLocked(m);
  EmitLocked(chat->second, "ONIMBOTV2MESSAGEADD",
             {{"message", MessageJsonLocked(messages_[id])},
              {"user", UserJsonLocked(user_id)}});
  return id;
}

int64_t FakeBitrix24::PostFile(int64_t chat_id, int64_t user_id,
                               const std::string& name,
                               const std::string& bytes,
                               const std::string& text) {
  NotifyOnExit notify(this);
  absl::MutexLock lock(&mu_);
  auto chat = chats_.find(chat_id);
  if (chat == chats_.end()) return 0;
  File f;
  f.id = ++next_id_;
  f.name = name;
  f.bytes = bytes;
  files_[f.id] = f;
  Message m;
  m.chat_id = chat_id;
  m.author_id = user_id;
  m.text = text;
  m.file_ids.push_back(f.id);
  int64_t id = AddMessageLocked(m);
  EmitLocked(chat->second, "ONIMBOTV2MESSAGEADD",
             {{"message", MessageJsonLocked(messages_[id])},
              {"user", UserJsonLocked(user_id)}});
  return id;
}

bool FakeBitrix24::EditMessage(int64_t message_id, const std::string& text) {
  NotifyOnExit notify(this);
  absl::MutexLock lock(&mu_);
  auto m = messages_.find(message_id);
  if (m == messages_.end() || m->second.deleted) return false;
  m->second.text = text;
  ++m->second.edits;
  EmitLocked(chats_[m->second.chat_id], "ONIMBOTV2MESSAGEUPDATE",
             {{"message", MessageJsonLocked(m->second)},
              {"user", UserJsonLocked(m->second.author_id)}});
  return true;
}

bool FakeBitrix24::DeleteMessage(int64_t message_id) {
  NotifyOnExit notify(this);
  absl::MutexLock lock(&mu_);
  auto m = messages_.find(message_id);
  if (m == messages_.end() || m->second.deleted) return false;
  m->second.deleted = true;
  EmitLocked(chats_[m->second.chat_id], "ONIMBOTV2MESSAGEDELETE",
             {{"messageId", message_id}});
  return true;
}

std::vector<FakeBitrix24::Call> FakeBitrix24::calls(
    const std::string& method) const {
  absl::MutexLock lock(&mu_);
  std::vector<Call> out;
  for (const Call& c : calls_) {
    if (method.empty() || c.method == method) out.push_back(c);
  }
  return out;
}

std::vector<FakeBitrix24::Message> FakeBitrix24::messages(
    int64_t chat_id, int64_t author, bool with_deleted) const {
  absl::MutexLock lock(&mu_);
  std::vector<Message> out;
  for (const auto& [id, m] : messages_) {
    if (m.chat_id == chat_id && (with_deleted || !m.deleted) &&
        (author == 0 || m.author_id == author)) {
      out.push_back(m);
    }
  }
  return out;
}

absl::optional<FakeBitrix24::Message> FakeBitrix24::message(int64_t id) const {
  absl::MutexLock lock(&mu_);
  auto m = messages_.find(id);
  if (m == messages_.end()) return absl::nullopt;
  return m->second;
}

absl::optional<FakeBitrix24::File> FakeBitrix24::file(int64_t id) const {
  absl::MutexLock lock(&mu_);
  auto f = files_.find(id);
  if (f == files_.end()) return absl::nullopt;
  return f->second;
}

int64_t FakeBitrix24::bot_id(const std::string& code) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, bot] : bots_) {
    if (bot.code == code) return id;
  }
  return 0;
}

size_t FakeBitrix24::pending_events(int64_t bot_id) const {
  absl::MutexLock lock(&mu_);
  auto bot = bots_.find(bot_id);
  int64_t acked = bot == bots_.end() ? 0 : bot->second.acked_offset;
  return static_cast<size_t>(std::count_if(
      events_.begin(), events_.end(),
      [&](const Event& e) { return e.bot_id == bot_id && e.id > acked; }));
}

int64_t FakeBitrix24::last_offset(int64_t bot_id) const {
  absl::MutexLock lock(&mu_);
  auto bot = bots_.find(bot_id);
  return bot == bots_.end() ? 0 : bot->second.acked_offset;
}

bool FakeBitrix24::WaitFor(const std::function<bool()>& predicate,
                           absl::Duration timeout) const {
  absl::Time deadline = absl::Now() + timeout;
  while (!predicate()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

}  // namespace imbridge::emulators
