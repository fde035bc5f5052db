#include "emulators/botsplash/fake_botsplash.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/http/hmac.h"
#include "common/http/http_client.h"
#include "common/http/percent_decode.h"
#include "emulators/multipart_form.h"

namespace imbridge::emulators {
namespace {

using json = nlohmann::json;

std::string Str(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return absl::StrCat(it->get<int64_t>());
  return "";
}

// The value of query parameter `name`.
std::string QueryParam(absl::string_view query, absl::string_view name) {
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (PercentDecode(kv.first, true) == name) {
      return PercentDecode(kv.second, true);
    }
  }
  return "";
}

json Error(absl::string_view message) {
  return {{"message", std::string(message)}};
}

}  // namespace

FakeBotsplash::FakeBotsplash() : FakeBotsplash(Options()) {}
FakeBotsplash::FakeBotsplash(Options options) : options_(std::move(options)) {}
FakeBotsplash::~FakeBotsplash() { Stop(); }

absl::Status FakeBotsplash::Start() {
  HttpServer::Options o;
  o.max_body_bytes = options_.max_upload_bytes + (1 << 20);
  o.request_timeout = absl::Seconds(60);
  HttpHandler serve = [this](HttpRequest request,
                             std::shared_ptr<Responder> responder) {
    Serve(std::move(request), std::move(responder));
  };
  return server_.Start(
      o, {{"POST", "/open/v1/", serve}, {"GET", "/media/", serve}});
}

void FakeBotsplash::Stop() { server_.Stop(); }

std::string FakeBotsplash::base_url() const {
  return absl::StrCat(server_.base_url(), "/open/v1");
}

void FakeBotsplash::FailNext(const std::string& path_prefix, int count,
                             int status, const std::string& message,
                             int retry_after_seconds) {
  absl::MutexLock lock(&mu_);
  for (int i = 0; i < count; ++i) {
    failures_.push_back({path_prefix, status, message, retry_after_seconds});
  }
}

void FakeBotsplash::HoldNextAnswer(const std::string& path_prefix) {
  absl::MutexLock lock(&mu_);
  hold_prefix_ = path_prefix;
  hold_armed_ = true;
}

bool FakeBotsplash::holding() const {
  absl::MutexLock lock(&mu_);
  return held_ != nullptr;
}

void FakeBotsplash::ReleaseHeld() {
  std::function<void()> held;
  {
    absl::MutexLock lock(&mu_);
    held.swap(held_);
  }
  if (held) held();
}

void FakeBotsplash::AddVisitor(const Visitor& visitor) {
  {
    absl::MutexLock lock(&mu_);
    visitors_[visitor.client_visitor_id] = visitor;
  }
  Notify();
}

void FakeBotsplash::SetReplyWebhook(const std::string& url,
                                    const std::string& header,
                                    const std::string& secret) {
  absl::MutexLock lock(&mu_);
  reply_url_ = url;
  reply_header_ = header;
  reply_secret_ = secret;
}

absl::StatusOr<int> FakeBotsplash::ReplyAsCustomer(
    const std::string& client_visitor_id, const std::string& text,
    const std::string& media_url) {
  HttpClientRequest r;
  json body;
  {
    absl::MutexLock lock(&mu_);
    if (reply_url_.empty()) {
      return absl::FailedPreconditionError("no reply webhook set");
    }
    auto it = visitors_.find(client_visitor_id);
    if (it == visitors_.end()) {
      return absl::NotFoundError(
          absl::StrCat("no visitor '", client_visitor_id, "'"));
    }
    const Visitor& v = it->second;
    body = {{"id", absl::StrCat("bsm-", ++next_id_)},
            {"createdAt", absl::FormatTime(absl::RFC3339_sec, absl::Now(),
                                           absl::UTCTimeZone())},
            {"visitor",
             {{"clientVisitorId", v.client_visitor_id},
              {"firstName", v.first_name},
              {"lastName", v.last_name},
              {"phoneNumber", v.phone_number}}}};
    if (!text.empty()) body["text"] = text;
    if (!media_url.empty()) body["mediaUrl"] = media_url;
    r.url = reply_url_;
    r.headers = {{"Content-Type", "application/json"},
                 {reply_header_, reply_secret_}};
  }
  r.method = "POST";
  r.body = body.dump();
  r.timeout = absl::Seconds(30);
  HttpClient http;
  absl::StatusOr<HttpResponse> answer = http.Send(r);
  {
    absl::MutexLock lock(&mu_);
    Reply reply;
    reply.id = body["id"].get<std::string>();
    reply.client_visitor_id = client_visitor_id;
    reply.text = text;
    reply.media_url = media_url;
    reply.status = answer.ok() ? answer->status : 0;
    reply.seq = ++next_id_;
    replies_.push_back(std::move(reply));
  }
  Notify();
  if (!answer.ok()) return answer.status();
  return answer->status;
}

