#include "common/file_size.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace imbridge {

std::string FileSizeText(uint64_t bytes) {
  constexpr double kKiB = 1024.0;
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < 1024 * 1024) {
    return absl::StrFormat("%.0f KB", static_cast<double>(bytes) / kKiB);
  }
  if (bytes < 1024ull * 1024 * 1024) {
    return absl::StrFormat("%.1f MB",
                           static_cast<double>(bytes) / (kKiB * kKiB));
  }
  return absl::StrFormat("%.1f GB",
                         static_cast<double>(bytes) / (kKiB * kKiB * kKiB));
}

}  // namespace imbridge
