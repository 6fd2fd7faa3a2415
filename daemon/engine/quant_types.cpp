#include "daemon/engine/quant_types.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>

#include "common/str_cat.h"
#include "daemon/engine/fp16.h"
#include "daemon/engine/k_quants.h"

namespace edgellm::engine {
namespace {

constexpr std::array<GgmlTypeTraits, 20> kTraits = {{
    {GgmlType::kF32, "F32", 1, 4},
    {GgmlType::kF16, "F16", 1, 2},
    {GgmlType::kQ4_0, "Q4_0", 32, 18},
    {GgmlType::kQ4_1, "Q4_1", 32, 20},
    {GgmlType::kQ5_0, "Q5_0", 32, 22},
    {GgmlType::kQ5_1, "Q5_1", 32, 24},
    {GgmlType::kQ8_0, "Q8_0", 32, 34},
    {GgmlType::kQ8_1, "Q8_1", 32, 36},
    {GgmlType::kQ2_K, "Q2_K", 256, 84},
    {GgmlType::kQ3_K, "Q3_K", 256, 110},
    {GgmlType::kQ4_K, "Q4_K", 256, 144},
    {GgmlType::kQ5_K, "Q5_K", 256, 176},
    {GgmlType::kQ6_K, "Q6_K", 256, 210},
    {GgmlType::kQ8_K, "Q8_K", 256, 292},
    {GgmlType::kI8, "I8", 1, 1},
    {GgmlType::kI16, "I16", 1, 2},
    {GgmlType::kI32, "I32", 1, 4},
    {GgmlType::kI64, "I64", 1, 8},
    {GgmlType::kF64, "F64", 1, 8},
    {GgmlType::kBF16, "BF16", 1, 2},
}};

void QuantizeQ8_0(const float* x, uint8_t* out, size_t n_blocks) {
  for (size_t b = 0; b < n_blocks; ++b, x += kQ8_0BlockSize, out += 34) {
    float amax = 0.0f;
    for (uint32_t j = 0; j < kQ8_0BlockSize; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreFp16(out, d);
    for (uint32_t j = 0; j < kQ8_0BlockSize; ++j) {
      out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::roundf(x[j] * id)));
    }
  }
}

void DequantizeQ8_0(const uint8_t* in, float* y, size_t n_blocks) {
  for (size_t b = 0; b < n_blocks; ++b, in += 34, y += kQ8_0BlockSize) {
    const float d = LoadFp16(in);
    for (uint32_t j = 0; j < kQ8_0BlockSize; ++j) y[j] = static_cast<int8_t>(in[2 + j]) * d;
  }
}

void QuantizeQ4_0(const float* x, uint8_t* out, size_t n_blocks) {
  for (size_t b = 0; b < n_blocks; ++b, x += kQ4_0BlockSize, out += 18) {
    // The scale maps the weight of largest magnitude, with its sign, to -8.
    float amax = 0.0f;
    float max = 0.0f;
    for (uint32_t j = 0; j < kQ4_0BlockSize; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreFp16(out, d);
    for (uint32_t j = 0; j < kQ4_0BlockSize / 2; ++j) {
      const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f)));
      out[2 + j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void DequantizeQ4_0(const uint8_t* in, float* y, size_t n_blocks) {
  for (size_t b = 0; b < n_blocks; ++b, in += 18, y += kQ4_0BlockSize) {
    const float d = LoadFp16(in);
    for (uint32_t j = 0; j < kQ4_0BlockSize / 2; ++j) {
      y[j] = static_cast<float>((in[2 + j] & 0x0f) - 8) * d;
      y[j + 16] = static_cast<float>((in[2 + j] >> 4) - 8) * d;
    }
  }
}

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

bool CanDequantize(GgmlType type) {
  return type == GgmlType::kF32 || type == GgmlType::kF16 || type == GgmlType::kBF16 ||
         type == GgmlType::kQ8_0 || type == GgmlType::kQ4_0 || type == GgmlType::kQ4_K || type == GgmlType::kQ6_K;
}

bool CanQuantize(GgmlType type) { return CanDequantize(type) && type != GgmlType::kBF16; }

absl::Status Quantize(GgmlType type, absl::Span<const float> src, absl::Span<uint8_t> dst) {
  if (!CanQuantize(type)) {
    return absl::InvalidArgumentError(edgellm::StrCat("cannot quantize to ", TraitsOf(type).name));
  }
  if (absl::Status s = CheckSizes(type, src.size(), dst.size()); !s.ok()) return s;
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst.data(), src.data(), dst.size());
      break;
    case GgmlType::kF16:
      for (size_t i = 0; i < src.size(); ++i) {
        const uint16_t h = Fp32ToFp16(src[i]);
        std::memcpy(dst.data() + 2 * i, &h, 2);
      }
      break;
    case GgmlType::kQ8_0:
      QuantizeQ8_0(src.data(), dst.data(), src.size() / kQ8_0BlockSize);
      break;
    case GgmlType::kQ4_0:
      QuantizeQ4_0(src.data(), dst.data(), src.size() / kQ4_0BlockSize);
      break;
    case GgmlType::kQ4_K:
      QuantizeQ4_K(src.data(), dst.data(), src.size() / kSuperBlock);
      break;
    case GgmlType::kQ6_K:
      QuantizeQ6_K(src.data(), dst.data(), src.size() / kSuperBlock);
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

absl::Status Dequantize(GgmlType type, absl::Span<const uint8_t> src, absl::Span<float> dst) {
  if (!CanDequantize(type)) {
    return absl::InvalidArgumentError(edgellm::StrCat("cannot dequantize ", TraitsOf(type).name));
  }
  if (absl::Status s = CheckSizes(type, dst.size(), src.size()); !s.ok()) return s;
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst.data(), src.data(), src.size());
      break;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      for (size_t i = 0; i < dst.size(); ++i) {
        uint16_t h;
        std::memcpy(&h, src.data() + 2 * i, 2);
        dst[i] = type == GgmlType::kF16 ? Fp16ToFp32(h) : Bf16ToFp32(h);
      }
      break;
    case GgmlType::kQ8_0:
      DequantizeQ8_0(src.data(), dst.data(), dst.size() / kQ8_0BlockSize);
      break;
    case GgmlType::kQ4_0:
      DequantizeQ4_0(src.data(), dst.data(), dst.size() / kQ4_0BlockSize);
      break;
    case GgmlType::kQ4_K:
      DequantizeQ4_K(src.data(), dst.data(), dst.size() / kSuperBlock);
      break;
    case GgmlType::kQ6_K:
      DequantizeQ6_K(src.data(), dst.data(), dst.size() / kSuperBlock);
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

}  // namespace edgellm::engine
