// engine/quant_tiles_avx512.h — the prefill multiply of the 32-weight block
// types on 512-bit registers: four weight rows meet four activation rows per
// load, two blocks side by side in each register. Included only by
// quant_kernels_avx512vnni.cpp, after quant_kernels_x86.h (whose block types
// and FinishDot it uses).
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
#include <type_traits>

#include "daemon/engine/quant_kernels.h"

namespace edgellm::engine::kernels {
namespace {

inline constexpr int kTileWeightRows = 4, kTileActivationRows = 4;

inline __m512i SideBySide(__m256i low, __m256i high) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
}
inline __m512 SideBySide(__m256 low, __m256 high) {
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(low)), _mm256_castps_pd(high), 1));
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

inline __m512i NegatedOffsetSums(__m512i activations) {
  return _mm512_sub_epi32(_mm512_setzero_si512(),
                          _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(static_cast<char>(0x80)),
                                              activations));
}

// kW weight rows against kA activation rows over `blocks` blocks, into
// out[j][i] (activation row j, weight row i).
template <typename Block>
void DotTile(const uint8_t* const w[kTileWeightRows], const ActivationBlock* const a[kTileActivationRows],
             int64_t blocks, float out[kTileActivationRows][kTileWeightRows]) {
  constexpr int kW = kTileWeightRows, kA = kTileActivationRows;
  static_assert(kA == 4, "the offset sums keep four rows' even and odd chains in eight lanes");
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
      const __m128 first_scale = LoadHalf(first);
      const __m128 second_scale = pair ? LoadHalf(second) : _mm_setzero_ps();
      weights[i] = SideBySide(UnsignedWeights<Block>(first),
                              pair ? UnsignedWeights<Block>(second) : _mm256_setzero_si256());
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
        acc[j][i] = _mm512_fmadd_ps(_mm512_mul_ps(weight_scales[i], scale), _mm512_cvtepi32_ps(sums), acc[j][i]);
      }
    }
    if constexpr (kHasOffset<Block>) {
      const __m256 activation_sums =
          _mm256_setr_ps(a[0][b].sum_d, a[1][b].sum_d, a[2][b].sum_d, a[3][b].sum_d, pair ? a[0][b + 1].sum_d : 0.0f,
                         pair ? a[1][b + 1].sum_d : 0.0f, pair ? a[2][b + 1].sum_d : 0.0f,
                         pair ? a[3][b + 1].sum_d : 0.0f);
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
      DotTile<Block>(tile_w, tile_a, blocks, out);
      for (int j = 0; j < kTileActivationRows && r + j < rows; ++j) {
        for (int i = 0; i < kTileWeightRows && o + i < out_rows; ++i) y[(r + j) * y_stride + o + i] = out[j][i];
      }
    }
  }
}

// The AVX-512 set's tiled multiplies.
void AddAvx512Tiles(KernelSet& set) {
  set.multiply[static_cast<size_t>(GgmlType::kQ8_0)] = MultiplyBlocks<Q8_0Block>;
  set.multiply[static_cast<size_t>(GgmlType::kQ4_0)] = MultiplyBlocks<Q4_0Block>;
  set.multiply[static_cast<size_t>(GgmlType::kQ4_1)] = MultiplyBlocks<Q4_1Block>;
  set.multiply[static_cast<size_t>(GgmlType::kQ5_0)] = MultiplyBlocks<Q5_0Block>;
  set.multiply[static_cast<size_t>(GgmlType::kQ5_1)] = MultiplyBlocks<Q5_1Block>;
  set.multiply[static_cast<size_t>(GgmlType::kIQ4_NL)] = MultiplyBlocks<Iq4_NLBlock>;
}

}  // namespace
}  // namespace edgellm::engine::kernels

#endif  // EDGELLM_ENGINE_QUANT_TILES_AVX512_H_
