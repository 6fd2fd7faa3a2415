#include "common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "common/str_cat.h"
#include "common/status_macros.h"

namespace edgellm {
namespace {

absl::Status ErrnoError(std::string_view what, const std::string& path) {
  return absl::InternalError(edgellm::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

class FdSink final : public FileSink {
 public:
  FdSink(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  absl::Status Append(absl::Span<const uint8_t> bytes) override {
    const uint8_t* p = bytes.data();
    size_t left = bytes.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("cannot write", path_);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    size_ += bytes.size();
    return absl::OkStatus();
  }
  uint64_t size() const override { return size_; }

 private:
  int fd_;
  std::string path_;
  uint64_t size_ = 0;
};

// Owns a file descriptor; closes it on destruction.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

absl::Status SyncDirectoryOf(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  ScopedFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError("cannot open directory", dir.string());
  if (::fsync(fd.get()) != 0) return ErrnoError("cannot fsync directory", dir.string());
  return absl::OkStatus();
}

}  // namespace

absl::Status SyncPath(const std::string& path) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError("cannot open", path);
  if (::fsync(fd.get()) != 0) return ErrnoError("cannot fsync", path);
  return absl::OkStatus();
}

namespace {

absl::Status WriteAndRename(const std::string& tmp, const std::string& path,
                            const std::function<absl::Status(FileSink&)>& produce) {
  ScopedFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoError("cannot create", tmp);
  FdSink sink(fd.get(), tmp);
  EDGELLM_RETURN_IF_ERROR(produce(sink));
  if (::fsync(fd.get()) != 0) return ErrnoError("cannot fsync", tmp);
  if (::close(fd.release()) != 0) return ErrnoError("cannot close", tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError("cannot rename onto", path);
  return SyncDirectoryOf(path);
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path,
                                 const std::function<absl::Status(FileSink&)>& produce) {
  const std::string tmp = edgellm::StrCat(path, ".tmp.", ::getpid());
  absl::Status status = WriteAndRename(tmp, path, produce);
  if (!status.ok()) ::unlink(tmp.c_str());
  return status;
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view content) {
  return WriteFileAtomically(path, [content](FileSink& sink) {
    return sink.Append(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(content.data()),
                                           content.size()));
  });
}

}  // namespace edgellm
