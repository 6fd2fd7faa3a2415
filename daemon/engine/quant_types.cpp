#include "daemon/engine/quant_types.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

#include "common/fp16.h"
#include "common/str_cat.h"
#include "daemon/engine/iq4_quants.h"
#include "daemon/engine/k_quants.h"
#include "daemon/engine/legacy_quants.h"

namespace edgellm::engine {
namespace {

void CopyF32(const float* x, uint8_t* out, size_t n) { std::memcpy(out, x, n * sizeof(float)); }
void LoadF32(const uint8_t* in, float* y, size_t n) { std::memcpy(y, in, n * sizeof(float)); }

void QuantizeF16(const float* x, uint8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) StoreFp16(out + 2 * i, x[i]);
}
void DequantizeF16(const uint8_t* in, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = LoadFp16(in + 2 * i);
}

void QuantizeBf16(const float* x, uint8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const uint16_t h = Fp32ToBf16(x[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}
void DequantizeBf16(const uint8_t* in, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, in + 2 * i, 2);
    y[i] = Bf16ToFp32(h);
  }
}

// Every GGML type this build knows: one row each. A type with converters is
// read and written everywhere a weight can be (loading, `edgellm quantize`,
// training on a frozen base); its dot-product kernels are in quant_kernels.h.
constexpr std::array<GgmlTypeTraits, 31> kTraits = {{
    {GgmlType::kF32, "F32", 1, 4, CopyF32, LoadF32, 0},
    {GgmlType::kF16, "F16", 1, 2, QuantizeF16, DequantizeF16, 1},
    {GgmlType::kBF16, "BF16", 1, 2, QuantizeBf16, DequantizeBf16, 32},
    {GgmlType::kQ4_0, "Q4_0", 32, 18, QuantizeQ4_0, DequantizeQ4_0, 2},
    {GgmlType::kQ4_1, "Q4_1", 32, 20, QuantizeQ4_1, DequantizeQ4_1, 3},
    {GgmlType::kQ5_0, "Q5_0", 32, 22, QuantizeQ5_0, DequantizeQ5_0, 8},
    {GgmlType::kQ5_1, "Q5_1", 32, 24, QuantizeQ5_1, DequantizeQ5_1, 9},
    {GgmlType::kQ8_0, "Q8_0", 32, 34, QuantizeQ8_0, DequantizeQ8_0, 7},
    {GgmlType::kQ8_1, "Q8_1", 32, 36},
    {GgmlType::kQ2_K, "Q2_K", 256, 84, QuantizeQ2_K, DequantizeQ2_K, 10},
    {GgmlType::kQ3_K, "Q3_K", 256, 110, QuantizeQ3_K, DequantizeQ3_K, 12},
    {GgmlType::kQ4_K, "Q4_K", 256, 144, QuantizeQ4_K, DequantizeQ4_K, 15},
    {GgmlType::kQ5_K, "Q5_K", 256, 176, QuantizeQ5_K, DequantizeQ5_K, 17},
    {GgmlType::kQ6_K, "Q6_K", 256, 210, QuantizeQ6_K, DequantizeQ6_K, 18},
    {GgmlType::kQ8_K, "Q8_K", 256, 292},
    {GgmlType::kIQ2_XXS, "IQ2_XXS", 256, 66},
    {GgmlType::kIQ2_XS, "IQ2_XS", 256, 74},
    {GgmlType::kIQ3_XXS, "IQ3_XXS", 256, 98},
    {GgmlType::kIQ1_S, "IQ1_S", 256, 50},
    {GgmlType::kIQ4_NL, "IQ4_NL", 32, 18, QuantizeIq4Nl, DequantizeIq4Nl, 25},
    {GgmlType::kIQ3_S, "IQ3_S", 256, 110},
    {GgmlType::kIQ2_S, "IQ2_S", 256, 82},
    {GgmlType::kIQ4_XS, "IQ4_XS", 256, 136, QuantizeIq4Xs, DequantizeIq4Xs, 30},
    {GgmlType::kIQ1_M, "IQ1_M", 256, 56},
    {GgmlType::kTQ1_0, "TQ1_0", 256, 54},
    {GgmlType::kTQ2_0, "TQ2_0", 256, 66},
    {GgmlType::kI8, "I8", 1, 1},
    {GgmlType::kI16, "I16", 1, 2},
    {GgmlType::kI32, "I32", 1, 4},
    {GgmlType::kI64, "I64", 1, 8},
    {GgmlType::kF64, "F64", 1, 8},
}};

absl::Status CheckSizes(GgmlType type, size_t n_weights, size_t n_bytes) {
  const GgmlTypeTraits& t = TraitsOf(type);
  if (n_weights % t.block_size != 0) {
    return absl::InvalidArgumentError(edgellm::StrCat(n_weights, " weights is not a multiple of the ",
                                                   t.name, " block size ", t.block_size));
  }
  if (RowBytes(type, n_weights) != n_bytes) {
    return absl::InvalidArgumentError(edgellm::StrCat(n_weights, " ", t.name, " weights take ",
                                                   RowBytes(type, n_weights),
                                                   " bytes, buffer has ", n_bytes));
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<GgmlTypeTraits> TraitsOf(uint32_t type_id) {
  for (const GgmlTypeTraits& t : kTraits) {
    if (static_cast<uint32_t>(t.type) == type_id) return t;
  }
  return std::nullopt;
}

const GgmlTypeTraits& TraitsOf(GgmlType type) {
  for (const GgmlTypeTraits& t : kTraits) {
    if (t.type == type) return t;
  }
  return kTraits[0];  // unreachable for a valid enumerator
}

std::optional<GgmlType> GgmlTypeFromName(std::string_view name) {
  for (const GgmlTypeTraits& t : kTraits) {
    if (t.name.size() != name.size()) continue;
    if (std::equal(name.begin(), name.end(), t.name.begin(),
                   [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) == b; })) {
      return t.type;
    }
  }
  return std::nullopt;
}

uint64_t RowBytes(GgmlType type, uint64_t n) {
  const GgmlTypeTraits& t = TraitsOf(type);
  return n / t.block_size * t.block_bytes;
}

bool CanDequantize(GgmlType type) { return TraitsOf(type).dequantize != nullptr; }

bool CanQuantize(GgmlType type) { return TraitsOf(type).quantize != nullptr; }

std::string WritableTypeNames() {
  std::string names;
  for (const GgmlTypeTraits& t : kTraits) {
    if (t.quantize == nullptr) continue;
    if (!names.empty()) names += ", ";
    names += t.name;
  }
  return names;
}

absl::Status Quantize(GgmlType type, absl::Span<const float> src, absl::Span<uint8_t> dst) {
  const GgmlTypeTraits& t = TraitsOf(type);
  if (t.quantize == nullptr) return absl::InvalidArgumentError(edgellm::StrCat("cannot quantize to ", t.name));
  if (absl::Status s = CheckSizes(type, src.size(), dst.size()); !s.ok()) return s;
  t.quantize(src.data(), dst.data(), src.size() / t.block_size);
  return absl::OkStatus();
}

absl::Status Dequantize(GgmlType type, absl::Span<const uint8_t> src, absl::Span<float> dst) {
  const GgmlTypeTraits& t = TraitsOf(type);
  if (t.dequantize == nullptr) return absl::InvalidArgumentError(edgellm::StrCat("cannot dequantize ", t.name));
  if (absl::Status s = CheckSizes(type, dst.size(), src.size()); !s.ok()) return s;
  t.dequantize(src.data(), dst.data(), dst.size() / t.block_size);
  return absl::OkStatus();
}

}  // namespace edgellm::engine
