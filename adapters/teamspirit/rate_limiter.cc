#include "adapters/teamspirit/rate_limiter.h"

#include <utility>

namespace imbridge::adapters::teamspirit {
namespace {
// The bot's one bucket.
constexpr char kBot[] = "";
}  // namespace

RateLimiter::RateLimiter(double per_second, double burst, Clock clock)
    : clock_(std::move(clock)),
      bucket_(per_second > 0 ? per_second : 1, burst) {}

absl::Duration RateLimiter::Reserve() {
  return bucket_.Reserve(kBot, clock_());
}

absl::Status RateLimiter::Acquire() { return stopping_.Pause(Reserve()); }

void RateLimiter::PauseUntil(absl::Time until) {
  bucket_.PauseUntil(kBot, until);
}

}  // namespace imbridge::adapters::teamspirit
