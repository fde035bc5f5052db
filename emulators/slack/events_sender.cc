#include "emulators/slack/events_sender.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/http/hmac.h"
#include "nlohmann/json.hpp"

namespace imbridge::fakes {

SlackEventsSender::SlackEventsSender(std::string url,
                                     std::string signing_secret)
    : url_(std::move(url)), secret_(std::move(signing_secret)) {}

std::string SlackEventsSender::Sign(absl::string_view secret, int64_t timestamp,
                                    absl::string_view body) {
  return absl::StrCat(
      "v0=", HmacSha256Hex(secret, absl::StrCat("v0:", timestamp, ":", body)));
}

absl::StatusOr<HttpResponse> SlackEventsSender::Send(
    const std::string& body, const Options& options) const {
  int64_t ts = options.timestamp.value_or(absl::ToUnixSeconds(absl::Now()));
  HttpClientRequest request;
  request.method = "POST";
  request.url = url_;
  request.body = body;
  request.headers = {
      {"Content-Type", "application/json"},
      {"User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)"}};
  if (!options.omit_timestamp) {
    request.headers.emplace_back("X-Slack-Request-Timestamp",
                                 std::to_string(ts));
  }
  if (!options.omit_signature) {
    request.headers.emplace_back(
        "X-Slack-Signature", Sign(options.secret.value_or(secret_), ts, body));
  }
  if (options.retry_num > 0) {
    request.headers.emplace_back("X-Slack-Retry-Num",
                                 std::to_string(options.retry_num));
    request.headers.emplace_back("X-Slack-Retry-Reason", options.retry_reason);
  }
  request.timeout = absl::Seconds(30);
  return http_.Send(request);
}

absl::StatusOr<HttpResponse> SlackEventsSender::SendUrlVerification(
    const std::string& challenge) const {
  nlohmann::json body = {{"token", "Jhj5dZrVaK7ZwHHjRyZWjbDl"},
                         {"challenge", challenge},
                         {"type", "url_verification"}};
  return Send(body.dump());
}

}  // namespace imbridge::fakes
