#include "adapters/telegram/rate_limiter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace imbridge::adapters::telegram {

RateLimiter::RateLimiter(Options options) : options_(options) {}

absl::Duration RateLimiter::Wait(Bucket& b, double rate_per_second,
                                 double burst, absl::Time now) {
  if (rate_per_second <= 0) return absl::ZeroDuration();  // Unlimited.
  if (b.updated == absl::InfinitePast()) {
    b.tokens = burst;
  } else if (now > b.updated) {
    b.tokens =
        std::min(burst, b.tokens + absl::ToDoubleSeconds(now - b.updated) *
                                       rate_per_second);
  }
  b.updated = std::max(b.updated, now);
  if (b.tokens >= 1.0) return absl::ZeroDuration();
  return absl::Seconds((1.0 - b.tokens) / rate_per_second);
}

absl::Duration RateLimiter::Reserve(absl::string_view bot,
                                    absl::string_view chat, bool is_group,
                                    absl::Time now, bool* granted) {
  const std::string chat_key = absl::StrCat(bot, "/", chat);
  absl::MutexLock lock(&mu_);
  Bucket& c = chats_[chat_key];
  Bucket& k = bots_[bot];
  const double chat_rate = options_.per_chat_per_second;
  const double group_rate = options_.per_group_per_minute / 60.0;
  const double bot_rate = options_.per_bot_per_second;
  absl::Duration wait = std::max(
      Wait(c, chat_rate, std::max(1.0, options_.per_chat_burst), now),
      Wait(k, bot_rate, std::max(1.0, options_.per_bot_per_second), now));
  Bucket* g = nullptr;
  if (is_group) {
    g = &groups_[chat_key];
    wait =
        std::max(wait, Wait(*g, group_rate,
                            std::max(1.0, options_.per_group_per_minute), now));
  }
  if (wait > options_.max_wait) {
    *granted = false;
    return wait;
  }
  *granted = true;
  c.tokens -= 1.0;
  k.tokens -= 1.0;
  if (g != nullptr) g->tokens -= 1.0;
  return wait;
}

}  // namespace imbridge::adapters::telegram
