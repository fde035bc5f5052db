#include "adapters/slack/slack_api.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "adapters/common/delivery_handler.h"
#include "common/http/url_origin.h"

namespace imbridge::adapters::slack {
namespace {

using nlohmann::json;

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

bool RetryableSlackError(absl::string_view error) {
  return error == "internal_error" || error == "fatal_error" ||
         error == "service_unavailable" || error == "request_timeout" ||
         error == "ratelimited";
}

}  // namespace

absl::Status SlackError(absl::string_view method, int http_status,
                        absl::string_view error, absl::Duration retry_after) {
  std::string what = absl::StrCat(
      "slack ", method, ": ",
      error.empty() ? absl::StrCat("HTTP ", http_status) : std::string(error));
  if (http_status == 429 || error == "ratelimited") {
    if (retry_after <= absl::ZeroDuration()) retry_after = absl::Seconds(1);
    return RetryableError(what, retry_after);
  }
  if (RetryableSlackError(error) || IsRetryableHttpStatus(http_status)) {
    return RetryableError(what, retry_after);
  }
  return absl::FailedPreconditionError(what);
}

SlackApi::SlackApi(Options options, const HttpClient* http)
    : options_(std::move(options)), http_(http) {
  while (absl::EndsWith(options_.base_url, "/")) options_.base_url.pop_back();
}

absl::StatusOr<json> SlackApi::Finish(
    absl::string_view method,
    const absl::StatusOr<HttpResponse>& response) const {
  if (!response.ok()) {
    return RetryableError(
        absl::StrCat("slack ", method, ": ", response.status().message()));
  }
  absl::Duration retry_after =
      response->RetryAfter(absl::Now()).value_or(absl::ZeroDuration());
  json body = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  std::string error;
  if (body.is_object()) error = Str(body, "error");
  if (response->status != 200) {
    return SlackError(method, response->status, error, retry_after);
  }
  if (!body.is_object()) {
    return RetryableError(
        absl::StrCat("slack ", method, ": answer is not a JSON object"));
  }
  auto ok = body.find("ok");
  if (ok == body.end() || !ok->is_boolean() || !ok->get<bool>()) {
    return SlackError(method, 200, error.empty() ? "unknown_error" : error,
                      retry_after);
  }
  return body;
}

absl::StatusOr<json> SlackApi::CallJson(absl::string_view method,
                                        const json& args) const {
  HttpClientRequest request;
  request.method = "POST";
  request.url = absl::StrCat(options_.base_url, "/", method);
  request.headers = {
      {"Authorization", absl::StrCat("Bearer ", options_.bot_token)},
      {"Content-Type", "application/json; charset=utf-8"}};
  request.body = args.dump();
  request.timeout = options_.timeout;
  return Finish(method, http_->Send(request));
}

absl::StatusOr<json> SlackApi::CallForm(absl::string_view method,
                                        const HttpHeaderList& fields,
                                        absl::string_view token,
                                        absl::Duration timeout) const {
  HttpClientRequest request;
  request.method = "POST";
  request.url = absl::StrCat(options_.base_url, "/", method);
  request.headers = {
      {"Authorization",
       absl::StrCat("Bearer ", token.empty() ? options_.bot_token : token)},
      {"Content-Type", "application/x-www-form-urlencoded"}};
  request.body = HttpClient::FormEncode(fields);
  request.timeout = timeout > absl::ZeroDuration() ? timeout : options_.timeout;
  return Finish(method, http_->Send(request));
}

absl::StatusOr<BotIdentity> SlackApi::Identify() const {
  auto auth = CallForm("auth.test", {});
  if (!auth.ok()) return auth.status();
  BotIdentity id;
  id.team_id = Str(*auth, "team_id");
  id.user_id = Str(*auth, "user_id");
  id.bot_id = Str(*auth, "bot_id");
  if (!id.bot_id.empty()) {
    auto bot = CallForm("bots.info", {{"bot", id.bot_id}});
    if (!bot.ok()) return bot.status();
    auto it = bot->find("bot");
    if (it != bot->end() && it->is_object()) id.app_id = Str(*it, "app_id");
  }
  return id;
}

absl::StatusOr<std::string> SlackApi::PostMessage(
    absl::string_view channel, absl::string_view text,
    absl::string_view username, absl::string_view icon_url,
    absl::string_view thread_ts, absl::string_view delivery_key) const {
  json args = {{"channel", channel}, {"text", text}};
  if (!username.empty()) args["username"] = username;
  if (!icon_url.empty()) args["icon_url"] = icon_url;
  if (!thread_ts.empty()) args["thread_ts"] = thread_ts;
  if (!delivery_key.empty()) {
    args["metadata"] = {{"event_type", kDeliveryMetadataType},
                        {"event_payload", {{"key", delivery_key}}}};
  }
  auto r = CallJson("chat.postMessage", args);
  if (!r.ok()) return r.status();
  std::string ts = Str(*r, "ts");
  if (ts.empty()) {
    return absl::InternalError("slack chat.postMessage: answer without ts");
  }
  return ts;
}

absl::StatusOr<std::optional<std::string>> SlackApi::FindDelivery(
    absl::string_view channel, absl::string_view thread_ts,
    absl::string_view delivery_key, absl::Time oldest) const {
  const char* method =
      thread_ts.empty() ? "conversations.history" : "conversations.replies";
  HttpHeaderList fields = {
      {"channel", std::string(channel)},
      {"oldest", absl::StrFormat("%.6f", absl::ToUnixMicros(oldest) / 1e6)},
      {"include_all_metadata", "true"},
      {"limit", "200"}};
  if (!thread_ts.empty()) fields.emplace_back("ts", std::string(thread_ts));
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    HttpHeaderList args = fields;
    if (!cursor.empty()) args.emplace_back("cursor", cursor);
    auto r = CallForm(method, args);
    if (!r.ok()) return r.status();
    auto messages = r->find("messages");
    if (messages != r->end() && messages->is_array()) {
      for (const json& m : *messages) {
        auto meta = m.find("metadata");
        if (meta == m.end() || !meta->is_object() ||
            Str(*meta, "event_type") != kDeliveryMetadataType) {
          continue;
        }
        auto payload = meta->find("event_payload");
        if (payload != meta->end() && payload->is_object() &&
            Str(*payload, "key") == delivery_key) {
          return std::optional<std::string>(Str(m, "ts"));
        }
      }
    }
    auto next = r->find("response_metadata");
    cursor =
        next != r->end() && next->is_object() ? Str(*next, "next_cursor") : "";
    if (cursor.empty()) break;
  }
  return std::optional<std::string>();
}

