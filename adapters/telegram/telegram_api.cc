#include "adapters/telegram/telegram_api.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "adapters/common/delivery_handler.h"

namespace imbridge::adapters::telegram {

BotApi::BotApi(Options options, std::shared_ptr<const HttpClient> http)
    : options_(std::move(options)), http_(std::move(http)) {
  std::pair<std::string, std::string> parts =
      absl::StrSplit(options_.token, absl::MaxSplits(':', 1));
  if (!absl::SimpleAtoi(parts.first, &bot_id_)) bot_id_ = 0;
}

std::string BotApi::MethodUrl(absl::string_view method) const {
  return absl::StrCat(options_.base_url, "/bot", options_.token, "/", method);
}

std::string BotApi::Scrub(absl::string_view message) const {
  if (options_.token.empty()) return std::string(message);
  return absl::StrReplaceAll(message, {{options_.token, "<token>"}});
}

absl::StatusOr<nlohmann::json> BotApi::ParseAnswer(int http_status,
                                                   absl::string_view body,
                                                   BotApiError* error) {
  BotApiError local;
  BotApiError& e = error != nullptr ? *error : local;
  e = BotApiError();
  e.http_status = http_status;
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object()) {
    auto ok = j.find("ok");
    if (ok != j.end() && ok->is_boolean() && ok->get<bool>() &&
        http_status >= 200 && http_status < 300) {
      auto result = j.find("result");
      return result == j.end() ? nlohmann::json(true) : *result;
    }
    if (auto c = j.find("error_code"); c != j.end() && c->is_number_integer()) {
      e.error_code = c->get<int>();
    }
    if (auto d = j.find("description"); d != j.end() && d->is_string()) {
      e.description = d->get<std::string>();
    }
    if (auto p = j.find("parameters"); p != j.end() && p->is_object()) {
      if (auto r = p->find("retry_after");
          r != p->end() && r->is_number_integer()) {
        e.retry_after = absl::Seconds(r->get<int64_t>());
      }
      if (auto m = p->find("migrate_to_chat_id");
          m != p->end() && m->is_number_integer()) {
        e.migrate_to_chat_id = m->get<int64_t>();
      }
    }
  } else {
    e.description = absl::StrCat("unexpected answer (HTTP ", http_status, ")");
  }
  if (e.error_code == 0) e.error_code = http_status;
  if (e.http_status >= 200 && e.http_status < 300) {
    // ok:false with a 2xx status: trust the envelope's code.
    e.http_status = e.error_code;
  }
  if (e.description.empty()) {
    e.description = absl::StrCat("HTTP ", http_status);
  }
  return BotApiFailure("call", e);
}

absl::StatusOr<nlohmann::json> BotApi::Finish(
    absl::StatusOr<HttpResponse> response, absl::string_view method,
    BotApiError* error) const {
  BotApiError local;
  BotApiError& e = error != nullptr ? *error : local;
  if (!response.ok()) {
    e = BotApiError();
    e.description = Scrub(response.status().message());
    return BotApiFailure(method, e);
  }
  absl::StatusOr<nlohmann::json> result =
      ParseAnswer(response->status, response->body, &e);
  if (result.ok()) return result;
  e.description = Scrub(e.description);
  return BotApiFailure(method, e);
}

absl::StatusOr<nlohmann::json> BotApi::Call(absl::string_view method,
                                            const nlohmann::json& params,
                                            BotApiError* error,
                                            absl::Duration timeout) const {
  HttpClientRequest request;
  request.method = "POST";
  request.url = MethodUrl(method);
  request.headers = {{"Content-Type", "application/json"}};
  request.body = params.dump();
  request.timeout =
      timeout == absl::ZeroDuration() ? options_.timeout : timeout;
  return Finish(http_->Send(request), method, error);
}

absl::StatusOr<nlohmann::json> BotApi::CallMultipart(
    absl::string_view method, std::vector<MultipartPart> parts,
    BotApiError* error) const {
  HttpClientRequest request;
  request.method = "POST";
  request.url = MethodUrl(method);
  request.multipart = std::move(parts);
  request.timeout = options_.timeout;
  return Finish(http_->Send(request), method, error);
}

absl::StatusOr<std::string> BotApi::DownloadFile(absl::string_view file_path,
                                                 uint64_t max_bytes) const {
  HttpClientRequest request;
  request.url =
      absl::StrCat(options_.base_url, "/file/bot", options_.token,
                   absl::StartsWith(file_path, "/") ? "" : "/", file_path);
  request.timeout = options_.timeout;
  request.max_response_bytes = static_cast<size_t>(max_bytes);
  absl::StatusOr<HttpResponse> response = http_->Send(request);
  if (!response.ok()) {
    if (absl::IsOutOfRange(response.status())) {
      return absl::OutOfRangeError(
          absl::StrCat("file is larger than ", max_bytes, " bytes"));
    }
    return RetryableError(absl::StrCat("telegram file download: ",
                                       Scrub(response.status().message())));
  }
  if (response->status != 200) {
    BotApiError e;
    (void)ParseAnswer(response->status, response->body, &e);
    e.description = Scrub(e.description);
    return BotApiFailure("file download", e);
  }
  return std::move(response->body);
}

absl::Status BotApiFailure(absl::string_view method, const BotApiError& error) {
  int code = error.http_status;
  std::string what =
      code == 0 ? absl::StrCat("telegram ", method, ": ", error.description)
                : absl::StrCat("telegram ", method, ": ", error.error_code, " ",
                               error.description);
  if (IsRetryableHttpStatus(code)) {
    return RetryableError(what, error.retry_after);
  }
  return absl::FailedPreconditionError(what);
}

}  // namespace imbridge::adapters::telegram
