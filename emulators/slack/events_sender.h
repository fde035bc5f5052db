#ifndef IMBRIDGE_EMULATORS_SLACK_EVENTS_SENDER_H_
#define IMBRIDGE_EMULATORS_SLACK_EVENTS_SENDER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/http/http_client.h"

namespace imbridge::fakes {

// Sends Events API requests as Slack does (platforms.md 1.1, 1.5, 1.6): a
// JSON POST signed with X-Slack-Signature = "v0=" + HMAC-SHA256(signing
// secret, "v0:{timestamp}:{body}") and X-Slack-Request-Timestamp, and on
// retries X-Slack-Retry-Num / X-Slack-Retry-Reason.
//
// Thread-safe (immutable after construction). Every call blocks for one
// HTTP request.
class SlackEventsSender {
 public:
  SlackEventsSender(std::string url, std::string signing_secret);

  struct Options {
    // 0 for the first attempt; 1..3 for Slack's retries.
    int retry_num = 0;
    std::string retry_reason = "http_timeout";
    // Signing time; now when unset (tests pass a stale one).
    std::optional<int64_t> timestamp;
    // Sign with this secret instead (a forged request).
    std::optional<std::string> secret;
    // Leave out the signature / timestamp headers.
    bool omit_signature = false;
    bool omit_timestamp = false;
  };

  // POSTs `body` exactly as given.
  absl::StatusOr<HttpResponse> Send(const std::string& body,
                                    const Options& options) const;
  absl::StatusOr<HttpResponse> Send(const std::string& body) const {
    return Send(body, Options());
  }

  // Sends the url_verification challenge Slack sends when the request URL
  // is configured.
  absl::StatusOr<HttpResponse> SendUrlVerification(
      const std::string& challenge) const;

  // The signature header value for `body` at `timestamp`.
  static std::string Sign(absl::string_view secret, int64_t timestamp,
                          absl::string_view body);

  const std::string& url() const { return url_; }

 private:
  std::string url_;
  std::string secret_;
  HttpClient http_;
};

}  // namespace imbridge::fakes

#endif  // IMBRIDGE_EMULATORS_SLACK_EVENTS_SENDER_H_
