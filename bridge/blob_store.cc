#include "bridge/blob_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace imbridge::bridge {
namespace {

namespace fs = std::filesystem;

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(
      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

class FileUpload : public BlobStore::Upload {
 public:
  FileUpload(int fd, std::string tmp_path, std::string blobs_dir,
             uint64_t max_bytes)
      : fd_(fd),
        tmp_path_(std::move(tmp_path)),
        blobs_dir_(std::move(blobs_dir)),
        max_bytes_(max_bytes),
        sha_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr);
  }
  ~FileUpload() override {
    if (fd_ >= 0) ::close(fd_);
    if (!placed_) ::unlink(tmp_path_.c_str());
    EVP_MD_CTX_free(sha_);
  }

  absl::Status Append(absl::string_view data) override {
    if (size_ + data.size() > max_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "file exceeds the blob size limit of ", max_bytes_, " bytes"));
    }
    EVP_DigestUpdate(sha_, data.data(), data.size());
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("cannot write", tmp_path_);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    size_ += data.size();
    return absl::OkStatus();
  }

  absl::StatusOr<std::pair<std::string, uint64_t>> Finish() override {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(sha_, digest, &len);
    id_ = absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(digest), len));
    if (::fsync(fd_) != 0) return ErrnoError("cannot sync", tmp_path_);
    ::close(fd_);
    fd_ = -1;
    return std::make_pair(id_, size_);
  }

  absl::Status Place() override {
    std::string dir = absl::StrCat(blobs_dir_, "/", id_.substr(0, 2));
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot create ", dir, ": ", ec.message()));
    }
    std::string final_path = absl::StrCat(dir, "/", id_);
    if (::rename(tmp_path_.c_str(), final_path.c_str()) != 0) {
      return ErrnoError("cannot move blob into", final_path);
    }
    placed_ = true;
    // The new name is durable once its directory is synced.
    int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return ErrnoError("cannot open", dir);
    int synced = ::fsync(dir_fd);
    ::close(dir_fd);
    if (synced != 0) return ErrnoError("cannot sync", dir);
    return absl::OkStatus();
  }

 private:
  int fd_;
  std::string tmp_path_;
  std::string blobs_dir_;
  uint64_t max_bytes_;
  uint64_t size_ = 0;
  std::string id_;
  bool placed_ = false;
  EVP_MD_CTX* sha_;
};

class FileReader : public BlobStore::Reader {
 public:
  FileReader(int fd, uint64_t size) : fd_(fd), size_(size) {}
  ~FileReader() override { ::close(fd_); }
  absl::StatusOr<std::string> Read(size_t max) override {
    std::string buf(max, '\0');
    while (true) {
      ssize_t n = ::read(fd_, buf.data(), max);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        return absl::InternalError(
            absl::StrCat("cannot read blob: ", std::strerror(errno)));
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
  }
  uint64_t size() const override { return size_; }

 private:
  int fd_;
  uint64_t size_;
};

}  // namespace

bool IsBlobId(absl::string_view id) {
  if (id.size() != 64) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

BlobStore::BlobStore(std::string dir, uint64_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes) {}

absl::Status BlobStore::Init() {
  std::error_code ec;
  fs::create_directories(dir_ + "/tmp", ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", dir_, "/tmp: ", ec.message()));
  }
  RemoveAbandonedUploads();
  return absl::OkStatus();
}

int BlobStore::RemoveAbandonedUploads() {
  const auto abandoned =
      fs::file_time_type::clock::now() -
      std::chrono::seconds(absl::ToInt64Seconds(kAbandonedUploadAge));
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_ + "/tmp", ec)) {
    std::error_code file_ec;
    auto written = fs::last_write_time(entry.path(), file_ec);
    if (!file_ec && written < abandoned && fs::remove(entry.path(), file_ec)) {
      ++removed;
    }
  }
  return removed;
}

absl::StatusOr<std::unique_ptr<BlobStore::Upload>> BlobStore::StartUpload() {
  // Unique among the routers sharing the directory: host, process, a
  // counter and a random part (a pid may repeat across hosts and restarts).
  static std::atomic<uint64_t> counter{0};
  static const std::string host = [] {
    char name[256] = {};
    if (::gethostname(name, sizeof(name) - 1) != 0) return std::string("host");
    return std::string(name);
  }();
  thread_local absl::BitGen random;
  std::string path = absl::StrCat(dir_, "/tmp/upload-", host, "-", ::getpid(),
                                  "-", counter.fetch_add(1), "-",
                                  absl::Hex(absl::Uniform<uint64_t>(random)));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) return ErrnoError("cannot create", path);
  return std::unique_ptr<Upload>(new FileUpload(fd, path, dir_, max_bytes_));
}

std::string BlobStore::PathOf(absl::string_view id) const {
  return absl::StrCat(dir_, "/", id.substr(0, 2), "/", id);
}

absl::StatusOr<std::unique_ptr<BlobStore::Reader>> BlobStore::Open(
    absl::string_view blob_id) {
  if (!IsBlobId(blob_id)) {
    return absl::NotFoundError(absl::StrCat("no blob '", blob_id, "'"));
  }
  std::string path = PathOf(blob_id);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return absl::NotFoundError(absl::StrCat("no blob ", blob_id));
    return ErrnoError("cannot open", path);
  }
  struct stat st;
  ::fstat(fd, &st);
  return std::unique_ptr<Reader>(
      new FileReader(fd, static_cast<uint64_t>(st.st_size)));
}

absl::Status BlobStore::Remove(absl::string_view blob_id) {
  if (!IsBlobId(blob_id)) return absl::OkStatus();
  std::string path = PathOf(blob_id);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError("cannot remove", path);
  }
  return absl::OkStatus();
}

absl::Status StoreUploadedBlob(Store& store, BlobStore::Upload& upload,
                               const BlobInfo& info) {
  IMB_RETURN_IF_ERROR(store.RecordBlob(info));
  return upload.Place();
}

absl::StatusOr<int> CollectBlobs(Store& store, BlobStore& blobs,
                                 absl::Span<const std::string> candidates,
                                 absl::Time unused_before) {
  int removed = 0;
  for (const std::string& id : candidates) {
    IMB_ASSIGN_OR_RETURN(bool deleted, store.DeleteBlob(id, unused_before));
    if (!deleted) continue;  // used or needed since it was listed
    IMB_RETURN_IF_ERROR(blobs.Remove(id));
    ++removed;
  }
  return removed;
}

}  // namespace imbridge::bridge
