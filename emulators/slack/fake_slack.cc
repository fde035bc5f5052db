#include "emulators/slack/fake_slack.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/websocket.hpp"
#include "common/http/percent_decode.h"

namespace imbridge::fakes {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using nlohmann::json;

void ParseForm(absl::string_view form, json* out) {
  for (absl::string_view pair : absl::StrSplit(form, '&', absl::SkipEmpty())) {
    size_t eq = pair.find('=');
    std::string key = PercentDecode(pair.substr(0, eq), true);
    std::string value = eq == absl::string_view::npos
                            ? ""
                            : PercentDecode(pair.substr(eq + 1), true);
    (*out)[key] = value;
  }
}

std::string Arg(const json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  return "";
}

json Error(const std::string& error) {
  return {{"ok", false}, {"error", error}};
}

}  // namespace

// The Socket Mode endpoint: one WebSocket session at a time (the newest).
class FakeSlack::WebSocketEndpoint {
 public:
  using OnMessage = std::function<void(const std::string&)>;
  using OnOpen = std::function<std::string()>;  // Returns the hello.

  WebSocketEndpoint(OnMessage on_message, OnOpen on_open)
      : on_message_(std::move(on_message)),
        on_open_(std::move(on_open)),
        acceptor_(ioc_) {}

  ~WebSocketEndpoint() { Stop(); }

  absl::Status Start() {
    beast::error_code ec;
    tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return absl::UnavailableError(ec.message());
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] { ioc_.run(); });
    return absl::OkStatus();
  }

  void Stop() {
    if (!thread_.joinable()) return;
    net::post(ioc_, [this] {
      beast::error_code ec;
      acceptor_.close(ec);
      if (session_) session_->Close();
    });
    // Give the close a moment, then stop.
    absl::SleepFor(absl::Milliseconds(100));
    ioc_.stop();
    thread_.join();
  }

  int port() const { return port_; }
  bool connected() const { return connected_.load(); }

  void Send(std::string text) {
    net::post(ioc_, [this, text = std::move(text)]() mutable {
      if (session_) session_->Queue(std::move(text));
    });
  }

 private:
  class Session : public std::enable_shared_from_this<Session> {
   public:
    Session(tcp::socket socket, WebSocketEndpoint* owner)
        : ws_(std::move(socket)), owner_(owner) {}

    void Start() {
      auto self = shared_from_this();
      ws_.async_accept([self](beast::error_code ec) {
        if (ec) return;
        self->open_ = true;
        if (self->owner_->session_) self->owner_->session_->Close();
        self->owner_->session_ = self;
        self->owner_->connected_ = true;
        self->Queue(self->owner_->on_open_());
        self->Read();
      });
    }

    void Queue(std::string text) {
      if (!open_) return;
      queue_.push_back(std::move(text));
      if (queue_.size() == 1) Write();
    }

    void Close() {
      if (!open_) return;
      open_ = false;
      auto self = shared_from_this();
      ws_.async_close(websocket::close_code::normal,
                      [self](beast::error_code) {});
      Ended();
    }

   private:
    void Read() {
      auto self = shared_from_this();
      ws_.async_read(buffer_, [self](beast::error_code ec, size_t) {
        if (ec) {
          self->open_ = false;
          self->Ended();
          return;
        }
        std::string text = beast::buffers_to_string(self->buffer_.data());
        self->buffer_.consume(self->buffer_.size());
        self->owner_->on_message_(text);
        self->Read();
      });
    }

    void Write() {
      ws_.text(true);
      auto self = shared_from_this();
      ws_.async_write(net::buffer(queue_.front()),
                      [self](beast::error_code ec, size_t) {
                        self->queue_.pop_front();
                        if (ec) {
                          self->queue_.clear();
                          return;
                        }
                        if (!self->queue_.empty() && self->open_) self->Write();
                      });
    }

    void Ended() {
      if (owner_->session_.get() == this) {
        owner_->session_.reset();
        owner_->connected_ = false;
      }
    }

    websocket::stream<beast::tcp_stream> ws_;
    WebSocketEndpoint* owner_;
    beast::flat_buffer buffer_;
    std::deque<std::string> queue_;
    bool open_ = false;
  };

  void Accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      std::make_shared<Session>(std::move(socket), this)->Start();
      Accept();
    });
  }

  OnMessage on_message_;
  OnOpen on_open_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  int port_ = 0;
  std::shared_ptr<Session> session_;  // io thread only.
  std::atomic<bool> connected_{false};
};

FakeSlack::FakeSlack(Options options) : options_(std::move(options)) {
  ws_ = std::make_unique<WebSocketEndpoint>(
      [this](const std::string& text) { OnSocketMessage(text); },
      [this] {
        json hello = {{"type", "hello"},
                      {"num_connections", 1},
                      {"debug_info", {{"host", "fake-slack"}}},
                      {"connection_info", {{"app_id", options_.app_id}}}};
        return hello.dump();
      });
}

FakeSlack::~FakeSlack() { Stop(); }

absl::Status FakeSlack::Start() {
  HttpServer::Options server;
  server.max_body_bytes = 64 << 20;
  server.threads = 4;
  server.port = options_.port;
  HttpHandler api = [this](HttpRequest r, std::shared_ptr<Responder> w) {
    ServeApi(r, w);
  };
  absl::Status s = server_.Start(
      server, {{"POST", "/api/", api},
               {"GET", "/api/", api},
               {"POST", "/upload/",
                [this](HttpRequest r, std::shared_ptr<Responder> w) {
                  ServeUpload(r, w);
                }},
               {"GET", "/files-pri/",
                [this](HttpRequest r, std::shared_ptr<Responder> w) {
                  ServeFile(r, w);
                }}});
  if (!s.ok()) return s;
  s = ws_->Start();
  if (!s.ok()) return s;
  echo_thread_ = std::thread([this] { EchoLoop(); });
  return absl::OkStatus();
}

