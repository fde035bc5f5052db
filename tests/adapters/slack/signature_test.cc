// Slack request signing (platforms.md 1.5) as the Slack adapter uses it:
// the official test vector from Slack's docs and python-slack-sdk, plus the
// ways a request must fail.

#include "adapters/common/signature.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/http/hmac.h"
#include "gtest/gtest.h"

namespace imbridge::adapters {
namespace {

constexpr char kSecret[] = "8f742231b10e8888abcd99yyyzzz85a5";
constexpr char kTimestamp[] = "1531420618";
constexpr char kBody[] =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
    "channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name="
    "roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2F"
    "hooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRs"
    "kXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b670"
    "3c";
constexpr char kSignature[] =
    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

absl::Time SigningTime() { return absl::FromUnixSeconds(1531420618); }

TEST(SlackSignature, OfficialVectorVerifies) {
  EXPECT_EQ(
      absl::StrCat("v0=", HmacSha256Hex(kSecret, absl::StrCat("v0:", kTimestamp,
                                                              ":", kBody))),
      kSignature);
  EXPECT_TRUE(VerifySlackSignature(kSecret, kTimestamp, kSignature, kBody,
                                   SigningTime())
                  .ok());
}

TEST(SlackSignature, EventCallbackVector) {
  // Computed with the same secret and timestamp (platforms.md 1.5).
  const std::string body =
      R"({"token":"XXYYZZ","team_id":"T123ABC456","api_app_id":"A123ABC456","event":{"type":"message","channel":"C123ABC456","user":"U123ABC456","text":"Hello world","ts":"1355517523.000005"},"type":"event_callback","event_id":"Ev123ABC456","event_time":1355517523})";
  ASSERT_EQ(body.size(), 256u);
  EXPECT_TRUE(
      VerifySlackSignature(
          kSecret, kTimestamp,
          "v0=fc1001735b361c8cac9dbef6cbd6735c47cb60b8bdc19a600afe19b84c"
          "41c426",
          body, SigningTime())
          .ok());
}

TEST(SlackSignature, TamperedBodyFails) {
  absl::Status s =
      VerifySlackSignature(kSecret, kTimestamp, kSignature,
                           absl::StrCat(kBody, "------"), SigningTime());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
}

TEST(SlackSignature, OtherSecretFails) {
  absl::Status s = VerifySlackSignature("another-secret-0123456789", kTimestamp,
                                        kSignature, kBody, SigningTime());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
}

TEST(SlackSignature, ExpiredTimestampFails) {
  // The real clock is years after the vector was signed.
  absl::Status s =
      VerifySlackSignature(kSecret, kTimestamp, kSignature, kBody, absl::Now());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  // Just outside the five-minute window, either way.
  EXPECT_FALSE(VerifySlackSignature(kSecret, kTimestamp, kSignature, kBody,
                                    SigningTime() + absl::Seconds(301))
                   .ok());
  EXPECT_FALSE(VerifySlackSignature(kSecret, kTimestamp, kSignature, kBody,
                                    SigningTime() - absl::Seconds(301))
                   .ok());
  EXPECT_TRUE(VerifySlackSignature(kSecret, kTimestamp, kSignature, kBody,
                                   SigningTime() + absl::Seconds(299))
                  .ok());
}

TEST(SlackSignature, MissingHeadersFail) {
  EXPECT_EQ(VerifySlackSignature(kSecret, "", kSignature, kBody, SigningTime())
                .code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifySlackSignature(kSecret, kTimestamp, "", kBody, SigningTime())
                .code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifySlackSignature(kSecret, "not-a-number", kSignature, kBody,
                                 SigningTime())
                .code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(SlackSignature, BlankSecretIsAConfigurationError) {
  EXPECT_EQ(
      VerifySlackSignature("  ", kTimestamp, kSignature, kBody, SigningTime())
          .code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace imbridge::adapters
