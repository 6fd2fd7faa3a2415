// engine/attention_kernels_avx512.h — decode attention's float kernels and the
// KV cache's widening on 512-bit registers: sixteen values an instruction
// where quant_kernels_x86.h's take eight, for machines whose vector units are
// 512 bits wide. Each gives what the eight-lane kernel gives: the widening
// the same floats, WeightedRowSum the same multiply-adds in the same order
// per value, KeyScores each key's dot within the rounding of a sum taken in
// another order; the two take a group's query rows together, each row's
// result bit for bit what it gets alone; and the two read a cache of halves
// or of Q8_0 blocks where it lies too (KeyScoresInPlaceFn,
// WeightedRowSumInPlaceFn), each result bit for bit what they give on the
// rows widened. Keys a cache of halves keeps transposed have a kernel of
// their own (KeyScoresTransposedFn), sixteen keys a register. Included only
// by quant_kernels_avx512vnni.cpp, after quant_kernels_x86.h, whose kernels
// take the odd lengths.
#ifndef EDGELLM_ENGINE_ATTENTION_KERNELS_AVX512_H_
#define EDGELLM_ENGINE_ATTENTION_KERNELS_AVX512_H_

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "daemon/engine/legacy_quants.h"
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
  for (int64_t i = 0; i < count; i += kLegacyBlock, from += kQ8_0BlockBytes) {
    const __m512 d = _mm512_set1_ps(HalfToFloat(from));
    for (int k = 0; k < 2; ++k) {
      const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(from + 2 + 16 * k)));
      _mm512_storeu_ps(to + i + 16 * k, _mm512_mul_ps(_mm512_cvtepi32_ps(q), d));
    }
  }
}

// Rows of keys or values as the kernels below read them: Load(t, j) is
// values j..j+15 of row t as floats (j a multiple of sixteen) — where they
// lie, or widened from halves or Q8_0 blocks into the floats the widening
// functions above give.
struct FloatRows {
  const float* at;
  int64_t width;
  __m512 Load(int64_t t, int64_t j) const { return _mm512_loadu_ps(at + t * width + j); }
  FloatRows From(int64_t t) const { return {at + t * width, width}; }
};
struct HalfRows {
  const uint16_t* at;
  int64_t width;
  __m512 Load(int64_t t, int64_t j) const {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + t * width + j)));
  }
  HalfRows From(int64_t t) const { return {at + t * width, width}; }
};
// A row of Q8_0 blocks (the F16 scale, then 32 signed bytes) per 32
// values; each value is its byte times the scale, as LoadQ8_0Wide makes it.
struct Q8_0Rows {
  // Signed, for the row arithmetic below (the format's constants are size_t).
  static constexpr int64_t kBlock = kLegacyBlock, kBlockBytes = kQ8_0BlockBytes;
  const uint8_t* at;
  int64_t row_bytes;
  __m512 Load(int64_t t, int64_t j) const {
    const uint8_t* block = at + t * row_bytes + j / kBlock * kBlockBytes;
    const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2 + j % kBlock)));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(HalfToFloat(block)));
  }
  Q8_0Rows From(int64_t t) const { return {at + t * row_bytes, row_bytes}; }
};
inline Q8_0Rows Q8_0RowsOf(const uint8_t* at, int64_t width) {
  return {at, width / Q8_0Rows::kBlock * Q8_0Rows::kBlockBytes};
}

// Sixty-four values of up to four query rows' `out` a pass, sixteen
// registers: each row of values is loaded once for all of them, and the
// sixteen chains of multiply-adds keep both pipes busy where one row's four
// waited on each other's latency. Each lane adds its weighted rows in order
// of t, as the eight-lane kernel does.
template <int kQueries, typename Rows>
void WeightedSixtyFourWide(const float* weights, int64_t weight_stride, Rows rows, int64_t j, int64_t count,
                           float* out, int64_t out_stride) {
  __m512 acc[kQueries][4];
#pragma GCC unroll 4
  for (int q = 0; q < kQueries; ++q) {
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) acc[q][k] = _mm512_loadu_ps(out + q * out_stride + 16 * k);
  }
  for (int64_t t = 0; t < count; ++t) {
    const __m512 r0 = rows.Load(t, j), r1 = rows.Load(t, j + 16);
    const __m512 r2 = rows.Load(t, j + 32), r3 = rows.Load(t, j + 48);
#pragma GCC unroll 4
    for (int q = 0; q < kQueries; ++q) {
      const __m512 w = _mm512_set1_ps(weights[q * weight_stride + t]);
      acc[q][0] = _mm512_fmadd_ps(w, r0, acc[q][0]);
      acc[q][1] = _mm512_fmadd_ps(w, r1, acc[q][1]);
      acc[q][2] = _mm512_fmadd_ps(w, r2, acc[q][2]);
      acc[q][3] = _mm512_fmadd_ps(w, r3, acc[q][3]);
    }
  }
