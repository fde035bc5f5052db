#ifndef IMBRIDGE_BRIDGE_DELIVERY_POLICY_H_
#define IMBRIDGE_BRIDGE_DELIVERY_POLICY_H_

#include <string>

#include "absl/time/time.h"
#include "imbridge/v1/config.pb.h"
#include "imbridge/v1/router.pb.h"

namespace imbridge::bridge {

// What happens to a delivery after an adapter answered it.
struct DeliveryDecision {
  enum Kind {
    // Delivered; remove it from the outbox and record the copies.
    kCompleted,
    // Try again at `next_attempt_at`; the target's queue waits until then.
    kRetry,
    // Give up; move it to the dead letters with `reason`.
    kDeadLetter,
    // The adapter did not try it; send it again, in order, without counting
    // an attempt.
    kResend,
  };
  Kind kind = kCompleted;
  // The attempts made, including this one.
  int attempts = 0;
  absl::Time next_attempt_at = absl::InfinitePast();
  std::string reason;
};

// Retry policy: exponential backoff from the initial delay, doubled per
// attempt up to the maximum, never sooner than the messenger's retry-after;
// a delivery that would retry past its TTL (counted from when it was
// written) is dead-lettered instead. Permanent errors dead-letter at once.
// Stateless and thread-safe.
class DeliveryPolicy {
 public:
  explicit DeliveryPolicy(const v1::DispatchOptions& options);

  // Decides the fate of a delivery that had made `previous_attempts`
  // attempts before this answer and was written at `created_at`.
  DeliveryDecision Decide(const v1::DeliveryResult& result,
                          int previous_attempts, absl::Time created_at,
                          absl::Time now) const;

  // The delay before attempt number `attempts + 1`, without retry-after.
  absl::Duration Backoff(int attempts) const;

 private:
  absl::Duration initial_;
  absl::Duration max_;
  absl::Duration ttl_;
};

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_DELIVERY_POLICY_H_
