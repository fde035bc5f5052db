// Test helper: drains the reader an adapter hands to InboundRouter::PutBlob.
#ifndef IMBRIDGE_TESTS_ADAPTERS_COMMON_BLOB_READS_H_
#define IMBRIDGE_TESTS_ADAPTERS_COMMON_BLOB_READS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace imbridge::adapters {

// Reads `read` to its end in chunks of `chunk` bytes (small chunks exercise
// many reads) and returns the bytes, or the first error `read` returned.
inline absl::StatusOr<std::string> ReadWholeBlob(
    const std::function<absl::StatusOr<size_t>(char*, size_t)>& read,
    size_t chunk) {
  std::string data;
  std::vector<char> buf(chunk);
  while (true) {
    absl::StatusOr<size_t> n = read(buf.data(), buf.size());
    if (!n.ok()) return n.status();
    if (*n == 0) return data;
    data.append(buf.data(), *n);
  }
}

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_TESTS_ADAPTERS_COMMON_BLOB_READS_H_
