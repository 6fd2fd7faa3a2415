// engine/quant_tiles_avx512.h — prefill multiplies on 512-bit registers: for
// the 32-weight block types four weight rows meet four activation rows per
// load, two blocks side by side in each register; for Q4_K, Q5_K and Q6_K
// one weight row meets eight activation rows, two sub-blocks side by side.
// Included only by quant_kernels_avx512vnni.cpp, after quant_kernels_x86.h
// (whose block types, unpacking and finishing it uses).
//
// Every result is bit for bit the one-row kernel's (DotBlocks): that kernel
// keeps even blocks in one 8-lane accumulator and odd blocks in another; here
// the low half of a 16-lane accumulator is the even one and the high half the
// odd one, every lane takes the same integer sums and the same float
// operations in the same order, and the finish is FinishDot itself. So a
// prompt's logits do not depend on how many rows a forward pass carries.
#ifndef EDGELLM_ENGINE_QUANT_TILES_AVX512_H_
#define EDGELLM_ENGINE_QUANT_TILES_AVX512_H_

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "daemon/engine/quant_kernels.h"

namespace edgellm::engine::kernels {
namespace {

inline constexpr int kTileWeightRows = 4, kTileActivationRows = 4;

inline __m512i SideBySide(__m256i low, __m256i high) {
  return _mm512_maskz_inserti64x4(0xff, _mm512_castsi256_si512(low), high, 1);
}
inline __m512 SideBySide(__m256 low, __m256 high) {
  return _mm512_castpd_ps(_mm512_maskz_insertf64x4(0xff, _mm512_castpd256_pd512(_mm256_castps_pd(low)), _mm256_castps_pd(high), 1));
}

// A block's 32 weights as the unsigned operand of the byte dot. Unsigned
// types (the nibble and five-bit ones) are that already; a signed type's
// values w are stored as w + 128, and each activation row then brings
// -128·Σa (NegatedOffsetSums) so the lane sums are exactly Σ w·a.
template <typename Block>
constexpr bool kSignedWeights = std::is_same_v<decltype(Block::Unpack(nullptr)), SignedWeights>;

template <typename Block>
inline __m256i UnsignedWeights(const uint8_t* w) {
  if constexpr (kSignedWeights<Block>) {
    return _mm256_xor_si256(Block::Unpack(w).sign, _mm256_set1_epi8(static_cast<char>(0x80)));
  } else {
    return Block::Unpack(w);
  }
}

// The nibbles of 16 bytes at `first` and of 16 at `second` as 64 unsigned
// bytes, each block's weights 0-15 (low nibbles) then 16-31 (high), as
// UnpackNibbles lays out one block.
inline __m512i NibblesSideBySide(const uint8_t* first, const uint8_t* second) {
  const auto both_halves = [](const uint8_t* p) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  };
  return _mm512_and_si512(_mm512_srlv_epi64(SideBySide(both_halves(first), both_halves(second)),
                                            _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)),
                          _mm512_set1_epi8(0x0f));
}

// Blocks `first` and `second`'s weights as the byte dot's unsigned operand,
// side by side: unpacked 64 at a time where the type allows (the five-bit
// types take their fifth bits from a 64-bit mask), else a block at a time.
template <typename Block>
inline __m512i UnsignedWeightPair(const uint8_t* first, const uint8_t* second) {
  if constexpr (std::is_same_v<Block, Q4_0Block> || std::is_same_v<Block, Q4_1Block>) {
    constexpr int kQs = std::is_same_v<Block, Q4_0Block> ? 2 : 4;
    return NibblesSideBySide(first + kQs, second + kQs);
  } else if constexpr (std::is_same_v<Block, Q5_0Block> || std::is_same_v<Block, Q5_1Block>) {
    constexpr int kQh = std::is_same_v<Block, Q5_0Block> ? 2 : 4, kQs = kQh + 4;
    uint32_t first_high, second_high;
    std::memcpy(&first_high, first + kQh, sizeof(first_high));
    std::memcpy(&second_high, second + kQh, sizeof(second_high));
    const __m512i low = NibblesSideBySide(first + kQs, second + kQs);
    const __mmask64 fifth_bits = static_cast<__mmask64>(first_high) | (static_cast<__mmask64>(second_high) << 32);
    return _mm512_mask_add_epi8(low, fifth_bits, low, _mm512_set1_epi8(0x10));
  } else if constexpr (std::is_same_v<Block, Iq4_NLBlock>) {
    const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values)));
    return _mm512_xor_si512(_mm512_shuffle_epi8(table, NibblesSideBySide(first + 2, second + 2)),
                            _mm512_set1_epi8(static_cast<char>(0x80)));
  } else {
    return SideBySide(UnsignedWeights<Block>(first), UnsignedWeights<Block>(second));
  }
}

