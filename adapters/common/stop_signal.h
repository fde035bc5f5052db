#ifndef IMBRIDGE_ADAPTERS_COMMON_STOP_SIGNAL_H_
#define IMBRIDGE_ADAPTERS_COMMON_STOP_SIGNAL_H_

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace imbridge::adapters {

// The stop of an adapter part, and the waits it ends: pacing before a call
// to a messenger, retry backoff, the pause between two polls. Without it a
// stop waited out whatever pause was running (a REST client's backoff took
// 15 s with the messenger unreachable).
//
// Stop() may be called any number of times, from any thread (an
// absl::Notification aborts on a second Notify). Thread-safe.
class StopSignal {
 public:
  StopSignal() = default;
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  void Stop();
  bool stopped() const;

  // Waits `d` (not at all if it is zero or less) unless the stop comes
  // first; true if stopped, before or during the wait.
  bool WaitFor(absl::Duration d) const;

  // A rate limit's wait before a call to the messenger: OK once `d` has
  // passed, and at once when it is zero or less (a stop ends waits, it does
  // not refuse a call that needs none: a farewell such as "the bot is
  // offline" still goes out); a retryable error ("the adapter is stopping")
  // when the stop came before or comes during a wait, so that the call is
  // not made and the router gives the delivery again.
  absl::Status Pause(absl::Duration d) const;

 private:
  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_STOP_SIGNAL_H_
