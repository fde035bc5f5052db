#include "adapters/botsplash/botsplash_api.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/botsplash/mapping.h"
#include "adapters/common/adapter_runtime.h"
#include "adapters/common/delivery_handler.h"
#include "common/logging.h"

namespace imbridge::adapters::botsplash {
namespace {

using json = nlohmann::json;

}  // namespace

OpenApiClient::OpenApiClient(Options options, const HttpClient* http)
    : options_(std::move(options)),
      http_(http),
      bucket_(options_.requests_per_second, 1) {}

void OpenApiClient::Stop() { stopped_.Stop(); }

absl::StatusOr<json> OpenApiClient::PostJson(absl::string_view path,
                                             const json& body) {
  HttpClientRequest request;
  request.method = "POST";
  request.body = body.dump();
  request.headers = {{"Content-Type", "application/json"}};
  return Call(path, std::move(request));
}

absl::StatusOr<json> OpenApiClient::Upload(absl::string_view path,
                                           const std::string& name,
                                           const std::string& mime_type,
                                           std::string bytes) {
  HttpClientRequest request;
  request.method = "POST";
  MultipartPart part;
  part.name = "file";
  part.filename = name;
  part.content_type = mime_type;
  part.data = std::move(bytes);
  request.multipart.push_back(std::move(part));
  return Call(path, std::move(request));
}

absl::StatusOr<json> OpenApiClient::Call(absl::string_view path,
                                         HttpClientRequest request) {
  request.url = absl::StrCat(options_.base_url, path);
  if (!options_.api_key.empty()) {
    absl::StrAppend(&request.url, "?",
                    HttpClient::FormEncode({{"api_key", options_.api_key}}));
  } else {
    request.headers.emplace_back(
        "Authorization", absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(
                                                    options_.username, ":",
                                                    options_.password))));
  }
  request.headers.emplace_back("Accept", "application/json");
  absl::Duration backoff = options_.initial_backoff;
  int status = 0;
  std::string reason;
  const auto stopping = [&] {
    return RetryableError(
        absl::StrCat("Botsplash ", path, ": the adapter is stopping"),
        absl::ZeroDuration());
  };
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    absl::Duration wait = bucket_.Reserve(options_.account, absl::Now());
    if (stopped_.WaitFor(wait)) return stopping();
    absl::StatusOr<HttpResponse> r = http_->Send(request);
    std::optional<absl::Duration> retry_after;
    if (!r.ok()) {
      status = 0;
      reason = std::string(r.status().message());
    } else {
      status = r->status;
      if (status >= 200 && status < 300) {
        if (r->body.empty()) return json();
        json j = json::parse(r->body, nullptr, false);
        if (j.is_discarded()) {
          return absl::FailedPreconditionError(
              absl::StrCat("Botsplash ", path, ": the answer is not JSON"));
        }
        return j;
      }
      reason = ErrorMessageOf(r->body);
      retry_after = r->RetryAfter(absl::Now());
    }
    if (!IsRetryableHttpStatus(status)) break;
    LogDebug("Botsplash call will be retried",
             {{"account", options_.account},
              {"path", std::string(path)},
              {"status", absl::StrCat(status)},
              {"error", reason}});
    absl::Duration pause = backoff;
    if (retry_after.has_value()) {
      pause = std::min(std::max(*retry_after, backoff), options_.max_backoff);
      bucket_.PauseUntil(options_.account, absl::Now() + pause);
    }
    if (attempt < options_.max_attempts) {
      if (stopped_.WaitFor(pause)) return stopping();
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
  // "HTTP 400: Botsplash /message: visitor not found".
  return HttpFailure(status, absl::StrCat("Botsplash ", path, ": ", reason),
                     backoff);
}

}  // namespace imbridge::adapters::botsplash
