#include "emulators/teamspirit/fake_teamspirit.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/http/hmac.h"
#include "common/http/percent_decode.h"
#include "common/status_macros.h"
#include "emulators/multipart_form.h"
#include "nlohmann/json.hpp"

namespace imbridge::fakes {
namespace {

using Json = nlohmann::ordered_json;

constexpr char kJsonType[] = "application/json";
const char* const kStatuses[] = {"online", "away", "dnd", "offline"};

std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string ErrorJson(absl::string_view code, absl::string_view message) {
  Json j;
  j["error"]["code"] = code;
  j["error"]["message"] = message;
  return Dump(j);
}

std::string Now3339() {
  return absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone());
}

size_t CountCharacters(absl::string_view s) {
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

bool ValidStatus(absl::string_view status) {
  for (const char* s : kStatuses) {
    if (status == s) return true;
  }
  return false;
}

// A JSON object body, or nullopt.
std::optional<Json> ParseObject(absl::string_view body) {
  Json j = Json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

// The string at `key`: nullopt when present but not a string; "" absent.
std::optional<std::string> StringField(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace

FakeTeamSpirit::FakeTeamSpirit() : FakeTeamSpirit(Options()) {}

FakeTeamSpirit::FakeTeamSpirit(Options options)
    : options_(std::move(options)) {}

FakeTeamSpirit::~FakeTeamSpirit() { Stop(); }

absl::Status FakeTeamSpirit::Start() {
  HttpServer::Options server;
  server.host = options_.host;
  server.port = options_.port;
  server.max_body_bytes = options_.max_file_bytes + (1 << 20);
  server.request_timeout = options_.hold_limit + absl::Seconds(10);
  server.stop_grace = absl::Seconds(1);
  std::vector<EmulatorRoute> routes;
  for (const char* method : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
    routes.push_back({method, absl::StrCat(options_.api_prefix, "/"),
                      [this](HttpRequest r, std::shared_ptr<Responder> s) {
                        HandleApi(std::move(r), std::move(s));
                      }});
  }
  routes.push_back(
      {"POST", "/hooks/", [this](HttpRequest r, std::shared_ptr<Responder> s) {
         HandleIncomingHook(std::move(r), std::move(s));
       }});
  absl::Status s = server_.Start(server, routes);
  if (!s.ok()) return s;
  sender_ = std::thread([this] { SenderLoop(); });
  return absl::OkStatus();
}

void FakeTeamSpirit::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (held_ != nullptr) {
      held_->Respond(503, kJsonType, ErrorJson("unavailable", "stopping"));
      held_.reset();
    }
  }
  if (sender_.joinable()) sender_.join();
  std::vector<std::thread> delayed;
  {
    absl::MutexLock lock(&mu_);
    delayed.swap(delayed_);
  }
  for (std::thread& t : delayed) t.join();
  server_.Stop();
}

uint16_t FakeTeamSpirit::port() const { return server_.port(); }

std::string FakeTeamSpirit::api_base_url() const {
  return absl::StrCat(server_.base_url(), options_.api_prefix);
}

// --- Setup -------------------------------------------------------------------

void FakeTeamSpirit::AddBot(const std::string& id, const std::string& name,
                            const std::string& api_key) {
  absl::MutexLock lock(&mu_);
  users_[id] = User{id, name, "", true, {}};
  api_keys_[api_key] = id;
  Bot bot;
  bot.id = id;
  bot.tokens = options_.rate_limit_per_second;
  bot.refilled = absl::Now();
  bots_[id] = bot;
}

void FakeTeamSpirit::AddUser(const std::string& id, const std::string& name,
                             const std::string& avatar_url) {
  absl::MutexLock lock(&mu_);
  users_[id] = User{id, name, avatar_url, false, {}};
}

void FakeTeamSpirit::AddChat(const std::string& id, const std::string& title,
                             const std::vector<std::string>& members,
                             const std::string& type) {
  absl::MutexLock lock(&mu_);
  Chat chat;
  chat.id = id;
  chat.title = title;
  chat.type = type;
  chat.members.insert(members.begin(), members.end());
  chats_[id] = std::move(chat);
}

void FakeTeamSpirit::SetOutgoingWebhook(const std::string& url,
                                        const std::string& secret) {
  absl::MutexLock lock(&mu_);
  webhook_url_ = url;
  webhook_secret_ = secret;
}

std::string FakeTeamSpirit::AddIncomingWebhook(const std::string& chat_id,
                                               const std::string& token) {
  absl::MutexLock lock(&mu_);
  incoming_hooks_[token] = chat_id;
  return absl::StrCat(server_.base_url(), "/hooks/", token);
}

// --- Events
// -------------------------------------------------------------------

std::string FakeTeamSpirit::UserJson(const std::string& user_id) const {
  Json u;
  u["id"] = user_id;
  auto it = users_.find(user_id);
  if (it != users_.end()) {
    u["name"] = it->second.name;
    u["avatar_url"] = it->second.avatar_url.empty()
                          ? Json(nullptr)
                          : Json(it->second.avatar_url);
    u["is_bot"] = it->second.is_bot;
  }
  return Dump(u);
}

void FakeTeamSpirit::QueueEvent(const std::string& type,
                                std::string body_without_id) {
  if (webhook_url_.empty()) return;
  std::string event_id = absl::StrCat("evt-", ++next_id_);
  Json body = Json::object();
  body["event_id"] = event_id;
  body["type"] = type;
  Json rest = Json::parse(body_without_id);
  for (auto it = rest.begin(); it != rest.end(); ++it) {
    body[it.key()] = it.value();
  }
  OutgoingWebhook w;
  w.event_id = event_id;
  w.type = type;
  w.body = Dump(body);
  w.backoff = options_.webhook_initial_backoff;
  outgoing_.push_back(std::move(w));
}

void FakeTeamSpirit::QueueMessageEvent(const std::string& type,
                                       const Message& m,
                                       const std::string& actor_id) {
  Json body = Json::object();
  body["created_at"] = Now3339();
  auto chat = chats_.find(m.chat_id);
  body["chat"] = {{"id", m.chat_id},
                  {"title", chat != chats_.end() ? chat->second.title : ""},
                  {"type", chat != chats_.end() ? chat->second.type : "group"}};
  if (absl::StartsWith(actor_id, "hook:")) {
    body["user"] = {
        {"id", actor_id},
        {"name", m.username},
        {"avatar_url", m.icon_url.empty() ? Json(nullptr) : Json(m.icon_url)},
        {"is_bot", true}};
  } else {
    body["user"] = Json::parse(UserJson(actor_id));
  }
  Json message = Json::object();
  message["id"] = m.id;
  if (type != "message.deleted") {
    message["text"] = m.text;
    message["format"] = m.format;
    message["reply_to"] = m.reply_to.empty() ? Json(nullptr) : Json(m.reply_to);
    message["thread_id"] =
        m.thread_id.empty() ? Json(nullptr) : Json(m.thread_id);
    Json files = Json::array();
    for (const std::string& id : m.file_ids) {
      auto f = files_.find(id);
      if (f == files_.end()) continue;
      files.push_back({{"id", id},
                       {"name", f->second.name},
                       {"mime_type", f->second.mime_type},
                       {"size", f->second.content.size()}});
    }
    message["files"] = std::move(files);
    if (m.author.has_value()) {
      message["author"] = {{"external_id", m.author->external_id},
                           {"name", m.author->name},
                           {"avatar_url", m.author->avatar_url}};
    } else {
      message["author"] = nullptr;
    }
    if (type == "message.updated") message["edited_at"] = Now3339();
  }
  body["message"] = std::move(message);
  QueueEvent(type, Dump(body));
}

void FakeTeamSpirit::SenderLoop() {
  while (true) {
    OutgoingWebhook w;
    std::string url;
    std::string secret;
    {
      absl::MutexLock lock(&mu_);
      auto due = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || (!outgoing_.empty() &&
                             outgoing_.front().next_attempt <= absl::Now());
      };
      mu_.AwaitWithTimeout(absl::Condition(&due), absl::Milliseconds(50));
      if (stopping_) return;
      if (!due()) continue;
      w = outgoing_.front();
      url = webhook_url_;
      secret = webhook_secret_;
    }
    int64_t ts = absl::ToUnixSeconds(absl::Now());
    HttpClientRequest request;
    request.method = "POST";
    request.url = url;
    request.body = w.body;
    request.timeout = options_.webhook_timeout;
    request.headers = {{"Content-Type", kJsonType},
                       {"X-TeamSpirit-Timestamp", absl::StrCat(ts)},
                       {"X-TeamSpirit-Event-Id", w.event_id}};
    // TeamSpirit's scheme (teamspirit-api.md): "v1=" + hex HMAC-SHA256 of
    // "{ts}.{body}" with the webhook secret; unsigned without a secret.
    if (CheckSigningSecret(secret).ok()) {
      request.headers.emplace_back(
          "X-TeamSpirit-Signature",
          absl::StrCat("v1=",
                       HmacSha256Hex(secret, absl::StrCat(ts, ".", w.body))));
    }
    absl::StatusOr<HttpResponse> response = http_.Send(request);
    int status = response.ok() ? response->status : 0;
    absl::MutexLock lock(&mu_);
    attempts_.push_back({w.event_id, w.type, status, absl::Now()});
    if (outgoing_.empty() || outgoing_.front().event_id != w.event_id) continue;
    OutgoingWebhook& front = outgoing_.front();
    absl::Time now = absl::Now();
    if (front.first_attempt == absl::InfinitePast()) front.first_attempt = now;
    if (status >= 200 && status < 300) {
      outgoing_.pop_front();
    } else if (now - front.first_attempt > options_.webhook_give_up_after) {
      outgoing_.pop_front();
    } else {
      front.next_attempt = now + front.backoff;
      front.backoff = std::min(front.backoff * 2, options_.webhook_max_backoff);
    }
  }
}

// --- Simulated people
// ---------------------------------------------------------

absl::StatusOr<std::string> FakeTeamSpirit::PostAsUser(
    const std::string& user_id, const std::string& chat_id,
    const std::string& text, const PostOptions& options) {
  std::string id;
  {
    absl::MutexLock lock(&mu_);
    auto chat = chats_.find(chat_id);
    if (chat == chats_.end()) return absl::NotFoundError("no such chat");
    if (!chat->second.members.count(user_id)) {
      return absl::FailedPreconditionError("user is not a member");
    }
    for (const std::string& f : options.file_ids) {
      if (!files_.count(f)) return absl::NotFoundError("no such file");
    }
    Message m;
    m.id = id = absl::StrCat("m-", ++next_id_);
    m.chat_id = chat_id;
    m.user_id = user_id;
    m.text = text;
    m.format = options.format;
    m.reply_to = options.reply_to;
    m.thread_id = options.thread_id;
    m.file_ids = options.file_ids;
    messages_.push_back(m);
    QueueMessageEvent("message.created", m, user_id);
  }
  Notify({Change::kMessageCreated, chat_id, id});
  return id;
}

absl::Status FakeTeamSpirit::EditAsUser(const std::string& user_id,
                                        const std::string& message_id,
                                        const std::string& text) {
  std::string chat_id;
  {
    absl::MutexLock lock(&mu_);
    IMB_ASSIGN_OR_RETURN(Message * m, FindMessageLocked(user_id, message_id));
    m->text = text;
    m->edited = true;
    chat_id = m->chat_id;
    QueueMessageEvent("message.updated", *m, user_id);
  }
  Notify({Change::kMessageUpdated, chat_id, message_id});
  return absl::OkStatus();
}

absl::Status FakeTeamSpirit::DeleteAsUser(const std::string& user_id,
                                          const std::string& message_id) {
  std::string chat_id;
  {
    absl::MutexLock lock(&mu_);
    IMB_ASSIGN_OR_RETURN(Message * m, FindMessageLocked(user_id, message_id));
    m->deleted = true;
    chat_id = m->chat_id;
    QueueMessageEvent("message.deleted", *m, user_id);
  }
  Notify({Change::kMessageDeleted, chat_id, message_id});
  return absl::OkStatus();
}

std::string FakeTeamSpirit::UploadAsUser(const std::string& user_id,
                                         const std::string& name,
                                         const std::string& mime_type,
                                         const std::string& content) {
  std::string id;
  {
    absl::MutexLock lock(&mu_);
    id = absl::StrCat("f-", ++next_id_);
    files_[id] = File{id, name, mime_type, content, user_id};
  }
  Notify({Change::kFileUploaded, "", id});
  return id;
}

void FakeTeamSpirit::SetUserPresence(const std::string& user_id,
                                     const std::string& status,
                                     const std::string& text) {
  {
    absl::MutexLock lock(&mu_);
    users_[user_id].id = user_id;
    users_[user_id].presence = {status, text};
    Json body;
    body["created_at"] = Now3339();
    body["user"] = Json::parse(UserJson(user_id));
    body["presence"] = {{"status", status}, {"text", text}};
    QueueEvent("presence.changed", Dump(body));
  }
  Notify({Change::kUserPresence, "", user_id});
}

void FakeTeamSpirit::JoinChat(const std::string& user_id,
                              const std::string& chat_id) {
  {
    absl::MutexLock lock(&mu_);
    Chat& chat = chats_[chat_id];
    chat.id = chat_id;
    chat.members.insert(user_id);
    Json body;
    body["created_at"] = Now3339();
    body["chat"] = {
        {"id", chat_id}, {"title", chat.title}, {"type", chat.type}};
    body["user"] = Json::parse(UserJson(user_id));
    QueueEvent("member.joined", Dump(body));
  }
  Notify({Change::kMemberJoined, chat_id, user_id});
}

void FakeTeamSpirit::LeaveChat(const std::string& user_id,
                               const std::string& chat_id) {
  {
    absl::MutexLock lock(&mu_);
    Chat& chat = chats_[chat_id];
    chat.members.erase(user_id);
    Json body;
    body["created_at"] = Now3339();
    body["chat"] = {
        {"id", chat_id}, {"title", chat.title}, {"type", chat.type}};
    body["user"] = Json::parse(UserJson(user_id));
    QueueEvent("member.left", Dump(body));
  }
  Notify({Change::kMemberLeft, chat_id, user_id});
}

// --- REST API
// -----------------------------------------------------------------

bool FakeTeamSpirit::TakeRateToken(const std::string& bot_id) {
  if (options_.rate_limit_per_second <= 0) return true;
  Bot& bot = bots_[bot_id];
  absl::Time now = absl::Now();
  double rate = options_.rate_limit_per_second;
  bot.tokens = std::min(
      rate, bot.tokens + absl::ToDoubleSeconds(now - bot.refilled) * rate);
  bot.refilled = now;
  if (bot.tokens < 1) return false;
  bot.tokens -= 1;
  return true;
}

void FakeTeamSpirit::HandleApi(HttpRequest request,
                               std::shared_ptr<Responder> responder) {
  std::string rel = request.path.substr(options_.api_prefix.size());
  std::vector<std::string> segments;
  for (absl::string_view s : absl::StrSplit(rel, '/', absl::SkipEmpty())) {
    segments.push_back(PercentDecode(s, false));
  }
  // Calls that can be slowed take their slot before they take effect.
  std::string kind;
  if (request.method == "POST" && segments.size() == 3 &&
      segments[0] == "chats" && segments[2] == "messages") {
    kind = "post_message";
  } else if (request.method == "POST" && segments.size() == 1 &&
             segments[0] == "files") {
    kind = "upload_file";
  }
  SlowAnswers::Slot slot = slow_.Take(kind);
  ApiCall call;
  call.method = request.method;
  call.path = rel;
  if (!absl::StartsWith(request.Header("Content-Type"), "multipart/")) {
    call.body = request.body.substr(0, 4096);
  }
  Answer answer;
  bool answered = false;  // By authentication, injection or rate limit.
  std::string bot_id;
  {
    absl::MutexLock lock(&mu_);
    absl::string_view auth = request.Header("Authorization");
    auto key = absl::StartsWith(auth, "Bearer ")
                   ? api_keys_.find(std::string(auth.substr(7)))
                   : api_keys_.end();
    if (key == api_keys_.end()) {
      answer = {401, ErrorJson("unauthorized", "bad or missing API key")};
      answered = true;
    } else {
      bot_id = key->second;
      if (absl::Now() < outage_until_) {
        answer = {outage_status_, ErrorJson("unavailable", "outage")};
        answered = true;
      }
      for (Failure& f : failures_) {
        if (answered) break;
        if (f.remaining > 0 &&
            (f.method.empty() || f.method == request.method) &&
            absl::StrContains(rel, f.path_part)) {
          --f.remaining;
          answer = {f.status, ErrorJson("injected", "injected failure")};
          if (f.retry_after_seconds > 0) {
            answer.headers.emplace_back("Retry-After",
                                        absl::StrCat(f.retry_after_seconds));
          }
          answered = true;
          break;
        }
      }
      if (!answered && !TakeRateToken(bot_id)) {
        answer = {429, ErrorJson("rate_limited", "20 requests/s per bot")};
        answer.headers.emplace_back("Retry-After", "1");
        answered = true;
      }
    }
  }
  if (!answered) answer = Route(bot_id, request, segments);
  call.status = answer.status;
  call.bot_id = bot_id;
  {
    absl::MutexLock lock(&mu_);
    calls_.push_back(call);
    if (answer.status == 0) {
      held_ = responder;
      held_ready_ = true;
      return;
    }
    bool download = request.method == "GET" && segments.size() == 3 &&
                    segments[0] == "files" && segments[2] == "content";
    if (download && download_delay_ > absl::ZeroDuration() && !stopping_) {
      delayed_.emplace_back(
          [this, responder, answer, until = absl::Now() + download_delay_] {
            {
              absl::MutexLock lock(&mu_);
              mu_.AwaitWithDeadline(absl::Condition(&stopping_), until);
            }
            responder->Respond(answer.status, answer.content_type, answer.body,
                               answer.headers);
          });
      return;
    }
  }
  slow_.Respond(std::move(slot), responder, answer.status,
                answer.status == 204 ? "" : answer.content_type,
                answer.status == 204 ? "" : answer.body, answer.headers);
}

void FakeTeamSpirit::DelayAnswers(const std::string& call,
                                  absl::Duration delay) {
  slow_.Set(call, delay);
}

FakeTeamSpirit::Answer FakeTeamSpirit::Route(
    const std::string& bot_id, const HttpRequest& request,
    const std::vector<std::string>& seg) {
  const std::string& method = request.method;
  auto not_found = [] {
    return Answer{404, ErrorJson("not_found", "no such endpoint")};
  };
  if (seg.size() == 1 && seg[0] == "me" && method == "GET") {
    absl::MutexLock lock(&mu_);
    Json j;
    j["user"] = {{"id", bot_id}, {"name", users_[bot_id].name}};
    return {200, Dump(j)};
  }
  if (seg.size() >= 2 && seg[0] == "chats") {
    const std::string& chat_id = seg[1];
    {
      absl::MutexLock lock(&mu_);
      auto chat = chats_.find(chat_id);
      if (chat == chats_.end()) {
        return {404, ErrorJson("not_found", "no such chat")};
      }
      if (!chat->second.members.count(bot_id)) {
        return {403, ErrorJson("forbidden", "the bot is not in this chat")};
      }
      if (seg.size() == 2 && method == "GET") {
        Json j;
        j["chat"] = {{"id", chat_id},
                     {"title", chat->second.title},
                     {"type", chat->second.type}};
        return {200, Dump(j)};
      }
      if (seg.size() == 3 && seg[2] == "members" && method == "GET") {
        Json members = Json::array();
        for (const std::string& id : chat->second.members) {
          const User& u = users_[id];
          members.push_back(
              {{"id", id},
               {"name", u.name},
               {"avatar_url", u.avatar_url},
               {"presence",
                {{"status", u.presence.status}, {"text", u.presence.text}}}});
        }
        Json j;
        j["members"] = std::move(members);
        return {200, Dump(j)};
      }
    }
    if (seg.size() == 3 && seg[2] == "messages" && method == "POST") {
      return PostMessage(bot_id, chat_id, request.body);
    }
    if (seg.size() == 4 && seg[2] == "messages" && method == "PATCH") {
      return EditMessage(bot_id, chat_id, seg[3], request.body);
    }
    if (seg.size() == 4 && seg[2] == "messages" && method == "DELETE") {
      return DeleteMessage(bot_id, chat_id, seg[3]);
    }
    return not_found();
  }
  if (seg.size() == 1 && seg[0] == "files" && method == "POST") {
    return UploadFile(bot_id, request);
  }
  if (seg.size() == 3 && seg[0] == "files" && seg[2] == "content" &&
      method == "GET") {
    return DownloadFile(seg[1]);
  }
  if (seg.size() == 1 && seg[0] == "presence" && method == "PUT") {
    return SetBotPresence(bot_id, request.body);
  }
  if (seg.size() == 2 && seg[0] == "external-users" && method == "PUT") {
    return PutExternalUser(seg[1], request.body);
  }
  return not_found();
}

FakeTeamSpirit::Answer FakeTeamSpirit::PostMessage(const std::string& bot_id,
                                                   const std::string& chat_id,
                                                   const std::string& body) {
  std::optional<Json> j = ParseObject(body);
  if (!j.has_value())
    return {400, ErrorJson("bad_request", "body is not JSON")};
  std::optional<std::string> text = StringField(*j, "text");
  std::optional<std::string> format = StringField(*j, "format");
  std::optional<std::string> reply_to = StringField(*j, "reply_to");
  std::optional<std::string> thread_id = StringField(*j, "thread_id");
  std::optional<std::string> token = StringField(*j, "client_token");
  if (!text || !format || !reply_to || !thread_id || !token) {
    return {400, ErrorJson("bad_request", "a field has the wrong type")};
  }
  if (!format->empty() && *format != "markdown" && *format != "plain") {
    return {400, ErrorJson("bad_request", "format must be markdown or plain")};
  }
  if (CountCharacters(*text) > options_.max_text_characters) {
    return {413, ErrorJson("too_large", "text over 10,000 characters")};
  }
  std::vector<std::string> file_ids;
  if (j->contains("file_ids")) {
    const Json& f = (*j)["file_ids"];
    if (!f.is_array()) return {400, ErrorJson("bad_request", "file_ids")};
    for (const Json& id : f) {
      if (!id.is_string()) return {400, ErrorJson("bad_request", "file_ids")};
      file_ids.push_back(id.get<std::string>());
    }
  }
  if (text->empty() && file_ids.empty()) {
    return {400, ErrorJson("bad_request", "text or file_ids required")};
  }
  std::optional<Author> author;
  if (j->contains("author") && !(*j)["author"].is_null()) {
    const Json& a = (*j)["author"];
    if (!a.is_object()) return {400, ErrorJson("bad_request", "author")};
    Author value;
    auto id = StringField(a, "external_id");
    auto name = StringField(a, "name");
    auto avatar = StringField(a, "avatar_url");
    if (!id || id->empty() || !name || !avatar) {
      return {400, ErrorJson("bad_request", "author.external_id required")};
    }
    value = {*id, *name, *avatar};
    author = std::move(value);
  }

  Message m;
  {
    absl::MutexLock lock(&mu_);
    if (!token->empty()) {
      auto it = client_tokens_.find({bot_id, *token});
      if (it != client_tokens_.end() &&
          absl::Now() - it->second.at < options_.client_token_ttl) {
        Json answer;
        answer["message"] = {{"id", it->second.message_id}};
        return {200, Dump(answer)};
      }
    }
    for (const std::string& f : file_ids) {
      if (!files_.count(f)) {
        return {400,
                ErrorJson("bad_request", absl::StrCat("unknown file ", f))};
      }
    }
    auto in_chat = [&](const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                       mu_) {
      return std::any_of(
          messages_.begin(), messages_.end(),
          [&](const Message& x) { return x.id == id && x.chat_id == chat_id; });
    };
    if (!reply_to->empty() && !in_chat(*reply_to)) {
      return {400, ErrorJson("bad_request", "reply_to is not in this chat")};
    }
    if (!thread_id->empty() && !in_chat(*thread_id)) {
      return {400, ErrorJson("bad_request", "thread_id is not in this chat")};
    }
    if (author.has_value() && !external_users_.count(author->external_id)) {
      return {400,
              ErrorJson("bad_request", "author is not a known external user")};
    }
    m.id = absl::StrCat("m-", ++next_id_);
    m.chat_id = chat_id;
    m.user_id = bot_id;
    m.text = *text;
    m.format = format->empty() ? "markdown" : *format;
    m.reply_to = *reply_to;
    m.thread_id = *thread_id;
    m.file_ids = file_ids;
    m.author = author;
    m.client_token = *token;
    messages_.push_back(m);
    if (!token->empty()) client_tokens_[{bot_id, *token}] = {m.id, absl::Now()};
    QueueMessageEvent("message.created", m, bot_id);
  }
  Notify({Change::kMessageCreated, chat_id, m.id});
  Json answer;
  answer["message"] = {{"id", m.id}};
  Answer a{201, Dump(answer)};
  absl::MutexLock lock(&mu_);
  if (hold_next_post_) {
    hold_next_post_ = false;
    held_answer_ = a;
    return Answer{0, ""};
  }
  return a;
}

absl::StatusOr<FakeTeamSpirit::Message*> FakeTeamSpirit::FindMessageLocked(
    const std::string& poster, const std::string& message_id,
    const std::string& chat_id) {
  auto it =
      std::find_if(messages_.begin(), messages_.end(), [&](const Message& m) {
        return m.id == message_id && (chat_id.empty() || m.chat_id == chat_id);
      });
  if (it == messages_.end() || it->deleted) {
    return absl::NotFoundError("no such message");
  }
  if (it->user_id != poster) {
    return absl::PermissionDeniedError("not the poster");
  }
  return &*it;
}

FakeTeamSpirit::Answer FakeTeamSpirit::MessageError(const absl::Status& error) {
  if (absl::IsPermissionDenied(error)) {
    return {403, ErrorJson("forbidden", "not the bot's message")};
  }
  return {404, ErrorJson("not_found", "no such message")};
}

FakeTeamSpirit::Answer FakeTeamSpirit::EditMessage(
    const std::string& bot_id, const std::string& chat_id,
    const std::string& message_id, const std::string& body) {
  std::optional<Json> j = ParseObject(body);
  if (!j.has_value())
    return {400, ErrorJson("bad_request", "body is not JSON")};
  std::optional<std::string> text = StringField(*j, "text");
  std::optional<std::string> format = StringField(*j, "format");
  if (!text || !format) return {400, ErrorJson("bad_request", "text")};
  if (CountCharacters(*text) > options_.max_text_characters) {
    return {413, ErrorJson("too_large", "text over 10,000 characters")};
  }
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Message*> found =
        FindMessageLocked(bot_id, message_id, chat_id);
    if (!found.ok()) return MessageError(found.status());
    Message* m = *found;
    m->text = *text;
    if (!format->empty()) m->format = *format;
    m->edited = true;
    QueueMessageEvent("message.updated", *m, bot_id);
  }
  Notify({Change::kMessageUpdated, chat_id, message_id});
  Json answer;
  answer["message"] = {{"id", message_id}};
  return {200, Dump(answer)};
}