absl::Status SlackApi::UpdateMessage(absl::string_view channel,
                                     absl::string_view ts,
                                     absl::string_view text) const {
  return CallJson("chat.update",
                  {{"channel", channel}, {"ts", ts}, {"text", text}})
      .status();
}

absl::Status SlackApi::DeleteMessage(absl::string_view channel,
                                     absl::string_view ts) const {
  return CallJson("chat.delete", {{"channel", channel}, {"ts", ts}}).status();
}

absl::StatusOr<SlackUser> SlackApi::UserInfo(absl::string_view user_id,
                                             absl::Duration timeout) const {
  auto r =
      CallForm("users.info", {{"user", std::string(user_id)}}, {}, timeout);
  if (!r.ok()) return r.status();
  auto it = r->find("user");
  if (it == r->end() || !it->is_object()) {
    return absl::InternalError("slack users.info: answer without user");
  }
  const json& u = *it;
  SlackUser user;
  user.id = Str(u, "id");
  user.name = Str(u, "name");
  user.is_bot = u.value("is_bot", false);
  std::string real_name = Str(u, "real_name");
  auto p = u.find("profile");
  if (p != u.end() && p->is_object()) {
    user.display_name = Str(*p, "display_name");
    if (real_name.empty()) real_name = Str(*p, "real_name");
    user.avatar_url = Str(*p, "image_192");
    if (user.avatar_url.empty()) user.avatar_url = Str(*p, "image_72");
  }
  if (user.display_name.empty()) user.display_name = real_name;
  if (user.display_name.empty()) user.display_name = user.name;
  if (user.display_name.empty()) user.display_name = std::string(user_id);
  return user;
}

absl::StatusOr<std::string> SlackApi::GetPresence(
    absl::string_view user_id) const {
  auto r = CallForm("users.getPresence", {{"user", std::string(user_id)}});
  if (!r.ok()) return r.status();
  std::string presence = Str(*r, "presence");
  if (presence.empty()) {
    return absl::InternalError("slack users.getPresence: no presence");
  }
  return presence;
}

absl::Status SlackApi::SetPresence(absl::string_view presence) const {
  return CallForm("users.setPresence", {{"presence", std::string(presence)}})
      .status();
}

absl::StatusOr<SlackChannel> SlackApi::ChannelInfo(
    absl::string_view channel) const {
  auto r = CallForm("conversations.info", {{"channel", std::string(channel)}});
  if (!r.ok()) return r.status();
  auto it = r->find("channel");
  if (it == r->end() || !it->is_object()) {
    return absl::InternalError("slack conversations.info: no channel");
  }
  SlackChannel c;
  c.id = Str(*it, "id");
  c.name = Str(*it, "name");
  c.creator = Str(*it, "creator");
  auto archived = it->find("is_archived");
  c.is_archived =
      archived != it->end() && archived->is_boolean() && archived->get<bool>();
  if (c.id.empty()) c.id = std::string(channel);
  return c;
}