// int32 lanes as floats. _mm512_cvtepi32_ps passes GCC 12 an undefined
// register, which it then warns of wherever it inlines it; the zero-masked
// form is the same instruction on every lane.
inline __m512 LanesToFloat(__m512i v) { return _mm512_maskz_cvtepi32_ps(static_cast<__mmask16>(0xffff), v); }

inline __m512i NegatedOffsetSums(__m512i activations) {
  return _mm512_sub_epi32(_mm512_setzero_si512(),
                          _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(static_cast<char>(0x80)),
                                              activations));
}

// kW weight rows against kA activation rows over `blocks` blocks, into
// out[j][i] (activation row j, weight row i).
template <typename Block, int kW, int kA>
void DotTile(const uint8_t* const w[kW], const ActivationBlock* const a[kA], int64_t blocks, float out[][kW]) {
  static_assert(kA <= 4, "the offset sums keep four rows' even and odd chains in eight lanes");
  __m512 acc[kA][kW];
#pragma GCC unroll 4
  for (int j = 0; j < kA; ++j) {
#pragma GCC unroll 4
    for (int i = 0; i < kW; ++i) acc[j][i] = _mm512_setzero_ps();
  }
  // Per weight row, lane j the even blocks' Σ offset·sum_d for activation row j, lane 4 + j the odd ones'.
  __m256 offset_sums[kW];
#pragma GCC unroll 4
  for (int i = 0; i < kW; ++i) offset_sums[i] = _mm256_setzero_ps();

  // Blocks b and b + 1, or b alone (zeros in the high half: they add +0
  // to lanes that start at +0 and never become -0).
  auto step = [&](int64_t b, bool pair) {
    __m512i weights[kW];
    __m512 weight_scales[kW];
    __m256 offset_weights[kW];
#pragma GCC unroll 4
    for (int i = 0; i < kW; ++i) {
      const uint8_t* first = w[i] + b * Block::kBytes;
      const uint8_t* second = first + Block::kBytes;
      PrefetchWeights(first);
      const __m128 first_scale = LoadHalf(first);
      const __m128 second_scale = pair ? LoadHalf(second) : _mm_setzero_ps();
      weights[i] = pair ? UnsignedWeightPair<Block>(first, second)
                        : SideBySide(UnsignedWeights<Block>(first), _mm256_setzero_si256());
      weight_scales[i] = SideBySide(_mm256_broadcastss_ps(first_scale), _mm256_broadcastss_ps(second_scale));
      if constexpr (kHasOffset<Block>) {
        const __m128 first_offset = _mm_broadcastss_ps(OffsetWeight<Block>(first, first_scale));
        const __m128 second_offset = pair ? _mm_broadcastss_ps(OffsetWeight<Block>(second, second_scale))
                                          : _mm_setzero_ps();
        offset_weights[i] = _mm256_set_m128(second_offset, first_offset);
      }
    }
#pragma GCC unroll 4
    for (int j = 0; j < kA; ++j) {
      const ActivationBlock& first = a[j][b];
      const __m256i first_q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(first.q));
      const __m512i q = pair ? SideBySide(first_q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[j][b + 1].q)))
                             : SideBySide(first_q, _mm256_setzero_si256());
      const __m512 scale = SideBySide(_mm256_broadcast_ss(&first.d),
                                      pair ? _mm256_broadcast_ss(&a[j][b + 1].d) : _mm256_setzero_ps());
      const __m512i base = kSignedWeights<Block> ? NegatedOffsetSums(q) : _mm512_setzero_si512();
