#include "common/bounded_labels.h"

#include <algorithm>

#include "absl/strings/ascii.h"

namespace imbridge::metrics {

std::string BoundedLabelValues::Of(absl::string_view value) {
  const bool name_like =
      !value.empty() && value.size() <= 64 &&
      std::all_of(value.begin(), value.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
               c == '.' || c == '-';
      });
  if (!name_like) return std::string(kOtherLabelValue);
  absl::MutexLock lock(&mu_);
  if (kept_.find(value) != kept_.end()) return std::string(value);
  if (kept_.size() >= max_values_) return std::string(kOtherLabelValue);
  kept_.emplace(value);
  return std::string(value);
}

}  // namespace imbridge::metrics