#pragma GCC unroll 4
  for (int q = 0; q < kQueries; ++q) {
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) _mm512_storeu_ps(out + q * out_stride + 16 * k, acc[q][k]);
  }
}

// The columns [0, width rounded down to 64) of the weighted sums, up to four query rows a pass.
template <typename Rows>
int64_t WeightedSixtyFours(const float* weights, int64_t weight_stride, int64_t queries, Rows rows,
                           int64_t count, int64_t width, float* out, int64_t out_stride) {
  int64_t j = 0;
  for (; j + 64 <= width; j += 64) {
    for (int64_t q = 0; q < queries; q += 4) {
      const float* w = weights + q * weight_stride;
      float* o = out + q * out_stride + j;
      switch (std::min<int64_t>(4, queries - q)) {
        case 1: WeightedSixtyFourWide<1>(w, weight_stride, rows, j, count, o, out_stride); break;
        case 2: WeightedSixtyFourWide<2>(w, weight_stride, rows, j, count, o, out_stride); break;
        case 3: WeightedSixtyFourWide<3>(w, weight_stride, rows, j, count, o, out_stride); break;
        default: WeightedSixtyFourWide<4>(w, weight_stride, rows, j, count, o, out_stride); break;
      }
    }
  }
  return j;
}

// Halves or Q8_0 blocks of a width ReadsInPlace accepts: sixty-fours only.
void WeightedRowSumsHalvesWide(const float* weights, int64_t weight_stride, int64_t queries, const uint8_t* rows,
                               int64_t count, int64_t width, float* out, int64_t out_stride) {
  WeightedSixtyFours(weights, weight_stride, queries, HalfRows{reinterpret_cast<const uint16_t*>(rows), width}, count,
                     width, out, out_stride);
}
void WeightedRowSumsQ8_0Wide(const float* weights, int64_t weight_stride, int64_t queries, const uint8_t* rows,
                             int64_t count, int64_t width, float* out, int64_t out_stride) {
  WeightedSixtyFours(weights, weight_stride, queries, Q8_0RowsOf(rows, width), count, width, out, out_stride);
}

// A head eight wide (stories260K's): two rows of values a register, the even
// row's in the low half and the odd row's in the high half, each half the
// eight-lane kernel's running sum of even or odd rows.
void WeightedRowSumsEightWide(const float* weights, int64_t weight_stride, int64_t queries, const float* rows,
                              int64_t count, float* out, int64_t out_stride) {
  // Lanes 0-7 take the first of two weights, lanes 8-15 the second.
  const __m512i pair_lanes = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  for (int64_t q = 0; q < queries; ++q) {
    const float* w = weights + q * weight_stride;
    __m512 sums = _mm512_setzero_ps();
    int64_t t = 0;
    for (; t + 2 <= count; t += 2) {
      const __m128 two = _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + t)));
      const __m512 pair = _mm512_permutexvar_ps(pair_lanes, _mm512_castps128_ps512(two));
      sums = _mm512_fmadd_ps(pair, _mm512_loadu_ps(rows + t * 8), sums);
    }
    constexpr __mmask16 kLowHalf = 0x00FF;
    if (t < count) {
      sums = _mm512_mask3_fmadd_ps(_mm512_set1_ps(w[t]), _mm512_maskz_loadu_ps(kLowHalf, rows + t * 8), sums, kLowHalf);
    }
    const __m256 even = _mm512_castps512_ps256(sums);
    const __m256 odd = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sums), 1));
    float* o = out + q * out_stride;
    _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), _mm256_add_ps(even, odd)));
  }
}

