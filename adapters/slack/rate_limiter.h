#ifndef IMBRIDGE_ADAPTERS_SLACK_RATE_LIMITER_H_
#define IMBRIDGE_ADAPTERS_SLACK_RATE_LIMITER_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace imbridge::adapters::slack {

// Token buckets per key (a Slack channel): `per_second` tokens per second,
// at most `burst` saved up. Acquire() reserves one token and says how long
// the caller must wait before using it, so concurrent callers queue fairly.
// Thread-safe; never blocks.
class RateLimiter {
 public:
  RateLimiter(double per_second, double burst);

  // Reserves a token for `key` at `now`; returns the wait (zero: go now).
  absl::Duration Acquire(absl::string_view key, absl::Time now);

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
  };
  const double per_second_;
  const double burst_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_ADAPTERS_SLACK_RATE_LIMITER_H_
