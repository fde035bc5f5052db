#ifndef IMBRIDGE_ADAPTERS_TELEGRAM_RATE_LIMITER_H_
#define IMBRIDGE_ADAPTERS_TELEGRAM_RATE_LIMITER_H_

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/common/token_bucket.h"

namespace imbridge::adapters::telegram {

// The Bot API's flood limits: about 1 message/s into one chat (with a small
// burst), 20/min into one group, and 30/s for the whole bot, each a
// TokenBucket (a rate of 0 is unlimited). A send reserves one token of each
// bucket that applies, all or none: when one is empty the reservation is
// made for the moment it refills and the caller waits that long, unless that
// exceeds max_wait.
//
// Thread-safe. Never blocks (the caller sleeps).
class RateLimiter {
 public:
  struct Options {
    double per_chat_per_second = 1.0;
    double per_chat_burst = 3.0;
    double per_group_per_minute = 20.0;
    double per_bot_per_second = 30.0;
    // Reservations that would wait longer are refused.
    absl::Duration max_wait = absl::Seconds(5);
  };

  explicit RateLimiter(Options options);

  // Reserves one send by `bot` into `chat` (a group when `is_group`) at
  // `now`. Returns how long the caller must wait before sending (zero: at
  // once). When that would exceed max_wait nothing is reserved and
  // *granted is false; the result is then the wait the caller should ask the
  // router for.
  absl::Duration Reserve(absl::string_view bot, absl::string_view chat,
                         bool is_group, absl::Time now, bool* granted);

 private:
  const absl::Duration max_wait_;
  // Held across the buckets so that a send takes all its tokens or none.
  absl::Mutex mu_;
  // Keyed by "bot/chat", "bot/chat" and "bot".
  TokenBucket chats_ ABSL_GUARDED_BY(mu_);
  TokenBucket groups_ ABSL_GUARDED_BY(mu_);
  TokenBucket bots_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::adapters::telegram

#endif  // IMBRIDGE_ADAPTERS_TELEGRAM_RATE_LIMITER_H_