void FakeSlack::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (echo_thread_.joinable()) echo_thread_.join();
  std::vector<std::thread> delayed;
  {
    absl::MutexLock lock(&mu_);
    delayed.swap(delayed_);
  }
  for (std::thread& t : delayed) t.join();
  ws_->Stop();
  server_.Stop();
}

std::string FakeSlack::base_url() const { return server_.base_url(); }

std::string FakeSlack::api_base_url() const {
  return absl::StrCat(base_url(), "/api");
}

void FakeSlack::SetEventsUrl(const std::string& url) {
  absl::MutexLock lock(&mu_);
  events_url_ = url;
}

void FakeSlack::UseSocketMode(bool on) {
  absl::MutexLock lock(&mu_);
  socket_mode_ = on;
}

void FakeSlack::AddChannel(const std::string& id, const std::string& name) {
  absl::MutexLock lock(&mu_);
  EnsureChannel(id).name = name;
}

FakeSlackChannel& FakeSlack::EnsureChannel(const std::string& id) {
  auto it = channels_.find(id);
  if (it != channels_.end()) return it->second;
  FakeSlackChannel& c = channels_[id];
  c.id = id;
  c.name = id;
  c.members.insert(options_.bot_user_id);
  return c;
}

void FakeSlack::AddMember(const std::string& channel, const std::string& user) {
  absl::MutexLock lock(&mu_);
  EnsureChannel(channel).members.insert(user);
}

std::optional<FakeSlackChannel> FakeSlack::Channel(
    const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = channels_.find(id);
  if (it == channels_.end()) return std::nullopt;
  return it->second;
}

std::string FakeSlack::PostError(const std::string& channel,
                                 const std::string& user) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return "channel_not_found";
  if (it->second.archived) return "is_archived";
  if (it->second.members.count(user) == 0) return "not_in_channel";
  return "";
}

void FakeSlack::AddUserToken(const std::string& user_id,
                             const std::string& token) {
  absl::MutexLock lock(&mu_);
  user_tokens_[token] = user_id;
  if (users_.find(user_id) == users_.end()) {
    users_[user_id] = {
        {"id", user_id},
        {"team_id", options_.team_id},
        {"name", absl::AsciiStrToLower(user_id)},
        {"real_name", user_id},
        {"is_bot", false},
        {"profile", {{"display_name", user_id}, {"real_name", user_id}}}};
    presence_.emplace(user_id, "away");
  }
}

std::string FakeSlack::Presence(const std::string& user) const {
  absl::MutexLock lock(&mu_);
  auto it = presence_.find(user);
  return it == presence_.end() ? "away" : it->second;
}

void FakeSlack::AddUser(const std::string& id, const std::string& display_name,
                        const std::string& avatar_url) {
  absl::MutexLock lock(&mu_);
  users_[id] = {{"id", id},
                {"team_id", options_.team_id},
                {"name", absl::AsciiStrToLower(display_name)},
                {"real_name", display_name},
                {"is_bot", false},
                {"profile",
                 {{"display_name", display_name},
                  {"real_name", display_name},
                  {"image_72", avatar_url},
                  {"image_192", avatar_url}}}};
  presence_.emplace(id, "away");
}

void FakeSlack::SetPresence(const std::string& user,
                            const std::string& presence) {
  {
    absl::MutexLock lock(&mu_);
    presence_[user] = presence;
  }
  Notify({{"presence", "", presence, user}});
}

std::string FakeSlack::NextTs() {
  int64_t micros = absl::ToUnixMicros(absl::Now());
  if (micros <= last_ts_micros_) micros = last_ts_micros_ + 1;
  last_ts_micros_ = micros;
  return absl::StrFormat("%d.%06d", micros / 1000000, micros % 1000000);
}

json FakeSlack::Callback(json event) {
  std::string event_id = absl::StrFormat("Ev%08d", ++counter_);
  json callback = {
      {"token", "fake-verification-token"},
      {"team_id", options_.team_id},
      {"api_app_id", options_.app_id},
      {"event", std::move(event)},
      {"type", "event_callback"},
      {"event_id", event_id},
      {"event_time", absl::ToUnixSeconds(absl::Now())},
      {"authorizations", json::array({{{"enterprise_id", nullptr},
                                       {"team_id", options_.team_id},
                                       {"user_id", options_.bot_user_id},
                                       {"is_bot", true}}})},
      {"is_ext_shared_channel", false}};
  callbacks_[event_id] = callback.dump();
  return callback;
}

json FakeSlack::FileJson(const FakeSlackFile& f) const {
  std::string base =
      absl::StrCat(base_url(), "/files-pri/", options_.team_id, "-", f.id);
  return {{"id", f.id},
          {"name", f.name},
          {"title", f.title},
          {"mimetype", f.mimetype},
          {"filetype", "binary"},
          {"size", f.content.size()},
          {"mode", "hosted"},
          {"user", f.uploaded_by},
          {"url_private", absl::StrCat(base, "/", f.name)},
          {"url_private_download", absl::StrCat(base, "/download/", f.name)}};
}

