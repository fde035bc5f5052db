#ifndef IMBRIDGE_ADAPTERS_BITRIX24_BITRIX24_API_H_
#define IMBRIDGE_ADAPTERS_BITRIX24_BITRIX24_API_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/common/delivery_journal.h"
#include "adapters/common/stop_signal.h"
#include "adapters/common/token_bucket.h"
#include "common/http/http_client.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::bitrix24 {

// A REST client for one Bitrix24 portal (platforms.md 3.1-3.2).
//
// Authentication: an inbound webhook (calls go to <webhook_url><method>) or
// an OAuth application (calls go to <rest_url><method> with `auth` in the
// JSON body). OAuth tokens live in the adapter's state
// ("bitrix24/oauth/<account>" in the delivery journal) once refreshed, and
// take precedence over the configured ones; an `expired_token` answer
// refreshes the pair at the token endpoint (one refresh at a time), stores
// it and repeats the call. A refresh that fails makes health() an error
// naming Bitrix24's reason (never a token) until a later refresh works.
//
// Limits and errors: calls are paced by a leaky bucket of
// `requests_per_second` (Bitrix24 counts per portal). 503 (QUERY_LIMIT_
// EXCEEDED, OVERLOAD_LIMIT), 429 (OPERATION_TIME_LIMIT), other 5xx and
// transport failures are retried with exponential backoff up to
// `max_attempts`, then returned as RetryableError. Any other error answer
// is permanent (kFailedPrecondition) with Bitrix24's code first in the
// message ("BOT_NOT_FOUND: Bot not found"); ErrorCode() extracts it.
//
// Thread-safe; Call() blocks (pacing, backoff, HTTP) until Stop().
class RestClient {
 public:
  struct Options {
    std::string account;
    // Inbound webhook, ending in "/" (or empty for OAuth).
    std::string webhook_url;
    // OAuth.
    std::string rest_url;
    std::string token_url = "https://oauth.bitrix.info/oauth/token/";
    std::string client_id;
    std::string client_secret;
    std::string access_token;
    std::string refresh_token;
    double requests_per_second = 2;
    int max_attempts = 6;
    absl::Duration initial_backoff = absl::Milliseconds(500);
    absl::Duration max_backoff = absl::Seconds(8);
  };

  // `http` must outlive the client; `journal` (may be null: tokens then
  // only in memory) too.
  RestClient(Options options, const HttpClient* http, DeliveryJournal* journal);

  // Loads tokens saved by an earlier run.
  absl::Status Init();

  // Calls `method` with `params` (a JSON object) and returns `result`.
  absl::StatusOr<nlohmann::json> Call(absl::string_view method,
                                      nlohmann::json params);

  // One call of a batch.
  struct Command {
    std::string method;
    nlohmann::json params;
  };
  // Bitrix24's batch method takes at most this many commands.
  static constexpr size_t kMaxBatchCommands = 50;

  // Makes `commands` (1 to kMaxBatchCommands) with Bitrix24's `batch`
  // method: one request, so one unit of the leaky bucket, for all of them
  // (each command's parameters go as a PHP-style query string). The request
  // itself is paced, retried and refreshed like Call(), and its failure is
  // returned as Call() returns one. Otherwise each command's own answer, in
  // order: its result, or its error as Call() would return it (permanent
  // with Bitrix24's code, or retryable for the limit codes); with `halt`
  // Bitrix24 stops at the first failing command, and the commands after it
  // are kAborted (not made).
  absl::StatusOr<std::vector<absl::StatusOr<nlohmann::json>>> CallBatch(
      const std::vector<Command>& commands, bool halt);

  // Downloads a file link (File.download's downloadUrl) with the headers
  // Bitrix24 requires (User-Agent, Accept, Accept-Language, Referer: the
  // portal), streaming to `write`; kOutOfRange over `max_bytes`.
  absl::Status Download(
      const std::string& url, uint64_t max_bytes,
      const std::function<absl::Status(absl::string_view)>& write) const;

  // Ends the pacing and backoff waits of calls in progress and of every
  // later call: they return RetryableError ("the adapter is stopping")
  // instead of waiting, so that a stop waits at most for the HTTP requests
  // in flight (with the portal unreachable, a call's backoff alone took
  // 15 s).
  void Stop();

  // OK unless the last token refresh failed.
  absl::Status health() const;

  // "https://portal.example": the origin of the REST base.
  std::string PortalOrigin() const;

 private:
  struct Answer {
    int status = 0;  // 0: transport failure
    nlohmann::json body;
    std::string error;  // Bitrix24's code, or a transport reason
    std::string description;
  };
  Answer Post(absl::string_view method, const nlohmann::json& params,
              const std::string& token) const;
  // Refreshes the tokens unless they changed since `stale` was used.
  absl::Status Refresh(const std::string& stale);
  std::string state_name() const;

  const Options options_;
  const HttpClient* const http_;
  DeliveryJournal* const journal_;
  TokenBucket bucket_;

  mutable absl::Mutex mu_;
  std::string access_token_ ABSL_GUARDED_BY(mu_);
  std::string refresh_token_ ABSL_GUARDED_BY(mu_);
  absl::Status health_ ABSL_GUARDED_BY(mu_);
  absl::Mutex refresh_mu_;  // One refresh at a time.
  StopSignal stopped_;
};

// `commands` cut into batches of at most RestClient::kMaxBatchCommands, in
// order.
std::vector<std::vector<RestClient::Command>> InBatches(
    const std::vector<RestClient::Command>& commands);

// Bitrix24's error code of a permanent failure from RestClient::Call
// ("" for other statuses).
std::string ErrorCode(const absl::Status& status);

}  // namespace imbridge::adapters::bitrix24

#endif  // IMBRIDGE_ADAPTERS_BITRIX24_BITRIX24_API_H_