void WeightedRowSumsWide(const float* weights, int64_t weight_stride, int64_t queries, const float* rows,
                         int64_t count, int64_t width, float* out, int64_t out_stride) {
  if (width == 8) {
    WeightedRowSumsEightWide(weights, weight_stride, queries, rows, count, out, out_stride);
    return;
  }
  const int64_t j = WeightedSixtyFours(weights, weight_stride, queries, FloatRows{rows, width}, count, width, out,
                                       out_stride);
  // Widths past the last sixty-four: sixteen values a pass, then one, a query row at a time.
  for (int64_t q = 0; q < queries; ++q) {
    const float* w = weights + q * weight_stride;
    float* o = out + q * out_stride;
    int64_t i = j;
    for (; i + 16 <= width; i += 16) {
      __m512 a = _mm512_loadu_ps(o + i);
      for (int64_t t = 0; t < count; ++t) a = _mm512_fmadd_ps(_mm512_set1_ps(w[t]), _mm512_loadu_ps(rows + t * width + i), a);
      _mm512_storeu_ps(o + i, a);
    }
    for (; i < width; ++i) {
      float sum = o[i];
      for (int64_t t = 0; t < count; ++t) sum = std::fma(w[t], rows[t * width + i], sum);
      o[i] = sum;
    }
  }
}

// Eight keys a pass for up to three query rows at once, sixteen values of
// each a multiply-add: each key is loaded once for all the rows. Each key's
// sixteen lanes are folded to eight and a row's eight keys reduced together
// as the eight-lane kernel reduces them.
// GCC 12 takes the undefined upper half _mm512_extractf64x4_pd starts from
// for an uninitialized read once this template is inlined (its bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
template <int kQueries, typename Rows>
void ScoresOfEightKeysWide(Rows keys, int64_t width, const float* queries, int64_t query_stride,
                           float scale, float* scores, int64_t score_stride) {
  __m512 acc[kQueries][8];
#pragma GCC unroll 3
  for (int q = 0; q < kQueries; ++q) {
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) acc[q][k] = _mm512_setzero_ps();
  }
  for (int64_t j = 0; j < width; j += 16) {
    __m512 query[kQueries];
#pragma GCC unroll 3
    for (int q = 0; q < kQueries; ++q) query[q] = _mm512_loadu_ps(queries + q * query_stride + j);
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      const __m512 key = keys.Load(k, j);
#pragma GCC unroll 3
      for (int q = 0; q < kQueries; ++q) acc[q][k] = _mm512_fmadd_ps(key, query[q], acc[q][k]);
    }
  }
  const __m256 scales = _mm256_set1_ps(scale);
#pragma GCC unroll 3
  for (int q = 0; q < kQueries; ++q) {
    __m256 half[8];
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[q][k]), 1));
      half[k] = _mm256_add_ps(_mm512_castps512_ps256(acc[q][k]), high);
    }
    _mm256_storeu_ps(scores + q * score_stride, _mm256_mul_ps(SumsOfEight(half), scales));
  }
}
#pragma GCC diagnostic pop

// The scores of keys [0, count rounded down to 8), up to three query rows a
// pass (width a multiple of sixteen); returns where they stop.
template <typename Rows>
int64_t ScoresOfEights(Rows keys, int64_t count, int64_t width, const float* queries, int64_t query_stride,
                       int64_t n_queries, float scale, float* scores, int64_t score_stride) {
  int64_t t = 0;
  for (; t + 8 <= count; t += 8) {
    const Rows eight = keys.From(t);
    for (int64_t q = 0; q < n_queries; q += 3) {
      const float* rows = queries + q * query_stride;
      float* out = scores + q * score_stride + t;
      switch (std::min<int64_t>(3, n_queries - q)) {
        case 1: ScoresOfEightKeysWide<1>(eight, width, rows, query_stride, scale, out, score_stride); break;
        case 2: ScoresOfEightKeysWide<2>(eight, width, rows, query_stride, scale, out, score_stride); break;
        default: ScoresOfEightKeysWide<3>(eight, width, rows, query_stride, scale, out, score_stride); break;
      }
    }
  }
  return t;
}

// The last keys of a run (fewer than eight), and every key of widths that are
// no multiple of sixteen, go to the eight-lane kernel a query row at a time.
void LastKeyScores(const float* keys, int64_t count, int64_t width, const float* queries, int64_t query_stride,
                   int64_t n_queries, float scale, float* scores, int64_t score_stride) {
  for (int64_t q = 0; q < n_queries; ++q) {
    KeyScores(keys, count, width, queries + q * query_stride, scale, scores + q * score_stride);
  }
}

void KeyScoresWide(const float* keys, int64_t count, int64_t width, const float* queries, int64_t query_stride,
                   int64_t n_queries, float scale, float* scores, int64_t score_stride) {
  const int64_t t =
      width % 16 == 0
          ? ScoresOfEights(FloatRows{keys, width}, count, width, queries, query_stride, n_queries, scale, scores,
                           score_stride)
          : 0;
  LastKeyScores(keys + t * width, count - t, width, queries, query_stride, n_queries, scale, scores + t, score_stride);
}