json FakeSlack::MessageJson(const FakeSlackMessage& m) const {
  json j = {{"type", "message"},
            {"text", m.text},
            {"ts", m.ts},
            {"team", options_.team_id}};
  if (!m.user.empty()) j["user"] = m.user;
  if (!m.bot_id.empty()) {
    j["bot_id"] = m.bot_id;
    j["app_id"] = m.app_id;
    j["bot_profile"] = {{"id", m.bot_id},
                        {"app_id", m.app_id},
                        {"name", m.bot_name},
                        {"team_id", options_.team_id}};
    if (!m.username.empty()) {
      j["subtype"] = "bot_message";
      j["username"] = m.username;
      if (!m.icon_url.empty()) j["icons"] = {{"image_72", m.icon_url}};
    }
  }
  if (!m.thread_ts.empty()) j["thread_ts"] = m.thread_ts;
  if (!m.metadata.is_null()) j["metadata"] = m.metadata;
  if (!m.file_ids.empty()) {
    j["files"] = json::array();
    for (const auto& id : m.file_ids) {
      auto it = files_.find(id);
      if (it != files_.end()) j["files"].push_back(FileJson(it->second));
    }
    if (!j.contains("subtype")) j["subtype"] = "file_share";
    j["upload"] = false;
  }
  return j;
}

FakeSlackMessage* FakeSlack::FindMessage(const std::string& channel,
                                         const std::string& ts) {
  for (auto& m : messages_) {
    if (m.channel == channel && m.ts == ts && !m.deleted) return &m;
  }
  return nullptr;
}

FakeSlackMessage FakeSlack::NewMessage(const std::string& channel,
                                       const std::string& user, bool as_bot) {
  FakeSlackMessage m;
  m.channel = channel;
  m.ts = NextTs();
  m.user = user;
  if (as_bot) {
    m.bot_id = options_.bot_id;
    m.app_id = options_.app_id;
    m.bot_name = "imbridge";
  }
  return m;
}

json FakeSlack::HiddenMessageEvent(const std::string& subtype,
                                   const std::string& channel, json previous) {
  std::string now = NextTs();
  return {{"type", "message"},
          {"subtype", subtype},
          {"hidden", true},
          {"channel", channel},
          {"ts", now},
          {"event_ts", now},
          {"previous_message", std::move(previous)},
          {"channel_type", "channel"}};
}

FakeSlack::Sent FakeSlack::Announce(
    Sent sent, const json& callback,
    const std::vector<FakeSlackChange>& changes) {
  sent.event_id = callback["event_id"];
  Notify(changes);
  sent.http_status = Emit(callback);
  return sent;
}

json FakeSlack::StoreMessage(const FakeSlackMessage& m) {
  messages_.push_back(m);
  json event = MessageJson(m);
  event["channel"] = m.channel;
  event["event_ts"] = m.ts;
  event["channel_type"] = "channel";
  return event;
}

void FakeSlack::ServeApi(const HttpRequest& request,
                         const std::shared_ptr<Responder>& responder) {
  std::string method = request.path.substr(strlen("/api/"));
  json args = json::object();
  if (absl::StrContains(absl::AsciiStrToLower(request.Header("Content-Type")),
                        "json")) {
    args = json::parse(request.body, nullptr, false);
    if (!args.is_object()) {
      responder->Respond(200, "application/json", Error("invalid_json").dump());
      return;
    }
  } else {
    ParseForm(request.body, &args);
  }
  ParseForm(request.query, &args);
  std::string token;
  absl::string_view auth = request.Header("Authorization");
  if (absl::StartsWith(auth, "Bearer ")) token = std::string(auth.substr(7));
  if (token.empty()) token = Arg(args, "token");

  std::vector<json> echoes;
  std::vector<FakeSlackChange> changes;
  json answer;
  int status = 200;
  HttpHeaderList headers;
  SlowAnswers::Slot slot = slow_.Take(method);
  {
    absl::MutexLock lock(&mu_);
    calls_.push_back({method, args, token});
    auto failure = failures_.find(method);
    if (failure != failures_.end() && failure->second.remaining > 0) {
      --failure->second.remaining;
      status = failure->second.http_status;
      answer = Error(failure->second.error);
      if (failure->second.retry_after > 0) {
        headers.emplace_back("Retry-After",
                             std::to_string(failure->second.retry_after));
      }
    } else {
      // Who the token acts as: the bot user, a person (user token), or
      // nobody.
      std::string caller;
      auto person = user_tokens_.find(token);
      if (method == "apps.connections.open") {
        if (token == options_.app_token) caller = options_.bot_user_id;
      } else if (token == options_.bot_token) {
        caller = options_.bot_user_id;
      } else if (person != user_tokens_.end()) {
        caller = person->second;
      }
      if (token.empty()) {
        answer = Error("not_authed");
      } else if (caller.empty()) {
        answer = Error("invalid_auth");
      } else {
        answer = Call(method, args, caller, &echoes, &changes);
      }
    }
    if (options_.echo_app_posts) {
      for (auto& e : echoes) echo_queue_.push_back(std::move(e));
    }
  }
  slow_.Respond(std::move(slot), responder, status,
                "application/json; charset=utf-8", answer.dump(),
                std::move(headers));
  Notify(changes);
}

void FakeSlack::DelayAnswers(const std::string& method, absl::Duration delay) {
  slow_.Set(method, delay);
}

int FakeSlack::delayed_answers_pending() const { return slow_.pending(); }