std::vector<FakeBotsplash::Reply> FakeBotsplash::Replies() const {
  absl::MutexLock lock(&mu_);
  return replies_;
}

void FakeBotsplash::AddListener(std::function<void()> fn) {
  listeners_.push_back(std::move(fn));
}

void FakeBotsplash::Notify() {
  for (const auto& fn : listeners_) fn();
}

std::string FakeBotsplash::AddCustomerMedia(const std::string& name,
                                            const std::string& content_type,
                                            const std::string& bytes) {
  absl::MutexLock lock(&mu_);
  std::string key = absl::StrCat("cm-", ++next_id_);
  media_[key] = {key, name, content_type, bytes};
  return absl::StrCat(server_.base_url(), "/media/", key, "/", name);
}

void FakeBotsplash::Serve(HttpRequest request,
                          std::shared_ptr<Responder> responder) {
  if (request.method == "GET") {
    absl::string_view rest = request.path;
    absl::ConsumePrefix(&rest, "/media/");
    std::string key(rest.substr(0, rest.find('/')));
    absl::MutexLock lock(&mu_);
    auto it = media_.find(key);
    if (it == media_.end()) {
      responder->Respond(404, "application/json", Error("no media").dump());
      return;
    }
    responder->Respond(200, it->second.content_type, it->second.bytes);
    return;
  }
  absl::string_view path = request.path;
  const std::string app_prefix = absl::StrCat("/open/v1/", options_.app_id);
  Answer a;
  std::string call_path;
  json call_body;
  {
    absl::MutexLock lock(&mu_);
    if (!absl::ConsumePrefix(&path, app_prefix) ||
        (!path.empty() && path.front() != '/')) {
      a = {404, Error("unknown app")};
    } else {
      call_path = std::string(path);
      if (!absl::StartsWith(request.Header("Content-Type"), "multipart/")) {
        call_body = json::parse(request.body, nullptr, false);
      }
      bool key_ok = ConstantTimeEquals(QueryParam(request.query, "api_key"),
                                       options_.api_key);
      bool basic_ok = ConstantTimeEquals(
          request.Header("Authorization"),
          absl::StrCat("Basic ",
                       absl::Base64Escape(absl::StrCat(options_.username, ":",
                                                       options_.password))));
      auto failure = std::find_if(
          failures_.begin(), failures_.end(), [&](const Failure& f) {
            return absl::StartsWith(call_path, f.prefix);
          });
      if (!key_ok && !basic_ok) {
        a = {401, Error("Unauthorized")};
      } else if (failure != failures_.end()) {
        a = {failure->status, Error(failure->message), failure->retry_after};
        failures_.erase(failure);
      } else {
        a = Api(call_path, request);
      }
    }
    calls_.push_back({request.method, call_path,
                      call_body.is_discarded() ? json() : call_body, a.status});
  }
  HttpHeaderList extra;
  if (a.retry_after > 0) {
    extra.emplace_back("Retry-After", absl::StrCat(a.retry_after));
  }
  bool held_now = false;
  {
    absl::MutexLock lock(&mu_);
    if (hold_armed_ && absl::StartsWith(call_path, hold_prefix_)) {
      hold_armed_ = false;
      held_now = true;
      held_ = [responder, a, extra] {
        responder->Respond(a.status, "application/json; charset=utf-8",
                           a.body.dump(), extra);
      };
    }
  }
  if (held_now) {
    if (a.status == 200) Notify();
    return;
  }
  responder->Respond(a.status, "application/json; charset=utf-8", a.body.dump(),
                     std::move(extra));
  if (a.status == 200) Notify();
}

