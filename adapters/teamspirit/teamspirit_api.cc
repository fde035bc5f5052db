#include "adapters/teamspirit/teamspirit_api.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "adapters/common/delivery_handler.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::teamspirit {
namespace {

using Json = nlohmann::json;

// Every TeamSpirit field name used by the adapter.
constexpr char kEventId[] = "event_id";
constexpr char kType[] = "type";
constexpr char kCreatedAt[] = "created_at";
constexpr char kChat[] = "chat";
constexpr char kUser[] = "user";
constexpr char kMessage[] = "message";
constexpr char kPresence[] = "presence";
constexpr char kId[] = "id";
constexpr char kName[] = "name";
constexpr char kAvatarUrl[] = "avatar_url";
constexpr char kIsBot[] = "is_bot";
constexpr char kText[] = "text";
constexpr char kFormat[] = "format";
constexpr char kReplyTo[] = "reply_to";
constexpr char kThreadId[] = "thread_id";
constexpr char kFiles[] = "files";
constexpr char kFileIds[] = "file_ids";
constexpr char kAuthor[] = "author";
constexpr char kExternalId[] = "external_id";
constexpr char kMimeType[] = "mime_type";
constexpr char kSize[] = "size";
constexpr char kStatus[] = "status";
constexpr char kClientToken[] = "client_token";
constexpr char kFile[] = "file";
constexpr char kError[] = "error";
constexpr char kCode[] = "code";
constexpr char kUsername[] = "username";
constexpr char kIconUrl[] = "icon_url";
constexpr char kFormatMarkdown[] = "markdown";
constexpr char kFormatPlain[] = "plain";

struct EventTypeName {
  const char* name;
  TsEventType type;
};
constexpr EventTypeName kEventTypes[] = {
    {"message.created", TsEventType::kMessageCreated},
    {"message.updated", TsEventType::kMessageUpdated},
    {"message.deleted", TsEventType::kMessageDeleted},
    {"presence.changed", TsEventType::kPresenceChanged},
    {"member.joined", TsEventType::kMemberJoined},
    {"member.left", TsEventType::kMemberLeft},
};

// JSON text of `j`; invalid UTF-8 in strings is replaced, never thrown on.
std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed TeamSpirit event: ", what));
}

// Reads optional string field `key` of object `o` (absent or null: empty).
absl::StatusOr<std::string> OptString(const Json& o, const char* key,
                                      absl::string_view where) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return Malformed(absl::StrCat(where, key, " is not a string"));
  }
  return it->get<std::string>();
}

absl::StatusOr<std::string> ReqString(const Json& o, const char* key,
                                      absl::string_view where) {
  auto value = OptString(o, key, where);
  if (value.ok() && value->empty()) {
    return Malformed(absl::StrCat(where, key, " is missing"));
  }
  return value;
}

// The object at `key`, or nullptr when absent or null.
absl::StatusOr<const Json*> OptObject(const Json& o, const char* key,
                                      absl::string_view where) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return nullptr;
  if (!it->is_object()) {
    return Malformed(absl::StrCat(where, key, " is not an object"));
  }
  return &*it;
}

#define TS_ASSIGN(lhs, expr)            \
  do {                                  \
    auto ts_value_ = (expr);            \
    if (!ts_value_.ok()) {              \
      return ts_value_.status();        \
    }                                   \
    lhs = std::move(ts_value_).value(); \
  } while (0)

absl::StatusOr<TsUser> ParseUser(const Json& o) {
  TsUser user;
  TS_ASSIGN(user.id, ReqString(o, kId, "user."));
  TS_ASSIGN(user.name, OptString(o, kName, "user."));
  TS_ASSIGN(user.avatar_url, OptString(o, kAvatarUrl, "user."));
  auto bot = o.find(kIsBot);
  if (bot != o.end() && !bot->is_null()) {
    if (!bot->is_boolean()) return Malformed("user.is_bot is not a boolean");
    user.is_bot = bot->get<bool>();
  }
  return user;
}