json FakeSlack::Call(const std::string& method, const json& args,
                     const std::string& caller, std::vector<json>* echoes,
                     std::vector<FakeSlackChange>* changes) {
  const std::string bot = options_.bot_user_id;
  const bool as_bot = caller == bot;
  if (method == "auth.test") {
    json answer = {{"ok", true},
                   {"url", "https://fake.slack.com/"},
                   {"team", "Fake Workspace"},
                   {"user", as_bot ? "imbridge" : caller},
                   {"team_id", options_.team_id},
                   {"user_id", caller},
                   {"is_enterprise_install", false}};
    if (as_bot) answer["bot_id"] = options_.bot_id;
    return answer;
  }
  if (method == "users.setPresence") {
    std::string presence = Arg(args, "presence");
    if (presence != "auto" && presence != "away") {
      return Error("invalid_presence");
    }
    presence_[caller] = presence == "auto" ? "active" : "away";
    changes->push_back({"presence", "", presence_[caller], caller});
    return {{"ok", true}};
  }
  if (method == "conversations.info" || method == "conversations.join") {
    std::string channel = Arg(args, "channel");
    auto it = channels_.find(channel);
    if (it == channels_.end()) return Error("channel_not_found");
    FakeSlackChannel& c = it->second;
    json warning;
    if (method == "conversations.join") {
      if (c.archived) return Error("is_archived");
      if (c.members.count(caller) > 0) {
        warning = "already_in_channel";
      } else {
        c.members.insert(caller);
        changes->push_back({"joined", channel, "", caller});
        if (caller != bot) {
          echoes->push_back(Callback({{"type", "member_joined_channel"},
                                      {"user", caller},
                                      {"channel", channel},
                                      {"channel_type", "C"},
                                      {"team", options_.team_id},
                                      {"event_ts", NextTs()}}));
        }
      }
    }
    json answer = {{"ok", true},
                   {"channel",
                    {{"id", c.id},
                     {"name", c.name},
                     {"is_channel", true},
                     {"is_private", false},
                     {"creator", c.creator},
                     {"is_archived", c.archived},
                     {"is_member", c.members.count(caller) > 0}}}};
    if (!warning.is_null()) answer["warning"] = warning;
    return answer;
  }
  if (method == "bots.info") {
    if (Arg(args, "bot") != options_.bot_id) return Error("bot_not_found");
    return {{"ok", true},
            {"bot",
             {{"id", options_.bot_id},
              {"deleted", false},
              {"name", "imbridge"},
              {"app_id", options_.app_id},
              {"user_id", bot}}}};
  }
  if (method == "users.info") {
    auto it = users_.find(Arg(args, "user"));
    if (it == users_.end()) return Error("user_not_found");
    return {{"ok", true}, {"user", it->second}};
  }
  if (method == "users.getPresence") {
    std::string user = Arg(args, "user");
    if (users_.find(user) == users_.end()) return Error("user_not_found");
    return {{"ok", true}, {"presence", presence_[user]}};
  }
  if (method == "apps.connections.open") {
    return {{"ok", true},
            {"url", absl::StrCat("ws://127.0.0.1:", ws_->port(),
                                 "/link/?ticket=fake-ticket-", ++counter_,
                                 "&app_id=", options_.app_id)}};
  }
  if (method == "chat.postMessage") {
    std::string channel = Arg(args, "channel");
    std::string refused = PostError(channel, caller);
    if (!refused.empty()) return Error(refused);
    std::string text = Arg(args, "text");
    if (text.empty()) return Error("no_text");
    if (text.size() > 40000) return Error("msg_too_long");
    FakeSlackMessage m = NewMessage(channel, caller, as_bot);
    if (as_bot) {
      // A user token posts as the person: no custom name or icon.
      m.username = Arg(args, "username");
      m.icon_url = Arg(args, "icon_url");
    }
    m.text = text;
    m.thread_ts = Arg(args, "thread_ts");
    auto metadata = args.find("metadata");
    if (metadata != args.end()) {
      // JSON bodies carry an object; form bodies a JSON string.
      m.metadata = metadata->is_string()
                       ? json::parse(metadata->get<std::string>(), nullptr,
                                     /*allow_exceptions=*/false)
                       : *metadata;
      if (!m.metadata.is_object() ||
          !m.metadata.value("event_type", json()).is_string() ||
          !m.metadata.value("event_payload", json()).is_object()) {
        return Error("invalid_metadata_format");
      }
    }
    echoes->push_back(Callback(StoreMessage(m)));
    changes->push_back({"posted", channel, m.ts, caller});
    json message = MessageJson(m);
    return {
        {"ok", true}, {"channel", channel}, {"ts", m.ts}, {"message", message}};
  }
  if (method == "conversations.history" || method == "conversations.replies") {
    std::string channel = Arg(args, "channel");
    if (channels_.find(channel) == channels_.end()) {
      return Error("channel_not_found");
    }
    const bool replies = method == "conversations.replies";
    const std::string parent = Arg(args, "ts");
    if (replies && FindMessage(channel, parent) == nullptr) {
      return Error("thread_not_found");
    }
    const double oldest = std::atof(Arg(args, "oldest").c_str());
    const bool with_metadata = Arg(args, "include_all_metadata") == "true" ||
                               Arg(args, "include_all_metadata") == "1";
    size_t limit = static_cast<size_t>(std::atoi(Arg(args, "limit").c_str()));
    if (limit == 0 || limit > 1000) limit = 100;
    const size_t from =
        static_cast<size_t>(std::atoi(Arg(args, "cursor").c_str()));
    // history: top-level messages, newest first; replies: the thread, oldest
    // first.
    std::vector<const FakeSlackMessage*> found;
    for (const auto& m : messages_) {
      if (m.channel != channel || m.deleted) continue;
      if (std::atof(m.ts.c_str()) < oldest) continue;
      bool top = m.thread_ts.empty() || m.thread_ts == m.ts;
      if (replies ? (m.ts != parent && m.thread_ts != parent) : !top) {
        continue;
      }
      found.push_back(&m);
    }
    if (!replies) std::reverse(found.begin(), found.end());
    json list = json::array();
    for (size_t i = from; i < found.size() && i < from + limit; ++i) {
      json j = MessageJson(*found[i]);
      if (!with_metadata) j.erase("metadata");
      list.push_back(std::move(j));
    }
    bool more = from + limit < found.size();
    return {{"ok", true},
            {"messages", list},
            {"has_more", more},
            {"response_metadata",
             {{"next_cursor", more ? std::to_string(from + limit) : ""}}}};
  }
  if (method == "chat.update" || method == "chat.delete") {
    std::string channel = Arg(args, "channel");
    if (channels_.find(channel) == channels_.end()) {
      return Error("channel_not_found");
    }
    FakeSlackMessage* m = FindMessage(channel, Arg(args, "ts"));
    if (m == nullptr) return Error("message_not_found");
    // The bot changes its own posts, a person (user token) theirs.
    if (as_bot ? m->bot_id != options_.bot_id
               : (m->user != caller || !m->bot_id.empty())) {
      return Error(method == "chat.update" ? "cant_update_message"
                                           : "cant_delete_message");
    }
    const bool update = method == "chat.update";
    json event =
        HiddenMessageEvent(update ? "message_changed" : "message_deleted",
                           channel, MessageJson(*m));
    if (update) {
      m->text = Arg(args, "text");
      ++m->edits;
      event["message"] = MessageJson(*m);
      changes->push_back({"edited", channel, m->ts, caller});
    } else {
      m->deleted = true;
      event["deleted_ts"] = m->ts;
      changes->push_back({"deleted", channel, m->ts, caller});
    }
    echoes->push_back(Callback(event));
    return {{"ok", true}, {"channel", channel}, {"ts", m->ts}};
  }
  if (method == "files.getUploadURLExternal") {
    std::string filename = Arg(args, "filename");
    int64_t length = 0;
    if (filename.empty() || !absl::SimpleAtoi(Arg(args, "length"), &length) ||
        length <= 0) {
      return Error("invalid_arguments");
    }
    FakeSlackFile f;
    f.id = absl::StrFormat("F%08d", ++counter_);
    f.name = filename;
    f.title = filename;
    f.mimetype = "application/octet-stream";
    f.uploaded_by = caller;
    files_[f.id] = f;
    return {{"ok", true},
            {"upload_url", absl::StrCat(base_url(), "/upload/", f.id)},
            {"file_id", f.id}};
  }
  if (method == "files.completeUploadExternal") {
    json files = json::parse(Arg(args, "files"), nullptr, false);
    if (!files.is_array() || files.empty()) return Error("invalid_arguments");
    std::string channel = Arg(args, "channel_id");
    if (!channel.empty()) {
      std::string refused = PostError(channel, caller);
      if (!refused.empty()) return Error(refused);
    }
    std::vector<std::string> ids;
    json out = json::array();
    for (const json& entry : files) {
      std::string id = entry.is_object() ? entry.value("id", "") : "";
      auto it = files_.find(id);
      if (it == files_.end()) return Error("file_not_found");
      if (!it->second.uploaded) return Error("file_upload_not_completed");
      ids.push_back(id);
    }
    for (const std::string& id : ids) {
      FakeSlackFile& f = files_[id];
      for (const json& entry : files) {
        if (entry.value("id", "") == id && entry.contains("title")) {
          f.title = entry.value("title", f.title);
        }
      }
      f.completed = true;
      f.channel = channel;
      f.thread_ts = Arg(args, "thread_ts");
      f.initial_comment = Arg(args, "initial_comment");
      out.push_back({{"id", f.id}, {"title", f.title}});
      changes->push_back({"file", channel, f.id, caller});
    }
    if (!channel.empty()) {
      FakeSlackMessage m = NewMessage(channel, caller, as_bot);
      m.text = Arg(args, "initial_comment");
      m.thread_ts = Arg(args, "thread_ts");
      m.file_ids = ids;
      echoes->push_back(Callback(StoreMessage(m)));
      changes->push_back({"posted", channel, m.ts, caller});
    }
    return {{"ok", true}, {"files", out}};
  }
  if (method == "files.delete") {
    auto it = files_.find(Arg(args, "file"));
    if (it == files_.end() || it->second.deleted) {
      return Error("file_not_found");
    }
    if (it->second.uploaded_by != caller) return Error("cant_delete_file");
    it->second.deleted = true;
    for (auto& m : messages_) {
      for (const auto& id : m.file_ids) {
        if (id == it->first && m.text.empty()) m.deleted = true;
      }
    }
    changes->push_back({"deleted", it->second.channel, it->first, caller});
    return {{"ok", true}};
  }
  return Error("unknown_method");
}