#pragma GCC unroll 4
      for (int i = 0; i < kW; ++i) {
        const __m512i sums = _mm512_dpbusd_epi32(base, weights[i], q);
        acc[j][i] = _mm512_fmadd_ps(_mm512_mul_ps(weight_scales[i], scale), LanesToFloat(sums), acc[j][i]);
      }
    }
    if constexpr (kHasOffset<Block>) {
      const auto sum_at = [&](int j, int64_t block) { return j < kA ? a[j][block].sum_d : 0.0f; };
      const auto second_sum_at = [&](int j) { return pair ? sum_at(j, b + 1) : 0.0f; };
      const __m256 activation_sums = _mm256_setr_ps(sum_at(0, b), sum_at(1, b), sum_at(2, b), sum_at(3, b),
                                                    second_sum_at(0), second_sum_at(1), second_sum_at(2),
                                                    second_sum_at(3));
#pragma GCC unroll 4
      for (int i = 0; i < kW; ++i) offset_sums[i] = _mm256_fmadd_ps(offset_weights[i], activation_sums, offset_sums[i]);
    }
  };
  int64_t b = 0;
  for (; b + 1 < blocks; b += 2) step(b, true);
  if (b < blocks) step(b, false);

#pragma GCC unroll 4
  for (int i = 0; i < kW; ++i) {
    alignas(32) float offsets[8];
    _mm256_store_ps(offsets, offset_sums[i]);
#pragma GCC unroll 4
    for (int j = 0; j < kA; ++j) {
      alignas(64) float halves[16];  // the even blocks' accumulator, then the odd ones'
      _mm512_store_ps(halves, acc[j][i]);
      out[j][i] = FinishDot(_mm256_load_ps(halves), _mm256_load_ps(halves + 8), offsets[j] + offsets[4 + j],
                            kOffsetFactor<Block>);
    }
  }
}

// MultiplyQuantFn for a 32-weight block type: tiles over the activation rows,
// and within them over the weight rows. A tile past the last row repeats it
// (a few wasted dots at the edges) and keeps only the real rows' results.
template <typename Block>
void MultiplyBlocks(const uint8_t* weights, uint64_t row_bytes, int64_t out_rows, const ActivationBlock* a,
                    int64_t rows, int64_t blocks, float* y, int64_t y_stride) {
  for (int64_t r = 0; r < rows; r += kTileActivationRows) {
    const ActivationBlock* tile_a[kTileActivationRows];
    for (int j = 0; j < kTileActivationRows; ++j) tile_a[j] = a + std::min<int64_t>(r + j, rows - 1) * blocks;
    for (int64_t o = 0; o < out_rows; o += kTileWeightRows) {
      const uint8_t* tile_w[kTileWeightRows];
      for (int i = 0; i < kTileWeightRows; ++i) {
        tile_w[i] = weights + static_cast<uint64_t>(std::min<int64_t>(o + i, out_rows - 1)) * row_bytes;
      }
      float out[kTileActivationRows][kTileWeightRows];
      DotTile<Block, kTileWeightRows, kTileActivationRows>(tile_w, tile_a, blocks, out);
      for (int j = 0; j < kTileActivationRows && r + j < rows; ++j) {
        for (int i = 0; i < kTileWeightRows && o + i < out_rows; ++i) y[(r + j) * y_stride + o + i] = out[j][i];
      }
    }
  }
}

