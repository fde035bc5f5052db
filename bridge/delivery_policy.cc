#include "bridge/delivery_policy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace imbridge::bridge {

DeliveryPolicy::DeliveryPolicy(const v1::DispatchOptions& options)
    : initial_(absl::Milliseconds(options.initial_backoff_ms())),
      max_(absl::Milliseconds(options.max_backoff_ms())),
      ttl_(absl::Seconds(options.delivery_ttl_seconds())) {}

absl::Duration DeliveryPolicy::Backoff(int attempts) const {
  absl::Duration delay = initial_;
  for (int i = 1; i < attempts && delay < max_; ++i) delay *= 2;
  return std::min(delay, max_);
}

DeliveryDecision DeliveryPolicy::Decide(const v1::DeliveryResult& result,
                                        int previous_attempts,
                                        absl::Time created_at,
                                        absl::Time now) const {
  DeliveryDecision d;
  if (!result.has_error()) {
    d.kind = DeliveryDecision::kCompleted;
    d.attempts = previous_attempts + 1;
    return d;
  }
  const v1::DeliveryError& error = result.error();
  if (error.not_attempted()) {
    d.kind = DeliveryDecision::kResend;
    d.attempts = previous_attempts;
    return d;
  }
  d.attempts = previous_attempts + 1;
  if (!error.retryable()) {
    d.kind = DeliveryDecision::kDeadLetter;
    d.reason = absl::StrCat("permanent error: ", error.message());
    return d;
  }
  absl::Duration delay =
      std::max(Backoff(d.attempts), absl::Milliseconds(error.retry_after_ms()));
  if (now + delay - created_at > ttl_) {
    d.kind = DeliveryDecision::kDeadLetter;
    d.reason =
        absl::StrCat("gave up after ", d.attempts,
                     " attempts (ttl exceeded); last error: ", error.message());
    return d;
  }
  d.kind = DeliveryDecision::kRetry;
  d.next_attempt_at = now + delay;
  d.reason = error.message();
  return d;
}

}  // namespace imbridge::bridge
