#ifndef IMBRIDGE_ADAPTERS_TEAMSPIRIT_RATE_LIMITER_H_
#define IMBRIDGE_ADAPTERS_TEAMSPIRIT_RATE_LIMITER_H_

#include <functional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "adapters/common/stop_signal.h"
#include "adapters/common/token_bucket.h"

namespace imbridge::adapters::teamspirit {

// Spaces one bot's REST calls to at most `per_second` on average, with
// bursts of up to `burst` calls, and stops all calls while the server asked
// to wait (429 Retry-After). A single TokenBucket key, with the clock built
// in and a blocking Acquire() for the API client's worker threads.
//
// Thread-safe. Acquire() blocks the calling thread until its turn or Stop();
// Reserve() does not block.
class RateLimiter {
 public:
  // The time source, replaceable for tests.
  using Clock = std::function<absl::Time()>;

  // `per_second` > 0; `burst` >= 1.
  RateLimiter(double per_second, double burst, Clock clock = absl::Now);

  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Takes one token and returns how long the caller must wait before using
  // it (zero when it may go now). Tokens are handed out in call order, so a
  // caller told to wait must not call again for the same request.
  absl::Duration Reserve();

  // Reserve(), then waits for the returned time: OK when the call may go; a
  // retryable error when it must wait and Stop() came, before or during the
  // wait (StopSignal::Pause).
  absl::Status Acquire();

  // Makes no token available before `until` (the server answered 429).
  void PauseUntil(absl::Time until);

  // Ends the waits in progress and fails every later Acquire() that would
  // wait: the adapter is stopping, and a wait (up to the server's
  // Retry-After) must not hold its shutdown.
  void Stop() { stopping_.Stop(); }

 private:
  const Clock clock_;
  TokenBucket bucket_;
  StopSignal stopping_;
};

}  // namespace imbridge::adapters::teamspirit

#endif  // IMBRIDGE_ADAPTERS_TEAMSPIRIT_RATE_LIMITER_H_