FakeTeamSpirit::Answer FakeTeamSpirit::DeleteMessage(
    const std::string& bot_id, const std::string& chat_id,
    const std::string& message_id) {
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Message*> found =
        FindMessageLocked(bot_id, message_id, chat_id);
    if (!found.ok()) return MessageError(found.status());
    Message* m = *found;
    m->deleted = true;
    QueueMessageEvent("message.deleted", *m, bot_id);
  }
  Notify({Change::kMessageDeleted, chat_id, message_id});
  return {204, ""};
}

FakeTeamSpirit::Answer FakeTeamSpirit::UploadFile(const std::string& bot_id,
                                                  const HttpRequest& request) {
  absl::string_view type = request.Header("Content-Type");
  if (!absl::StartsWith(type, "multipart/form-data")) {
    return {400, ErrorJson("bad_request", "multipart/form-data required")};
  }
  absl::StatusOr<std::vector<MultipartFormPart>> parts =
      ParseMultipartForm(request.body, type);
  if (!parts.ok()) {
    return {400, ErrorJson("bad_request", parts.status().message())};
  }
  const MultipartFormPart* file = nullptr;
  for (const MultipartFormPart& p : *parts) {
    if (p.name == "file") file = &p;
  }
  if (file == nullptr) return {400, ErrorJson("bad_request", "no file part")};
  if (file->data.size() > options_.max_file_bytes) {
    return {413, ErrorJson("too_large", "file over 100 MB")};
  }
  File f;
  {
    absl::MutexLock lock(&mu_);
    f.id = absl::StrCat("f-", ++next_id_);
    f.name = file->filename.empty() ? "file" : file->filename;
    f.mime_type = file->content_type.empty() ? "application/octet-stream"
                                             : file->content_type;
    f.content = file->data;
    f.uploaded_by = bot_id;
    files_[f.id] = f;
  }
  Notify({Change::kFileUploaded, "", f.id});
  Json answer;
  answer["file"] = {{"id", f.id},
                    {"name", f.name},
                    {"mime_type", f.mime_type},
                    {"size", f.content.size()}};
  return {201, Dump(answer)};
}

