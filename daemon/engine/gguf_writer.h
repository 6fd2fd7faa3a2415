// engine/gguf_writer.h — writes GGUF v3 files.
//
// Metadata is written in insertion order; tensor data is produced on demand
// while writing, one tensor at a time, so a multi-gigabyte model never has to
// be in memory at once. Files are written atomically.
#ifndef EDGELLM_ENGINE_GGUF_WRITER_H_
#define EDGELLM_ENGINE_GGUF_WRITER_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/atomic_file.h"
#include "daemon/engine/gguf.h"

namespace edgellm::engine {

// Not thread-safe. Build it up, then call Write or Serialize (any number of times).
class GgufWriter {
 public:
  // Fills exactly `out.size()` bytes of one tensor's data.
  using TensorFill = std::function<absl::Status(absl::Span<uint8_t> out)>;

  explicit GgufWriter(uint32_t alignment = kGgufDefaultAlignment) : alignment_(alignment) {}

  // Adds or replaces a metadata entry.
  void Set(std::string key, GgufValue value);

  // Declares a tensor; `dims[0]` is the innermost dimension. InvalidArgument if
  // the name repeats, the type is unknown or dims[0] is not a whole number of blocks.
  absl::Status AddTensor(std::string name, GgmlType type, std::vector<uint64_t> dims, TensorFill fill);
  // Same, from bytes the caller keeps alive until the last Write.
  absl::Status AddTensor(std::string name, GgmlType type, std::vector<uint64_t> dims,
                         absl::Span<const uint8_t> data);

  // Writes the file atomically; on any error `path` is left as it was.
  absl::Status Write(const std::string& path) const;
  // The whole file as bytes (tests and small files).
  absl::StatusOr<std::string> Serialize() const;

 private:
  struct PendingTensor {
    GgufTensorInfo info;
    TensorFill fill;
  };
  absl::Status WriteTo(FileSink& sink) const;

  uint32_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<PendingTensor> tensors_;
  uint64_t data_size_ = 0;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_GGUF_WRITER_H_