void FakeSlack::ServeUpload(const HttpRequest& request,
                            const std::shared_ptr<Responder>& responder) {
  std::string id = request.path.substr(strlen("/upload/"));
  {
    absl::MutexLock lock(&mu_);
    calls_.push_back(
        {"upload", {{"file_id", id}, {"bytes", request.body.size()}}, ""});
    auto failure = failures_.find("upload");
    if (failure != failures_.end() && failure->second.remaining > 0) {
      --failure->second.remaining;
      responder->Respond(failure->second.http_status, "text/plain", "failed");
      return;
    }
    auto it = files_.find(id);
    if (it == files_.end() || it->second.completed) {
      responder->Respond(404, "text/plain", "unknown upload");
      return;
    }
    it->second.content = request.body;
    it->second.uploaded = true;
  }
  responder->Respond(200, "text/plain",
                     absl::StrCat("OK - ", request.body.size()));
}

void FakeSlack::ServeFile(const HttpRequest& request,
                          const std::shared_ptr<Responder>& responder) {
  // /files-pri/<team>-<file id>[/download]/<name>
  absl::string_view rest =
      absl::string_view(request.path).substr(strlen("/files-pri/"));
  absl::string_view key = rest.substr(0, rest.find('/'));
  std::string id(key.substr(key.rfind('-') + 1));
  std::string token;
  absl::string_view auth = request.Header("Authorization");
  if (absl::StartsWith(auth, "Bearer ")) token = std::string(auth.substr(7));
  std::string content;
  std::string redirect;
  std::string mimetype;
  {
    absl::MutexLock lock(&mu_);
    calls_.push_back({"file.download", {{"file_id", id}}, token});
    auto r = redirects_.find(id);
    if (r != redirects_.end()) redirect = r->second;
    auto it = files_.find(id);
    if (it == files_.end() || it->second.deleted) {
      responder->Respond(404, "text/plain", "no such file");
      return;
    }
    if (token != options_.bot_token) {
      // Slack answers a login page; a test only needs "not the file".
      responder->Respond(403, "text/html", "<html>sign in</html>");
      return;
    }
    content = it->second.content;
    mimetype = it->second.mimetype;
  }
  if (!redirect.empty()) {
    responder->Respond(302, "text/plain", "", {{"Location", redirect}});
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (download_delay_ > absl::ZeroDuration() && !stopping_) {
      delayed_.emplace_back([this, responder, mimetype,
                             content = std::move(content),
                             until = absl::Now() + download_delay_] {
        {
          absl::MutexLock lock(&mu_);
          mu_.AwaitWithDeadline(absl::Condition(&stopping_), until);
        }
        responder->Respond(200, mimetype, content);
      });
      return;
    }
  }
  responder->Respond(200, mimetype, std::move(content));
}

