// engine/quant_types.h — GGML tensor types: their block geometry, and
// quantize/dequantize for the types the engine computes with.
//
// One table (quant_types.cpp) holds a row per type: its id, name, block size
// and bytes, and its row converters. The layouts are the GGUF ones, byte for
// byte: legacy_quants.h (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), k_quants.h (Q2_K to
// Q6_K), iq4_quants.h (IQ4_NL, IQ4_XS). Every other known type is described
// (so files holding it can be validated) but not converted.
#ifndef EDGELLM_ENGINE_QUANT_TYPES_H_
#define EDGELLM_ENGINE_QUANT_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
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
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
};

// Converts `blocks` whole blocks of a row.
using QuantizeRowFn = void (*)(const float* x, uint8_t* out, size_t blocks);
using DequantizeRowFn = void (*)(const uint8_t* in, float* y, size_t blocks);

struct GgmlTypeTraits {
  GgmlType type;
  std::string_view name;
  uint32_t block_size;   // weights per block
  uint32_t block_bytes;  // bytes per block
  QuantizeRowFn quantize = nullptr;      // nullptr: not written by this build
  DequantizeRowFn dequantize = nullptr;  // nullptr: not read by this build
  int32_t file_type = -1;  // llama.cpp's general.file_type of a model mostly of this type; -1: none
};

// Traits of a type id read from a file; nullopt for an id this build does not know.
std::optional<GgmlTypeTraits> TraitsOf(uint32_t type_id);
const GgmlTypeTraits& TraitsOf(GgmlType type);
// Parses "F32", "f16", "Q8_0", "q4_0", ...; nullopt if unknown.
std::optional<GgmlType> GgmlTypeFromName(std::string_view name);

// Bytes of one row of `n` weights; `n` must be a multiple of the block size.
uint64_t RowBytes(GgmlType type, uint64_t n);

// True for the types that Quantize and Dequantize support: F32, F16, BF16,
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS.
bool CanDequantize(GgmlType type);
bool CanQuantize(GgmlType type);
// "F32, F16, Q4_0, ...": the types Quantize writes, for messages.
std::string WritableTypeNames();

// Converts `src.size()` floats into `dst` (exactly RowBytes(type, src.size())
// bytes). InvalidArgument if the type is unsupported or sizes do not match.
absl::Status Quantize(GgmlType type, absl::Span<const float> src, absl::Span<uint8_t> dst);

// Converts `dst.size()` weights from `src` (exactly RowBytes(type, dst.size())
// bytes) into floats. InvalidArgument if unsupported or sizes do not match.
absl::Status Dequantize(GgmlType type, absl::Span<const uint8_t> src, absl::Span<float> dst);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_QUANT_TYPES_H_
