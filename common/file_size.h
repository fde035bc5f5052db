#ifndef IMBRIDGE_COMMON_FILE_SIZE_H_
#define IMBRIDGE_COMMON_FILE_SIZE_H_

#include <cstdint>
#include <string>

namespace imbridge {

// A file size as people read it in a notice: "512 B", "14 KB", "2.1 MB",
// "1.3 GB" (binary multiples, one decimal from MB up).
std::string FileSizeText(uint64_t bytes);

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_FILE_SIZE_H_