absl::StatusOr<TsFile> ParseFile(const Json& o) {
  if (!o.is_object()) return Malformed("message.files[] is not an object");
  TsFile file;
  TS_ASSIGN(file.id, ReqString(o, kId, "message.files[]."));
  TS_ASSIGN(file.name, OptString(o, kName, "message.files[]."));
  TS_ASSIGN(file.mime_type, OptString(o, kMimeType, "message.files[]."));
  auto size = o.find(kSize);
  if (size != o.end() && !size->is_null()) {
    if (!size->is_number_unsigned() && !size->is_number_integer()) {
      return Malformed("message.files[].size is not a number");
    }
    int64_t value = size->get<int64_t>();
    if (value < 0) return Malformed("message.files[].size is negative");
    file.size = static_cast<uint64_t>(value);
  }
  return file;
}

absl::StatusOr<TsMessage> ParseMessage(const Json& o, bool full) {
  TsMessage m;
  TS_ASSIGN(m.id, ReqString(o, kId, "message."));
  if (!full) return m;
  TS_ASSIGN(m.text, OptString(o, kText, "message."));
  std::string format;
  TS_ASSIGN(format, OptString(o, kFormat, "message."));
  m.markdown = format != kFormatPlain;
  TS_ASSIGN(m.reply_to, OptString(o, kReplyTo, "message."));
  TS_ASSIGN(m.thread_id, OptString(o, kThreadId, "message."));
  auto files = o.find(kFiles);
  if (files != o.end() && !files->is_null()) {
    if (!files->is_array()) return Malformed("message.files is not an array");
    for (const Json& f : *files) {
      TsFile file;
      TS_ASSIGN(file, ParseFile(f));
      m.files.push_back(std::move(file));
    }
  }
  const Json* author = nullptr;
  TS_ASSIGN(author, OptObject(o, kAuthor, "message."));
  if (author != nullptr) {
    TsAuthor a;
    TS_ASSIGN(a.external_id,
              OptString(*author, kExternalId, "message.author."));
    TS_ASSIGN(a.name, OptString(*author, kName, "message.author."));
    TS_ASSIGN(a.avatar_url, OptString(*author, kAvatarUrl, "message.author."));
    m.author = std::move(a);
  }
  return m;
}

// Fills `*out` with the error code and message of a TeamSpirit error body
// ({"error": {"code", "message"}}); leaves them empty when it is not one.
void ParseErrorBody(absl::string_view body, std::string* code,
                    std::string* message) {
  Json j = Json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return;
  auto e = j.find(kError);
  if (e == j.end() || !e->is_object()) return;
  auto c = e->find(kCode);
  if (c != e->end() && c->is_string()) *code = c->get<std::string>();
  auto m = e->find(kMessage);
  if (m != e->end() && m->is_string()) *message = m->get<std::string>();
}

absl::Status Annotate(const absl::Status& status, absl::string_view what) {
  return absl::Status(
      status.code(), absl::StrCat("TeamSpirit ", what, ": ", status.message()));
}

}  // namespace

absl::StatusOr<TsWebhookEvent> ParseWebhookEvent(absl::string_view body) {
  Json j = Json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded()) return Malformed("body is not JSON");
  if (!j.is_object()) return Malformed("body is not a JSON object");
  TsWebhookEvent e;
  TS_ASSIGN(e.event_id, ReqString(j, kEventId, ""));
  TS_ASSIGN(e.type_name, ReqString(j, kType, ""));
  for (const EventTypeName& t : kEventTypes) {
    if (e.type_name == t.name) e.type = t.type;
  }
  if (e.type == TsEventType::kUnknown) return e;

  std::string created_at;
  TS_ASSIGN(created_at, OptString(j, kCreatedAt, ""));
  absl::Time t;
  std::string err;
  if (!created_at.empty() &&
      absl::ParseTime(absl::RFC3339_full, created_at, &t, &err)) {
    e.created_at = t;
  }

  const Json* user = nullptr;
  TS_ASSIGN(user, OptObject(j, kUser, ""));
  if (user == nullptr) return Malformed("user is missing");
  TsUser u;
  TS_ASSIGN(u, ParseUser(*user));
  e.user = std::move(u);

  if (e.type == TsEventType::kPresenceChanged) {
    const Json* presence = nullptr;
    TS_ASSIGN(presence, OptObject(j, kPresence, ""));
    if (presence == nullptr) return Malformed("presence is missing");
    TsPresence p;
    TS_ASSIGN(p.status, ReqString(*presence, kStatus, "presence."));
    TS_ASSIGN(p.text, OptString(*presence, kText, "presence."));
    e.presence = std::move(p);
    return e;
  }

  const Json* chat = nullptr;
  TS_ASSIGN(chat, OptObject(j, kChat, ""));
  if (chat == nullptr) return Malformed("chat is missing");
  TS_ASSIGN(e.chat_id, ReqString(*chat, kId, "chat."));
  if (e.type == TsEventType::kMemberJoined ||
      e.type == TsEventType::kMemberLeft) {
    return e;
  }
  const Json* message = nullptr;
  TS_ASSIGN(message, OptObject(j, kMessage, ""));
  if (message == nullptr) return Malformed("message is missing");
  TsMessage m;
  TS_ASSIGN(m, ParseMessage(*message, e.type != TsEventType::kMessageDeleted));
  e.message = std::move(m);
  return e;
}

