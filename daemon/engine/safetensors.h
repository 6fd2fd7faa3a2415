// engine/safetensors.h — reads and writes the safetensors format (the one
// PEFT adapters and Hugging Face models are saved in): an 8-byte little-endian
// header length, a JSON header naming each tensor's dtype, shape and byte
// range, then the tensor bytes.
//
// The reader validates the header as the GGUF reader does: its length against
// the file and a 100 MB bound, the JSON's structure, every dtype and shape,
// and that the byte ranges tile the data exactly (no gap, no overlap, nothing
// past the end) — so a truncated or hostile file yields InvalidArgument naming
// what is wrong, never a read out of bounds. Tensor data is not copied.
#ifndef EDGELLM_ENGINE_SAFETENSORS_H_
#define EDGELLM_ENGINE_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace edgellm::engine {

class MappedFile;

enum class SafetensorsDtype { kF32, kF16, kBF16 };

struct SafetensorsTensor {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::vector<int64_t> shape;
  absl::Span<const uint8_t> data;  // in the reader's bytes

  int64_t element_count() const;
};

// Immutable after Open; safe to share between threads.
class SafetensorsReader {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsReader>> Open(const std::string& path);
  // Parses bytes held in memory (tests, fuzzing); `name` appears in errors.
  static absl::StatusOr<std::unique_ptr<SafetensorsReader>> FromBytes(std::string bytes,
                                                                      std::string name = "<memory>");
  ~SafetensorsReader();

  // In the order of their data.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  // nullptr when absent.
  const SafetensorsTensor* Find(std::string_view name) const;
  // The header's "__metadata__" (string to string).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsReader() = default;
  absl::Status Parse();

  std::string name_;
  std::unique_ptr<MappedFile> file_;
  std::string owned_bytes_;
  absl::Span<const uint8_t> bytes_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// The tensor's values as float32 into `out`, which holds element_count().
void ReadFloats(const SafetensorsTensor& tensor, absl::Span<float> out);

// Builds a float32 safetensors file. Not thread-safe.
class SafetensorsWriter {
 public:
  void SetMetadata(std::string key, std::string value);
  // `data` must stay alive until the last Write or Serialize. InvalidArgument
  // for a repeated name or a shape that does not match the data.
  absl::Status Add(std::string name, std::vector<int64_t> shape, absl::Span<const float> data);
  // Atomically (common/atomic_file.h).
  absl::Status Write(const std::string& path) const;
  std::string Serialize() const;

 private:
  std::string Header() const;

  struct Pending {
    std::vector<int64_t> shape;
    absl::Span<const float> data;
  };
  std::map<std::string, Pending> tensors_;  // safetensors orders the header by name
  std::map<std::string, std::string> metadata_;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_SAFETENSORS_H_
