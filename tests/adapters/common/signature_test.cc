#include "adapters/common/signature.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Slack's official vector (platforms.md 1.5).
constexpr char kSlackSecret[] = "8f742231b10e8888abcd99yyyzzz85a5";
constexpr char kSlackTimestamp[] = "1531420618";
constexpr char kSlackBody[] =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
    "channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name="
    "roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%"
    "2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%"
    "2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."
    "803a0bc887a14d10d2c447fce8b6703c";
constexpr char kSlackSignature[] =
    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

// TeamSpirit's vector (teamspirit-api.md).
constexpr char kTsSecret[] = "ts-webhook-secret-1";
constexpr char kTsTimestamp[] = "1763719200";
constexpr char kTsBody[] = R"({"event_id":"evt-1","type":"message.created"})";
constexpr char kTsSignature[] =
    "v1=bc780820bbcf0b63b708856ac8e0abfcd3e7d693b74e2c45440a8ebb5fe262aa";

absl::Time SlackNow() { return absl::FromUnixSeconds(1531420618); }
absl::Time TsNow() { return absl::FromUnixSeconds(1763719200); }

TEST(SlackSignatureTest, OfficialVectorPasses) {
  EXPECT_TRUE(VerifySlackSignature(kSlackSecret, kSlackTimestamp,
                                   kSlackSignature, kSlackBody, SlackNow())
                  .ok());
}

TEST(SlackSignatureTest, AppendedBodyFails) {
  absl::Status s =
      VerifySlackSignature(kSlackSecret, kSlackTimestamp, kSlackSignature,
                           std::string(kSlackBody) + "------", SlackNow());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(s.message(), HasSubstr("does not match"));
}

TEST(SlackSignatureTest, RealClockFailsAsExpired) {
  absl::Status s = VerifySlackSignature(
      kSlackSecret, kSlackTimestamp, kSlackSignature, kSlackBody, absl::Now());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(s.message(), HasSubstr("outside the allowed window"));
}

TEST(SlackSignatureTest, WindowEdges) {
  EXPECT_TRUE(VerifySlackSignature(kSlackSecret, kSlackTimestamp,
                                   kSlackSignature, kSlackBody,
                                   SlackNow() + absl::Seconds(300))
                  .ok());
  EXPECT_TRUE(VerifySlackSignature(kSlackSecret, kSlackTimestamp,
                                   kSlackSignature, kSlackBody,
                                   SlackNow() - absl::Seconds(300))
                  .ok());
  EXPECT_FALSE(VerifySlackSignature(kSlackSecret, kSlackTimestamp,
                                    kSlackSignature, kSlackBody,
                                    SlackNow() + absl::Seconds(301))
                   .ok());
  EXPECT_FALSE(VerifySlackSignature(kSlackSecret, kSlackTimestamp,
                                    kSlackSignature, kSlackBody,
                                    SlackNow() - absl::Seconds(301))
                   .ok());
  EXPECT_FALSE(VerifySlackSignature(
                   kSlackSecret, kSlackTimestamp, kSlackSignature, kSlackBody,
                   SlackNow() + absl::Seconds(11), absl::Seconds(10))
                   .ok());
}

