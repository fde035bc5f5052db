#include "bridge/delivery_policy.h"

#include "gtest/gtest.h"

namespace imbridge::bridge {
namespace {

v1::DispatchOptions Options() {
  v1::DispatchOptions o;
  o.set_initial_backoff_ms(500);
  o.set_max_backoff_ms(8000);
  o.set_delivery_ttl_seconds(60);
  return o;
}

v1::DeliveryResult Retryable(uint32_t retry_after_ms = 0) {
  v1::DeliveryResult r;
  r.mutable_error()->set_retryable(true);
  r.mutable_error()->set_retry_after_ms(retry_after_ms);
  r.mutable_error()->set_message("429 Too Many Requests");
  return r;
}

TEST(DeliveryPolicyTest, BackoffDoublesUpToTheMaximum) {
  DeliveryPolicy p(Options());
  EXPECT_EQ(p.Backoff(1), absl::Milliseconds(500));
  EXPECT_EQ(p.Backoff(2), absl::Seconds(1));
  EXPECT_EQ(p.Backoff(3), absl::Seconds(2));
  EXPECT_EQ(p.Backoff(5), absl::Seconds(8));
  EXPECT_EQ(p.Backoff(40), absl::Seconds(8));
}

TEST(DeliveryPolicyTest, SuccessCompletes) {
  DeliveryPolicy p(Options());
  absl::Time now = absl::FromUnixSeconds(1000);
  v1::DeliveryResult ok;
  ok.add_native_ids("1");
  DeliveryDecision d = p.Decide(ok, 2, now, now);
  EXPECT_EQ(d.kind, DeliveryDecision::kCompleted);
  EXPECT_EQ(d.attempts, 3);
}

TEST(DeliveryPolicyTest, RetryHonoursRetryAfterWhenLonger) {
  DeliveryPolicy p(Options());
  absl::Time now = absl::FromUnixSeconds(1000);
  DeliveryDecision d = p.Decide(Retryable(), 0, now, now);
  EXPECT_EQ(d.kind, DeliveryDecision::kRetry);
  EXPECT_EQ(d.next_attempt_at, now + absl::Milliseconds(500));
  d = p.Decide(Retryable(3000), 0, now, now);
  EXPECT_EQ(d.next_attempt_at, now + absl::Seconds(3));
  EXPECT_EQ(d.attempts, 1);
}

TEST(DeliveryPolicyTest, TtlDeadLetters) {
  DeliveryPolicy p(Options());
  absl::Time created = absl::FromUnixSeconds(1000);
  DeliveryDecision d =
      p.Decide(Retryable(), 6, created, created + absl::Seconds(55));
  EXPECT_EQ(d.kind, DeliveryDecision::kDeadLetter);
  EXPECT_NE(d.reason.find("429 Too Many Requests"), std::string::npos);
}

TEST(DeliveryPolicyTest, PermanentDeadLettersAtOnce) {
  DeliveryPolicy p(Options());
  v1::DeliveryResult r;
  r.mutable_error()->set_retryable(false);
  r.mutable_error()->set_message("chat not found");
  absl::Time now = absl::FromUnixSeconds(1000);
  DeliveryDecision d = p.Decide(r, 0, now, now);
  EXPECT_EQ(d.kind, DeliveryDecision::kDeadLetter);
  EXPECT_EQ(d.reason, "permanent error: chat not found");
}

TEST(DeliveryPolicyTest, NotAttemptedIsResentWithoutCounting) {
  DeliveryPolicy p(Options());
  v1::DeliveryResult r = Retryable();
  r.mutable_error()->set_not_attempted(true);
  absl::Time now = absl::FromUnixSeconds(1000);
  DeliveryDecision d = p.Decide(r, 3, now, now);
  EXPECT_EQ(d.kind, DeliveryDecision::kResend);
  EXPECT_EQ(d.attempts, 3);
}

}  // namespace
}  // namespace imbridge::bridge
