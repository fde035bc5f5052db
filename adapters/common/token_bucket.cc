#include "adapters/common/token_bucket.h"

#include <algorithm>

namespace imbridge::adapters {

TokenBucket::TokenBucket(double per_second, double burst)
    : per_second_(per_second),
      burst_(std::max(burst, 1.0)),
      interval_(per_second > 0 ? absl::Seconds(1.0 / per_second)
                               : absl::ZeroDuration()),
      fill_time_(per_second > 0 ? absl::Seconds(burst_ / per_second)
                                : absl::ZeroDuration()) {}

absl::Time TokenBucket::EmptyAt(absl::string_view key, absl::Time now) const {
  // Never more than `burst_` tokens: a bucket unused for long (or never
  // used) was empty `fill_time_` ago at the latest.
  absl::Time full_since = now - fill_time_;
  auto it = empty_at_.find(key);
  if (it == empty_at_.end()) return full_since;
  return std::max(it->second, full_since);
}

absl::Duration TokenBucket::Reserve(absl::string_view key, absl::Time now) {
  if (unlimited()) return absl::ZeroDuration();
  absl::MutexLock lock(&mu_);
  // Taking a token moves the empty point one interval later; when that point
  // lies ahead, the token only accrues then.
  absl::Time empty = EmptyAt(key, now) + interval_;
  empty_at_.insert_or_assign(std::string(key), empty);
  return empty > now ? empty - now : absl::ZeroDuration();
}

absl::Duration TokenBucket::WaitFor(absl::string_view key,
                                    absl::Time now) const {
  if (unlimited()) return absl::ZeroDuration();
  absl::ReaderMutexLock lock(&mu_);
  absl::Time empty = EmptyAt(key, now) + interval_;
  return empty > now ? empty - now : absl::ZeroDuration();
}

void TokenBucket::PauseUntil(absl::string_view key, absl::Time until) {
  if (unlimited()) return;
  absl::MutexLock lock(&mu_);
  // Empty one interval before `until`: the next token accrues then.
  absl::Time empty = until - interval_;
  auto it = empty_at_.find(key);
  if (it == empty_at_.end()) {
    empty_at_.emplace(std::string(key), empty);
  } else if (it->second < empty) {
    it->second = empty;
  }
}

}  // namespace imbridge::adapters
