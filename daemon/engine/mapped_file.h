// engine/mapped_file.h — a read-only memory mapping of a whole file.
#ifndef EDGELLM_ENGINE_MAPPED_FILE_H_
#define EDGELLM_ENGINE_MAPPED_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace edgellm::engine {

// Owns a private read-only mapping; unmaps on destruction. Immutable after
// Open, so safe to read from any number of threads.
class MappedFile {
 public:
  // NotFound / PermissionDenied / Internal with the path and errno text.
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  absl::Span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const uint8_t* data_;
  size_t size_;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_MAPPED_FILE_H_