void FakeSlack::DelayDownloads(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  download_delay_ = delay;
}

int FakeSlack::Emit(const json& callback, int retry_num,
                    const std::string& reason) {
  std::string event_id = callback.value("event_id", "");
  std::string body;
  std::string url;
  bool socket = false;
  std::string envelope_id;
  {
    absl::MutexLock lock(&mu_);
    if (!AppSees(callback)) return 0;
    body = callbacks_[event_id];
    url = events_url_;
    socket = socket_mode_;
    if (socket) {
      envelope_id = absl::StrFormat("env-%08d", ++counter_);
      envelope_events_[envelope_id] = event_id;
    }
  }
  if (socket) {
    json envelope = {{"envelope_id", envelope_id},
                     {"type", "events_api"},
                     {"accepts_response_payload", false},
                     {"retry_attempt", retry_num},
                     {"retry_reason", reason},
                     {"payload", json::parse(body)}};
    ws_->Send(envelope.dump());
    return 0;
  }
  if (url.empty()) return 0;
  SlackEventsSender::Options o;
  o.retry_num = retry_num;
  if (!reason.empty()) o.retry_reason = reason;
  auto response = SlackEventsSender(url, options_.signing_secret).Send(body, o);
  return response.ok() ? response->status : 0;
}

FakeSlack::Sent FakeSlack::PostMessage(const std::string& channel,
                                       const std::string& user,
                                       const std::string& text,
                                       const std::string& thread_ts) {
  json callback;
  Sent sent;
  {
    absl::MutexLock lock(&mu_);
    EnsureChannel(channel);
    FakeSlackMessage m = NewMessage(channel, user, /*as_bot=*/false);
    m.text = text;
    m.thread_ts = thread_ts;
    json event = StoreMessage(m);
    event["client_msg_id"] = absl::StrCat("cm-", m.ts);
    if (!thread_ts.empty()) {
      FakeSlackMessage* parent = FindMessage(channel, thread_ts);
      if (parent != nullptr) event["parent_user_id"] = parent->user;
    }
    callback = Callback(event);
    sent.ts = m.ts;
  }
  return Announce(sent, callback, {{"posted", channel, sent.ts, user}});
}

FakeSlack::Sent FakeSlack::EditMessage(const std::string& channel,
                                       const std::string& ts,
                                       const std::string& new_text) {
  json callback;
  Sent sent;
  sent.ts = ts;
  std::string user;
  {
    absl::MutexLock lock(&mu_);
    FakeSlackMessage* m = FindMessage(channel, ts);
    if (m == nullptr) return sent;
    json event =
        HiddenMessageEvent("message_changed", channel, MessageJson(*m));
    m->text = new_text;
    ++m->edits;
    user = m->user;
    json message = MessageJson(*m);
    message["edited"] = {{"user", m->user}, {"ts", event["ts"]}};
    event["message"] = message;
    callback = Callback(event);
  }
  return Announce(sent, callback, {{"edited", channel, ts, user}});
}