FakeTeamSpirit::Answer FakeTeamSpirit::DownloadFile(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(id);
  if (it == files_.end()) return {404, ErrorJson("not_found", "no such file")};
  Answer a{200, it->second.content, it->second.mime_type};
  a.headers.emplace_back(
      "Content-Disposition",
      absl::StrCat("attachment; filename=\"", it->second.name, "\""));
  return a;
}

FakeTeamSpirit::Answer FakeTeamSpirit::SetBotPresence(const std::string& bot_id,
                                                      const std::string& body) {
  std::optional<Json> j = ParseObject(body);
  if (!j.has_value())
    return {400, ErrorJson("bad_request", "body is not JSON")};
  std::optional<std::string> status = StringField(*j, "status");
  std::optional<std::string> text = StringField(*j, "text");
  if (!status || !text || !ValidStatus(*status)) {
    return {400, ErrorJson("bad_request",
                           "status must be online, away, dnd "
                           "or offline")};
  }
  {
    absl::MutexLock lock(&mu_);
    users_[bot_id].presence = {*status, *text};
    bot_presence_history_[bot_id].push_back(*status);
    Json event;
    event["created_at"] = Now3339();
    event["user"] = Json::parse(UserJson(bot_id));
    event["presence"] = {{"status", *status}, {"text", *text}};
    QueueEvent("presence.changed", Dump(event));
  }
  Notify({Change::kBotPresence, "", bot_id});
  return {204, ""};
}

