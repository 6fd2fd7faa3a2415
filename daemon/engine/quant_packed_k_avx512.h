// engine/quant_packed_k_avx512.h — Q4_K and Q6_K matrices packed at load for
// 512-bit registers: sixteen weight rows side by side, each 32-bit lane four
// consecutive weights of its own row, as quant_interleaved_avx512.h does for
// the 32-weight types.
//
// A packed super-block of sixteen rows is exactly the bytes of the sixteen
// super-blocks it replaces: first the type's F16 fields (sixteen of each,
// row p at 2p), then every other dword of the super-block, dword k of the
// sixteen rows in register k (row p in lane p). Nothing is unpacked at load —
// Q4_K's 6-bit scales and Q6_K's split bits are unpacked per use, sixteen
// rows per instruction — so the packing never grows the model.
//
// Per lane, a super-block's dot is summed exactly in int32 (each sub-block's
// byte dot times its integer scale, the mins or offsets against the
// activations' group sums) and scaled to real units once: acc += (d ·
// activation d) · sum, then acc −= (dmin · activation d) · mins. Those
// operations do not depend on how many activation rows a call carries, so
// decode and prefill agree bit for bit; they differ from the row-wise
// kernels (which scale eight partial sums per row) only by float rounding.
// Included only by quant_kernels_avx512vnni.cpp, after quant_interleaved_avx512.h.
#ifndef EDGELLM_ENGINE_QUANT_PACKED_K_AVX512_H_
#define EDGELLM_ENGINE_QUANT_PACKED_K_AVX512_H_

#include <immintrin.h>

#include <cstring>
#include <vector>

#include "daemon/engine/k_quants.h"
#include "daemon/engine/quant_kernels.h"

namespace edgellm::engine::kernels {
namespace {

// Where a K type's fields lie in its super-block: the F16 ones at
// kHalfAt[...], then kDwords dwords from kDwordsAt.
struct PackedQ4_KLayout {
  static constexpr int64_t kBlockBytes = kQ4_KBytes;
  static constexpr int kHalves = 2;  // d, dmin
  static constexpr int kHalfAt[kHalves] = {0, 2};
  static constexpr int kDwordsAt = 4, kDwords = 35;  // 3 of 6-bit scales and mins, 32 of nibbles
};
struct PackedQ6_KLayout {
  static constexpr int64_t kBlockBytes = kQ6_KBytes;
  static constexpr int kHalves = 1;  // d, after the rest
  static constexpr int kHalfAt[kHalves] = {208};
  static constexpr int kDwordsAt = 0, kDwords = 52;  // 32 of low bits, 16 of high bits, 4 of scales
};

template <typename Layout>
inline constexpr int64_t kPackedSuperBytes = 32 * Layout::kHalves + 64 * Layout::kDwords;
static_assert(kPackedSuperBytes<PackedQ4_KLayout> == kInterleavedRows * kQ4_KBytes);
static_assert(kPackedSuperBytes<PackedQ6_KLayout> == kInterleavedRows * kQ6_KBytes);

// A packed super-block of sixteen rows.
template <typename Layout>
struct PackedSuperBlock {
  const uint8_t* at;
  __m512 Half(int h) const {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + 32 * h)));
  }
  __m512i Dword(int k) const { return _mm512_loadu_si512(at + 32 * Layout::kHalves + 64 * k); }
  // Asks for the super-block kPrefetchBlocks ahead (the matrix is one
  // stream, which the hardware prefetcher alone follows too late).
  void PrefetchAhead() const {
    for (int64_t line = 0; line < kPackedSuperBytes<Layout>; line += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(at) + kPrefetchBlocks * kPackedSuperBytes<Layout> + line,
                   _MM_HINT_T0);
    }
  }
  static constexpr int64_t kPrefetchBlocks = 2;
};

