#ifndef IMBRIDGE_BRIDGE_BLOB_STORE_H_
#define IMBRIDGE_BRIDGE_BLOB_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imbridge::bridge {

// The files behind the router's blob store: `<data_dir>/blobs/ab/abcdef…`,
// named by the SHA-256 of their content. Uploads are written to
// `blobs/tmp/` and renamed into place only when complete and within the size
// limit, so a failed or oversized upload leaves nothing behind. The metadata
// (sizes, last use) lives in the Store.
//
// Thread-safe; every method blocks on file I/O, so call them off gRPC's
// reaction threads.
class BlobStore {
 public:
  // One upload in progress; not thread-safe. Destroying it unfinished
  // removes its temporary file.
  class Upload {
   public:
    virtual ~Upload() = default;
    // Appends bytes; RESOURCE_EXHAUSTED once the total passes the limit.
    virtual absl::Status Append(absl::string_view data) = 0;
    // Syncs the file and moves it into place; returns its id (hex SHA-256)
    // and size.
    virtual absl::StatusOr<std::pair<std::string, uint64_t>> Commit() = 0;
  };

  // One stored blob opened for reading; not thread-safe.
  class Reader {
   public:
    virtual ~Reader() = default;
    // Reads up to `max` bytes; an empty result means the end.
    virtual absl::StatusOr<std::string> Read(size_t max) = 0;
    virtual uint64_t size() const = 0;
  };

  BlobStore(std::string data_dir, uint64_t max_bytes);

  // Creates the directories and removes leftovers of interrupted uploads.
  absl::Status Init();

  uint64_t max_bytes() const { return max_bytes_; }

  absl::StatusOr<std::unique_ptr<Upload>> StartUpload();

  // NOT_FOUND if there is no such blob (or the id is not a SHA-256 hex).
  absl::StatusOr<std::unique_ptr<Reader>> Open(absl::string_view blob_id);

  // Removes a blob's file; removing a missing blob is not an error.
  absl::Status Remove(absl::string_view blob_id);

 private:
  std::string PathOf(absl::string_view blob_id) const;

  const std::string dir_;
  const uint64_t max_bytes_;
};

// True if `id` looks like a blob id (64 lower-case hex characters).
bool IsBlobId(absl::string_view id);

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_BLOB_STORE_H_
