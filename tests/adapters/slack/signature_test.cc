// Slack request signing (platforms.md 1.5) as the Slack adapter uses it:
// the official test vector from Slack's docs and python-slack-sdk, plus the
// ways a request must fail.

#include "adapters/slack/signature.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/http/hmac.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::slack {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

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
  EXPECT_TRUE(VerifyTimestampedSignature(kSlackSignature, kSecret, kTimestamp,
                                         kSignature, kBody, SigningTime())
                  .ok());
}

TEST(SlackSignature, EventCallbackVector) {
  // Computed with the same secret and timestamp (platforms.md 1.5).
  const std::string body =
      R"({"token":"XXYYZZ","team_id":"T123ABC456","api_app_id":"A123ABC456","event":{"type":"message","channel":"C123ABC456","user":"U123ABC456","text":"Hello world","ts":"1355517523.000005"},"type":"event_callback","event_id":"Ev123ABC456","event_time":1355517523})";
  ASSERT_EQ(body.size(), 256u);
  EXPECT_TRUE(
      VerifyTimestampedSignature(
          kSlackSignature, kSecret, kTimestamp,
          "v0=fc1001735b361c8cac9dbef6cbd6735c47cb60b8bdc19a600afe19b84c"
          "41c426",
          body, SigningTime())
          .ok());
}

TEST(SlackSignature, OtherSecretFails) {
  absl::Status s =
      VerifyTimestampedSignature(kSlackSignature, "another-secret-0123456789",
                                 kTimestamp, kSignature, kBody, SigningTime());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
}

TEST(SlackSignature, AppendedBodyFails) {
  absl::Status s = VerifyTimestampedSignature(
      kSlackSignature, kSecret, kTimestamp, kSignature,
      std::string(kBody) + "------", SigningTime());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(s.message(), HasSubstr("does not match"));
}

TEST(SlackSignature, RealClockFailsAsExpired) {
  absl::Status s = VerifyTimestampedSignature(
      kSlackSignature, kSecret, kTimestamp, kSignature, kBody, absl::Now());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(s.message(), HasSubstr("outside the allowed window"));
}

TEST(SlackSignature, WindowEdges) {
  EXPECT_TRUE(VerifyTimestampedSignature(kSlackSignature, kSecret, kTimestamp,
                                         kSignature, kBody,
                                         SigningTime() + absl::Seconds(300))
                  .ok());
  EXPECT_TRUE(VerifyTimestampedSignature(kSlackSignature, kSecret, kTimestamp,
                                         kSignature, kBody,
                                         SigningTime() - absl::Seconds(300))
                  .ok());
  EXPECT_FALSE(VerifyTimestampedSignature(kSlackSignature, kSecret, kTimestamp,
                                          kSignature, kBody,
                                          SigningTime() + absl::Seconds(301))
                   .ok());
  EXPECT_FALSE(VerifyTimestampedSignature(kSlackSignature, kSecret, kTimestamp,
                                          kSignature, kBody,
                                          SigningTime() - absl::Seconds(301))
                   .ok());
  EXPECT_FALSE(VerifyTimestampedSignature(
                   kSlackSignature, kSecret, kTimestamp, kSignature, kBody,
                   SigningTime() + absl::Seconds(11), absl::Seconds(10))
                   .ok());
}

TEST(SlackSignature, MissingHeadersFail) {
  absl::Status no_ts = VerifyTimestampedSignature(
      kSlackSignature, kSecret, "", kSignature, kBody, SigningTime());
  EXPECT_EQ(no_ts.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(no_ts.message(), HasSubstr("missing X-Slack-Request-Timestamp"));

  absl::Status no_sig = VerifyTimestampedSignature(
      kSlackSignature, kSecret, kTimestamp, "", kBody, SigningTime());
  EXPECT_EQ(no_sig.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(no_sig.message(), HasSubstr("missing X-Slack-Signature"));
}

TEST(SlackSignature, MalformedTimestampFails) {
  for (const char* ts : {"abc", "-1531420618", " 1531420618", "1531420618 ",
                         "+1531420618", "1531420618.5", "99999999999999999"}) {
    absl::Status s = VerifyTimestampedSignature(
        kSlackSignature, kSecret, ts, kSignature, kBody, SigningTime());
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << ts;
    EXPECT_THAT(s.message(), HasSubstr("malformed")) << ts;
  }
}

TEST(SlackSignature, WrongPrefixOrCaseFails) {
  std::string v1 = kSignature;
  v1[1] = '1';
  EXPECT_FALSE(VerifyTimestampedSignature(kSlackSignature, kSecret, kTimestamp,
                                          v1, kBody, SigningTime())
                   .ok());
  EXPECT_FALSE(VerifyTimestampedSignature(kSlackSignature, kSecret, kTimestamp,
                                          std::string(kSignature).substr(3),
                                          kBody, SigningTime())
                   .ok());
  EXPECT_FALSE(VerifyTimestampedSignature(kSlackSignature, "another-secret",
                                          kTimestamp, kSignature, kBody,
                                          SigningTime())
                   .ok());
}

TEST(SlackSignature, EmptyOrBlankSecretRejected) {
  for (const char* secret : {"", " ", " \t\n"}) {
    absl::Status s = VerifyTimestampedSignature(
        kSlackSignature, secret, kTimestamp, kSignature, kBody, SigningTime());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(SlackSignature, MessagesNeverContainSecret) {
  for (absl::Status s :
       {VerifyTimestampedSignature(kSlackSignature, kSecret, kTimestamp,
                                   "v0=00", kBody, SigningTime()),
        VerifyTimestampedSignature(kSlackSignature, kSecret, "1", kSignature,
                                   kBody, SigningTime())}) {
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(s.message(), Not(HasSubstr(kSecret)));
    EXPECT_THAT(s.message(), Not(HasSubstr(kSignature + 3)));
  }
}

TEST(SlackSignature, ExtraVectors) {
  constexpr char kEventBody[] =
      R"({"token":"XXYYZZ","team_id":"T123ABC456","api_app_id":"A123ABC456",)"
      R"("event":{"type":"message","channel":"C123ABC456","user":"U123ABC456",)"
      R"("text":"Hello world","ts":"1355517523.000005"},"type":"event_callback",)"
      R"("event_id":"Ev123ABC456","event_time":1355517523})";
  ASSERT_EQ(std::string(kEventBody).size(), 256u);
  EXPECT_TRUE(
      VerifyTimestampedSignature(kSlackSignature, kSecret, kTimestamp,
                                 "v0=fc1001735b361c8cac9dbef6cbd6735c47cb60b8"
                                 "bdc19a600afe19b84c41c426",
                                 kEventBody, SigningTime())
          .ok());
  EXPECT_TRUE(
      VerifyTimestampedSignature(kSlackSignature, kSecret, kTimestamp,
                                 "v0=55f41ec73231010289b54e669149ea021fccab11"
                                 "b5524355523533ce930cb739",
                                 "", SigningTime())
          .ok());
}

}  // namespace
}  // namespace imbridge::adapters::slack
