#include "common/http/hmac.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(HmacSha256HexTest, Rfc4231Case2) {
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256HexTest, Rfc4231Case1) {
  EXPECT_EQ(HmacSha256Hex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(ConstantTimeEqualsTest, Works) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", ""));
  EXPECT_FALSE(ConstantTimeEquals(absl::string_view("a\0b", 3),
                                  absl::string_view("a\0c", 3)));
}

TEST(CheckSigningSecretTest, RejectsEmptyOrBlank) {
  EXPECT_TRUE(CheckSigningSecret("s").ok());
  EXPECT_TRUE(CheckSigningSecret(" s ").ok());
  EXPECT_EQ(CheckSigningSecret("").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckSigningSecret(" \t\n").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SecretTokenTest, ComparesWithTheConfiguredSecret) {
  EXPECT_TRUE(VerifySecretToken("tg_Secret-123", "tg_Secret-123").ok());
  EXPECT_EQ(VerifySecretToken("tg_Secret-123", "tg_Secret-124").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifySecretToken("tg_Secret-123", "tg_Secret-1234").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(VerifySecretToken("tg_Secret-123", "").message(),
              HasSubstr("missing"));
  EXPECT_EQ(VerifySecretToken("", "").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifySecretToken("  ", "  ").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SecretTokenTest, MessagesNeverContainTheSecret) {
  absl::Status s = VerifySecretToken("tg_Secret-123", "tg_Secret-124");
  EXPECT_THAT(s.message(), Not(HasSubstr("tg_Secret")));
}

}  // namespace
}  // namespace imbridge
