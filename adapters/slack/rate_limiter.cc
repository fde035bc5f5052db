#include "adapters/slack/rate_limiter.h"

#include <algorithm>

namespace imbridge::adapters::slack {

RateLimiter::RateLimiter(double per_second, double burst)
    : per_second_(per_second > 0 ? per_second : 1),
      burst_(burst >= 1 ? burst : 1) {}

absl::Duration RateLimiter::Acquire(absl::string_view key, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    it = buckets_.emplace(std::string(key), Bucket{burst_, now}).first;
  }
  Bucket& b = it->second;
  if (now > b.updated) {
    b.tokens =
        std::min(burst_, b.tokens + absl::ToDoubleSeconds(now - b.updated) *
                                        per_second_);
    b.updated = now;
  }
  b.tokens -= 1;
  if (b.tokens >= 0) return absl::ZeroDuration();
  return absl::Seconds(-b.tokens / per_second_);
}

}  // namespace imbridge::adapters::slack