absl::Status StatusFromResponse(const HttpResponse& response,
                                absl::string_view what) {
  int status = response.status;
  if (status >= 200 && status < 300) return absl::OkStatus();
  std::string code;
  std::string message;
  ParseErrorBody(response.body, &code, &message);
  std::string text = absl::StrCat("TeamSpirit ", what, ": HTTP ", status);
  if (!code.empty()) absl::StrAppend(&text, " ", code);
  if (!message.empty()) absl::StrAppend(&text, ": ", message);
  if (IsRetryableHttpStatus(status)) {
    absl::Duration retry_after =
        response.RetryAfter(absl::Now()).value_or(absl::ZeroDuration());
    if (status == 429 && retry_after == absl::ZeroDuration()) {
      retry_after = absl::Seconds(1);
    }
    return RetryableError(text, retry_after);
  }
  switch (status) {
    case 400:
      return absl::InvalidArgumentError(text);
    case 401:
      return absl::UnauthenticatedError(text);
    case 403:
      return absl::PermissionDeniedError(text);
    case 404:
      return absl::NotFoundError(text);
    case 409:
      return absl::FailedPreconditionError(text);
    case 413:
      return absl::OutOfRangeError(text);
    default:
      return absl::UnknownError(text);
  }
}

std::string EscapePathSegment(absl::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u) || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  return out;
}

TeamSpiritApi::TeamSpiritApi(Options options, const HttpClient* http,
                             RateLimiter* limiter)
    : options_(std::move(options)), http_(http), limiter_(limiter) {
  while (!options_.base_url.empty() && options_.base_url.back() == '/') {
    options_.base_url.pop_back();
  }
}

std::string TeamSpiritApi::Url(
    absl::string_view path_template,
    std::initializer_list<std::pair<absl::string_view, absl::string_view>>
        values) const {
  std::vector<std::pair<std::string, std::string>> replacements;
  for (const auto& [name, value] : values) {
    replacements.emplace_back(absl::StrCat("{", name, "}"),
                              EscapePathSegment(value));
  }
  std::string path = absl::StrReplaceAll(path_template, replacements);
  if (path.empty() || path[0] != '/') path.insert(path.begin(), '/');
  return absl::StrCat(options_.base_url, path);
}

HttpHeaderList TeamSpiritApi::AuthHeaders() const {
  return {{"Authorization", absl::StrCat("Bearer ", options_.api_key)},
          {"Accept", "application/json"}};
}

