#include "daemon/engine/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/str_cat.h"

namespace edgellm::engine {
namespace {

// The file's `size` bytes read into new anonymous memory, left read-only.
absl::StatusOr<void*> ReadResident(int fd, size_t size, const std::string& path) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        edgellm::StrCat("cannot hold ", size, " bytes of ", path, " in memory: ", std::strerror(errno)));
  }
  ::madvise(p, size, MADV_HUGEPAGE);  // a hint: the kernel may give 4 KiB pages instead
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, static_cast<char*>(p) + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n == 0 ? "the file shrank while it was read" : std::strerror(errno);
      ::munmap(p, size);
      return absl::InternalError(edgellm::StrCat("cannot read ", path, ": ", why));
    }
    done += static_cast<size_t>(n);
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
    return std::unique_ptr<MappedFile>(new MappedFile(path, static_cast<const uint8_t*>(*p), size));
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
  return std::unique_ptr<MappedFile>(new MappedFile(path, data, size));
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace edgellm::engine
