// engine/gguf.h — the in-memory form of a GGUF file's metadata and tensor
// directory, shared by the reader and the writer.
//
// A GgufValue is a tagged value: a scalar, a string, or an array of one
// element type (numbers kept as their exact little-endian bytes, strings as
// strings, nested arrays as values). Values are plain copyable data.
#ifndef EDGELLM_ENGINE_GGUF_H_
#define EDGELLM_ENGINE_GGUF_H_

#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "daemon/engine/quant_types.h"

namespace edgellm::engine {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr int kGgufMaxDims = 4;

enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// Bytes of a fixed-size scalar type; 0 for string and array.
uint32_t GgufScalarSize(GgufType type);
std::string_view GgufTypeName(GgufType type);

class GgufValue {
 public:
  GgufValue() = default;
  static GgufValue Uint32(uint32_t v) { return Scalar(GgufType::kUint32, v); }
  static GgufValue Int32(int32_t v) { return Scalar(GgufType::kInt32, v); }
  static GgufValue Uint64(uint64_t v) { return Scalar(GgufType::kUint64, v); }
  static GgufValue Float32(float v) { return Scalar(GgufType::kFloat32, v); }
  static GgufValue Bool(bool v) { return Scalar(GgufType::kBool, static_cast<uint8_t>(v)); }
  static GgufValue String(std::string v);
  static GgufValue StringArray(const std::vector<std::string>& v);
  // A string array from its elements end to end and the offset where each ends.
  static GgufValue StringArray(std::string concatenated, std::vector<uint64_t> ends);
  static GgufValue Float32Array(absl::Span<const float> v) { return NumberArray(GgufType::kFloat32, v); }
  static GgufValue Int32Array(absl::Span<const int32_t> v) { return NumberArray(GgufType::kInt32, v); }

  // A scalar of `type` from its raw little-endian bytes (what the reader sees).
  static GgufValue FromRaw(GgufType type, absl::Span<const uint8_t> raw);
  // An array of fixed-size elements from their raw bytes.
  static GgufValue RawArray(GgufType elem_type, uint64_t count, std::vector<uint8_t> raw);
  static GgufValue NestedArray(GgufType elem_type, std::vector<GgufValue> items);

  GgufType type() const { return type_; }
  bool is_array() const { return type_ == GgufType::kArray; }
  GgufType elem_type() const { return elem_type_; }
  uint64_t array_size() const { return count_; }

  // Any integer or bool scalar as int64 (uint64 above INT64_MAX is an error).
  absl::StatusOr<int64_t> AsInt() const;
  // Any numeric scalar as double.
  absl::StatusOr<double> AsFloat() const;
  absl::StatusOr<std::string> AsString() const;
  // Arrays: string elements, or numeric elements converted.
  absl::StatusOr<std::vector<std::string>> AsStringArray() const;
  absl::StatusOr<std::vector<float>> AsFloatArray() const;
  absl::StatusOr<std::vector<int64_t>> AsIntArray() const;

  // For the writer: the raw bytes of a scalar or of a fixed-size-element array.
  const std::vector<uint8_t>& raw() const { return raw_; }
  const std::string& string_value() const { return string_; }
  // Element i of a string array, i < array_size().
  std::string_view StringAt(uint64_t i) const;
  const std::vector<GgufValue>& items() const { return items_; }

 private:
  template <typename T>
  static GgufValue Scalar(GgufType type, T v) {
    GgufValue out;
    out.type_ = type;
    out.raw_.resize(sizeof(T));
    std::memcpy(out.raw_.data(), &v, sizeof(T));
    return out;
  }
  template <typename T>
  static GgufValue NumberArray(GgufType elem_type, absl::Span<const T> v) {
    std::vector<uint8_t> raw(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(raw.data(), v.data(), raw.size());
    return RawArray(elem_type, v.size(), std::move(raw));
  }
  // Element i of a fixed-size array (or the scalar when i == 0 and not an array).
  absl::StatusOr<double> NumberAt(GgufType type, uint64_t i) const;
  // The same for integer and bool types, exactly.
  absl::StatusOr<int64_t> IntegerAt(GgufType type, uint64_t i) const;

  GgufType type_ = GgufType::kUint8;
  GgufType elem_type_ = GgufType::kUint8;
  uint64_t count_ = 0;
  std::vector<uint8_t> raw_;
  std::string string_;
  // A string array's elements end to end, and where each ends: one
  // allocation for a vocabulary rather than one per token.
  std::string string_bytes_;
  std::vector<uint64_t> string_ends_;
  std::vector<GgufValue> items_;
};

// One entry of the tensor directory. `dims[0]` is the innermost (contiguous)
// dimension, as in GGUF; a weight [dims0=in, dims1=out] is row-major [out, in].
struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t n_bytes = 0;

  uint64_t element_count() const;
};

using GgufMetadata = std::map<std::string, GgufValue, std::less<>>;

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_GGUF_H_
