#ifndef IMBRIDGE_COMMON_BOUNDED_LABELS_H_
#define IMBRIDGE_COMMON_BOUNDED_LABELS_H_

#include <cstddef>
#include <functional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace imbridge::metrics {

// The label value BoundedLabelValues gives what it does not keep.
inline constexpr absl::string_view kOtherLabelValue = "other";

// Label values taken from input the bridge does not control (the event type
// a messenger names), bounded so that /metrics cannot grow without limit
// however many distinct values arrive: the first `max_values` distinct values
// that look like names (1 to 64 characters of [A-Za-z0-9_.-]) are kept as
// they are; every other value becomes kOtherLabelValue.
//
// Thread-safe.
class BoundedLabelValues {
 public:
  explicit BoundedLabelValues(size_t max_values) : max_values_(max_values) {}
  BoundedLabelValues(const BoundedLabelValues&) = delete;
  BoundedLabelValues& operator=(const BoundedLabelValues&) = delete;

  // `value` itself, or kOtherLabelValue.
  std::string Of(absl::string_view value);

 private:
  const size_t max_values_;
  absl::Mutex mu_;
  std::set<std::string, std::less<>> kept_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::metrics

#endif  // IMBRIDGE_COMMON_BOUNDED_LABELS_H_
