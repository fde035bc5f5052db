#ifndef IMBRIDGE_ADAPTERS_TELEGRAM_RATE_LIMITER_H_
#define IMBRIDGE_ADAPTERS_TELEGRAM_RATE_LIMITER_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace imbridge::adapters::telegram {

// Token buckets for the Bot API's flood limits: about 1 message/s into one
// chat (with a small burst), 20/min into one group, and 30/s for the whole
// bot. A send reserves one token of each bucket that applies; when a bucket
// is empty the reservation is made for the moment it refills and the caller
// waits that long.
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
  struct Bucket {
    double tokens = 0;  // May go negative: reserved future tokens.
    absl::Time updated = absl::InfinitePast();
  };
  // Refills `b` to `now` and returns the wait until one token is available.
  static absl::Duration Wait(Bucket& b, double rate_per_second, double burst,
                             absl::Time now);

  const Options options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> chats_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Bucket> groups_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Bucket> bots_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::adapters::telegram

#endif  // IMBRIDGE_ADAPTERS_TELEGRAM_RATE_LIMITER_H_