// Calls copy(packed offset, block offset, bytes) for each field of row p's
// super-block: where it lies in the packed super-block and in the file's.
template <typename Layout, typename Copy>
void ForEachPackedField(int p, const Copy& copy) {
  for (int h = 0; h < Layout::kHalves; ++h) copy(32 * h + 2 * p, Layout::kHalfAt[h], 2);
  for (int k = 0; k < Layout::kDwords; ++k) copy(32 * Layout::kHalves + 64 * k + 4 * p, Layout::kDwordsAt + 4 * k, 4);
}

// Rewrites `out_rows` rows (a multiple of sixteen, each `row_bytes` after the
// last, `count` super-blocks each) in place into the packed form.
template <typename Layout>
void PackSuperBlocks(uint8_t* weights, uint64_t row_bytes, int64_t out_rows, int64_t count) {
  std::vector<uint8_t> packed(kInterleavedRows * row_bytes);
  for (int64_t o = 0; o + kInterleavedRows <= out_rows; o += kInterleavedRows) {
    uint8_t* group = weights + static_cast<uint64_t>(o) * row_bytes;
    for (int64_t s = 0; s < count; ++s) {
      uint8_t* to = packed.data() + s * kPackedSuperBytes<Layout>;
      for (int p = 0; p < kInterleavedRows; ++p) {
        const uint8_t* block = group + p * row_bytes + s * Layout::kBlockBytes;
        ForEachPackedField<Layout>(p, [&](int at, int from, size_t bytes) { std::memcpy(to + at, block + from, bytes); });
      }
    }
    std::memcpy(group, packed.data(), packed.size());
  }
}

// Row p of a packed group of `count` super-blocks back in the file's layout.
template <typename Layout>
void UnpackSuperBlockRow(const uint8_t* group, int p, int64_t count, uint8_t* out) {
  for (int64_t s = 0; s < count; ++s) {
    const uint8_t* from = group + s * kPackedSuperBytes<Layout>;
    uint8_t* block = out + s * Layout::kBlockBytes;
    ForEachPackedField<Layout>(p, [&](int at, int to, size_t bytes) { std::memcpy(block + to, from + at, bytes); });
  }
}

// Activation dword `i` (values 4i..4i+3) in every lane.
inline __m512i ActivationDword(const SuperActivationBlock& a, int i) { return BroadcastDword(a.q + 4 * i); }
// Two int16 values as one dword in every lane, `low` in the low half.
inline __m512i WordPair(int32_t low, int32_t high) {
  return _mm512_set1_epi32(static_cast<int32_t>((static_cast<uint32_t>(high) << 16) | static_cast<uint16_t>(low)));
}
// Byte `b` of every lane as an unsigned int32.
inline __m512i LaneByte(__m512i v, int b) {
  return _mm512_and_si512(_mm512_srli_epi32(v, 8 * b), _mm512_set1_epi32(0xff));
}
// Byte `b` of every lane as a signed int32.
inline __m512i LaneSignedByte(__m512i v, int b) { return _mm512_srai_epi32(_mm512_slli_epi32(v, 24 - 8 * b), 24); }

// acc + (d · activation d) · sum − (dmin · activation d) · mins, the super-block in real units.
inline __m512 AddSuperBlock(__m512 acc, __m512 d, __m512 dmin, float activation_d, __m512i sum, __m512i mins) {
  const __m512 scale = _mm512_set1_ps(activation_d);
  acc = _mm512_fmadd_ps(_mm512_mul_ps(d, scale), _mm512_cvtepi32_ps(sum), acc);
  return _mm512_fnmadd_ps(_mm512_mul_ps(dmin, scale), _mm512_cvtepi32_ps(mins), acc);
}