FakeTeamSpirit::Answer FakeTeamSpirit::PutExternalUser(
    const std::string& external_id, const std::string& body) {
  std::optional<Json> j = ParseObject(body);
  if (!j.has_value())
    return {400, ErrorJson("bad_request", "body is not JSON")};
  std::optional<std::string> name = StringField(*j, "name");
  std::optional<std::string> avatar = StringField(*j, "avatar_url");
  if (!name || name->empty() || !avatar) {
    return {400, ErrorJson("bad_request", "name required")};
  }
  std::optional<Presence> presence;
  if (j->contains("presence") && !(*j)["presence"].is_null()) {
    const Json& p = (*j)["presence"];
    if (!p.is_object()) return {400, ErrorJson("bad_request", "presence")};
    auto status = StringField(p, "status");
    auto text = StringField(p, "text");
    if (!status || !text || !ValidStatus(*status)) {
      return {400, ErrorJson("bad_request", "presence.status")};
    }
    presence = Presence{*status, *text};
  }
  {
    absl::MutexLock lock(&mu_);
    ExternalUser& u = external_users_[external_id];
    u.id = external_id;
    u.name = *name;
    u.avatar_url = *avatar;
    if (presence.has_value()) u.presence = *presence;
    ++u.updates;
  }
  Notify({Change::kExternalUser, "", external_id});
  return {204, ""};
}

