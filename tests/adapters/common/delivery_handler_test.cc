#include "adapters/common/delivery_handler.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Answers every delivery with `answer`, or throws.
class FixedHandler : public DeliveryHandler {
 public:
  explicit FixedHandler(
      std::function<absl::StatusOr<std::vector<std::string>>()> answer)
      : answer_(std::move(answer)) {}
  absl::StatusOr<std::vector<std::string>> Deliver(
      const v1::Delivery&) override {
    return answer_();
  }

 private:
  std::function<absl::StatusOr<std::vector<std::string>>()> answer_;
};

TEST(DeliverGuardedTest, PassesOutcomesThrough) {
  v1::Delivery d;
  FixedHandler ok([] { return std::vector<std::string>{"n1", "n2"}; });
  absl::StatusOr<std::vector<std::string>> r = DeliverGuarded(ok, d);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(*r, ElementsAre("n1", "n2"));
  FixedHandler retry([]() -> absl::StatusOr<std::vector<std::string>> {
    return RetryableError("429", absl::Seconds(3));
  });
  r = DeliverGuarded(retry, d);
  EXPECT_TRUE(IsRetryable(r.status()));
  EXPECT_EQ(RetryAfter(r.status()), absl::Seconds(3));
}

TEST(DeliverGuardedTest, WhatIsThrownBecomesAPermanentFailure) {
  v1::Delivery d;
  FixedHandler throws([]() -> absl::StatusOr<std::vector<std::string>> {
    throw std::out_of_range("vector::at");
  });
  absl::StatusOr<std::vector<std::string>> r = DeliverGuarded(throws, d);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_FALSE(IsRetryable(r.status()));
  EXPECT_THAT(r.status().message(), HasSubstr("vector::at"));

  FixedHandler throws_int(
      []() -> absl::StatusOr<std::vector<std::string>> { throw 7; });
  r = DeliverGuarded(throws_int, d);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(r.status().message(), HasSubstr("unknown exception"));
}

TEST(DeliverGuardedTest, NativeIdsThatAreNotUtf8AreAPermanentFailure) {
  v1::Delivery d;
  FixedHandler bad([] { return std::vector<std::string>{"ok", "\xC3("}; });
  absl::StatusOr<std::vector<std::string>> r = DeliverGuarded(bad, d);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(r.status().message(), HasSubstr("not valid UTF-8"));
}

}  // namespace
}  // namespace imbridge::adapters
