#ifndef IMBRIDGE_BRIDGE_BLOB_STORE_H_
#define IMBRIDGE_BRIDGE_BLOB_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "bridge/store.h"

namespace imbridge::bridge {

// The files behind the router's blob store: `<dir>/ab/abcdef…`, named by the
// SHA-256 of their content (`dir` is `<data_dir>/blobs`, or
// store.postgres.blob_dir, which several routers share). Uploads are written
// to `<dir>/tmp/` under a name no other router or process uses, synced, and
// renamed into place only when complete and within the size limit, so a
// failed or oversized upload leaves nothing behind and a reader never sees
// a partial file. Two routers storing the same blob rename the same bytes
// onto the same name; either rename wins. The metadata (sizes, last use)
// lives in the Store: see StoreUploadedBlob and CollectBlobs for the order
// that keeps files and rows consistent across routers.
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
    // Syncs and closes the file; returns its id (hex SHA-256) and size.
    // Call once, after the last Append.
    virtual absl::StatusOr<std::pair<std::string, uint64_t>> Finish() = 0;
    // Moves the finished file into place under its id (and syncs the
    // directory). Call once, after Finish.
    virtual absl::Status Place() = 0;
  };

  // One stored blob opened for reading; not thread-safe.
  class Reader {
   public:
    virtual ~Reader() = default;
    // Reads up to `max` bytes; an empty result means the end.
    virtual absl::StatusOr<std::string> Read(size_t max) = 0;
    virtual uint64_t size() const = 0;
  };

  // `dir` holds the blobs (created by Init).
  BlobStore(std::string dir, uint64_t max_bytes);

  // Creates the directories and removes leftovers of interrupted uploads
  // (RemoveAbandonedUploads).
  absl::Status Init();

  // Removes upload files untouched for kAbandonedUploadAge: another router
  // sharing the directory may be writing the younger ones right now.
  // Returns how many it removed.
  int RemoveAbandonedUploads();

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

// An upload whose file was not written to for this long is abandoned (its
// router died); a live upload writes every chunk as it arrives.
inline constexpr absl::Duration kAbandonedUploadAge = absl::Hours(1);

// True if `id` looks like a blob id (64 lower-case hex characters).
bool IsBlobId(absl::string_view id);

// Records the finished `upload` as `info` in `store` and then moves its file
// into place, inside `store`'s open transaction. In this order a router
// collecting the same blob (CollectBlobs, on another router sharing the
// store and the directory) cannot remove the new file: either its DeleteBlob
// came first and holds the row until its commit, so RecordBlob waits and the
// file is placed after the removal, or RecordBlob came first and the
// collection finds the blob used.
absl::Status StoreUploadedBlob(Store& store, BlobStore::Upload& upload,
                               const BlobInfo& info);

// Removes those of `candidates` (from Store::ListCollectableBlobs) that are
// still collectable, unused since `unused_before`, inside `store`'s open
// transaction: each one's row first (DeleteBlob checks again and locks it),
// then its file. Returns how many it removed.
absl::StatusOr<int> CollectBlobs(Store& store, BlobStore& blobs,
                                 absl::Span<const std::string> candidates,
                                 absl::Time unused_before);

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_BLOB_STORE_H_