FakeSlack::Sent FakeSlack::TouchMessage(const std::string& channel,
                                        const std::string& ts) {
  json callback;
  Sent sent;
  sent.ts = ts;
  {
    absl::MutexLock lock(&mu_);
    FakeSlackMessage* m = FindMessage(channel, ts);
    if (m == nullptr) return sent;
    json message = MessageJson(*m);
    message["reply_count"] = 1;
    message["latest_reply"] = NextTs();
    json event =
        HiddenMessageEvent("message_changed", channel, MessageJson(*m));
    event["message"] = message;
    callback = Callback(event);
  }
  return Announce(sent, callback, {});
}

FakeSlack::Sent FakeSlack::DeleteMessage(const std::string& channel,
                                         const std::string& ts) {
  json callback;
  Sent sent;
  sent.ts = ts;
  std::string user;
  {
    absl::MutexLock lock(&mu_);
    FakeSlackMessage* m = FindMessage(channel, ts);
    if (m == nullptr) return sent;
    json event =
        HiddenMessageEvent("message_deleted", channel, MessageJson(*m));
    event["deleted_ts"] = ts;
    m->deleted = true;
    user = m->user;
    callback = Callback(event);
  }
  return Announce(sent, callback, {{"deleted", channel, ts, user}});
}

FakeSlack::Sent FakeSlack::UploadFile(const std::string& channel,
                                      const std::string& user,
                                      const std::string& name,
                                      const std::string& mimetype,
                                      const std::string& content,
                                      const std::string& text,
                                      const std::string& thread_ts) {
  json callback;
  Sent sent;
  {
    absl::MutexLock lock(&mu_);
    EnsureChannel(channel);
    FakeSlackFile f;
    f.id = absl::StrFormat("F%08d", ++counter_);
    f.name = name;
    f.title = name;
    f.mimetype = mimetype;
    f.content = content;
    f.channel = channel;
    f.thread_ts = thread_ts;
    f.uploaded_by = user;
    f.uploaded = f.completed = true;
    files_[f.id] = f;
    FakeSlackMessage m = NewMessage(channel, user, /*as_bot=*/false);
    m.text = text;
    m.thread_ts = thread_ts;
    m.file_ids = {f.id};
    json event = StoreMessage(m);
    event["display_as_bot"] = false;
    callback = Callback(event);
    sent.ts = m.ts;
  }
  return Announce(sent, callback, {{"posted", channel, sent.ts, user}});
}

FakeSlack::Sent FakeSlack::JoinChannel(const std::string& channel,
                                       const std::string& user) {
  json callback;
  {
    absl::MutexLock lock(&mu_);
    EnsureChannel(channel).members.insert(user);
    std::string now = NextTs();
    callback = Callback({{"type", "member_joined_channel"},
                         {"user", user},
                         {"channel", channel},
                         {"channel_type", "C"},
                         {"team", options_.team_id},
                         {"event_ts", now}});
  }
  return Announce(Sent(), callback, {{"joined", channel, "", user}});
}

FakeSlack::Sent FakeSlack::LeaveChannel(const std::string& channel,
                                        const std::string& user) {
  json callback;
  {
    absl::MutexLock lock(&mu_);
    std::string now = NextTs();
    callback = Callback({{"type", "member_left_channel"},
                         {"user", user},
                         {"channel", channel},
                         {"channel_type", "C"},
                         {"team", options_.team_id},
                         {"event_ts", now}});
  }
  Sent sent;
  sent.event_id = callback["event_id"];
  // The app hears of it while the leaver is still a member.
  sent.http_status = Emit(callback);
  absl::MutexLock lock(&mu_);
  auto it = channels_.find(channel);
  if (it != channels_.end()) it->second.members.erase(user);
  return sent;
}

FakeSlack::Sent FakeSlack::CreateChannel(const std::string& id,
                                         const std::string& name,
                                         const std::string& creator) {
  json callback;
  {
    absl::MutexLock lock(&mu_);
    if (channels_.find(id) != channels_.end()) return Sent();
    FakeSlackChannel& c = channels_[id];
    c.id = id;
    c.name = name;
    c.creator = creator;
    c.members.insert(creator);
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    callback = Callback(
        {{"type", "channel_created"},
         {"channel",
          {{"id", id}, {"name", name}, {"created", now}, {"creator", creator}}},
         {"event_ts", NextTs()}});
  }
  return Announce(Sent(), callback, {{"channel_created", id, "", creator}});
}

FakeSlack::Sent FakeSlack::ArchiveChannel(const std::string& channel,
                                          const std::string& user) {
  json callback;
  {
    absl::MutexLock lock(&mu_);
    auto it = channels_.find(channel);
    if (it == channels_.end() || it->second.archived) return Sent();
    it->second.archived = true;
    callback = Callback({{"type", "channel_archive"},
                         {"channel", channel},
                         {"user", user},
                         {"event_ts", NextTs()}});
  }
  return Announce(Sent(), callback, {{"channel_archive", channel, "", user}});
}

FakeSlack::Sent FakeSlack::PostAsApp(const std::string& channel,
                                     const FakeSlackApp& app,
                                     const std::string& text,
                                     const std::string& username) {
  json callback;
  Sent sent;
  {
    absl::MutexLock lock(&mu_);
    if (!PostError(channel, app.user_id).empty()) return sent;
    FakeSlackMessage m = NewMessage(channel, app.user_id, /*as_bot=*/false);
    m.bot_id = app.bot_id;
    m.app_id = app.app_id;
    m.bot_name = app.name;
    m.username = username;
    m.text = text;
    callback = Callback(StoreMessage(m));
    sent.ts = m.ts;
  }
  return Announce(sent, callback, {{"posted", channel, sent.ts, app.user_id}});
}

