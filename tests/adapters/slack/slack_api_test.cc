// Error classification, pacing and file-host trust of the Slack adapter.

#include "adapters/slack/slack_api.h"

#include "absl/strings/str_cat.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/common/http_client.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::slack {
namespace {

TEST(SlackError, RateLimitIsRetryableWithRetryAfter) {
  absl::Status s =
      SlackError("chat.postMessage", 429, "ratelimited", absl::Seconds(7));
  EXPECT_TRUE(IsRetryable(s));
  EXPECT_EQ(RetryAfter(s), absl::Seconds(7));
  // Without a Retry-After header Slack is still given a second.
  EXPECT_EQ(RetryAfter(SlackError("chat.update", 200, "ratelimited",
                                  absl::ZeroDuration())),
            absl::Seconds(1));
}

TEST(SlackError, ServerSideErrorsAreRetryable) {
  for (const char* e : {"internal_error", "fatal_error", "service_unavailable",
                        "request_timeout"}) {
    EXPECT_TRUE(IsRetryable(
        SlackError("chat.postMessage", 200, e, absl::ZeroDuration())))
        << e;
  }
  EXPECT_TRUE(IsRetryable(
      SlackError("chat.postMessage", 503, "", absl::ZeroDuration())));
}

TEST(SlackError, OtherErrorsArePermanentAndNamed) {
  for (const char* e : {"channel_not_found", "not_in_channel", "is_archived",
                        "msg_too_long", "invalid_auth", "message_not_found",
                        "cant_update_message", "cant_delete_message"}) {
    absl::Status s =
        SlackError("chat.postMessage", 200, e, absl::ZeroDuration());
    EXPECT_FALSE(IsRetryable(s)) << e;
    EXPECT_EQ(s.message(), absl::StrCat("slack chat.postMessage: ", e));
  }
  EXPECT_FALSE(IsRetryable(
      SlackError("chat.postMessage", 404, "", absl::ZeroDuration())));
}

TEST(FileHosts, TokenGoesOnlyToSlackFileHostsAndTheApiHost) {
  HttpClient http;
  SlackApi::Options o;
  o.base_url = "http://127.0.0.1:8080/api";
  o.bot_token = "xoxb-test";
  SlackApi api(o, &http);
  EXPECT_TRUE(api.IsTrustedFileUrl(
      "https://files.slack.com/files-pri/T1-F1/download/a.png"));
  EXPECT_TRUE(api.IsTrustedFileUrl("http://127.0.0.1:8080/files-pri/T1-F1/a"));
  EXPECT_FALSE(api.IsTrustedFileUrl("http://127.0.0.1:8081/files-pri/T1-F1/a"));
  EXPECT_FALSE(api.IsTrustedFileUrl("http://files.slack.com/files-pri/x"));
  EXPECT_FALSE(api.IsTrustedFileUrl("https://files.slack.com.evil.org/x"));
  EXPECT_FALSE(api.IsTrustedFileUrl("https://user@files.slack.com/x"));
  EXPECT_FALSE(api.IsTrustedFileUrl("not a url"));
  auto denied =
      api.DownloadFile("https://evil.example/x", 100, absl::Seconds(1));
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace imbridge::adapters::slack