FakeBotsplash::Answer FakeBotsplash::Api(const std::string& path,
                                         const HttpRequest& request) {
  if (path == options_.upload_path) return Upload(request);
  json body = json::parse(request.body, nullptr, false);
  if (!body.is_object()) return {400, Error("the body is not a JSON object")};
  absl::string_view listener = path;
  if (absl::ConsumePrefix(&listener, "/listener/botsplash/")) {
    return Listener(std::string(listener), body);
  }
  if (path == options_.direct_message_path) return DirectMessage(body);
  // The update path's pattern, with {idType}/{idValue} as its last parts.
  std::string pattern = absl::StrReplaceAll(options_.update_visitor_path,
                                            {{"{idType}/{idValue}", ""}});
  absl::string_view rest = path;
  if (absl::ConsumePrefix(&rest, pattern)) {
    std::vector<std::string> parts = absl::StrSplit(rest, '/');
    if (parts.size() == 2) return UpdateVisitor(parts[0], parts[1], body);
  }
  return {404, Error(absl::StrCat("no route ", path))};
}

void FakeBotsplash::Merge(const json& j, Visitor* v) {
  if (!j.is_object()) return;
  auto set = [&](const char* name, std::string* field) {
    std::string value = Str(j, name);
    if (!value.empty()) *field = value;
  };
  set("firstName", &v->first_name);
  set("lastName", &v->last_name);
  set("phoneNumber", &v->phone_number);
  set("agentClientUserId", &v->agent_client_user_id);
  set("teamCode", &v->team_code);
}

json FakeBotsplash::VisitorObject(const Visitor& v) {
  return {{"id", absl::StrCat("v-", v.client_visitor_id)},
          {"clientVisitorId", v.client_visitor_id},
          {"agentClientUserId", v.agent_client_user_id},
          {"teamCode", v.team_code},
          {"firstName", v.first_name},
          {"lastName", v.last_name},
          {"phoneNumber", v.phone_number},
          {"archived", false},
          {"deliveryStatus", nullptr}};
}

FakeBotsplash::Answer FakeBotsplash::Listener(const std::string& id,
                                              const json& body) {
  if (std::find(options_.listeners.begin(), options_.listeners.end(), id) ==
      options_.listeners.end()) {
    return {404, Error(absl::StrCat("listener '", id, "' not found"))};
  }
  json visitor = body.value("visitor", json());
  std::string client_id = Str(visitor, "clientVisitorId");
  if (client_id.empty()) {
    return {400, Error("visitor.clientVisitorId is required")};
  }
  Visitor& v = visitors_[client_id];
  v.client_visitor_id = client_id;
  v.listener_id = id;
  Merge(visitor, &v);
  std::string message = Str(body.value("args", json::object()), "message");
  if (!message.empty()) {
    Received r;
    r.client_visitor_id = client_id;
    r.phone_number = v.phone_number;
    r.text = message;
    r.from_listener = true;
    r.seq = ++next_id_;
    received_.push_back(std::move(r));
  }
  return {200,
          {{"success", true}, {"requestId", absl::StrCat("req-", ++next_id_)}}};
}

FakeBotsplash::Answer FakeBotsplash::Upload(const HttpRequest& request) {
  absl::StatusOr<std::vector<MultipartFormPart>> parts =
      ParseMultipartForm(request.body, request.Header("Content-Type"));
  if (!parts.ok()) return {400, Error(parts.status().message())};
  for (const MultipartFormPart& p : *parts) {
    if (p.name != "file") continue;
    if (p.data.size() > options_.max_upload_bytes) {
      return {413, Error("file too large")};
    }
    std::string key = absl::StrCat("mk-", ++next_id_);
    media_[key] = {
        key, p.filename,
        p.content_type.empty() ? "application/octet-stream" : p.content_type,
        p.data};
    return {200, {{"key", key}}};
  }
  return {400, Error("the field 'file' is required")};
}

