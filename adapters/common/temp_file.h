#ifndef IMBRIDGE_ADAPTERS_COMMON_TEMP_FILE_H_
#define IMBRIDGE_ADAPTERS_COMMON_TEMP_FILE_H_

#include <cstdio>

#include "absl/strings/string_view.h"

namespace imbridge::adapters {

// An anonymous temporary file (std::tmpfile) that holds a file while it
// passes between a messenger and the router's blob store, so that large
// files never sit in memory; removed when closed. get() is null when the
// file could not be created. Not thread-safe; neither copyable nor movable.
class TempFile {
 public:
  TempFile() : file_(std::tmpfile()) {}
  ~TempFile() {
    if (file_ != nullptr) std::fclose(file_);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  FILE* get() const { return file_; }

  // Appends `chunk`; false on a write error.
  bool Append(absl::string_view chunk) {
    return std::fwrite(chunk.data(), 1, chunk.size(), file_) == chunk.size();
  }

  // Flushes what was written and goes back to the start for reading; false
  // on an error.
  bool Rewind() {
    return std::fflush(file_) == 0 && std::fseek(file_, 0, SEEK_SET) == 0;
  }

 private:
  FILE* file_;
};

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_TEMP_FILE_H_
