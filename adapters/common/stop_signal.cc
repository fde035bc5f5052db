#include "adapters/common/stop_signal.h"

#include "adapters/common/delivery_handler.h"

namespace imbridge::adapters {

void StopSignal::Stop() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

bool StopSignal::stopped() const {
  absl::MutexLock lock(&mu_);
  return stopped_;
}

bool StopSignal::WaitFor(absl::Duration d) const {
  absl::MutexLock lock(&mu_);
  if (d <= absl::ZeroDuration()) return stopped_;
  return mu_.AwaitWithTimeout(absl::Condition(&stopped_), d);
}

absl::Status StopSignal::Pause(absl::Duration d) const {
  if (d > absl::ZeroDuration() && WaitFor(d)) {
    return RetryableError("the adapter is stopping");
  }
  return absl::OkStatus();
}

}  // namespace imbridge::adapters
