#include "adapters/telegram/rate_limiter.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"

namespace imbridge::adapters::telegram {

RateLimiter::RateLimiter(Options options)
    : max_wait_(options.max_wait),
      chats_(options.per_chat_per_second, options.per_chat_burst),
      groups_(options.per_group_per_minute / 60.0,
              options.per_group_per_minute),
      bots_(options.per_bot_per_second, options.per_bot_per_second) {}

absl::Duration RateLimiter::Reserve(absl::string_view bot,
                                    absl::string_view chat, bool is_group,
                                    absl::Time now, bool* granted) {
  const std::string chat_key = absl::StrCat(bot, "/", chat);
  absl::MutexLock lock(&mu_);
  absl::Duration wait =
      std::max(chats_.WaitFor(chat_key, now), bots_.WaitFor(bot, now));
  if (is_group) wait = std::max(wait, groups_.WaitFor(chat_key, now));
  if (wait > max_wait_) {
    *granted = false;
    return wait;
  }
  *granted = true;
  chats_.Reserve(chat_key, now);
  bots_.Reserve(bot, now);
  if (is_group) groups_.Reserve(chat_key, now);
  return wait;
}

}  // namespace imbridge::adapters::telegram
