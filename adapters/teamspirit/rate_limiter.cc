#include "adapters/teamspirit/rate_limiter.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace imbridge::adapters::teamspirit {

RateLimiter::RateLimiter(double per_second, double burst, Clock clock)
    : per_second_(per_second > 0 ? per_second : 1),
      burst_(std::max(burst, 1.0)),
      clock_(std::move(clock)) {
  // Start with a full bucket.
  empty_at_ = clock_() - absl::Seconds(burst_ / per_second_);
}

absl::Duration RateLimiter::Reserve() {
  absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  // Never keep more than `burst_` tokens.
  absl::Time full_since = now - absl::Seconds(burst_ / per_second_);
  if (empty_at_ < full_since) empty_at_ = full_since;
  // Taking a token moves the empty point one token interval later; when
  // that point lies ahead, the token only accrues then.
  empty_at_ += absl::Seconds(1.0 / per_second_);
  return empty_at_ > now ? empty_at_ - now : absl::ZeroDuration();
}

void RateLimiter::Acquire() {
  absl::Duration wait = Reserve();
  if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
}

void RateLimiter::PauseUntil(absl::Time until) {
  absl::MutexLock lock(&mu_);
  // Empty one token interval before `until`: the next token accrues then.
  absl::Time empty = until - absl::Seconds(1.0 / per_second_);
  if (empty_at_ < empty) empty_at_ = empty;
}

}  // namespace imbridge::adapters::teamspirit
