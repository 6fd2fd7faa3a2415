#include "daemon/engine/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "common/str_cat.h"

namespace edgellm::engine {
namespace {

// Bytes [begin, end) of the file read to the same offsets of `dest`; the
// error's text, or empty.
std::string ReadRange(int fd, char* dest, size_t begin, size_t end) {
  while (begin < end) {
    const ssize_t n = ::pread(fd, dest + begin, end - begin, static_cast<off_t>(begin));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n == 0 ? "the file shrank while it was read" : std::strerror(errno);
    begin += static_cast<size_t>(n);
  }
  return "";
}

// The file's `size` bytes read into new anonymous memory, left read-only.
// Several threads read a part each: most of a warm read is the kernel
// zeroing the new pages it fills, which one thread does at about half the
// rate two do.
absl::StatusOr<void*> ReadResident(int fd, size_t size, const std::string& path) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        edgellm::StrCat("cannot hold ", size, " bytes of ", path, " in memory: ", std::strerror(errno)));
  }
  ::madvise(p, size, MADV_HUGEPAGE);  // a hint: the kernel may give 4 KiB pages instead
  constexpr size_t kHugePage = size_t{2} << 20, kMaxReaders = 4, kMinPart = size_t{64} << 20;
  const size_t readers = std::clamp<size_t>(std::min<size_t>(std::thread::hardware_concurrency(), size / kMinPart),
                                            1, kMaxReaders);
  // Parts end on huge-page boundaries, so no page is filled by two readers.
  const size_t part = (size / readers + kHugePage - 1) / kHugePage * kHugePage;
  std::vector<std::string> errors(readers);
  std::vector<std::thread> helpers;
  for (size_t r = 1; r < readers; ++r) {
    helpers.emplace_back([&, r] {
      errors[r] = ReadRange(fd, static_cast<char*>(p), std::min(size, r * part), std::min(size, (r + 1) * part));
    });
  }
  errors[0] = ReadRange(fd, static_cast<char*>(p), 0, std::min(size, part));
  for (std::thread& helper : helpers) helper.join();
  for (const std::string& why : errors) {
    if (!why.empty()) {
      ::munmap(p, size);
      return absl::InternalError(edgellm::StrCat("cannot read ", path, ": ", why));
    }
  }
  ::mprotect(p, size, PROT_READ);
  return p;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MappedFile>> MappedFile::Open(const std::string& path, FileAccess access) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const std::string message = edgellm::StrCat("cannot open ", path, ": ", std::strerror(errno));
    if (errno == ENOENT) return absl::NotFoundError(message);
    if (errno == EACCES) return absl::PermissionDeniedError(message);
    return absl::InternalError(message);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(edgellm::StrCat(path, " is not a regular file"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  const uint8_t* data = nullptr;
  if (size > 0 && access == FileAccess::kResident) {
    absl::StatusOr<void*> p = ReadResident(fd, size, path);
    ::close(fd);
    if (!p.ok()) return p.status();
    return std::unique_ptr<MappedFile>(new MappedFile(path, static_cast<const uint8_t*>(*p), size, true));
  }
  if (size > 0) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const std::string message = edgellm::StrCat("cannot map ", path, ": ", std::strerror(errno));
      ::close(fd);
      return absl::InternalError(message);
    }
    data = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
  return std::unique_ptr<MappedFile>(new MappedFile(path, data, size, false));
}

absl::Status MappedFile::RewriteInPlace(const std::function<void()>& rewrite) {
  if (!resident_) {
    return absl::FailedPreconditionError(edgellm::StrCat(path_, " is mapped from the page cache, not held in memory"));
  }
  if (size_ == 0) return absl::OkStatus();
  void* start = const_cast<uint8_t*>(data_);
  if (::mprotect(start, size_, PROT_READ | PROT_WRITE) != 0) {
    return absl::InternalError(edgellm::StrCat("cannot make ", path_, "'s bytes writable: ", std::strerror(errno)));
  }
  rewrite();
  ::mprotect(start, size_, PROT_READ);
  return absl::OkStatus();
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace edgellm::engine
