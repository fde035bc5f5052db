#include "adapters/common/signature.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http/hmac.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A scheme of the shape the messengers share, made up for these tests.
std::string SignedText(absl::string_view timestamp, absl::string_view body) {
  return absl::StrCat("t=", timestamp, ";", body);
}
constexpr TimestampedSignatureScheme kScheme = {
    "X-Test-Timestamp", "X-Test-Signature", "s1=", SignedText};

TEST(TimestampedSignatureTest, TimestampDotBodyJoinsThemWithADot) {
  EXPECT_EQ(TimestampDotBody("1700000000", "{\"a\":1}"),
            "1700000000.{\"a\":1}");
  EXPECT_EQ(TimestampDotBody("1", ""), "1.");
}

TEST(TimestampedSignatureTest, SignedRequestsVerifyWithinTheWindow) {
  absl::StatusOr<std::string> sig =
      SignTimestamped(kScheme, "secret-1", 1700000000, "body");
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(*sig, absl::StrCat("s1=",
                               HmacSha256Hex("secret-1", "t=1700000000;body")));
  absl::Time signed_at = absl::FromUnixSeconds(1700000000);
  for (absl::Duration skew :
       {absl::ZeroDuration(), absl::Seconds(300), absl::Seconds(-300)}) {
    EXPECT_TRUE(VerifyTimestampedSignature(kScheme, "secret-1", "1700000000",
                                           *sig, "body", signed_at + skew)
                    .ok())
        << skew;
  }
  absl::Status late =
      VerifyTimestampedSignature(kScheme, "secret-1", "1700000000", *sig,
                                 "body", signed_at + absl::Seconds(301));
  EXPECT_EQ(late.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(late.message(), HasSubstr("X-Test-Timestamp is outside"));
}

TEST(TimestampedSignatureTest, RequestFailuresNameTheHeader) {
  absl::Time now = absl::FromUnixSeconds(1700000000);
  std::string sig = *SignTimestamped(kScheme, "secret-1", 1700000000, "body");
  auto verify = [&](absl::string_view ts, absl::string_view signature,
                    absl::string_view body) {
    return VerifyTimestampedSignature(kScheme, "secret-1", ts, signature, body,
                                      now);
  };
  EXPECT_THAT(verify("1700000000", sig, "body!").message(),
              HasSubstr("X-Test-Signature does not match"));
  EXPECT_THAT(verify("1700000000", "", "body").message(),
              HasSubstr("missing X-Test-Signature"));
  EXPECT_THAT(verify("", sig, "body").message(),
              HasSubstr("missing X-Test-Timestamp"));
  for (absl::string_view bad :
       {"17e8", "-1700000000", "1700000000000", " 1700000000"}) {
    absl::Status s = verify(bad, sig, "body");
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << bad;
    EXPECT_THAT(s.message(), HasSubstr("malformed X-Test-Timestamp")) << bad;
  }
  // The secret never appears in a message.
  EXPECT_THAT(verify("1700000000", sig, "body!").message(),
              Not(HasSubstr("secret-1")));
}

TEST(TimestampedSignatureTest, BlankSecretIsAConfigurationError) {
  EXPECT_EQ(SignTimestamped(kScheme, " \t", 1, "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyTimestampedSignature(kScheme, "", "1", "s1=00", "x",
                                       absl::FromUnixSeconds(1))
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckSigningSecret("x").ok());
}

}  // namespace
}  // namespace imbridge::adapters