void FakeTeamSpirit::HandleIncomingHook(HttpRequest request,
                                        std::shared_ptr<Responder> responder) {
  std::string token = request.path.substr(std::string("/hooks/").size());
  ApiCall call;
  call.method = request.method;
  call.path = request.path;
  call.body = request.body.substr(0, 4096);
  Answer answer;
  std::string chat_id;
  std::string message_id;
  {
    absl::MutexLock lock(&mu_);
    auto hook = incoming_hooks_.find(token);
    std::optional<Json> j = ParseObject(request.body);
    Failure* failure = nullptr;
    for (Failure& f : failures_) {
      if (f.remaining > 0 && (f.method.empty() || f.method == "POST") &&
          absl::StrContains(request.path, f.path_part)) {
        failure = &f;
        break;
      }
    }
    if (hook == incoming_hooks_.end()) {
      answer = {404, ErrorJson("not_found", "no such webhook")};
    } else if (failure != nullptr) {
      --failure->remaining;
      answer = {failure->status, ErrorJson("injected", "injected failure")};
      if (failure->retry_after_seconds > 0) {
        answer.headers.emplace_back("Retry-After",
                                    absl::StrCat(failure->retry_after_seconds));
      }
    } else if (!j.has_value()) {
      answer = {400, ErrorJson("bad_request", "body is not JSON")};
    } else {
      auto text = StringField(*j, "text");
      auto username = StringField(*j, "username");
      auto icon = StringField(*j, "icon_url");
      if (!text || text->empty() || !username || !icon) {
        answer = {400, ErrorJson("bad_request", "text required")};
      } else if (CountCharacters(*text) > options_.max_text_characters) {
        answer = {413, ErrorJson("too_large", "text over 10,000 characters")};
      } else {
        Message m;
        m.id = message_id = absl::StrCat("m-", ++next_id_);
        m.chat_id = chat_id = hook->second;
        m.user_id = absl::StrCat("hook:", token);
        m.text = *text;
        m.username = *username;
        m.icon_url = *icon;
        messages_.push_back(m);
        QueueMessageEvent("message.created", m, m.user_id);
        answer = {200, R"({"ok":true})"};
      }
    }
    call.status = answer.status;
    calls_.push_back(call);
  }
  if (!message_id.empty()) {
    Notify({Change::kMessageCreated, chat_id, message_id});
  }
  responder->Respond(answer.status, answer.content_type, answer.body,
                     answer.headers);
}