// Q4_K: weight = d · scale_j · q − dmin · min_j over sub-block j (32 weights);
// nibble dword 8c + g holds weights 4g..4g+3 of sub-block 2c in its low
// nibbles and of 2c + 1 in its high ones. The 6-bit scales and mins are
// unpacked as Q4_KScalesAndMins does, for sixteen rows at once.
struct PackedQ4_K {
  using Layout = PackedQ4_KLayout;
  template <int kA>
  static void Dot(const uint8_t* packed, int64_t count, const SuperActivationBlock* const a[kA], __m512 out[kA]) {
    __m512 acc[kA];
#pragma GCC unroll 4
    for (int j = 0; j < kA; ++j) acc[j] = _mm512_setzero_ps();
    const __m512i low4 = _mm512_set1_epi8(0x0f), low6 = _mm512_set1_epi8(0x3f), bits45 = _mm512_set1_epi8(0x30);
    const __m512i low_words = _mm512_set1_epi32(0x00ff00ff);
    for (int64_t s = 0; s < count; ++s) {
      const PackedSuperBlock<Layout> block{packed + s * kPackedSuperBytes<Layout>};
      block.PrefetchAhead();
      const __m512i d0 = block.Dword(0), d1 = block.Dword(1), d2 = block.Dword(2);
      // Bytes j of scales[0] / mins[0] are sub-block j's, of scales[1] / mins[1] sub-block 4 + j's.
      const __m512i scales[2] = {
          _mm512_and_si512(d0, low6),
          _mm512_or_si512(_mm512_and_si512(d2, low4), _mm512_and_si512(_mm512_srli_epi32(d0, 2), bits45))};
      const __m512i mins[2] = {
          _mm512_and_si512(d1, low6),
          _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(d2, 4), low4),
                          _mm512_and_si512(_mm512_srli_epi32(d1, 2), bits45))};
      __m512i sum[kA];
#pragma GCC unroll 4
      for (int j = 0; j < kA; ++j) sum[j] = _mm512_setzero_si512();
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        __m512i low_sum[kA], high_sum[kA];
#pragma GCC unroll 4
        for (int j = 0; j < kA; ++j) low_sum[j] = high_sum[j] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int g = 0; g < 8; ++g) {
          const __m512i nibbles = block.Dword(3 + 8 * c + g);
          const __m512i low = _mm512_and_si512(nibbles, low4);
          const __m512i high = _mm512_and_si512(_mm512_srli_epi16(nibbles, 4), low4);
#pragma GCC unroll 4
          for (int j = 0; j < kA; ++j) {
            low_sum[j] = _mm512_dpbusd_epi32(low_sum[j], low, ActivationDword(a[j][s], 16 * c + g));
            high_sum[j] = _mm512_dpbusd_epi32(high_sum[j], high, ActivationDword(a[j][s], 16 * c + 8 + g));
          }
        }
        const __m512i low_scale = LaneByte(scales[c / 2], (2 * c) % 4);
        const __m512i high_scale = LaneByte(scales[c / 2], (2 * c + 1) % 4);
#pragma GCC unroll 4
        for (int j = 0; j < kA; ++j) {
          sum[j] = _mm512_add_epi32(sum[j], _mm512_add_epi32(_mm512_mullo_epi32(low_sum[j], low_scale),
                                                             _mm512_mullo_epi32(high_sum[j], high_scale)));
        }
      }
      // Mins as int16 pairs (min 0, min 2), (1, 3), (4, 6), (5, 7) against
      // the activations' sub-block sums paired the same way.
      const __m512i min_pairs[4] = {_mm512_and_si512(mins[0], low_words),
                                    _mm512_and_si512(_mm512_srli_epi32(mins[0], 8), low_words),
                                    _mm512_and_si512(mins[1], low_words),
                                    _mm512_and_si512(_mm512_srli_epi32(mins[1], 8), low_words)};
      const __m512 d = block.Half(0), dmin = block.Half(1);
#pragma GCC unroll 4
      for (int j = 0; j < kA; ++j) {
        const SuperActivationBlock& row = a[j][s];
        int32_t sub_sums[8];
        for (int m = 0; m < 8; ++m) sub_sums[m] = row.group_sums[2 * m] + row.group_sums[2 * m + 1];
        __m512i min_sum = _mm512_setzero_si512();
        for (int h = 0; h < 2; ++h) {
          min_sum = _mm512_dpwssd_epi32(min_sum, min_pairs[2 * h], WordPair(sub_sums[4 * h], sub_sums[4 * h + 2]));
          min_sum =
              _mm512_dpwssd_epi32(min_sum, min_pairs[2 * h + 1], WordPair(sub_sums[4 * h + 1], sub_sums[4 * h + 3]));
        }
        acc[j] = AddSuperBlock(acc[j], d, dmin, row.d, sum[j], min_sum);
      }
    }