// Halves or Q8_0 blocks of a width ReadsInPlace accepts; the last keys are
// widened on the stack and meet the eight-lane kernel as KeyScoresWide's do.
template <typename Rows, void (*kWiden)(const uint8_t*, int64_t, float*)>
void KeyScoresInPlace(Rows rows, int64_t count, int64_t width, const float* queries, int64_t query_stride,
                      int64_t n_queries, float scale, float* scores, int64_t score_stride) {
  const int64_t t = ScoresOfEights(rows, count, width, queries, query_stride, n_queries, scale, scores, score_stride);
  if (t == count) return;
  alignas(64) float last[7 * kMaxInPlaceWidth];
  kWiden(reinterpret_cast<const uint8_t*>(rows.From(t).at), (count - t) * width, last);
  LastKeyScores(last, count - t, width, queries, query_stride, n_queries, scale, scores + t, score_stride);
}
void KeyScoresHalvesWide(const uint8_t* keys, int64_t count, int64_t width, const float* queries,
                         int64_t query_stride, int64_t n_queries, float scale, float* scores, int64_t score_stride) {
  KeyScoresInPlace<HalfRows, LoadHalvesWide>(HalfRows{reinterpret_cast<const uint16_t*>(keys), width}, count, width,
                                             queries, query_stride, n_queries, scale, scores, score_stride);
}
void KeyScoresQ8_0Wide(const uint8_t* keys, int64_t count, int64_t width, const float* queries,
                       int64_t query_stride, int64_t n_queries, float scale, float* scores, int64_t score_stride) {
  KeyScoresInPlace<Q8_0Rows, LoadQ8_0Wide>(Q8_0RowsOf(keys, width), count, width, queries, query_stride, n_queries,
                                           scale, scores, score_stride);
}

// What every pass of a call of KeyScoresTransposedWide shares.
struct TransposedScoresCall {
  int64_t block_size, width;
  const float* queries;
  int64_t query_stride;
  float scale;
  int64_t score_stride;
};

// Keys stored transposed: a register is one value of sixteen positions, so a
// query value broadcast and multiplied into it advances sixteen keys' scores
// and no key's lanes are folded. kRuns runs of sixteen positions a pass for
// kRows query rows (from call.queries), each run's chains split over kParts
// alternating values where there are too few chains to cover a
// multiply-add's latency; the last run keeps the scores of `last_run_lanes`
// only, and the runs of the next pass (`ahead`) are asked for meanwhile.
template <int kRows, int kRuns>
void ScoresOfTransposedRuns(const TransposedScoresCall& call, const uint8_t* const runs[kRuns],
                            const uint8_t* const* ahead, int ahead_count, __mmask16 last_run_lanes, float* scores) {
  constexpr int kParts = kRows * kRuns >= 8 ? 1 : 2;
  __m512 acc[kRows][kRuns][kParts];
#pragma GCC unroll 4
  for (int q = 0; q < kRows; ++q) {
#pragma GCC unroll 4
    for (int r = 0; r < kRuns; ++r) {
#pragma GCC unroll 2
      for (int p = 0; p < kParts; ++p) acc[q][r][p] = _mm512_setzero_ps();
    }
  }
  const int64_t dim_bytes = 2 * call.block_size;
  // A line for every 64 bytes of each run ahead: a value's sixteen halves are 32 bytes.
  const int64_t values_a_line = std::max<int64_t>(1, 64 / dim_bytes);
  for (int a = 0; a < ahead_count; ++a) {
    for (int64_t j = 0; j < call.width; j += values_a_line) {
      _mm_prefetch(reinterpret_cast<const char*>(ahead[a] + j * dim_bytes), _MM_HINT_T0);
    }
  }
  const auto step = [&](int64_t j, int p) {
    __m512 key[kRuns];
#pragma GCC unroll 4
    for (int r = 0; r < kRuns; ++r) {
      key[r] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(runs[r] + j * dim_bytes)));
    }
#pragma GCC unroll 4
    for (int q = 0; q < kRows; ++q) {
      const __m512 value = _mm512_set1_ps(call.queries[q * call.query_stride + j]);
#pragma GCC unroll 4
      for (int r = 0; r < kRuns; ++r) acc[q][r][p] = _mm512_fmadd_ps(value, key[r], acc[q][r][p]);
    }
  };
  int64_t j = 0;
  for (; j + kParts <= call.width; j += kParts) {
#pragma GCC unroll 2
    for (int p = 0; p < kParts; ++p) step(j + p, p);
  }
  for (; j < call.width; ++j) step(j, 0);
  const __m512 scales = _mm512_set1_ps(call.scale);
