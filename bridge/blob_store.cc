#include "bridge/blob_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

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
    if (!committed_) ::unlink(tmp_path_.c_str());
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

  absl::StatusOr<std::pair<std::string, uint64_t>> Commit() override {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(sha_, digest, &len);
    std::string id = absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(digest), len));
    if (::fsync(fd_) != 0) return ErrnoError("cannot sync", tmp_path_);
    ::close(fd_);
    fd_ = -1;
    std::string dir = absl::StrCat(blobs_dir_, "/", id.substr(0, 2));
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
      return absl::InternalError(
          absl::StrCat("cannot create ", dir, ": ", ec.message()));
    std::string final_path = absl::StrCat(dir, "/", id);
    if (::rename(tmp_path_.c_str(), final_path.c_str()) != 0) {
      return ErrnoError("cannot move blob into", final_path);
    }
    committed_ = true;
    return std::make_pair(id, size_);
  }

 private:
  int fd_;
  std::string tmp_path_;
  std::string blobs_dir_;
  uint64_t max_bytes_;
  uint64_t size_ = 0;
  bool committed_ = false;
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

BlobStore::BlobStore(std::string data_dir, uint64_t max_bytes)
    : dir_(data_dir + "/blobs"), max_bytes_(max_bytes) {}

absl::Status BlobStore::Init() {
  std::error_code ec;
  fs::create_directories(dir_ + "/tmp", ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", dir_, "/tmp: ", ec.message()));
  }
  for (const auto& entry : fs::directory_iterator(dir_ + "/tmp", ec)) {
    fs::remove(entry.path(), ec);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<BlobStore::Upload>> BlobStore::StartUpload() {
  static std::atomic<uint64_t> counter{0};
  std::string path =
      absl::StrCat(dir_, "/tmp/upload-", ::getpid(), "-", counter.fetch_add(1));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
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

}  // namespace imbridge::bridge
