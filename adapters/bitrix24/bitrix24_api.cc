#include "adapters/bitrix24/bitrix24_api.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/common/delivery_handler.h"
#include "common/http/php_form.h"
#include "common/http/url_origin.h"
#include "common/logging.h"

namespace imbridge::adapters::bitrix24 {
namespace {

using json = nlohmann::json;

constexpr absl::string_view kPayloadUrl = "imbridge.bitrix24/error";

// The codes Bitrix24 answers with 503 and 429, for a command of a batch
// (which carries no HTTP status of its own).
bool RetryableCode(absl::string_view code) {
  return code == "QUERY_LIMIT_EXCEEDED" || code == "OVERLOAD_LIMIT" ||
         code == "OPERATION_TIME_LIMIT" || code == "INTERNAL_SERVER_ERROR";
}

// A failed call of `method` as Call() returns it.
absl::Status Failure(absl::string_view method, const std::string& code,
                     const std::string& description, bool retryable,
                     absl::Duration retry_after) {
  std::string what = absl::StrCat("Bitrix24 ", method, ": ", code,
                                  description.empty() ? "" : ": ", description);
  if (retryable) return RetryableError(what, retry_after);
  absl::Status s = absl::FailedPreconditionError(what);
  s.SetPayload(kPayloadUrl, absl::Cord(code));
  return s;
}

}  // namespace

RestClient::RestClient(Options options, const HttpClient* http,
                       DeliveryJournal* journal)
    : options_(std::move(options)),
      http_(http),
      journal_(journal),
      bucket_(options_.requests_per_second, 1) {
  absl::MutexLock lock(&mu_);
  access_token_ = options_.access_token;
  refresh_token_ = options_.refresh_token;
}

std::string RestClient::state_name() const {
  return absl::StrCat("bitrix24/oauth/", options_.account);
}

absl::Status RestClient::Init() {
  if (journal_ == nullptr || !options_.webhook_url.empty()) {
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<std::string>> saved =
      journal_->GetState(state_name());
  if (!saved.ok()) return saved.status();
  if (!saved->has_value()) return absl::OkStatus();
  json j = json::parse(**saved, nullptr, false);
  if (!j.is_object() || !j.value("refresh_token", json()).is_string()) {
    LogWarn("ignoring unreadable saved OAuth tokens",
            {{"account", options_.account}});
    return absl::OkStatus();
  }
  absl::MutexLock lock(&mu_);
  access_token_ = j.value("access_token", "");
  refresh_token_ = j.value("refresh_token", "");
  return absl::OkStatus();
}

absl::Status RestClient::health() const {
  absl::MutexLock lock(&mu_);
  return health_;
}

std::string RestClient::PortalOrigin() const {
  const std::string& base =
      options_.webhook_url.empty() ? options_.rest_url : options_.webhook_url;
  absl::StatusOr<UrlOrigin> origin = ParseUrlOrigin(base);
  if (!origin.ok()) return "";
  return origin->ForLog();
}

RestClient::Answer RestClient::Post(absl::string_view method,
                                    const json& params,
                                    const std::string& token) const {
  Answer a;
  std::string url;
  json body = params;
  if (options_.webhook_url.empty()) {
    url = absl::StrCat(options_.rest_url, method);
    body["auth"] = token;
  } else {
    url = absl::StrCat(options_.webhook_url, method);
  }
  absl::StatusOr<HttpResponse> r = http_->PostJson(url, body.dump());
  if (!r.ok()) {
    a.error = std::string(r.status().message());
    return a;
  }
  a.status = r->status;
  a.body = json::parse(r->body, nullptr, false);
  if (a.body.is_object() && a.body.contains("error")) {
    a.error = a.body["error"].is_string() ? a.body["error"].get<std::string>()
                                          : a.body["error"].dump();
    a.description = a.body.value("error_description", "");
    if (a.status == 200) a.status = 400;
  } else if (a.status == 200 &&
             (!a.body.is_object() || !a.body.contains("result"))) {
    a.status = 502;
    a.error = "BAD_ANSWER";
    a.description = "the answer is not a {result} envelope";
  } else if (a.status != 200) {
    a.error = absl::StrCat("HTTP_", a.status);
  }
  return a;
}

void RestClient::Stop() { stopped_.Stop(); }

absl::StatusOr<json> RestClient::Call(absl::string_view method, json params) {
  absl::Duration backoff = options_.initial_backoff;
  bool refreshed = false;
  Answer last;
  const auto stopping = [&] {
    return RetryableError(
        absl::StrCat("Bitrix24 ", method, ": the adapter is stopping"),
        absl::ZeroDuration());
  };
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    absl::Duration wait = bucket_.Reserve(options_.account, absl::Now());
    if (stopped_.WaitFor(wait)) return stopping();
    std::string token;
    {
      absl::MutexLock lock(&mu_);
      token = access_token_;
    }
    last = Post(method, params, token);
    if (last.status == 200) return last.body["result"];
    if (last.error == "expired_token" && options_.webhook_url.empty() &&
        !refreshed) {
      refreshed = true;
      absl::Status s = Refresh(token);
      if (!s.ok()) return s;
      --attempt;  // The refresh is not a failed attempt.
      continue;
    }
    if (!IsRetryableHttpStatus(last.status)) break;
    LogDebug("Bitrix24 call will be retried",
             {{"account", options_.account},
              {"method", std::string(method)},
              {"status", absl::StrCat(last.status)},
              {"error", last.error}});
    if (attempt < options_.max_attempts) {
      if (stopped_.WaitFor(backoff)) return stopping();
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
  return Failure(method, last.error, last.description,
                 IsRetryableHttpStatus(last.status), backoff);
}

absl::StatusOr<std::vector<absl::StatusOr<json>>> RestClient::CallBatch(
    const std::vector<Command>& commands, bool halt) {
  if (commands.empty() || commands.size() > kMaxBatchCommands) {
    return absl::InvalidArgumentError(
        absl::StrCat("a batch takes 1 to ", kMaxBatchCommands, " commands"));
  }
  json cmd = json::object();
  for (size_t i = 0; i < commands.size(); ++i) {
    cmd[absl::StrCat("c", i)] = absl::StrCat(commands[i].method, "?",
                                             EncodePhpForm(commands[i].params));
  }
  absl::StatusOr<json> r =
      Call("batch", {{"halt", halt ? 1 : 0}, {"cmd", std::move(cmd)}});
  if (!r.ok()) return r.status();
  // {result: {c0: ...}, result_error: {c1: {error, error_description}}};
  // PHP writes an empty map as [].
  auto member = [&r](const char* name) {
    json m = r->is_object() ? r->value(name, json::object()) : json::object();
    return m.is_object() ? m : json::object();
  };
  const json results = member("result");
  const json errors = member("result_error");
  std::vector<absl::StatusOr<json>> out;
  for (size_t i = 0; i < commands.size(); ++i) {
    const std::string key = absl::StrCat("c", i);
    auto e = errors.find(key);
    if (e != errors.end()) {
      std::string code = "UNKNOWN_ERROR";
      std::string description;
      if (e->is_object()) {
        json error = e->value("error", json());
        if (error.is_string()) code = error.get<std::string>();
        description = e->value("error_description", "");
      }
      out.push_back(Failure(commands[i].method, code, description,
                            RetryableCode(code), options_.initial_backoff));
      continue;
    }
    auto ok = results.find(key);
    if (ok != results.end()) {
      out.push_back(*ok);
      continue;
    }
    out.push_back(absl::AbortedError(
        absl::StrCat("Bitrix24 ", commands[i].method,
                     ": not made (an earlier command of the batch failed)")));
  }
  return out;
}

absl::Status RestClient::Refresh(const std::string& stale) {
  absl::MutexLock refresh_lock(&refresh_mu_);
  std::string refresh;
  {
    absl::MutexLock lock(&mu_);
    if (access_token_ != stale) return absl::OkStatus();  // Done meanwhile.
    refresh = refresh_token_;
  }
  HttpHeaderList fields = {{"grant_type", "refresh_token"},
                           {"client_id", options_.client_id},
                           {"client_secret", options_.client_secret},
                           {"refresh_token", refresh}};
  std::string url =
      absl::StrCat(options_.token_url, "?", HttpClient::FormEncode(fields));
  absl::StatusOr<HttpResponse> r = http_->Get(url);
  std::string reason;
  json j;
  if (!r.ok()) {
    reason = std::string(r.status().message());
  } else {
    j = json::parse(r->body, nullptr, false);
    if (r->status != 200 || !j.is_object() ||
        !j.value("access_token", json()).is_string() ||
        !j.value("refresh_token", json()).is_string()) {
      reason = absl::StrCat("HTTP ", r->status);
      if (j.is_object() && j.value("error", json()).is_string()) {
        absl::StrAppend(&reason, ": ", j["error"].get<std::string>());
      }
    }
  }
  if (!reason.empty()) {
    LogError("Bitrix24 OAuth token refresh failed",
             {{"account", options_.account}, {"reason", reason}});
    absl::Status s = RetryableError(
        absl::StrCat("Bitrix24 OAuth token refresh failed: ", reason),
        absl::Seconds(30));
    absl::MutexLock lock(&mu_);
    health_ = absl::UnavailableError(
        absl::StrCat("OAuth token refresh failed: ", reason));
    return s;
  }
  json saved = {{"access_token", j["access_token"]},
                {"refresh_token", j["refresh_token"]}};
  if (journal_ != nullptr) {
    absl::Status s = journal_->PutState(state_name(), saved.dump());
    if (!s.ok()) {
      LogError("cannot save refreshed OAuth tokens",
               {{"account", options_.account}, {"error", s.ToString()}});
    }
  }
  LogInfo("Bitrix24 OAuth tokens refreshed", {{"account", options_.account}});
  absl::MutexLock lock(&mu_);
  access_token_ = j["access_token"].get<std::string>();
  refresh_token_ = j["refresh_token"].get<std::string>();
  health_ = absl::OkStatus();
  return absl::OkStatus();
}

absl::Status RestClient::Download(
    const std::string& url, uint64_t max_bytes,
    const std::function<absl::Status(absl::string_view)>& write) const {
  HttpClientRequest req;
  req.method = "GET";
  req.url = url;
  req.headers = {{"User-Agent", "imbridge/0.1"},
                 {"Accept", "*/*"},
                 {"Accept-Language", "en"},
                 {"Referer", absl::StrCat(PortalOrigin(), "/")}};
  uint64_t seen = 0;
  bool too_big = false;
  req.sink = [&](absl::string_view chunk) -> absl::Status {
    seen += chunk.size();
    if (seen > max_bytes) {
      too_big = true;
      return absl::OutOfRangeError("file over the limit");
    }
    return write(chunk);
  };
  absl::StatusOr<HttpResponse> r = http_->Send(req);
  if (too_big) return absl::OutOfRangeError("file over the limit");
  if (!r.ok()) {
    if (IsRetryable(r.status())) {
      return RetryableError(
          absl::StrCat("Bitrix24 download failed: ", r.status().message()));
    }
    return r.status();
  }
  if (r->status != 200) {
    if (IsRetryableHttpStatus(r->status)) {
      return RetryableError(
          absl::StrCat("Bitrix24 download: HTTP ", r->status));
    }
    return absl::NotFoundError(absl::StrCat(
        "Bitrix24 did not provide the file (HTTP ", r->status, ")"));
  }
  return absl::OkStatus();
}

std::vector<std::vector<RestClient::Command>> InBatches(
    const std::vector<RestClient::Command>& commands) {
  std::vector<std::vector<RestClient::Command>> out;
  for (size_t at = 0; at < commands.size();
       at += RestClient::kMaxBatchCommands) {
    size_t end = std::min(commands.size(), at + RestClient::kMaxBatchCommands);
    out.emplace_back(commands.begin() + at, commands.begin() + end);
  }
  return out;
}

std::string ErrorCode(const absl::Status& status) {
  auto code = status.GetPayload(kPayloadUrl);
  return code.has_value() ? std::string(*code) : "";
}

}  // namespace imbridge::adapters::bitrix24
