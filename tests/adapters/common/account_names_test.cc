// The config checks that adapters with several accounts share.

#include "adapters/common/account_names.h"

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters {
namespace {

using ::testing::HasSubstr;

TEST(CheckAccountNameTest, TakesEachGoodNameOnce) {
  absl::flat_hash_set<std::string> seen;
  EXPECT_TRUE(
      CheckAccountName("a.yaml", "accounts[0].name", "work-1", &seen).ok());
  absl::Status twice =
      CheckAccountName("a.yaml", "accounts[1].name", "work-1", &seen);
  EXPECT_THAT(twice.message(),
              HasSubstr("accounts[1].name: 'work-1' is used twice"));
  for (const std::string& bad : {std::string(), std::string("Work"),
                                 std::string("a.b"), std::string(65, 'a')}) {
    EXPECT_THAT(
        CheckAccountName("a.yaml", "accounts[2].name", bad, &seen).message(),
        HasSubstr("accounts[2].name: required: 1-64 characters"))
        << bad;
  }
}

TEST(CheckWebhookPathTest, APathStartsWithASlashAndServesOneAccount) {
  absl::flat_hash_set<std::string> seen;
  EXPECT_TRUE(
      CheckWebhookPath("a.yaml", "accounts[0].webhook_path", "/hook/a", &seen)
          .ok());
  EXPECT_TRUE(
      CheckWebhookPath("a.yaml", "accounts[1].webhook_path", "/hook/b", &seen)
          .ok());
  absl::Status twice =
      CheckWebhookPath("a.yaml", "accounts[2].replies.path", "/hook/a", &seen);
  EXPECT_FALSE(twice.ok());
  EXPECT_THAT(twice.message(),
              HasSubstr("accounts[2].replies.path: used by two accounts"));
  absl::Status relative =
      CheckWebhookPath("a.yaml", "accounts[3].webhook_path", "hook/c", &seen);
  EXPECT_FALSE(relative.ok());
  EXPECT_THAT(relative.message(),
              HasSubstr("accounts[3].webhook_path: must start with /"));
  EXPECT_FALSE(seen.contains("hook/c"));
}

}  // namespace
}  // namespace imbridge::adapters