bool FakeSlack::AppSees(const json& callback) const {
  const json& event = callback.value("event", json::object());
  const std::string type = event.value("type", "");
  if (type != "message" && type != "member_joined_channel" &&
      type != "member_left_channel") {
    return true;
  }
  auto it = channels_.find(event.value("channel", ""));
  return it == channels_.end() ||
         it->second.members.count(options_.bot_user_id) > 0;
}

std::string FakeSlack::PostedEventId(const std::string& channel,
                                     const std::string& ts) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, body] : callbacks_) {
    json callback = json::parse(body, nullptr, false);
    if (!callback.is_object()) continue;
    const json& e = callback.value("event", json::object());
    const std::string subtype = e.value("subtype", "");
    if (e.value("type", "") == "message" &&
        (subtype.empty() || subtype == "bot_message" ||
         subtype == "file_share") &&
        e.value("channel", "") == channel && e.value("ts", "") == ts) {
      return id;
    }
  }
  return "";
}

int FakeSlack::Redeliver(const std::string& event_id, int retry_num,
                         const std::string& reason) {
  json callback;
  {
    absl::MutexLock lock(&mu_);
    auto it = callbacks_.find(event_id);
    if (it == callbacks_.end()) return 0;
    callback = json::parse(it->second);
  }
  return Emit(callback, retry_num, reason);
}

std::string FakeSlack::CallbackBody(const std::string& event_id) const {
  absl::MutexLock lock(&mu_);
  auto it = callbacks_.find(event_id);
  return it == callbacks_.end() ? "" : it->second;
}

SlackEventsSender FakeSlack::sender() const {
  absl::MutexLock lock(&mu_);
  return SlackEventsSender(events_url_, options_.signing_secret);
}

void FakeSlack::RedirectFile(const std::string& file_id,
                             const std::string& location) {
  absl::MutexLock lock(&mu_);
  redirects_[file_id] = location;
}

std::vector<FakeSlackMessage> FakeSlack::Messages(
    const std::string& channel) const {
  absl::MutexLock lock(&mu_);
  std::vector<FakeSlackMessage> out;
  for (const auto& m : messages_) {
    if (m.channel == channel) out.push_back(m);
  }
  return out;
}

std::optional<FakeSlackFile> FakeSlack::File(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(id);
  if (it == files_.end()) return std::nullopt;
  return it->second;
}

std::vector<FakeSlackCall> FakeSlack::Calls(const std::string& method) const {
  absl::MutexLock lock(&mu_);
  std::vector<FakeSlackCall> out;
  for (const auto& c : calls_) {
    if (method.empty() || c.method == method) out.push_back(c);
  }
  return out;
}

bool FakeSlack::WaitForCalls(const std::string& method, size_t n,
                             absl::Duration timeout) const {
  absl::Time deadline = absl::Now() + timeout;
  while (Calls(method).size() < n) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

bool FakeSlack::WaitForMessages(
    const std::string& channel,
    const std::function<bool(const std::vector<FakeSlackMessage>&)>& pred,
    absl::Duration timeout) const {
  absl::Time deadline = absl::Now() + timeout;
  while (!pred(Messages(channel))) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

void FakeSlack::OnChange(std::function<void(const FakeSlackChange&)> callback) {
  absl::MutexLock lock(&mu_);
  subscribers_.push_back(std::move(callback));
}

void FakeSlack::Notify(const std::vector<FakeSlackChange>& changes) {
  if (changes.empty()) return;
  std::vector<std::function<void(const FakeSlackChange&)>> subscribers;
  {
    absl::MutexLock lock(&mu_);
    subscribers = subscribers_;
  }
  for (const auto& c : changes) {
    for (const auto& s : subscribers) s(c);
  }
}

void FakeSlack::FailNext(const std::string& method, int n, int http_status,
                         const std::string& error, int retry_after_seconds) {
  absl::MutexLock lock(&mu_);
  failures_[method] = {n, http_status, error, retry_after_seconds};
}

bool FakeSlack::socket_connected() const { return ws_->connected(); }

std::vector<std::string> FakeSlack::acked_envelopes() const {
  absl::MutexLock lock(&mu_);
  return acked_;
}

std::string FakeSlack::EventIdOfEnvelope(const std::string& envelope_id) const {
  absl::MutexLock lock(&mu_);
  auto it = envelope_events_.find(envelope_id);
  return it == envelope_events_.end() ? "" : it->second;
}

void FakeSlack::RequestSocketReconnect() {
  ws_->Send(json{{"type", "disconnect"},
                 {"reason", "refresh_requested"},
                 {"debug_info", {{"host", "fake-slack"}}}}
                .dump());
}

void FakeSlack::OnSocketMessage(const std::string& text) {
  json m = json::parse(text, nullptr, false);
  if (!m.is_object()) return;
  std::string id = m.value("envelope_id", "");
  if (id.empty()) return;
  absl::MutexLock lock(&mu_);
  acked_.push_back(id);
}

void FakeSlack::EchoLoop() {
  while (true) {
    json callback;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || !echo_queue_.empty();
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(200));
      if (stopping_) return;
      if (echo_queue_.empty()) continue;
      callback = std::move(echo_queue_.front());
      echo_queue_.pop_front();
    }
    Emit(callback);
  }
}

}  // namespace imbridge::fakes