// --- State and failure injection
// ---------------------------------------------------

std::vector<FakeTeamSpirit::Message> FakeTeamSpirit::Messages(
    const std::string& chat_id, bool include_deleted) const {
  absl::MutexLock lock(&mu_);
  std::vector<Message> out;
  for (const Message& m : messages_) {
    if (m.chat_id == chat_id && (include_deleted || !m.deleted)) {
      out.push_back(m);
    }
  }
  return out;
}

std::optional<FakeTeamSpirit::Message> FakeTeamSpirit::GetMessage(
    const std::string& id) const {
  absl::MutexLock lock(&mu_);
  for (const Message& m : messages_) {
    if (m.id == id) return m;
  }
  return std::nullopt;
}

std::optional<FakeTeamSpirit::File> FakeTeamSpirit::GetFile(
    const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(id);
  if (it == files_.end()) return std::nullopt;
  return it->second;
}

std::optional<FakeTeamSpirit::ExternalUser> FakeTeamSpirit::GetExternalUser(
    const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = external_users_.find(id);
  if (it == external_users_.end()) return std::nullopt;
  return it->second;
}

std::vector<FakeTeamSpirit::ExternalUser> FakeTeamSpirit::ExternalUsers()
    const {
  absl::MutexLock lock(&mu_);
  std::vector<ExternalUser> out;
  for (const auto& [id, u] : external_users_) out.push_back(u);
  return out;
}