// One weight row against one activation row, or four: the set's one-row
// and four-row kernels, two blocks per register.
template <typename Block>
float DotWideOne(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  float out[1][1];
  DotTile<Block, 1, 1>(&w, &a, blocks, out);
  return out[0][0];
}
template <typename Block>
void DotWideFour(const uint8_t* w, const ActivationBlock* a, int64_t stride, int64_t blocks, float out[4]) {
  const ActivationBlock* const rows[4] = {a, a + stride, a + 2 * stride, a + 3 * stride};
  float four[4][1];
  DotTile<Block, 1, 4>(&w, rows, blocks, four);
  for (int j = 0; j < 4; ++j) out[j] = four[j][0];
}

// The super-block types: two 32-weight sub-blocks side by side meet 64
// activations per load, for eight activation rows at a time. Integer lane
// sums are exact in any order, so the low half (the one-row kernel's first
// chain of sub-blocks) and the high half (its second) hand AddWithMins or
// AddWithGroupOffsets the very sums that kernel computes, and the results are
// its bit for bit.
inline constexpr int kWideRows = 8;

inline __m256i LowHalf(__m512i v) { return _mm512_castsi512_si256(v); }
inline __m256i HighHalf(__m512i v) { return _mm512_maskz_extracti64x4_epi64(0xf, v, 1); }

// From 16-bit scales s0..s7 in every 128-bit lane: scale `low` in every lane
// of the low 256 bits, scale `high` in the high 256.
inline __m512i SideBySideScales(__m512i scales, int low, int high) {
  const auto pick = [](int m) { return _mm256_set1_epi16(static_cast<int16_t>((2 * m) | ((2 * m + 1) << 8))); };
  return _mm512_shuffle_epi8(scales, SideBySide(pick(low), pick(high)));
}

template <int kRows>
inline void SplitHalves(const __m512i sums[kRows], __m256i halves[2][kRows]) {
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) {
    halves[0][i] = LowHalf(sums[i]);
    halves[1][i] = HighHalf(sums[i]);
  }
}

// Q4_K and Q5_K: `unpack(w, c)` gives sub-block 2c's weights in the low
// half and 2c + 1's in the high half, unsigned; the mins meet the group sums.
template <int kRows, size_t kBytes, typename Unpack>
void DotRowsWithMinsWide(const uint8_t* w, const SuperActivationBlock* a, int64_t stride, int64_t count, float* out,
                         Unpack unpack) {
  __m256 acc[kRows];
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t s = 0; s < count; ++s, w += kBytes) {
    for (size_t line = 0; line < kBytes; line += 64) PrefetchWeights(w + line);
    uint64_t scale_bytes, min_bytes;
    Q4_KScalesAndMins(w, &scale_bytes, &min_bytes);
    const __m512i scales =
        _mm512_broadcast_i32x4(_mm_cvtepi8_epi16(_mm_set1_epi64x(static_cast<int64_t>(scale_bytes))));
    __m512i sums[kRows];
#pragma GCC unroll 8
    for (int i = 0; i < kRows; ++i) sums[i] = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m512i q = unpack(w, c);
      const __m512i scale = SideBySideScales(scales, 2 * c, 2 * c + 1);
#pragma GCC unroll 8
      for (int i = 0; i < kRows; ++i) {
        const __m512i activations = _mm512_loadu_si512(a[i * stride + s].q + 64 * c);
        sums[i] = _mm512_dpwssd_epi32(sums[i], _mm512_maddubs_epi16(q, activations), scale);
      }
    }
    __m256i halves[2][kRows];
    SplitHalves<kRows>(sums, halves);
    AddWithMins<kRows>(acc, halves, Q4_KGroupMins(min_bytes), HalfToFloat(w), HalfToFloat(w + 2), a + s, stride);
  }
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) out[i] = HorizontalSum(acc[i]);
}