#pragma GCC unroll 4
    for (int j = 0; j < kA; ++j) out[j] = acc[j];
  }
};

// Q6_K: weight = d · scale_i · (q − 32) over group i (16 weights), q six bits.
// Half h's quarter t (weights 128h + 32t..) has its low four bits in the low
// (t < 2) or high (t ≥ 2) nibbles of low-bit dwords 16h + 8(t % 2) + g, and
// its top two in bits 2t..2t+1 of high-bit dword 32 + 8h + g, for weights
// 4g..4g+3 of the quarter; weights 0-15 of a quarter are group 8h + 2t, 16-31
// group 8h + 2t + 1. Scale dwords 48-51 hold the sixteen signed scales.
struct PackedQ6_K {
  using Layout = PackedQ6_KLayout;
  template <int kA>
  static void Dot(const uint8_t* packed, int64_t count, const SuperActivationBlock* const a[kA], __m512 out[kA]) {
    __m512 acc[kA];
#pragma GCC unroll 4
    for (int j = 0; j < kA; ++j) acc[j] = _mm512_setzero_ps();
    const __m512i low4 = _mm512_set1_epi8(0x0f), bits45 = _mm512_set1_epi8(0x30);
    for (int64_t s = 0; s < count; ++s) {
      const PackedSuperBlock<Layout> block{packed + s * kPackedSuperBytes<Layout>};
      block.PrefetchAhead();
      __m512i sum[kA];
#pragma GCC unroll 4
      for (int j = 0; j < kA; ++j) sum[j] = _mm512_setzero_si512();
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
#pragma GCC unroll 4
        for (int t = 0; t < 4; ++t) {
          __m512i group_sum[2][kA];
#pragma GCC unroll 4
          for (int j = 0; j < kA; ++j) group_sum[0][j] = group_sum[1][j] = _mm512_setzero_si512();
#pragma GCC unroll 8
          for (int g = 0; g < 8; ++g) {
            const __m512i low_bits = block.Dword(16 * h + 8 * (t % 2) + g);
            const __m512i high_bits = block.Dword(32 + 8 * h + g);
            const __m512i low = t < 2 ? _mm512_and_si512(low_bits, low4)
                                      : _mm512_and_si512(_mm512_srli_epi16(low_bits, 4), low4);
            // Bits 2t..2t+1 of each byte to bits 4-5.
            const __m512i top = 2 * t >= 4 ? _mm512_srli_epi16(high_bits, 2 * t - 4)
                                           : _mm512_slli_epi16(high_bits, 4 - 2 * t);
            const __m512i q = _mm512_or_si512(low, _mm512_and_si512(top, bits45));
#pragma GCC unroll 4
            for (int j = 0; j < kA; ++j) {
              group_sum[g / 4][j] =
                  _mm512_dpbusd_epi32(group_sum[g / 4][j], q, ActivationDword(a[j][s], 32 * h + 8 * t + g));
            }
          }
          const int group = 8 * h + 2 * t;
          const __m512i scale_dword = block.Dword(48 + group / 4);
          const __m512i first_scale = LaneSignedByte(scale_dword, group % 4);
          const __m512i second_scale = LaneSignedByte(scale_dword, group % 4 + 1);
#pragma GCC unroll 4
          for (int j = 0; j < kA; ++j) {
            sum[j] = _mm512_add_epi32(sum[j], _mm512_add_epi32(_mm512_mullo_epi32(group_sum[0][j], first_scale),
                                                               _mm512_mullo_epi32(group_sum[1][j], second_scale)));
          }
        }
      }
      // The offset 32 of every weight: scale_i against the activations'
      // group sums, as int16 pairs (scale 4k, 4k + 2) and (4k + 1, 4k + 3).
      __m512i scale_pairs[8];
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m512i scale_dword = block.Dword(48 + k);
        scale_pairs[2 * k] = _mm512_srai_epi16(_mm512_slli_epi16(scale_dword, 8), 8);
        scale_pairs[2 * k + 1] = _mm512_srai_epi16(scale_dword, 8);
      }
      const __m512 d = block.Half(0);
#pragma GCC unroll 4
      for (int j = 0; j < kA; ++j) {
        const SuperActivationBlock& row = a[j][s];
        const int16_t* sums = row.group_sums;
        __m512i offsets = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
          offsets = _mm512_dpwssd_epi32(offsets, scale_pairs[2 * k], WordPair(sums[4 * k], sums[4 * k + 2]));
          offsets = _mm512_dpwssd_epi32(offsets, scale_pairs[2 * k + 1], WordPair(sums[4 * k + 1], sums[4 * k + 3]));
        }
        const __m512i total = _mm512_sub_epi32(sum[j], _mm512_slli_epi32(offsets, 5));
        acc[j] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(row.d)), _mm512_cvtepi32_ps(total), acc[j]);
      }
    }
