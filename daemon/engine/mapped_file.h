// engine/mapped_file.h — a whole file's bytes in memory, read-only: mapped
// from the page cache, or read into the process's own memory.
#ifndef EDGELLM_ENGINE_MAPPED_FILE_H_
#define EDGELLM_ENGINE_MAPPED_FILE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace edgellm::engine {

enum class FileAccess {
  // mmap: pages come from the page cache as they are touched, shared with
  // every other reader of the file; nothing is read at open.
  kMapped,
  // Read whole into anonymous memory (transparent huge pages where the
  // kernel gives them), then made read-only: a model's weights stream from
  // there faster than from page-cache pages (under a hypervisor about twice
  // as fast for gemma2-2b Q4_K_M decode on one thread), at the cost of
  // reading the file at open and a private copy.
  kResident,
};

// Owns a private read-only mapping; unmaps on destruction. Immutable after
// Open, so safe to read from any number of threads.
class MappedFile {
 public:
  // NotFound / PermissionDenied / Internal with the path and errno text;
  // ResourceExhausted when a resident copy does not fit in memory.
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path,
                                                          FileAccess access = FileAccess::kMapped);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  absl::Span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

  // For a resident copy: the bytes are writable while `rewrite` runs (the
  // model loader packing weights for its kernels), read-only again after.
  // FailedPrecondition for a mapping of the file, whose pages are the page
  // cache's. Not to be called while anything else reads the bytes.
  absl::Status RewriteInPlace(const std::function<void()>& rewrite);

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size, bool resident)
      : path_(std::move(path)), data_(data), size_(size), resident_(resident) {}
  std::string path_;
  const uint8_t* data_;
  size_t size_;
  bool resident_;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_MAPPED_FILE_H_
