// Error classification, pacing and file-host trust of the Slack adapter.

#include "adapters/slack/slack_api.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/common/delivery_handler.h"
#include "common/http/http_client.h"
#include "emulators/slack/fake_slack.h"
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

// The bridge's posts carry their delivery key as message metadata, and
// FindDelivery finds them by it in the channel or in a thread.
TEST(FindDelivery, FindsAPostByItsDeliveryKey) {
  fakes::FakeSlack slack{fakes::FakeSlack::Options()};
  ASSERT_TRUE(slack.Start().ok());
  slack.AddChannel("C1", "general");
  slack.AddUser("U1", "Ann");
  HttpClient http;
  SlackApi::Options o;
  o.base_url = slack.api_base_url();
  o.bot_token = slack.options().bot_token;
  SlackApi api(o, &http);
  absl::Time start = absl::Now() - absl::Seconds(1);

  auto root = api.PostMessage("C1", "root", "Boris", "", "", "key-root");
  ASSERT_TRUE(root.ok()) << root.status();
  slack.PostMessage("C1", "U1", "a person's message");
  auto reply = api.PostMessage("C1", "reply", "Boris", "", *root, "key-reply");
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(slack.Messages("C1")[0].metadata["event_payload"]["key"],
            "key-root");

  auto found = api.FindDelivery("C1", "", "key-root", start);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->value_or(""), *root);
  auto in_thread = api.FindDelivery("C1", *root, "key-reply", start);
  ASSERT_TRUE(in_thread.ok());
  EXPECT_EQ(in_thread->value_or(""), *reply);
  // Not posted, or posted before `oldest`: not found.
  auto missing = api.FindDelivery("C1", "", "key-other", start);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  auto too_old =
      api.FindDelivery("C1", "", "key-root", absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(too_old.ok());
  EXPECT_FALSE(too_old->has_value());
  // Errors of the look-up are Slack's errors.
  auto no_channel = api.FindDelivery("C9", "", "key-root", start);
  EXPECT_EQ(no_channel.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace imbridge::adapters::slack