FakeBotsplash::Answer FakeBotsplash::DirectMessage(const json& body) {
  auto text = body.find("text");
  if (text == body.end() || !text->is_string()) {
    return {400, Error("text is required")};
  }
  json visitor = body.value("visitor", json());
  std::string client_id = Str(visitor, "clientVisitorId");
  if (client_id.empty()) {
    return {400, Error("visitor.clientVisitorId is required")};
  }
  std::string media_key = Str(body, "mediaKey");
  if (!media_key.empty() && media_.count(media_key) == 0) {
    return {400, Error(absl::StrCat("unknown mediaKey '", media_key, "'"))};
  }
  auto it = visitors_.find(client_id);
  if (it == visitors_.end()) {
    if (Str(visitor, "phoneNumber").empty()) {
      return {400, Error("visitor not found")};
    }
    it = visitors_.emplace(client_id, Visitor()).first;
    it->second.client_visitor_id = client_id;
  }
  Visitor& v = it->second;
  Merge(visitor, &v);
  Received r;
  r.client_visitor_id = client_id;
  r.phone_number = v.phone_number;
  r.text = text->get<std::string>();
  r.media_key = media_key;
  if (!media_key.empty()) r.media_name = media_[media_key].name;
  r.agent_client_user_id = Str(visitor, "agentClientUserId");
  r.seq = ++next_id_;
  received_.push_back(std::move(r));
  return {200, VisitorObject(v)};
}

FakeBotsplash::Answer FakeBotsplash::UpdateVisitor(const std::string& id_type,
                                                   const std::string& id_value,
                                                   const json& body) {
  if (id_type != "clientVisitorId" && id_type != "clientAppId") {
    return {400, Error("idType must be clientVisitorId or clientAppId")};
  }
  auto it = visitors_.find(id_value);
  if (it == visitors_.end()) {
    if (body.value("updateOnly", false)) {
      return {404, Error("visitor not found")};
    }
    it = visitors_.emplace(id_value, Visitor()).first;
    it->second.client_visitor_id = id_value;
  }
  Merge(body.value("visitor", json()), &it->second);
  ++it->second.updates;
  return {200, VisitorObject(it->second)};
}

std::vector<FakeBotsplash::Visitor> FakeBotsplash::Visitors() const {
  absl::MutexLock lock(&mu_);
  std::vector<Visitor> out;
  for (const auto& [id, v] : visitors_) out.push_back(v);
  return out;
}

std::optional<FakeBotsplash::Visitor> FakeBotsplash::GetVisitor(
    const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = visitors_.find(id);
  if (it == visitors_.end()) return std::nullopt;
  return it->second;
}

std::vector<FakeBotsplash::Received> FakeBotsplash::ReceivedBy(
    const std::string& client_visitor_id) const {
  absl::MutexLock lock(&mu_);
  std::vector<Received> out;
  for (const Received& r : received_) {
    if (client_visitor_id.empty() || r.client_visitor_id == client_visitor_id) {
      out.push_back(r);
    }
  }
  return out;
}

std::optional<FakeBotsplash::Media> FakeBotsplash::GetMedia(
    const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = media_.find(key);
  if (it == media_.end()) return std::nullopt;
  return it->second;
}

std::vector<FakeBotsplash::Call> FakeBotsplash::Calls(
    const std::string& path_prefix) const {
  absl::MutexLock lock(&mu_);
  std::vector<Call> out;
  for (const Call& c : calls_) {
    if (absl::StartsWith(c.path, path_prefix)) out.push_back(c);
  }
  return out;
}

bool FakeBotsplash::WaitFor(const std::function<bool()>& predicate,
                            absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!predicate()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

}  // namespace imbridge::emulators