FakeTeamSpirit::Presence FakeTeamSpirit::BotPresence(
    const std::string& bot_id) const {
  absl::MutexLock lock(&mu_);
  auto it = users_.find(bot_id);
  return it == users_.end() ? Presence() : it->second.presence;
}

std::vector<std::string> FakeTeamSpirit::BotPresenceHistory(
    const std::string& bot_id) const {
  absl::MutexLock lock(&mu_);
  auto it = bot_presence_history_.find(bot_id);
  return it == bot_presence_history_.end() ? std::vector<std::string>()
                                           : it->second;
}

std::vector<FakeTeamSpirit::ApiCall> FakeTeamSpirit::Calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

std::vector<FakeTeamSpirit::WebhookAttempt> FakeTeamSpirit::WebhookAttempts()
    const {
  absl::MutexLock lock(&mu_);
  return attempts_;
}

size_t FakeTeamSpirit::PendingWebhooks() const {
  absl::MutexLock lock(&mu_);
  return outgoing_.size();
}

int FakeTeamSpirit::AddListener(std::function<void(const Change&)> listener) {
  absl::MutexLock lock(&listeners_mu_);
  int handle = ++next_listener_;
  listeners_[handle] = std::move(listener);
  return handle;
}

void FakeTeamSpirit::RemoveListener(int handle) {
  absl::MutexLock lock(&listeners_mu_);
  listeners_.erase(handle);
}