// 32 bytes at `p` in both halves, the low half's low nibbles and the high half's high ones.
inline __m512i NibblesOfBoth(const uint8_t* p) {
  const __m512i bytes = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_and_si512(_mm512_srlv_epi16(bytes, SideBySide(_mm256_setzero_si256(), _mm256_set1_epi16(4))),
                          _mm512_set1_epi8(0x0f));
}

// Q4_K: qs[32c..32c+31] (at byte 16) hold sub-block 2c in their low nibbles, 2c+1 in their high ones.
template <int kRows>
void DotRowsQ4_KWide(const uint8_t* w, const SuperActivationBlock* a, int64_t stride, int64_t count, float* out) {
  DotRowsWithMinsWide<kRows, kQ4_KBytes>(w, a, stride, count, out,
                                         [](const uint8_t* block, int c) { return NibblesOfBoth(block + 16 + 32 * c); });
}

// Q5_K: Q4_K's nibbles (at byte 48) with bit j of qh[l] (at byte 16) as bit 4 of weight l of sub-block j.
template <int kRows>
void DotRowsQ5_KWide(const uint8_t* w, const SuperActivationBlock* a, int64_t stride, int64_t count, float* out) {
  DotRowsWithMinsWide<kRows, kQ5_KBytes>(w, a, stride, count, out, [](const uint8_t* block, int c) {
    const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 16)));
    // Shifting 16-bit lanes moves no bit of one byte into bit 0 of another.
    const __m512i fifth = _mm512_and_si512(
        _mm512_srlv_epi16(qh, SideBySide(_mm256_set1_epi16(static_cast<int16_t>(2 * c)),
                                         _mm256_set1_epi16(static_cast<int16_t>(2 * c + 1)))),
        _mm512_set1_epi8(1));
    return _mm512_or_si512(NibblesOfBoth(block + 48 + 32 * c), _mm512_slli_epi16(fifth, 4));
  });
}

// Q6_K: quarters j and j + 1 of half k side by side.
template <int kRows>
void DotRowsQ6_KWide(const uint8_t* w, const SuperActivationBlock* a, int64_t stride, int64_t count, float* out) {
  __m256 acc[kRows];
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t s = 0; s < count; ++s, w += kQ6_KBytes) {
    for (size_t line = 0; line < kQ6_KBytes; line += 64) PrefetchWeights(w + line);
    const __m128i scale_bytes = Q6_KScales(w);
    const __m512i paired = _mm512_broadcast_i64x4(PairedGroupScales(scale_bytes));
    __m512i sums[kRows];
#pragma GCC unroll 8
    for (int i = 0; i < kRows; ++i) sums[i] = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int k = 0; k < 2; ++k) {
#pragma GCC unroll 2
      for (int j = 0; j < 4; j += 2) {
        const __m512i q = SideBySide(Q6_KWeights(w, k, j), Q6_KWeights(w, k, j + 1));
        const __m512i scale = SideBySideScales(paired, 4 * k + j, 4 * k + j + 1);
#pragma GCC unroll 8
        for (int i = 0; i < kRows; ++i) {
          const __m512i activations = _mm512_loadu_si512(a[i * stride + s].q + 128 * k + 32 * j);
          sums[i] = _mm512_dpwssd_epi32(sums[i], _mm512_maddubs_epi16(q, activations), scale);
        }
      }
    }
    __m256i halves[2][kRows];
    SplitHalves<kRows>(sums, halves);
    AddWithGroupOffsets<kRows, 5>(acc, halves, scale_bytes, HalfToFloat(w + kQ6_KScaleAt), a + s, stride);
  }
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) out[i] = HorizontalSum(acc[i]);
}

