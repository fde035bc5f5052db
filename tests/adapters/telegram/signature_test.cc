// Telegram's webhook secret token (X-Telegram-Bot-Api-Secret-Token).

#include "adapters/telegram/signature.h"

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::telegram {
namespace {

using ::testing::HasSubstr;

TEST(SecretTokenTest, Telegram) {
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

}  // namespace
}  // namespace imbridge::adapters::telegram