void FakeTeamSpirit::Notify(const Change& change) {
  std::vector<std::function<void(const Change&)>> listeners;
  {
    absl::MutexLock lock(&listeners_mu_);
    for (const auto& [handle, fn] : listeners_) listeners.push_back(fn);
  }
  for (const auto& fn : listeners) fn(change);
}

bool FakeTeamSpirit::WaitUntil(const std::function<bool()>& predicate,
                               absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!predicate()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

void FakeTeamSpirit::FailNext(int n, int status, int retry_after_seconds,
                              const std::string& method,
                              const std::string& path_part) {
  absl::MutexLock lock(&mu_);
  failures_.push_back({n, status, retry_after_seconds, method, path_part});
}

void FakeTeamSpirit::FailFor(absl::Duration duration, int status) {
  absl::MutexLock lock(&mu_);
  outage_until_ = absl::Now() + duration;
  outage_status_ = status;
}

void FakeTeamSpirit::HoldNextPost() {
  absl::MutexLock lock(&mu_);
  hold_next_post_ = true;
  held_ready_ = false;
}

bool FakeTeamSpirit::WaitForHeld(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&held_ready_), timeout);
}

void FakeTeamSpirit::DelayDownloads(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  download_delay_ = delay;
}

void FakeTeamSpirit::ReleaseHeld() {
  std::shared_ptr<Responder> held;
  Answer answer;
  {
    absl::MutexLock lock(&mu_);
    held = std::move(held_);
    held_.reset();
    answer = held_answer_;
  }
  if (held != nullptr) {
    held->Respond(answer.status, answer.content_type, answer.body,
                  answer.headers);
  }
}

}  // namespace imbridge::fakes