// MultiplySuperFn from a type's eight-row wide kernel and its four- and
// one-row kernels for the rows left over.
using SuperRowsFn = void (*)(const uint8_t*, const SuperActivationBlock*, int64_t, int64_t, float*);
template <SuperRowsFn kWide, SuperRowsFn kFour, SuperRowsFn kOne>
void MultiplySuperBlocks(const uint8_t* weights, uint64_t row_bytes, int64_t out_rows, const SuperActivationBlock* a,
                         int64_t rows, int64_t count, float* y, int64_t y_stride) {
  int64_t r = 0;
  const auto rows_at_a_time = [&](SuperRowsFn kernel, int n) {
    for (; r + n <= rows; r += n) {
      for (int64_t o = 0; o < out_rows; ++o) {
        float out[kWideRows];
        kernel(weights + static_cast<uint64_t>(o) * row_bytes, a + r * count, count, count, out);
        for (int i = 0; i < n; ++i) y[(r + i) * y_stride + o] = out[i];
      }
    }
  };
  rows_at_a_time(kWide, kWideRows);
  rows_at_a_time(kFour, 4);
  rows_at_a_time(kOne, 1);
}

// The AVX-512 set's tiled multiplies.
void AddAvx512Tiles(KernelSet& set) {
  set.Set(GgmlType::kQ8_0, DotWideOne<Q8_0Block>, DotWideFour<Q8_0Block>);
  set.Set(GgmlType::kQ4_0, DotWideOne<Q4_0Block>, DotWideFour<Q4_0Block>);
  set.Set(GgmlType::kQ4_1, DotWideOne<Q4_1Block>, DotWideFour<Q4_1Block>);
  set.Set(GgmlType::kQ5_0, DotWideOne<Q5_0Block>, DotWideFour<Q5_0Block>);
  set.Set(GgmlType::kQ5_1, DotWideOne<Q5_1Block>, DotWideFour<Q5_1Block>);
  set.Set(GgmlType::kIQ4_NL, DotWideOne<Iq4_NLBlock>, DotWideFour<Iq4_NLBlock>);
  set.multiply[static_cast<size_t>(GgmlType::kQ8_0)] = MultiplyBlocks<Q8_0Block>;
  set.multiply[static_cast<size_t>(GgmlType::kQ4_0)] = MultiplyBlocks<Q4_0Block>;
  set.multiply[static_cast<size_t>(GgmlType::kQ4_1)] = MultiplyBlocks<Q4_1Block>;
  set.multiply[static_cast<size_t>(GgmlType::kQ5_0)] = MultiplyBlocks<Q5_0Block>;
  set.multiply[static_cast<size_t>(GgmlType::kQ5_1)] = MultiplyBlocks<Q5_1Block>;
  set.multiply[static_cast<size_t>(GgmlType::kIQ4_NL)] = MultiplyBlocks<Iq4_NLBlock>;
  set.Set(GgmlType::kQ4_K, SuperBlockDotOne<DotRowsQ4_KWide<1>>, SuperBlockDotFour<DotRowsQ4_KWide<4>>);
  set.Set(GgmlType::kQ5_K, SuperBlockDotOne<DotRowsQ5_KWide<1>>, SuperBlockDotFour<DotRowsQ5_KWide<4>>);
  set.Set(GgmlType::kQ6_K, SuperBlockDotOne<DotRowsQ6_KWide<1>>, SuperBlockDotFour<DotRowsQ6_KWide<4>>);
  set.super_multiply[static_cast<size_t>(GgmlType::kQ4_K)] =
      MultiplySuperBlocks<DotRowsQ4_KWide<kWideRows>, DotRowsQ4_KWide<4>, DotRowsQ4_KWide<1>>;
  set.super_multiply[static_cast<size_t>(GgmlType::kQ5_K)] =
      MultiplySuperBlocks<DotRowsQ5_KWide<kWideRows>, DotRowsQ5_KWide<4>, DotRowsQ5_KWide<1>>;
  set.super_multiply[static_cast<size_t>(GgmlType::kQ6_K)] =
      MultiplySuperBlocks<DotRowsQ6_KWide<kWideRows>, DotRowsQ6_KWide<4>, DotRowsQ6_KWide<1>>;
}

}  // namespace
}  // namespace edgellm::engine::kernels

#endif  // EDGELLM_ENGINE_QUANT_TILES_AVX512_H_
