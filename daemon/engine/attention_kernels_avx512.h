// engine/attention_kernels_avx512.h — decode attention's float kernels and the
// KV cache's widening on 512-bit registers: sixteen values an instruction
// where quant_kernels_x86.h's take eight, for machines whose vector units are
// 512 bits wide. Each gives what the eight-lane kernel gives: the widening
// the same floats, WeightedRowSum the same multiply-adds in the same order
// per value, KeyScores each key's dot within the rounding of a sum taken in
// another order. Included only by quant_kernels_avx512vnni.cpp, after
// quant_kernels_x86.h, whose kernels take the odd lengths.
#ifndef EDGELLM_ENGINE_ATTENTION_KERNELS_AVX512_H_
#define EDGELLM_ENGINE_ATTENTION_KERNELS_AVX512_H_

#include <immintrin.h>

#include <cmath>

#include "daemon/engine/quant_kernels.h"

namespace edgellm::engine::kernels {
namespace {

void LoadHalvesWide(const uint8_t* from, int64_t count, float* to) {
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    _mm512_storeu_ps(to + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(from + 2 * i))));
  }
  LoadHalves(from + 2 * i, count - i, to + i);
}

void LoadQ8_0Wide(const uint8_t* from, int64_t count, float* to) {
  for (int64_t i = 0; i < count; i += 32, from += 34) {
    const __m512 d = _mm512_set1_ps(HalfToFloat(from));
    for (int k = 0; k < 2; ++k) {
      const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(from + 2 + 16 * k)));
      _mm512_storeu_ps(to + i + 16 * k, _mm512_mul_ps(_mm512_cvtepi32_ps(q), d));
    }
  }
}

// Sixty-four values of `out` a pass in four registers, then sixteen, each
// lane adding its weighted rows in order of t as the eight-lane kernel does.
void WeightedRowSumWide(const float* weights, const float* rows, int64_t count, int64_t width, float* out) {
  int64_t j = 0;
  for (; j + 64 <= width; j += 64) {
    __m512 a0 = _mm512_loadu_ps(out + j), a1 = _mm512_loadu_ps(out + j + 16);
    __m512 a2 = _mm512_loadu_ps(out + j + 32), a3 = _mm512_loadu_ps(out + j + 48);
    for (int64_t t = 0; t < count; ++t) {
      const __m512 w = _mm512_set1_ps(weights[t]);
      const float* row = rows + t * width + j;
      a0 = _mm512_fmadd_ps(w, _mm512_loadu_ps(row), a0);
      a1 = _mm512_fmadd_ps(w, _mm512_loadu_ps(row + 16), a1);
      a2 = _mm512_fmadd_ps(w, _mm512_loadu_ps(row + 32), a2);
      a3 = _mm512_fmadd_ps(w, _mm512_loadu_ps(row + 48), a3);
    }
    _mm512_storeu_ps(out + j, a0);
    _mm512_storeu_ps(out + j + 16, a1);
    _mm512_storeu_ps(out + j + 32, a2);
    _mm512_storeu_ps(out + j + 48, a3);
  }
  for (; j + 16 <= width; j += 16) {
    __m512 a = _mm512_loadu_ps(out + j);
    for (int64_t t = 0; t < count; ++t) {
      a = _mm512_fmadd_ps(_mm512_set1_ps(weights[t]), _mm512_loadu_ps(rows + t * width + j), a);
    }
    _mm512_storeu_ps(out + j, a);
  }
  for (; j < width; ++j) {
    float sum = out[j];
    for (int64_t t = 0; t < count; ++t) sum = std::fma(weights[t], rows[t * width + j], sum);
    out[j] = sum;
  }
}

// Eight keys a pass, sixteen values of each a multiply-add; each key's
// sixteen lanes are folded to eight and the eight keys reduced together as
// the eight-lane kernel reduces them. Widths that are no multiple of sixteen,
// and the last keys of a run, go to that kernel.
void KeyScoresWide(const float* keys, int64_t count, int64_t width, const float* query, float scale,
                   float* scores) {
  int64_t t = 0;
  if (width % 16 == 0) {
    const __m256 scales = _mm256_set1_ps(scale);
    for (; t + 8 <= count; t += 8) {
      __m512 acc[8];
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) acc[k] = _mm512_setzero_ps();
      for (int64_t j = 0; j < width; j += 16) {
        const __m512 q = _mm512_loadu_ps(query + j);
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
          acc[k] = _mm512_fmadd_ps(_mm512_loadu_ps(keys + (t + k) * width + j), q, acc[k]);
        }
      }
      __m256 half[8];
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) {
        const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[k]), 1));
        half[k] = _mm256_add_ps(_mm512_castps512_ps256(acc[k]), high);
      }
      _mm256_storeu_ps(scores + t, _mm256_mul_ps(SumsOfEight(half), scales));
    }
  }
  KeyScores(keys + t * width, count - t, width, query, scale, scores + t);
}

void AddAvx512AttentionKernels(KernelSet& set) {
  set.load_f16 = LoadHalvesWide;
  set.load_q8_0 = LoadQ8_0Wide;
  set.weighted_row_sum = WeightedRowSumWide;
  set.key_scores = KeyScoresWide;
}

}  // namespace
}  // namespace edgellm::engine::kernels

#endif  // EDGELLM_ENGINE_ATTENTION_KERNELS_AVX512_H_