absl::Status SlackApi::JoinChannel(absl::string_view channel) const {
  return CallForm("conversations.join", {{"channel", std::string(channel)}})
      .status();
}

absl::StatusOr<std::string> SlackApi::UploadFile(
    absl::string_view filename, absl::string_view title,
    absl::string_view content, absl::string_view channel_id,
    absl::string_view thread_ts, absl::string_view initial_comment) const {
  if (content.empty()) {
    return absl::FailedPreconditionError("slack cannot upload an empty file");
  }
  auto target = CallForm("files.getUploadURLExternal",
                         {{"filename", std::string(filename)},
                          {"length", std::to_string(content.size())}});
  if (!target.ok()) return target.status();
  std::string upload_url = Str(*target, "upload_url");
  std::string file_id = Str(*target, "file_id");
  if (upload_url.empty() || file_id.empty()) {
    return absl::InternalError(
        "slack files.getUploadURLExternal: no upload_url or file_id");
  }
  HttpClientRequest upload;
  upload.method = "POST";
  upload.url = upload_url;
  upload.headers = {{"Content-Type", "application/octet-stream"}};
  upload.body = std::string(content);
  upload.timeout = std::max(options_.timeout, absl::Seconds(60));
  auto uploaded = http_->Send(upload);
  if (!uploaded.ok()) {
    return RetryableError(
        absl::StrCat("slack file upload: ", uploaded.status().message()));
  }
  if (uploaded->status != 200) {
    return SlackError(
        "file upload", uploaded->status, "",
        uploaded->RetryAfter(absl::Now()).value_or(absl::ZeroDuration()));
  }
  json files = json::array({{{"id", file_id}, {"title", title}}});
  HttpHeaderList fields = {{"files", files.dump()},
                           {"channel_id", std::string(channel_id)}};
  if (!thread_ts.empty()) fields.emplace_back("thread_ts", thread_ts);
  if (!initial_comment.empty()) {
    fields.emplace_back("initial_comment", initial_comment);
  }
  auto done = CallForm("files.completeUploadExternal", fields);
  if (!done.ok()) return done.status();
  return file_id;
}

absl::Status SlackApi::DeleteFile(absl::string_view file_id) const {
  return CallForm("files.delete", {{"file", std::string(file_id)}}).status();
}

bool SlackApi::IsTrustedFileUrl(absl::string_view url) const {
  auto origin = ParseUrlOrigin(url);
  auto base = ParseUrlOrigin(options_.base_url);
  if (!origin.ok() || !base.ok() || origin->has_user_info) return false;
  if (origin->scheme != "https" && origin->scheme != base->scheme) {
    return false;
  }
  if (origin->host == base->host && origin->port == base->port &&
      origin->scheme == base->scheme) {
    return true;
  }
  std::string with_port = absl::StrCat(origin->host, ":", origin->port);
  for (const std::string& allowed : options_.file_hosts) {
    std::string a = absl::AsciiStrToLower(allowed);
    if (a == with_port) return true;
    if (a == origin->host && origin->scheme == "https" && origin->port == 443) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::string> SlackApi::DownloadFile(
    absl::string_view url, uint64_t max_bytes, absl::Duration timeout) const {
  if (!IsTrustedFileUrl(url)) {
    return absl::PermissionDeniedError(
        "file is not on a Slack file host; not downloaded with the token");
  }
  HttpClientRequest request;
  request.method = "GET";
  request.url = std::string(url);
  request.headers = {
      {"Authorization", absl::StrCat("Bearer ", options_.bot_token)}};
  request.timeout = timeout;
  request.max_response_bytes = static_cast<size_t>(max_bytes);
  auto r = http_->Send(request);
  if (!r.ok()) return r.status();
  if (r->status != 200) {
    return SlackError(
        "file download", r->status, "",
        r->RetryAfter(absl::Now()).value_or(absl::ZeroDuration()));
  }
  return std::move(r->body);
}

absl::StatusOr<std::string> SlackApi::OpenSocketConnection(
    absl::string_view app_token) const {
  auto r = CallForm("apps.connections.open", {}, app_token);
  if (!r.ok()) return r.status();
  std::string url = Str(*r, "url");
  if (url.empty()) {
    return absl::InternalError("slack apps.connections.open: no url");
  }
  return url;
}

}  // namespace imbridge::adapters::slack
