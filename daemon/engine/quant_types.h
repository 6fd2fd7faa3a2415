// engine/quant_types.h — GGML tensor types: their block geometry, and
// quantize/dequantize for the types the engine computes with.
//
// Layouts are the GGUF ones, byte for byte:
//   Q8_0: 32 weights per 34-byte block = fp16 scale d, int8 q[32];  w = d*q
//   Q4_0: 32 weights per 18-byte block = fp16 scale d, uint8 nibbles[16];
//         nibble j (low) is weight j, nibble j (high) is weight j+16;  w = d*(q-8)
//   Q4_K, Q6_K: super-blocks of 256 weights, see k_quants.h.
// Every other known type is described (so files holding it can be validated)
// but not converted.
#ifndef EDGELLM_ENGINE_QUANT_TYPES_H_
#define EDGELLM_ENGINE_QUANT_TYPES_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace edgellm::engine {

// Type ids as stored in a GGUF tensor info.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
};

struct GgmlTypeTraits {
  GgmlType type;
  std::string_view name;
  uint32_t block_size;   // weights per block
  uint32_t block_bytes;  // bytes per block
};

inline constexpr uint32_t kQ8_0BlockSize = 32;
inline constexpr uint32_t kQ4_0BlockSize = 32;

// Traits of a type id read from a file; nullopt for an id this build does not know.
std::optional<GgmlTypeTraits> TraitsOf(uint32_t type_id);
const GgmlTypeTraits& TraitsOf(GgmlType type);
// Parses "F32", "f16", "Q8_0", "q4_0", ...; nullopt if unknown.
std::optional<GgmlType> GgmlTypeFromName(std::string_view name);

// Bytes of one row of `n` weights; `n` must be a multiple of the block size.
uint64_t RowBytes(GgmlType type, uint64_t n);

// True for the types that Quantize and Dequantize support: F32, F16, BF16
// (dequantize only), Q8_0, Q4_0, Q4_K, Q6_K.
bool CanDequantize(GgmlType type);
bool CanQuantize(GgmlType type);

// Converts `src.size()` floats into `dst` (exactly RowBytes(type, src.size())
// bytes). InvalidArgument if the type is unsupported or sizes do not match.
absl::Status Quantize(GgmlType type, absl::Span<const float> src, absl::Span<uint8_t> dst);

// Converts `dst.size()` weights from `src` (exactly RowBytes(type, dst.size())
// bytes) into floats. InvalidArgument if unsupported or sizes do not match.
absl::Status Dequantize(GgmlType type, absl::Span<const uint8_t> src, absl::Span<float> dst);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_QUANT_TYPES_H_
