#ifndef IMBRIDGE_ADAPTERS_TELEGRAM_TELEGRAM_API_H_
#define IMBRIDGE_ADAPTERS_TELEGRAM_TELEGRAM_API_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/http/http_client.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::telegram {

// What the Bot API said when a call failed (its `{ok:false, error_code,
// description, parameters}` envelope, or the transport failure).
struct BotApiError {
  // HTTP status of the answer; 0 for a transport failure or timeout.
  int http_status = 0;
  // `error_code` of the envelope (usually equal to http_status).
  int error_code = 0;
  // `description`, or the transport error.
  std::string description;
  // `parameters.retry_after`.
  absl::Duration retry_after = absl::ZeroDuration();
  // `parameters.migrate_to_chat_id` (0 when absent).
  int64_t migrate_to_chat_id = 0;
};

// A client of one bot's Bot API (`<base_url>/bot<token>/<method>`).
//
// Every call blocks the calling thread until Telegram answered or the
// timeout passed. On success it returns the envelope's `result`. On failure
// it returns a delivery-ready Status: 429 (with `retry_after`), 5xx,
// timeouts and transport errors are retryable (RetryableError); any other
// error is permanent (kFailedPrecondition) and carries Telegram's
// description. The token is never part of a Status message or a log line.
//
// Thread-safe (the HttpClient is shared and thread-safe).
class BotApi {
 public:
  struct Options {
    // "https://api.telegram.org" or a local Bot API server; no trailing '/'.
    std::string base_url = "https://api.telegram.org";
    // "<bot id>:<secret>".
    std::string token;
    // Time for one method call (getUpdates adds its own long-poll timeout).
    absl::Duration timeout = absl::Seconds(60);
  };

  // Holds `http` as long as the BotApi lives: a Poller's thread left to
  // finish a getUpdates after Stop() keeps both (poller.h).
  BotApi(Options options, std::shared_ptr<const HttpClient> http);

  // The bot's own user id: the digits of the token before ':' (0 if the
  // token does not look like a bot token).
  int64_t bot_id() const { return bot_id_; }

  // Calls `method` with `params` as a JSON body. `error`, when given, gets
  // the details of a failure. `timeout` overrides Options::timeout when not
  // zero.
  absl::StatusOr<nlohmann::json> Call(
      absl::string_view method, const nlohmann::json& params,
      BotApiError* error = nullptr,
      absl::Duration timeout = absl::ZeroDuration()) const;

  // Calls `method` with a multipart/form-data body (file uploads).
  absl::StatusOr<nlohmann::json> CallMultipart(
      absl::string_view method, std::vector<MultipartPart> parts,
      BotApiError* error = nullptr) const;

  // Downloads `<base_url>/file/bot<token>/<file_path>`, refusing more than
  // `max_bytes` (kOutOfRange). A local Bot API server in --local mode gives
  // absolute paths; they are fetched the same way.
  absl::StatusOr<std::string> DownloadFile(absl::string_view file_path,
                                           uint64_t max_bytes) const;

  // Parses a Bot API answer (status + body) into the result or the error;
  // exposed for tests.
  static absl::StatusOr<nlohmann::json> ParseAnswer(int http_status,
                                                    absl::string_view body,
                                                    BotApiError* error);

 private:
  absl::StatusOr<nlohmann::json> Finish(absl::StatusOr<HttpResponse> response,
                                        absl::string_view method,
                                        BotApiError* error) const;
  std::string MethodUrl(absl::string_view method) const;
  // `message` with every occurrence of the token replaced.
  std::string Scrub(absl::string_view message) const;

  const Options options_;
  const std::shared_ptr<const HttpClient> http_;
  int64_t bot_id_ = 0;
};

// The delivery Status for a failed Bot API call: retryable for 429 (with
// retry_after), 5xx and transport errors (status 0), else permanent
// (kFailedPrecondition) with "telegram <method>: <code> <description>".
absl::Status BotApiFailure(absl::string_view method, const BotApiError& error);

}  // namespace imbridge::adapters::telegram

#endif  // IMBRIDGE_ADAPTERS_TELEGRAM_TELEGRAM_API_H_