TEST(SlackSignatureTest, MissingHeadersFail) {
  absl::Status no_ts = VerifySlackSignature(kSlackSecret, "", kSlackSignature,
                                            kSlackBody, SlackNow());
  EXPECT_EQ(no_ts.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(no_ts.message(), HasSubstr("missing X-Slack-Request-Timestamp"));

  absl::Status no_sig = VerifySlackSignature(kSlackSecret, kSlackTimestamp, "",
                                             kSlackBody, SlackNow());
  EXPECT_EQ(no_sig.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(no_sig.message(), HasSubstr("missing X-Slack-Signature"));
}

TEST(SlackSignatureTest, MalformedTimestampFails) {
  for (const char* ts : {"abc", "-1531420618", " 1531420618", "1531420618 ",
                         "+1531420618", "1531420618.5", "99999999999999999"}) {
    absl::Status s = VerifySlackSignature(kSlackSecret, ts, kSlackSignature,
                                          kSlackBody, SlackNow());
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << ts;
    EXPECT_THAT(s.message(), HasSubstr("malformed")) << ts;
  }
}

TEST(SlackSignatureTest, WrongPrefixOrCaseFails) {
  std::string v1 = kSlackSignature;
  v1[1] = '1';
  EXPECT_FALSE(VerifySlackSignature(kSlackSecret, kSlackTimestamp, v1,
                                    kSlackBody, SlackNow())
                   .ok());
  EXPECT_FALSE(VerifySlackSignature(kSlackSecret, kSlackTimestamp,
                                    std::string(kSlackSignature).substr(3),
                                    kSlackBody, SlackNow())
                   .ok());
  EXPECT_FALSE(VerifySlackSignature("another-secret", kSlackTimestamp,
                                    kSlackSignature, kSlackBody, SlackNow())
                   .ok());
}

TEST(SlackSignatureTest, EmptyOrBlankSecretRejected) {
  for (const char* secret : {"", " ", " \t\n"}) {
    absl::Status s = VerifySlackSignature(
        secret, kSlackTimestamp, kSlackSignature, kSlackBody, SlackNow());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(SlackSignatureTest, MessagesNeverContainSecret) {
  for (absl::Status s :
       {VerifySlackSignature(kSlackSecret, kSlackTimestamp, "v0=00", kSlackBody,
                             SlackNow()),
        VerifySlackSignature(kSlackSecret, "1", kSlackSignature, kSlackBody,
                             SlackNow())}) {
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(s.message(), Not(HasSubstr(kSlackSecret)));
    EXPECT_THAT(s.message(), Not(HasSubstr(kSlackSignature + 3)));
  }
}

TEST(SlackSignatureTest, ExtraVectors) {
  constexpr char kEventBody[] =
      R"({"token":"XXYYZZ","team_id":"T123ABC456","api_app_id":"A123ABC456",)"
      R"("event":{"type":"message","channel":"C123ABC456","user":"U123ABC456",)"
      R"("text":"Hello world","ts":"1355517523.000005"},"type":"event_callback",)"
      R"("event_id":"Ev123ABC456","event_time":1355517523})";
  ASSERT_EQ(std::string(kEventBody).size(), 256u);
  EXPECT_TRUE(VerifySlackSignature(kSlackSecret, kSlackTimestamp,
                                   "v0=fc1001735b361c8cac9dbef6cbd6735c47cb60b8"
                                   "bdc19a600afe19b84c41c426",
                                   kEventBody, SlackNow())
                  .ok());
  EXPECT_TRUE(VerifySlackSignature(kSlackSecret, kSlackTimestamp,
                                   "v0=55f41ec73231010289b54e669149ea021fccab11"
                                   "b5524355523533ce930cb739",
                                   "", SlackNow())
                  .ok());
}

TEST(TeamSpiritSignatureTest, VectorPasses) {
  EXPECT_TRUE(VerifyTeamSpiritSignature(kTsSecret, kTsTimestamp, kTsSignature,
                                        kTsBody, TsNow())
                  .ok());
}

TEST(TeamSpiritSignatureTest, SignMatchesVector) {
  absl::StatusOr<std::string> sig =
      SignTeamSpirit(kTsSecret, 1763719200, kTsBody);
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(*sig, kTsSignature);
  EXPECT_EQ(SignTeamSpirit(" ", 1, "x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TeamSpiritSignatureTest, Failures) {
  EXPECT_EQ(VerifyTeamSpiritSignature(kTsSecret, kTsTimestamp, kTsSignature,
                                      std::string(kTsBody) + "\n", TsNow())
                .code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(VerifyTeamSpiritSignature(kTsSecret, kTsTimestamp, kTsSignature,
                                        kTsBody, absl::Now())
                  .message(),
              HasSubstr("outside the allowed window"));
  EXPECT_THAT(
      VerifyTeamSpiritSignature(kTsSecret, "", kTsSignature, kTsBody, TsNow())
          .message(),
      HasSubstr("missing X-TeamSpirit-Timestamp"));
  EXPECT_THAT(
      VerifyTeamSpiritSignature(kTsSecret, kTsTimestamp, "", kTsBody, TsNow())
          .message(),
      HasSubstr("missing X-TeamSpirit-Signature"));
  // A Slack-style prefix on a TeamSpirit signature is wrong.
  std::string v0 = kTsSignature;
  v0[1] = '0';
  EXPECT_FALSE(
      VerifyTeamSpiritSignature(kTsSecret, kTsTimestamp, v0, kTsBody, TsNow())
          .ok());
  EXPECT_EQ(VerifyTeamSpiritSignature("", kTsTimestamp, kTsSignature, kTsBody,
                                      TsNow())
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace imbridge::adapters