absl::StatusOr<HttpResponse> TeamSpiritApi::Call(HttpClientRequest request,
                                                 absl::string_view what) {
  IMB_RETURN_IF_ERROR(limiter_->Acquire());
  for (auto& h : AuthHeaders()) request.headers.push_back(std::move(h));
  if (!request.timeout.has_value()) request.timeout = options_.timeout;
  absl::StatusOr<HttpResponse> response = http_->Send(request);
  if (!response.ok()) {
    absl::StatusCode code = response.status().code();
    if (code == absl::StatusCode::kUnavailable ||
        code == absl::StatusCode::kDeadlineExceeded) {
      return RetryableError(
          absl::StrCat("TeamSpirit ", what, ": ", response.status().message()));
    }
    return Annotate(response.status(), what);
  }
  if (response->status == 429) {
    limiter_->PauseUntil(
        absl::Now() +
        response->RetryAfter(absl::Now()).value_or(absl::Seconds(1)));
  }
  absl::Status status = StatusFromResponse(*response, what);
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<TsUser> TeamSpiritApi::GetMe() {
  HttpClientRequest request;
  request.url = Url(options_.paths.me, {});
  constexpr char kWhat[] = "GET /me";
  absl::StatusOr<HttpResponse> response = Call(std::move(request), kWhat);
  if (!response.ok()) return response.status();
  Json j = Json::parse(response->body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains(kUser) ||
      !j[kUser].is_object()) {
    return absl::InternalError(
        absl::StrCat("TeamSpirit ", kWhat, ": answer has no user"));
  }
  absl::StatusOr<TsUser> user = ParseUser(j[kUser]);
  if (!user.ok()) return Annotate(user.status(), kWhat);
  return user;
}

absl::StatusOr<std::string> TeamSpiritApi::PostMessage(
    absl::string_view chat_id, const TsNewMessage& message) {
  Json body = Json::object();
  body[kText] = message.text;
  body[kFormat] = message.markdown ? kFormatMarkdown : kFormatPlain;
  if (!message.reply_to.empty()) body[kReplyTo] = message.reply_to;
  if (!message.thread_id.empty()) body[kThreadId] = message.thread_id;
  if (!message.file_ids.empty()) body[kFileIds] = message.file_ids;
  if (message.author.has_value()) {
    Json author = Json::object();
    author[kExternalId] = message.author->external_id;
    author[kName] = message.author->name;
    if (!message.author->avatar_url.empty()) {
      author[kAvatarUrl] = message.author->avatar_url;
    }
    body[kAuthor] = std::move(author);
  }
  if (!message.client_token.empty()) body[kClientToken] = message.client_token;

  HttpClientRequest request;
  request.method = "POST";
  request.url = Url(options_.paths.messages, {{"chat_id", chat_id}});
  request.headers = {{"Content-Type", "application/json"}};
  request.body = Dump(body);
  constexpr char kWhat[] = "POST /chats/{chat_id}/messages";
  absl::StatusOr<HttpResponse> response = Call(std::move(request), kWhat);
  if (!response.ok()) return response.status();
  Json j = Json::parse(response->body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains(kMessage) &&
      j[kMessage].is_object() && j[kMessage].contains(kId) &&
      j[kMessage][kId].is_string() &&
      !j[kMessage][kId].get<std::string>().empty()) {
    return j[kMessage][kId].get<std::string>();
  }
  // The message may exist; the client token makes a retry harmless.
  return RetryableError(
      absl::StrCat("TeamSpirit ", kWhat, ": answer has no message id"));
}

absl::Status TeamSpiritApi::EditMessage(absl::string_view chat_id,
                                        absl::string_view message_id,
                                        absl::string_view text, bool markdown) {
  Json body = Json::object();
  body[kText] = std::string(text);
  body[kFormat] = markdown ? kFormatMarkdown : kFormatPlain;
  HttpClientRequest request;
  request.method = "PATCH";
  request.url = Url(options_.paths.message,
                    {{"chat_id", chat_id}, {"message_id", message_id}});
  request.headers = {{"Content-Type", "application/json"}};
  request.body = Dump(body);
  return Call(std::move(request), "PATCH /chats/{chat_id}/messages/{id}")
      .status();
}

absl::Status TeamSpiritApi::DeleteMessage(absl::string_view chat_id,
                                          absl::string_view message_id) {
  HttpClientRequest request;
  request.method = "DELETE";
  request.url = Url(options_.paths.message,
                    {{"chat_id", chat_id}, {"message_id", message_id}});
  return Call(std::move(request), "DELETE /chats/{chat_id}/messages/{id}")
      .status();
}

absl::StatusOr<TsFile> TeamSpiritApi::UploadFile(
    absl::string_view name, absl::string_view mime_type, uint64_t size,
    std::function<absl::StatusOr<size_t>(char* buffer, size_t max)> read) {
  MultipartPart part;
  part.name = kFile;
  part.filename = name.empty() ? std::string("file") : std::string(name);
  part.content_type = mime_type.empty()
                          ? std::string("application/octet-stream")
                          : std::string(mime_type);
  part.reader = std::move(read);
  part.reader_size = static_cast<int64_t>(size);
  HttpClientRequest request;
  request.method = "POST";
  request.url = Url(options_.paths.files, {});
  request.multipart.push_back(std::move(part));
  constexpr char kWhat[] = "POST /files";
  absl::StatusOr<HttpResponse> response = Call(std::move(request), kWhat);
  if (!response.ok()) return response.status();
  Json j = Json::parse(response->body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains(kFile) ||
      !j[kFile].is_object()) {
    return RetryableError(
        absl::StrCat("TeamSpirit ", kWhat, ": answer has no file"));
  }
  const Json& f = j[kFile];
  TsFile file;
  if (f.contains(kId) && f[kId].is_string())
    file.id = f[kId].get<std::string>();
  if (file.id.empty()) {
    return RetryableError(
        absl::StrCat("TeamSpirit ", kWhat, ": answer has no file id"));
  }
  if (f.contains(kName) && f[kName].is_string()) {
    file.name = f[kName].get<std::string>();
  }
  if (f.contains(kMimeType) && f[kMimeType].is_string()) {
    file.mime_type = f[kMimeType].get<std::string>();
  }
  if (f.contains(kSize) && f[kSize].is_number_unsigned()) {
    file.size = f[kSize].get<uint64_t>();
  }
  return file;
}

absl::Status TeamSpiritApi::DownloadFile(
    absl::string_view file_id, uint64_t max_bytes,
    const std::function<absl::Status(absl::string_view chunk)>& sink) {
  HttpClientRequest request;
  request.url = Url(options_.paths.file_content, {{"file_id", file_id}});
  request.sink = sink;
  request.max_response_bytes = static_cast<size_t>(max_bytes);
  return Call(std::move(request), "GET /files/{id}/content").status();
}

absl::Status TeamSpiritApi::SetPresence(const TsPresence& presence) {
  Json body = Json::object();
  body[kStatus] = presence.status;
  if (!presence.text.empty()) body[kText] = presence.text;
  HttpClientRequest request;
  request.method = "PUT";
  request.url = Url(options_.paths.presence, {});
  request.headers = {{"Content-Type", "application/json"}};
  request.body = Dump(body);
  return Call(std::move(request), "PUT /presence").status();
}

absl::Status TeamSpiritApi::PutExternalUser(
    absl::string_view external_id, absl::string_view name,
    absl::string_view avatar_url, const std::optional<TsPresence>& presence) {
  Json body = Json::object();
  body[kName] = std::string(name);
  if (!avatar_url.empty()) body[kAvatarUrl] = std::string(avatar_url);
  if (presence.has_value()) {
    Json p = Json::object();
    p[kStatus] = presence->status;
    if (!presence->text.empty()) p[kText] = presence->text;
    body[kPresence] = std::move(p);
  }
  HttpClientRequest request;
  request.method = "PUT";
  request.url =
      Url(options_.paths.external_user, {{"external_id", external_id}});
  request.headers = {{"Content-Type", "application/json"}};
  request.body = Dump(body);
  return Call(std::move(request), "PUT /external-users/{id}").status();
}

TsIncomingWebhook::TsIncomingWebhook(std::string url, const HttpClient* http,
                                     RateLimiter* limiter,
                                     absl::Duration timeout)
    : url_(std::move(url)), http_(http), limiter_(limiter), timeout_(timeout) {}

absl::Status TsIncomingWebhook::Post(absl::string_view text,
                                     absl::string_view username,
                                     absl::string_view icon_url) {
  Json body = Json::object();
  body[kText] = std::string(text);
  if (!username.empty()) body[kUsername] = std::string(username);
  if (!icon_url.empty()) body[kIconUrl] = std::string(icon_url);
  HttpClientRequest request;
  request.method = "POST";
  request.url = url_;
  request.headers = {{"Content-Type", "application/json"}};
  request.body = Dump(body);
  request.timeout = timeout_;
  IMB_RETURN_IF_ERROR(limiter_->Acquire());
  constexpr char kWhat[] = "POST <incoming webhook>";
  absl::StatusOr<HttpResponse> response = http_->Send(request);
  if (!response.ok()) {
    absl::StatusCode code = response.status().code();
    if (code == absl::StatusCode::kUnavailable ||
        code == absl::StatusCode::kDeadlineExceeded) {
      return RetryableError(absl::StrCat("TeamSpirit ", kWhat, ": ",
                                         response.status().message()));
    }
    return Annotate(response.status(), kWhat);
  }
  return StatusFromResponse(*response, kWhat);
}

}  // namespace imbridge::adapters::teamspirit
