#ifndef IMBRIDGE_ADAPTERS_BOTSPLASH_BOTSPLASH_API_H_
#define IMBRIDGE_ADAPTERS_BOTSPLASH_BOTSPLASH_API_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/common/stop_signal.h"
#include "adapters/common/token_bucket.h"
#include "common/http/http_client.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::botsplash {

// A client of one Botsplash app's Open API (../shared/platforms.md §4):
// calls go to <base_url><path> (base_url is ".../open/v1/<appId>"), with the
// API key as the query parameter `api_key` or with HTTP Basic credentials.
//
// Limits and errors: calls are paced by a token bucket of
// `requests_per_second` for the app. 429 (honouring Retry-After, which
// also pauses the bucket), 5xx and transport failures are retried with
// exponential backoff up to `max_attempts`, then returned as RetryableError.
// Any other answer that is not 2xx is permanent (kFailedPrecondition) with
// Botsplash's own message ("HTTP 400: Botsplash /x: visitor not found").
// Secrets (the key, the password) never appear in a message or a log.
//
// Thread-safe; calls block (pacing, backoff, HTTP) until Stop().
class OpenApiClient {
 public:
  struct Options {
    std::string account;
    // ".../open/v1/<appId>", without a trailing slash.
    std::string base_url;
    // Exactly one of the API key and the Basic credentials.
    std::string api_key;
    std::string username;
    std::string password;
    double requests_per_second = 5;
    int max_attempts = 4;
    absl::Duration initial_backoff = absl::Milliseconds(500);
    absl::Duration max_backoff = absl::Seconds(8);
  };

  // `http` must outlive the client.
  OpenApiClient(Options options, const HttpClient* http);

  // POSTs `body` as JSON to `path`; returns the answer's JSON (null for an
  // empty body).
  absl::StatusOr<nlohmann::json> PostJson(absl::string_view path,
                                          const nlohmann::json& body);

  // Uploads a file as the multipart field "file" to `path`; returns the
  // answer's JSON.
  absl::StatusOr<nlohmann::json> Upload(absl::string_view path,
                                        const std::string& name,
                                        const std::string& mime_type,
                                        std::string bytes);

  // Ends the pacing and backoff waits of calls in progress and of every
  // later call: they return RetryableError ("the adapter is stopping")
  // instead of waiting, so that a stop waits at most for the HTTP requests
  // in flight.
  void Stop();

  const Options& options() const { return options_; }

 private:
  absl::StatusOr<nlohmann::json> Call(absl::string_view path,
                                      HttpClientRequest request);

  const Options options_;
  const HttpClient* const http_;
  TokenBucket bucket_;
  StopSignal stopped_;
};

}  // namespace imbridge::adapters::botsplash

#endif  // IMBRIDGE_ADAPTERS_BOTSPLASH_BOTSPLASH_API_H_
