// engine/gguf_reader.h — parses a GGUF v2/v3 file that is memory-mapped.
//
// Every count, length, offset and size is checked against the bytes that are
// actually there before it is used, so a truncated or hostile file yields an
// InvalidArgument status naming what is wrong and at which offset — never a
// crash, a read past the end or an allocation larger than the file.
// Tensor data is not copied: TensorData() points into the mapping.
#ifndef EDGELLM_ENGINE_GGUF_READER_H_
#define EDGELLM_ENGINE_GGUF_READER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "daemon/engine/gguf.h"
#include "daemon/engine/mapped_file.h"

namespace edgellm::engine {

// Immutable after Open; safe to share between threads.
class GgufReader {
 public:
  // Maps and parses `path`.
  static absl::StatusOr<std::unique_ptr<GgufReader>> Open(const std::string& path,
                                                          FileAccess access = FileAccess::kMapped);
  // Parses bytes held in memory (tests, fuzzing); `name` appears in errors.
  static absl::StatusOr<std::unique_ptr<GgufReader>> FromBytes(std::string bytes,
                                                               std::string name = "<memory>");

  GgufReader(const GgufReader&) = delete;
  GgufReader& operator=(const GgufReader&) = delete;

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return bytes_.size(); }
  const std::string& name() const { return name_; }

  const GgufMetadata& metadata() const { return metadata_; }
  // nullptr when absent.
  const GgufValue* Find(std::string_view key) const;
  // NotFound if absent, InvalidArgument if of the wrong type.
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  absl::StatusOr<double> GetFloat(std::string_view key) const;
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  // The value at `key`, or `fallback` when absent; an error if present but wrong.
  absl::StatusOr<int64_t> GetInt(std::string_view key, int64_t fallback) const;
  absl::StatusOr<double> GetFloat(std::string_view key, double fallback) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  // nullptr when absent.
  const GgufTensorInfo* FindTensor(std::string_view name) const;
  // The tensor's bytes inside the mapping; valid as long as the reader lives.
  absl::Span<const uint8_t> TensorData(const GgufTensorInfo& info) const;
  // For a file read into memory: its bytes (as TensorData gives them) may be
  // rewritten in place while `rewrite` runs (MappedFile::RewriteInPlace).
  // FailedPrecondition for a mapped file or one parsed from memory.
  absl::Status RewriteInPlace(const std::function<void()>& rewrite);

 private:
  GgufReader() = default;
  absl::Status Parse();

  std::string name_;
  std::unique_ptr<MappedFile> file_;  // owns bytes_ when read from disk
  std::string owned_bytes_;           // owns bytes_ when read from memory
  absl::Span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  GgufMetadata metadata_;
  std::vector<GgufTensorInfo> tensors_;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_GGUF_READER_H_