#pragma GCC unroll 4
  for (int q = 0; q < kRows; ++q) {
#pragma GCC unroll 4
    for (int r = 0; r < kRuns; ++r) {
      const __m512 sum = kParts == 1 ? acc[q][r][0] : _mm512_add_ps(acc[q][r][0], acc[q][r][kParts - 1]);
      const __mmask16 lanes = r == kRuns - 1 ? last_run_lanes : static_cast<__mmask16>(0xffff);
      _mm512_mask_storeu_ps(scores + q * call.score_stride + kTransposedKeyRun * r, lanes, _mm512_mul_ps(sum, scales));
    }
  }
}

// kRows query rows' scores of keys [0, count) in `blocks`, four runs a pass.
template <int kRows>
void ScoresOfTransposedRows(const TransposedScoresCall& call, const uint8_t* const* blocks, int64_t count,
                            float* scores) {
  constexpr int kMostRuns = 4;
  const int64_t runs_a_block = call.block_size / kTransposedKeyRun;
  const int64_t total = (count + kTransposedKeyRun - 1) / kTransposedKeyRun;
  const auto run_at = [&](int64_t i) {
    return blocks[i / runs_a_block] + 2 * kTransposedKeyRun * (i % runs_a_block);
  };
  for (int64_t i = 0; i < total; i += kMostRuns) {
    const int runs_now = static_cast<int>(std::min<int64_t>(kMostRuns, total - i));
    const uint8_t* runs[kMostRuns];
    const uint8_t* ahead[kMostRuns];
    int ahead_count = 0;
    for (int r = 0; r < runs_now; ++r) runs[r] = run_at(i + r);
    for (int64_t a = i + kMostRuns; a < std::min(total, i + 2 * kMostRuns); ++a) ahead[ahead_count++] = run_at(a);
    const int64_t left = count - (i + runs_now - 1) * kTransposedKeyRun;
    const auto last = static_cast<__mmask16>(left >= kTransposedKeyRun ? 0xffff : (1u << left) - 1);
    float* out = scores + i * kTransposedKeyRun;
    switch (runs_now) {
      case 1: ScoresOfTransposedRuns<kRows, 1>(call, runs, ahead, ahead_count, last, out); break;
      case 2: ScoresOfTransposedRuns<kRows, 2>(call, runs, ahead, ahead_count, last, out); break;
      case 3: ScoresOfTransposedRuns<kRows, 3>(call, runs, ahead, ahead_count, last, out); break;
      default: ScoresOfTransposedRuns<kRows, 4>(call, runs, ahead, ahead_count, last, out); break;
    }
  }
}

// Up to four query rows a pass (sixteen chains of four runs).
void KeyScoresTransposedWide(const uint8_t* const* blocks, int64_t count, int64_t block_size, int64_t width,
                             const float* queries, int64_t query_stride, int64_t n_queries, float scale,
                             float* scores, int64_t score_stride) {
  for (int64_t q = 0; q < n_queries; q += 4) {
    const TransposedScoresCall call{block_size, width, queries + q * query_stride, query_stride, scale, score_stride};
    float* out = scores + q * score_stride;
    switch (std::min<int64_t>(4, n_queries - q)) {
      case 1: ScoresOfTransposedRows<1>(call, blocks, count, out); break;
      case 2: ScoresOfTransposedRows<2>(call, blocks, count, out); break;
      case 3: ScoresOfTransposedRows<3>(call, blocks, count, out); break;
      default: ScoresOfTransposedRows<4>(call, blocks, count, out); break;
    }
  }
}

void AddAvx512AttentionKernels(KernelSet& set) {
  set.key_scores_f16_transposed = KeyScoresTransposedWide;
  set.load_f16 = LoadHalvesWide;
  set.load_q8_0 = LoadQ8_0Wide;
  set.weighted_row_sum = WeightedRowSumsWide;
  set.key_scores = KeyScoresWide;
  set.weighted_row_sum_f16 = WeightedRowSumsHalvesWide;
  set.key_scores_f16 = KeyScoresHalvesWide;
  set.weighted_row_sum_q8_0 = WeightedRowSumsQ8_0Wide;
  set.key_scores_q8_0 = KeyScoresQ8_0Wide;
}

}  // namespace
}  // namespace edgellm::engine::kernels

#endif  // EDGELLM_ENGINE_ATTENTION_KERNELS_AVX512_H_