#pragma GCC unroll 4
    for (int j = 0; j < kA; ++j) out[j] = acc[j];
  }
};

// Super-blocks met at a time: a strip of sixteen packed rows (18 KiB for
// Q4_K, 26 for Q6_K) stays in L1 while every activation row passes it.
inline constexpr int64_t kSuperStripBlocks = 8;

// y[r·y_stride + o] for a packed matrix of `out_rows` rows (whole groups of
// sixteen, each `row_bytes` after the last) and `rows` activation rows of
// `count` super-blocks each, four activation rows at a time.
template <typename Kernel>
void MultiplyPackedSuper(const uint8_t* weights, uint64_t row_bytes, int64_t out_rows, const SuperActivationBlock* a,
                         int64_t rows, int64_t count, float* y, int64_t y_stride) {
  using Layout = typename Kernel::Layout;
  for (int64_t o = 0; o < out_rows; o += kInterleavedRows) {
    const uint8_t* group = weights + static_cast<uint64_t>(o) * row_bytes;
    for (int64_t first = 0; first < count; first += kSuperStripBlocks) {
      const int64_t strip = std::min(kSuperStripBlocks, count - first);
      const auto emit = [&]<int kA>(int64_t r) {
        const SuperActivationBlock* rows_a[kA];
        for (int j = 0; j < kA; ++j) rows_a[j] = a + (r + j) * count + first;
        __m512 out[kA];
        Kernel::template Dot<kA>(group + first * kPackedSuperBytes<Layout>, strip, rows_a, out);
        for (int j = 0; j < kA; ++j) {
          float* at = y + (r + j) * y_stride + o;
          _mm512_storeu_ps(at, first == 0 ? out[j] : _mm512_add_ps(_mm512_loadu_ps(at), out[j]));
        }
      };
      ForActivationRows(rows, emit);
    }
  }
}

template <typename Kernel>
void SetPackedSuper(KernelSet& set, GgmlType type) {
  set.pack[static_cast<size_t>(type)] = PackSuperBlocks<typename Kernel::Layout>;
  set.unpack_row[static_cast<size_t>(type)] = UnpackSuperBlockRow<typename Kernel::Layout>;
  set.super_multiply_packed[static_cast<size_t>(type)] = MultiplyPackedSuper<Kernel>;
}

// The AVX-512 set's packed K types (read by decode and prefill alike).
void AddAvx512PackedSuperBlocks(KernelSet& set) {
  SetPackedSuper<PackedQ4_K>(set, GgmlType::kQ4_K);
  SetPackedSuper<PackedQ6_K>(set, GgmlType::kQ6_K);
}

}  // namespace
}  // namespace edgellm::engine::kernels

#endif  // EDGELLM_ENGINE_QUANT_PACKED_K_AVX512_H_
