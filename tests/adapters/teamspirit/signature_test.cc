// TeamSpirit's webhook signatures (teamspirit-api.md): its test vector and
// the ways a request must fail.

#include "adapters/teamspirit/signature.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::teamspirit {
namespace {

using ::testing::HasSubstr;

// TeamSpirit's vector (teamspirit-api.md).
constexpr char kTsSecret[] = "ts-webhook-secret-1";
constexpr char kTsTimestamp[] = "1763719200";
constexpr char kTsBody[] = R"({"event_id":"evt-1","type":"message.created"})";
constexpr char kTsSignature[] =
    "v1=bc780820bbcf0b63b708856ac8e0abfcd3e7d693b74e2c45440a8ebb5fe262aa";

absl::Time TsNow() { return absl::FromUnixSeconds(1763719200); }

TEST(TeamSpiritSignatureTest, VectorPasses) {
  EXPECT_TRUE(VerifyTimestampedSignature(kTeamSpiritSignature, kTsSecret,
                                         kTsTimestamp, kTsSignature, kTsBody,
                                         TsNow())
                  .ok());
}

TEST(TeamSpiritSignatureTest, SignMatchesVector) {
  absl::StatusOr<std::string> sig =
      SignTimestamped(kTeamSpiritSignature, kTsSecret, 1763719200, kTsBody);
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(*sig, kTsSignature);
  EXPECT_EQ(SignTimestamped(kTeamSpiritSignature, " ", 1, "x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TeamSpiritSignatureTest, Failures) {
  EXPECT_EQ(VerifyTimestampedSignature(kTeamSpiritSignature, kTsSecret,
                                       kTsTimestamp, kTsSignature,
                                       std::string(kTsBody) + "\n", TsNow())
                .code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(
      VerifyTimestampedSignature(kTeamSpiritSignature, kTsSecret, kTsTimestamp,
                                 kTsSignature, kTsBody, absl::Now())
          .message(),
      HasSubstr("outside the allowed window"));
  EXPECT_THAT(VerifyTimestampedSignature(kTeamSpiritSignature, kTsSecret, "",
                                         kTsSignature, kTsBody, TsNow())
                  .message(),
              HasSubstr("missing X-TeamSpirit-Timestamp"));
  EXPECT_THAT(VerifyTimestampedSignature(kTeamSpiritSignature, kTsSecret,
                                         kTsTimestamp, "", kTsBody, TsNow())
                  .message(),
              HasSubstr("missing X-TeamSpirit-Signature"));
  // A Slack-style prefix on a TeamSpirit signature is wrong.
  std::string v0 = kTsSignature;
  v0[1] = '0';
  EXPECT_FALSE(VerifyTimestampedSignature(kTeamSpiritSignature, kTsSecret,
                                          kTsTimestamp, v0, kTsBody, TsNow())
                   .ok());
  EXPECT_EQ(VerifyTimestampedSignature(kTeamSpiritSignature, "", kTsTimestamp,
                                       kTsSignature, kTsBody, TsNow())
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace imbridge::adapters::teamspirit
