#ifndef IMBRIDGE_ADAPTERS_COMMON_TOKEN_BUCKET_H_
#define IMBRIDGE_ADAPTERS_COMMON_TOKEN_BUCKET_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace imbridge::adapters {

// Token buckets, one per key (a channel, a chat, a bot): each key earns
// `per_second` tokens per second and saves up at most `burst` of them; a
// key seen for the first time starts with a full bucket.
//
// Reserve() always takes a token, if need be one that only accrues in the
// future, and returns how long the caller must wait before using it; callers
// are thus served in call order, and one told to wait must not call again
// for the same request. WaitFor() says the same without taking anything.
// PauseUntil() makes no token of a key available before a time (a 429 with
// Retry-After). Time is an argument, so tests choose it.
//
// `per_second` <= 0 means unlimited: every wait is zero. `burst` below 1 is
// taken as 1. Buckets are never forgotten, so keys must come from a bounded
// set (configured accounts and the chats they deliver to).
//
// Thread-safe; never blocks (the caller sleeps).
class TokenBucket {
 public:
  TokenBucket(double per_second, double burst);

  TokenBucket(const TokenBucket&) = delete;
  TokenBucket& operator=(const TokenBucket&) = delete;

  // Takes one token of `key` at `now`; returns the wait before it may be
  // used (zero: at once).
  absl::Duration Reserve(absl::string_view key, absl::Time now);

  // The wait Reserve(key, now) would return, taking nothing.
  absl::Duration WaitFor(absl::string_view key, absl::Time now) const;

  // No token of `key` becomes available before `until`; later calls queue
  // behind it one token interval apart. Never shortens an existing wait.
  void PauseUntil(absl::string_view key, absl::Time until);

 private:
  bool unlimited() const { return per_second_ <= 0; }
  // The time at which `key`'s bucket holds no token, given that it holds at
  // most `burst_` at `now`.
  absl::Time EmptyAt(absl::string_view key, absl::Time now) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const double per_second_;
  const double burst_;
  // Time to earn one token, and to fill a bucket from empty.
  const absl::Duration interval_;
  const absl::Duration fill_time_;
  mutable absl::Mutex mu_;
  // Per key, the time at which the bucket is empty if no one takes a token:
  // tokens at time t = (t - empty_at) * per_second_, capped at burst_ (and
  // negative while tokens of the future are reserved).
  absl::flat_hash_map<std::string, absl::Time> empty_at_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_TOKEN_BUCKET_H_
