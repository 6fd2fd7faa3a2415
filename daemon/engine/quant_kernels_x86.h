// engine/quant_kernels_x86.h — the x86 kernels, written once and compiled
// once per instruction set: quant_kernels_avx2.cpp builds them with AVX2, FMA
// and F16C; quant_kernels_avxvnni.cpp and quant_kernels_avx512vnni.cpp add
// VNNI, whose one instruction does the byte dot that takes AVX2 two
// (maddubs then madd). Only those files include this one, after defining
// EDGELLM_X86_BYTE_DOT; everything here has internal linkage, so each gets
// its own copy built with its own flags. The sets compute identical results:
// no byte dot here can saturate maddubs's 16-bit pairs.
#ifndef EDGELLM_ENGINE_QUANT_KERNELS_X86_H_
#define EDGELLM_ENGINE_QUANT_KERNELS_X86_H_

#include <cpuid.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <string_view>

#include "daemon/engine/iq4_quants.h"
#include "daemon/engine/k_quants.h"
#include "daemon/engine/quant_kernels.h"

// How 32 unsigned bytes meet 32 signed bytes.
#define EDGELLM_X86_MADDUBS 0     // AVX2: vpmaddubsw, then vpmaddwd with ones
#define EDGELLM_X86_AVXVNNI 1     // AVX-VNNI (VEX): vpdpbusd
#define EDGELLM_X86_AVX512VNNI 2  // AVX512-VNNI with VL, on 256-bit registers: vpdpbusd
#ifndef EDGELLM_X86_BYTE_DOT
#error "define EDGELLM_X86_BYTE_DOT before including quant_kernels_x86.h"
#endif

namespace edgellm::engine::kernels {
namespace {

inline float HorizontalSum(__m256 v) {
  const __m128 sum4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 sum2 = _mm_add_ps(sum4, _mm_movehl_ps(sum4, sum4));
  return _mm_cvtss_f32(_mm_add_ss(sum2, _mm_movehdup_ps(sum2)));
}

// An fp16 value in lane 0.
inline __m128 LoadHalf(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return _mm_cvtph_ps(_mm_cvtsi32_si128(h));
}
inline float HalfToFloat(const uint8_t* p) { return _mm_cvtss_f32(LoadHalf(p)); }

// Decode streams every weight from memory once per token; asking for the
// bytes this far ahead keeps the loads from waiting on DRAM (about 10% more
// tok/s on tinyllama Q4_0 than the hardware prefetcher alone).
constexpr int kPrefetchBytes = 2048;
inline void PrefetchWeights(const uint8_t* w) {
  _mm_prefetch(reinterpret_cast<const char*>(w) + kPrefetchBytes, _MM_HINT_T0);
}

// Sum of the products of 32 unsigned bytes `u` (0..127 at most) with 32 signed bytes `s`, as 8 int32.
inline __m256i DotBytes(__m256i u, __m256i s) {
#if EDGELLM_X86_BYTE_DOT == EDGELLM_X86_AVXVNNI
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s);
#elif EDGELLM_X86_BYTE_DOT == EDGELLM_X86_AVX512VNNI
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
  const __m256i pairs = _mm256_maddubs_epi16(u, s);  // 16 x int16, no overflow for |u| <= 128 and |s| <= 127
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
#endif
}

// The larger magnitude of each lane of `amax` and of `v`.
inline __m256 MaxMagnitude(__m256 amax, __m256 v) {
  return _mm256_max_ps(amax, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v));
}

inline float HorizontalMax(__m256 v) {
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  return _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
}

inline int32_t HorizontalSum(__m256i v) {
  __m128i sum4 = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  sum4 = _mm_add_epi32(sum4, _mm_shuffle_epi32(sum4, 0x4e));
  return _mm_cvtsi128_si32(_mm_add_epi32(sum4, _mm_shuffle_epi32(sum4, 0xb1)));
}

inline __m256 InverseScale(float d) { return _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f); }

// 32 floats times `inverse`, rounded to nearest (ties to even, as the scalar
// reference's nearbyint), into 32 int8 in order; the sums of the first 16
// and of the last 16.
inline void QuantizeThirtyTwo(const float* x, __m256 inverse, int8_t* out, int32_t* first_sum, int32_t* second_sum) {
  __m256i q[4];
  for (int i = 0; i < 4; ++i) {
    const __m256 scaled = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), inverse),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q[i] = _mm256_cvtps_epi32(scaled);
  }
  *first_sum = HorizontalSum(_mm256_add_epi32(q[0], q[1]));
  *second_sum = HorizontalSum(_mm256_add_epi32(q[2], q[3]));
  const __m256i q16a = _mm256_packs_epi32(q[0], q[1]);  // lanes interleave: fixed by the permute below
  const __m256i q16b = _mm256_packs_epi32(q[2], q[3]);
  const __m256i q8 = _mm256_packs_epi16(q16a, q16b);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                      _mm256_permutevar8x32_epi32(q8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

void Quantize(const float* x, ActivationBlock* out, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, x += kBlock) {
    __m256 amax = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) amax = MaxMagnitude(amax, _mm256_loadu_ps(x + 8 * i));
    const float d = HorizontalMax(amax) / 127.0f;
    int32_t first_sum, second_sum;
    QuantizeThirtyTwo(x, InverseScale(d), out[b].q, &first_sum, &second_sum);
    out[b].d = d;
    // sum_d added as floats (exact for any real block, |sum| <= 4064) and
    // sum_q as unsigned: the garbage sums a NaN activation makes wrap rather
    // than overflow.
    out[b].sum_d = d * (static_cast<float>(first_sum) + static_cast<float>(second_sum));
    out[b].sum_q = static_cast<int32_t>(static_cast<uint32_t>(first_sum) + static_cast<uint32_t>(second_sum));
  }
}

void QuantizeSuper(const float* x, SuperActivationBlock* out, int64_t count) {
  for (int64_t b = 0; b < count; ++b, x += kSuperBlock) {
    __m256 amax = _mm256_setzero_ps();
    for (size_t i = 0; i < kSuperBlock; i += 8) amax = MaxMagnitude(amax, _mm256_loadu_ps(x + i));
    const float d = HorizontalMax(amax) / 127.0f;
    const __m256 inverse = InverseScale(d);
    for (int c = 0; c < kGroupsPerSuperBlock / 2; ++c) {
      int32_t first_sum, second_sum;
      QuantizeThirtyTwo(x + 32 * c, inverse, out[b].q + 32 * c, &first_sum, &second_sum);
      out[b].group_sums[2 * c] = static_cast<int16_t>(first_sum);
      out[b].group_sums[2 * c + 1] = static_cast<int16_t>(second_sum);
    }
    out[b].d = d;
  }
}

// Signed weights (Q8_0, the IQ4 types): their magnitudes (the byte dot's
// unsigned operand) and their signs, which go onto the activations.
struct SignedWeights {
  __m256i magnitude, sign;
};
inline SignedWeights Signed(__m256i weights) { return {_mm256_sign_epi8(weights, weights), weights}; }
inline __m256i DotSigned(const SignedWeights& w, const ActivationBlock& a) {
  const __m256i aq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q));
  return DotBytes(w.magnitude, _mm256_sign_epi8(aq, w.sign));
}
// Unsigned weights (the nibbles of Q4_0/Q4_1, the five bits of Q5_0/Q5_1),
// their offsets applied in float through the activations' sum_d.
inline __m256i DotUnsigned(const __m256i& w, const ActivationBlock& a) {
  return DotBytes(w, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q)));
}

// 16 bytes of nibbles as 32 unsigned bytes 0..15: low nibbles in the low
// lane, high nibbles in the high lane (weights 0-15, then 16-31).
inline __m256i UnpackNibbles(const uint8_t* qs) {
  const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
}

// Five-bit weights: the nibbles at kQs with bit i of the 32-bit qh at kQh as
// bit 4 of weight i, unsigned 0..31.
template <int kQh, int kQs>
inline __m256i UnpackFiveBits(const uint8_t* w) {
  uint32_t qh;
  std::memcpy(&qh, w + kQh, sizeof(qh));
  // Byte i of `spread` is byte i / 8 of qh; OR-ing every bit but bit i % 8 and
  // comparing with all-ones leaves 0xFF exactly where bit i is set.
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int32_t>(qh)),
      _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)),
                                        _mm256_set1_epi64x(-1));
  return _mm256_or_si256(UnpackNibbles(w + kQs), _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
}

// IQ4 indices (16 bytes) as their 32 signed values, looked up 32 at once.
inline __m256i Iq4Values(const uint8_t* qs) {
  const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values)));
  return _mm256_shuffle_epi8(table, UnpackNibbles(qs));
}

// The 32-weight block types. Each has kBytes per block and an fp16 scale d
// at byte 0; Unpack gives its 32 weights and Dot meets them with an
// activation block. Stored weights may carry an offset, applied through the
// activations' sum_d once per block: a constant kOffset (Q4_0 stores q + 8,
// so 8·d·Σa is subtracted) or an fp16 min at byte kMinAt (Q4_1: w = d·q + m,
// so m·Σa is added).
struct Q8_0Block {
  static constexpr int kBytes = 34, kOffset = 0, kMinAt = -1;
  static SignedWeights Unpack(const uint8_t* w) {
    return Signed(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2)));
  }
  static __m256i Dot(const SignedWeights& w, const ActivationBlock& a) { return DotSigned(w, a); }
};
struct Q4_0Block {
  static constexpr int kBytes = 18, kOffset = 8, kMinAt = -1;
  static __m256i Unpack(const uint8_t* w) { return UnpackNibbles(w + 2); }
  static __m256i Dot(const __m256i& w, const ActivationBlock& a) { return DotUnsigned(w, a); }
};
struct Q4_1Block {
  static constexpr int kBytes = 20, kOffset = 0, kMinAt = 2;
  static __m256i Unpack(const uint8_t* w) { return UnpackNibbles(w + 4); }
  static __m256i Dot(const __m256i& w, const ActivationBlock& a) { return DotUnsigned(w, a); }
};
struct Q5_0Block {
  static constexpr int kBytes = 22, kOffset = 16, kMinAt = -1;
  static __m256i Unpack(const uint8_t* w) { return UnpackFiveBits<2, 6>(w); }
  static __m256i Dot(const __m256i& w, const ActivationBlock& a) { return DotUnsigned(w, a); }
};
struct Q5_1Block {
  static constexpr int kBytes = 24, kOffset = 0, kMinAt = 2;
  static __m256i Unpack(const uint8_t* w) { return UnpackFiveBits<4, 8>(w); }
  static __m256i Dot(const __m256i& w, const ActivationBlock& a) { return DotUnsigned(w, a); }
};
struct Iq4_NLBlock {
  static constexpr int kBytes = 18, kOffset = 0, kMinAt = -1;
  static SignedWeights Unpack(const uint8_t* w) { return Signed(Iq4Values(w + 2)); }
  static __m256i Dot(const SignedWeights& w, const ActivationBlock& a) { return DotSigned(w, a); }
};

template <typename Block>
constexpr bool kHasOffset = Block::kOffset != 0 || Block::kMinAt >= 0;
// The factor of Σ offset·sum_d that FinishDot subtracts.
template <typename Block>
constexpr float kOffsetFactor = Block::kMinAt >= 0 ? -1.0f : static_cast<float>(Block::kOffset);
// The per-block weight of the offset term, given the block's scale.
template <typename Block>
inline __m128 OffsetWeight(const uint8_t* w, __m128 scale) {
  if constexpr (Block::kMinAt >= 0) {
    return LoadHalf(w + Block::kMinAt);
  } else {
    return scale;
  }
}

// A row's dot from its two float accumulators and, for a type whose weights
// are stored with an offset, the two offset sums Σ offset·sum_d. Shared by
// the one-row and four-row kernels so both round alike.
inline float FinishDot(__m256 acc0, __m256 acc1, float offset_sum, float offset_factor) {
  return _mm_cvtss_f32(_mm_fnmadd_ss(_mm_set_ss(offset_factor), _mm_set_ss(offset_sum),
                                     _mm_set_ss(HorizontalSum(_mm256_add_ps(acc0, acc1)))));
}

// Two blocks per iteration into two accumulators: the multiply-adds of
// neighbouring blocks overlap instead of waiting on one another.
template <typename Block>
float DotBlocks(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m128 offset_sum0 = _mm_setzero_ps(), offset_sum1 = _mm_setzero_ps();
  auto accumulate = [&](__m256& acc, __m128& offset_sum, const uint8_t* block_w, const ActivationBlock& block) {
    const __m128 scale = LoadHalf(block_w);
    acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_mul_ss(scale, _mm_set_ss(block.d))),
                          _mm256_cvtepi32_ps(Block::Dot(Block::Unpack(block_w), block)), acc);
    if constexpr (kHasOffset<Block>) {
      offset_sum = _mm_fmadd_ss(OffsetWeight<Block>(block_w, scale), _mm_set_ss(block.sum_d), offset_sum);
    }
  };
  int64_t b = 0;
  for (; b + 1 < blocks; b += 2, w += 2 * Block::kBytes) {
    PrefetchWeights(w);
    accumulate(acc0, offset_sum0, w, a[b]);
    accumulate(acc1, offset_sum1, w + Block::kBytes, a[b + 1]);
  }
  if (b < blocks) accumulate(acc0, offset_sum0, w, a[b]);
  return FinishDot(acc0, acc1, _mm_cvtss_f32(_mm_add_ss(offset_sum0, offset_sum1)), kOffsetFactor<Block>);
}

// Four activation rows against one weight row, in exactly the order of
// DotBlocks (even blocks into one accumulator, odd into another, the same
// finish), so a sequence gets the same result batched or alone. The weight
// block is loaded and unpacked once for the four.
template <typename Block>
void Dot4Blocks(const uint8_t* w, const ActivationBlock* a, int64_t stride, int64_t blocks, float out[4]) {
  __m256 acc0[4], acc1[4];
  for (int i = 0; i < 4; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
  __m128 offset_sum0 = _mm_setzero_ps(), offset_sum1 = _mm_setzero_ps();  // lane i: row i
  auto accumulate = [&](__m256* acc, __m128& offset_sum, const uint8_t* block_w, int64_t b) {
    const auto unpacked = Block::Unpack(block_w);
    const __m128 scale = LoadHalf(block_w);
    const __m256 scale8 = _mm256_broadcastss_ps(scale);
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const ActivationBlock& block = a[i * stride + b];
      // A broadcast from memory costs a load, not a shuffle: one multiply per row is all the scale costs.
      acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(scale8, _mm256_broadcast_ss(&block.d)),
                               _mm256_cvtepi32_ps(Block::Dot(unpacked, block)), acc[i]);
    }
    if constexpr (kHasOffset<Block>) {
      const __m128 sums = _mm_setr_ps(a[b].sum_d, a[stride + b].sum_d, a[2 * stride + b].sum_d, a[3 * stride + b].sum_d);
      offset_sum = _mm_fmadd_ps(_mm_broadcastss_ps(OffsetWeight<Block>(block_w, scale)), sums, offset_sum);
    }
  };
  int64_t b = 0;
  for (; b + 1 < blocks; b += 2, w += 2 * Block::kBytes) {
    PrefetchWeights(w);
    accumulate(acc0, offset_sum0, w, b);
    accumulate(acc1, offset_sum1, w + Block::kBytes, b + 1);
  }
  if (b < blocks) accumulate(acc0, offset_sum0, w, b);
  alignas(16) float offsets[4];
  _mm_store_ps(offsets, _mm_add_ps(offset_sum0, offset_sum1));
  for (int i = 0; i < 4; ++i) out[i] = FinishDot(acc0[i], acc1[i], offsets[i], kOffsetFactor<Block>);
}

// The super-block types' kernels take kRows activation rows (1 or 4), each
// `stride` super-blocks after the last, through one body: a super-block's
// weights and scales are unpacked once for all the rows. A row's dot over a
// super-block is summed exactly in int32 lanes — maddubs pairs the byte
// products into int16 (no pair can saturate: unsigned weights are at most
// 63, IQ4 magnitudes 127, activations 127 in magnitude), then each pair is
// multiplied by its group's 16-bit scale — and scaled to real units once per
// super-block. Every row's result comes from the same operations in the same
// order whatever kRows is, so a sequence gets the same logits batched or alone.

// sum + pairs·scales, adjacent int16 products added into each int32 lane
// (VNNI does the multiply and both adds in one instruction).
inline __m256i AddScaledPairs(__m256i sum, __m256i pairs, __m256i scales) {
#if EDGELLM_X86_BYTE_DOT == EDGELLM_X86_AVXVNNI
  return _mm256_dpwssd_avx_epi32(sum, pairs, scales);
#elif EDGELLM_X86_BYTE_DOT == EDGELLM_X86_AVX512VNNI
  return _mm256_dpwssd_epi32(sum, pairs, scales);
#else
  return _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, scales));
#endif
}

// The products of 32 unsigned weight bytes with 32 activations, adjacent
// pairs added: int16 lanes 0-7 cover weights 0-15, lanes 8-15 weights 16-31.
inline __m256i BytePairs(__m256i weights, const int8_t* a) {
  return _mm256_maddubs_epi16(weights, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a)));
}

// Eight int8 scales (one per 32 weights) as int16, s0..s7 in each 128-bit lane.
inline __m256i SubBlockScales(uint64_t bytes) {
  return _mm256_cvtepi8_epi16(_mm_set1_epi64x(static_cast<int64_t>(bytes)));
}
// Sixteen int8 scales (one per 16 weights) as int16: the even-numbered in the
// low 128-bit lane, the odd in the high one, so that LaneScale(v, m) gives
// group 2m's scale to weights 0-15 of a 32 and group 2m+1's to weights 16-31.
inline __m256i PairedGroupScales(__m128i bytes) {
  return _mm256_cvtepi8_epi16(
      _mm_shuffle_epi8(bytes, _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15)));
}
// Int16 lane m of each 128-bit half of `scales` in all eight lanes of that half.
inline __m256i LaneScale(__m256i scales, int m) {
  return _mm256_shuffle_epi8(scales, _mm256_set1_epi16(static_cast<int16_t>((2 * m) | ((2 * m + 1) << 8))));
}

// The sixteen activation group sums of a super-block, as int16 lanes.
inline __m256i GroupSums(const SuperActivationBlock& a) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.group_sums));
}

// acc + scale·sum, the integer super-block sum in real units.
inline __m256 AddScaled(__m256 acc, float scale, __m256i sum) {
  return _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(sum), acc);
}

// A super-block of a type with mins, into each row's accumulator: d times
// its scaled sums (two chains) less dmin times the mins (int16 per group)
// against the row's group sums.
template <int kRows>
inline void AddWithMins(__m256 acc[kRows], const __m256i sum[2][kRows], __m256i mins, float d, float dmin,
                        const SuperActivationBlock* a, int64_t stride) {
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) {
    const SuperActivationBlock& row = a[i * stride];
    acc[i] = AddScaled(acc[i], d * row.d, _mm256_add_epi32(sum[0][i], sum[1][i]));
    acc[i] = AddScaled(acc[i], -dmin * row.d, _mm256_madd_epi16(GroupSums(row), mins));
  }
}

// A Q4_K or Q5_K super-block's eight 6-bit scales and mins, a byte each,
// unpacked a word at a time (Q4_KScaleMin's layout).
inline void Q4_KScalesAndMins(const uint8_t* w, uint64_t* scales, uint64_t* mins) {
  uint32_t packed[3];
  std::memcpy(packed, w + 4, sizeof(packed));
  const uint32_t low6 = 0x3f3f3f3f, low4 = 0x0f0f0f0f, top2 = 0x03030303;
  *scales = (packed[0] & low6) |
            static_cast<uint64_t>((packed[2] & low4) | (((packed[0] >> 6) & top2) << 4)) << 32;
  *mins = (packed[1] & low6) |
          static_cast<uint64_t>(((packed[2] >> 4) & low4) | (((packed[1] >> 6) & top2) << 4)) << 32;
}
// Min j for the group sums 2j and 2j+1, as int16 lanes.
inline __m256i Q4_KGroupMins(uint64_t mins) {
  const __m128i bytes = _mm_cvtsi64_si128(static_cast<int64_t>(mins));
  return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(bytes, bytes));
}

// Q4_K and Q5_K: sub-block j (32 weights) meets activations 32j..32j+31;
// `Unpack(c, h)` gives sub-block 2c + h's weights as unsigned bytes. The mins
// meet the activations' group sums.
template <int kRows, size_t kBytes, typename Unpack>
void DotRowsWithMins(const uint8_t* w, const SuperActivationBlock* a, int64_t stride, int64_t count, float* out,
                     Unpack unpack) {
  __m256 acc[kRows];
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t s = 0; s < count; ++s, w += kBytes) {
    for (size_t line = 0; line < kBytes; line += 64) PrefetchWeights(w + line);
    uint64_t scale_bytes, min_bytes;
    Q4_KScalesAndMins(w, &scale_bytes, &min_bytes);
    const __m256i scales = SubBlockScales(scale_bytes);
    // Per row, the low- and high-nibble sub-blocks in their own sums: two short add chains.
    __m256i sum[2][kRows];
#pragma GCC unroll 8
    for (int i = 0; i < kRows; ++i) sum[0][i] = sum[1][i] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int c = 0; c < 4; ++c) {
      const __m256i q[2] = {unpack(w, c, 0), unpack(w, c, 1)};
#pragma GCC unroll 8
      for (int h = 0; h < 2; ++h) {
        const __m256i scale = LaneScale(scales, 2 * c + h);
#pragma GCC unroll 8
        for (int i = 0; i < kRows; ++i) {
          sum[h][i] = AddScaledPairs(sum[h][i], BytePairs(q[h], a[i * stride + s].q + 64 * c + 32 * h), scale);
        }
      }
    }
    AddWithMins<kRows>(acc, sum, Q4_KGroupMins(min_bytes), HalfToFloat(w), HalfToFloat(w + 2), a + s, stride);
  }
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) out[i] = HorizontalSum(acc[i]);
}

// Q4_K: bytes qs[32c..32c+31] hold sub-block 2c in their low nibbles, 2c+1 in their high ones.
template <int kRows>
void DotRowsQ4_K(const uint8_t* w, const SuperActivationBlock* a, int64_t stride, int64_t count, float* out) {
  DotRowsWithMins<kRows, kQ4_KBytes>(w, a, stride, count, out, [](const uint8_t* block, int c, int h) {
    const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 16 + 32 * c));
    return _mm256_and_si256(_mm256_srli_epi16(bytes, 4 * h), _mm256_set1_epi8(0x0f));
  });
}

// Q5_K: Q4_K's nibbles (at byte 48) with bit j of qh[l] as bit 4 of weight l of sub-block j.
template <int kRows>
void DotRowsQ5_K(const uint8_t* w, const SuperActivationBlock* a, int64_t stride, int64_t count, float* out) {
  DotRowsWithMins<kRows, kQ5_KBytes>(w, a, stride, count, out, [](const uint8_t* block, int c, int h) {
    const int j = 2 * c + h;
    const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 48 + 32 * c));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 16));
    const __m256i low = _mm256_and_si256(_mm256_srli_epi16(bytes, 4 * h), _mm256_set1_epi8(0x0f));
    // Shifting 16-bit lanes moves no bit of one byte into bit 0 of another.
    const __m256i high = _mm256_and_si256(_mm256_srli_epi16(qh, j), _mm256_set1_epi8(1));
    return _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
  });
}

// The types with sixteen groups of 16 weights, each with a signed scale, and
// weights stored as unsigned q + offset: Q6_K (offset 32) and Q3_K (offset 4).
// `Unpack(k, j)` gives the 32 weights 128k + 32j.. as unsigned bytes
// (groups 8k + 2j and 8k + 2j + 1); `scales_of` gives the sixteen scales as
// int8 and d is the fp16 at byte `d_at`. The offsets (1 << kOffsetShift)
// meet the group sums, once per super-block.
// A super-block of a type with group scales and offsets, into each row's
// accumulator: d times its scaled sums (two chains) less the offsets
// (1 << kOffsetShift per weight, times the group's scale) against the row's
// group sums.
template <int kRows, int kOffsetShift>
inline void AddWithGroupOffsets(__m256 acc[kRows], const __m256i sum[2][kRows], __m128i scale_bytes, float d,
                                const SuperActivationBlock* a, int64_t stride) {
  const __m256i natural = _mm256_cvtepi8_epi16(scale_bytes);
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) {
    const SuperActivationBlock& row = a[i * stride];
    const __m256i offsets = _mm256_slli_epi32(_mm256_madd_epi16(GroupSums(row), natural), kOffsetShift);
    acc[i] = AddScaled(acc[i], d * row.d, _mm256_sub_epi32(_mm256_add_epi32(sum[0][i], sum[1][i]), offsets));
  }
}

template <int kRows, size_t kBytes, int kOffsetShift, typename Scales, typename Unpack>
void DotRowsWithGroupScales(const uint8_t* w, const SuperActivationBlock* a, int64_t stride, int64_t count,
                            float* out, Scales scales_of, size_t d_at, Unpack unpack) {
  __m256 acc[kRows];
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t s = 0; s < count; ++s, w += kBytes) {
    for (size_t line = 0; line < kBytes; line += 64) PrefetchWeights(w + line);
    const __m128i scale_bytes = scales_of(w);
    const __m256i paired = PairedGroupScales(scale_bytes);
    __m256i sum[2][kRows];
#pragma GCC unroll 8
    for (int i = 0; i < kRows; ++i) sum[0][i] = sum[1][i] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int k = 0; k < 2; ++k) {
#pragma GCC unroll 8
      for (int j = 0; j < 4; ++j) {
        const __m256i q = unpack(w, k, j);
        const __m256i scale = LaneScale(paired, 4 * k + j);
#pragma GCC unroll 8
        for (int i = 0; i < kRows; ++i) {
          sum[j % 2][i] = AddScaledPairs(sum[j % 2][i], BytePairs(q, a[i * stride + s].q + 128 * k + 32 * j), scale);
        }
      }
    }
    AddWithGroupOffsets<kRows, kOffsetShift>(acc, sum, scale_bytes, HalfToFloat(w + d_at), a + s, stride);
  }
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) out[i] = HorizontalSum(acc[i]);
}

// Q6_K: quarter j of half k (32 weights) has four low bits in ql (low or
// high nibbles of 32 bytes) and two high bits in qh; scales are int8 at 192
// and d the fp16 at 208.
constexpr size_t kQ6_KScaleAt = 208;
inline __m128i Q6_KScales(const uint8_t* block) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 192));
}
inline __m256i Q6_KWeights(const uint8_t* block, int k, int j) {
  const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64 * k + 32 * (j % 2)));
  const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 128 + 32 * k));
  const __m256i low = _mm256_and_si256(_mm256_srli_epi16(ql, 4 * (j / 2)), _mm256_set1_epi8(0x0f));
  const __m256i high = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), _mm256_set1_epi8(3));
  return _mm256_or_si256(low, _mm256_slli_epi16(high, 4));  // 0..63
}
template <int kRows>
void DotRowsQ6_K(const uint8_t* w, const SuperActivationBlock* a, int64_t stride, int64_t count, float* out) {
  DotRowsWithGroupScales<kRows, kQ6_KBytes, 5>(w, a, stride, count, out, Q6_KScales, kQ6_KScaleAt, Q6_KWeights);
}

// Q3_KScales a word at a time, less 32: scales 0-7 have their low nibbles
// in the low nibbles of packed[0..7], 8-15 in the high ones; the top two
// bits of scales 4m..4m+3 are bits 2m, 2m+1 of packed[8..11].
inline __m128i Q3_KSignedScales(const uint8_t* packed) {
  uint32_t words[3];
  std::memcpy(words, packed, sizeof(words));
  const uint32_t low4 = 0x0f0f0f0f, top2 = 0x03030303;
  const __m128i scales =
      _mm_setr_epi32(static_cast<int32_t>((words[0] & low4) | ((words[2] & top2) << 4)),
                     static_cast<int32_t>((words[1] & low4) | (((words[2] >> 2) & top2) << 4)),
                     static_cast<int32_t>(((words[0] >> 4) & low4) | (((words[2] >> 4) & top2) << 4)),
                     static_cast<int32_t>(((words[1] >> 4) & low4) | (((words[2] >> 6) & top2) << 4)));
  return _mm_sub_epi8(scales, _mm_set1_epi8(32));
}

// Q3_K: two low bits per weight in qs (as Q2_K) and a third in hmask that,
// when clear, takes 4 off: unpacked as 0..7 (value + 4). The sixteen 6-bit
// scales are stored plus 32.
template <int kRows>
void DotRowsQ3_K(const uint8_t* w, const SuperActivationBlock* a, int64_t stride, int64_t count, float* out) {
  DotRowsWithGroupScales<kRows, kQ3_KBytes, 2>(
      w, a, stride, count, out,
      [](const uint8_t* block) { return Q3_KSignedScales(block + 96); },
      108,
      [](const uint8_t* block, int k, int j) {
        const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 32 + 32 * k));
        const __m256i hmask = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block));
        // 16-bit shifts of at most 7 move no bit of one byte into the bits kept of another.
        const __m256i low = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * j), _mm256_set1_epi8(3));
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(hmask, 4 * k + j), _mm256_set1_epi8(1));
        return _mm256_or_si256(low, _mm256_slli_epi16(high, 2));
      });
}

// Q2_K: two bits per weight; each 16-weight group has a 4-bit scale (low
// nibble) and a 4-bit min (high), in units of d and dmin. The mins meet the
// group sums.
template <int kRows>
void DotRowsQ2_K(const uint8_t* w, const SuperActivationBlock* a, int64_t stride, int64_t count, float* out) {
  const __m128i low_nibbles = _mm_set1_epi8(0x0f);
  __m256 acc[kRows];
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t s = 0; s < count; ++s, w += kQ2_KBytes) {
    for (size_t line = 0; line < kQ2_KBytes; line += 64) PrefetchWeights(w + line);
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
    const __m256i paired = PairedGroupScales(_mm_and_si128(packed, low_nibbles));
    __m256i sum[2][kRows];
#pragma GCC unroll 8
    for (int i = 0; i < kRows; ++i) sum[0][i] = sum[1][i] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int k = 0; k < 2; ++k) {
      const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16 + 32 * k));
#pragma GCC unroll 8
      for (int j = 0; j < 4; ++j) {
        const __m256i q = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * j), _mm256_set1_epi8(3));
        const __m256i scale = LaneScale(paired, 4 * k + j);
#pragma GCC unroll 8
        for (int i = 0; i < kRows; ++i) {
          sum[j % 2][i] = AddScaledPairs(sum[j % 2][i], BytePairs(q, a[i * stride + s].q + 128 * k + 32 * j), scale);
        }
      }
    }
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), low_nibbles));
    AddWithMins<kRows>(acc, sum, mins, HalfToFloat(w + 80), HalfToFloat(w + 82), a + s, stride);
  }
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) out[i] = HorizontalSum(acc[i]);
}

// Iq4XsScale for the eight sub-blocks, less 32, a byte each: the low four
// bits are nibbles of bytes 4-7, the top two bits pairs of the 16 at byte 2.
inline uint64_t Iq4XsSignedScales(const uint8_t* w) {
  uint32_t low_packed;
  uint16_t high_packed;
  std::memcpy(&low_packed, w + 4, sizeof(low_packed));
  std::memcpy(&high_packed, w + 2, sizeof(high_packed));
  const __m128i packed = _mm_cvtsi32_si128(static_cast<int32_t>(low_packed));
  const __m128i low = _mm_unpacklo_epi8(_mm_and_si128(packed, _mm_set1_epi8(0x0f)),
                                        _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0f)));
  // Lane j: bits 2j and 2j+1 of high_packed, shifted to the top and back down.
  const __m128i high = _mm_srli_epi16(
      _mm_mullo_epi16(_mm_set1_epi16(static_cast<int16_t>(high_packed)),
                      _mm_setr_epi16(1 << 14, 1 << 12, 1 << 10, 1 << 8, 1 << 6, 1 << 4, 1 << 2, 1)),
      14);
  const __m128i scales = _mm_or_si128(low, _mm_slli_epi16(_mm_packus_epi16(high, high), 4));
  return static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_sub_epi8(scales, _mm_set1_epi8(32))));
}

// IQ4_XS: eight sub-blocks of IQ4 values, each with its own 6-bit scale
// (less 32). The values are signed: their magnitudes meet the activations
// with the values' signs.
template <int kRows>
void DotRowsIq4_XS(const uint8_t* w, const SuperActivationBlock* a, int64_t stride, int64_t count, float* out) {
  __m256 acc[kRows];
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t s = 0; s < count; ++s, w += kIq4XsBytes) {
    for (size_t line = 0; line < kIq4XsBytes; line += 64) PrefetchWeights(w + line);
    const __m256i scales = SubBlockScales(Iq4XsSignedScales(w));
    __m256i sum[2][kRows];
#pragma GCC unroll 8
    for (int i = 0; i < kRows; ++i) sum[0][i] = sum[1][i] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      const __m256i values = Iq4Values(w + 8 + 16 * j);
      const __m256i magnitude = _mm256_sign_epi8(values, values);
      const __m256i scale = LaneScale(scales, j);
#pragma GCC unroll 8
      for (int i = 0; i < kRows; ++i) {
        const __m256i aq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i * stride + s].q + 32 * j));
        sum[j % 2][i] =
            AddScaledPairs(sum[j % 2][i], _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(aq, values)), scale);
      }
    }
    const float d = HalfToFloat(w);
#pragma GCC unroll 8
    for (int i = 0; i < kRows; ++i) {
      acc[i] = AddScaled(acc[i], d * a[i * stride + s].d, _mm256_add_epi32(sum[0][i], sum[1][i]));
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) out[i] = HorizontalSum(acc[i]);
}

// The kernels by type, as KernelSet holds them.
template <typename Block>
float DotOne(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  return DotBlocks<Block>(w, a, blocks);
}
template <typename Block>
void DotFour(const uint8_t* w, const ActivationBlock* a, int64_t stride, int64_t blocks, float out[4]) {
  Dot4Blocks<Block>(w, a, stride, blocks, out);
}
template <void (*Rows)(const uint8_t*, const SuperActivationBlock*, int64_t, int64_t, float*)>
float SuperBlockDotOne(const uint8_t* w, const SuperActivationBlock* a, int64_t count) {
  float out;
  Rows(w, a, 0, count, &out);
  return out;
}
template <void (*Rows)(const uint8_t*, const SuperActivationBlock*, int64_t, int64_t, float*)>
void SuperBlockDotFour(const uint8_t* w, const SuperActivationBlock* a, int64_t stride, int64_t count, float out[4]) {
  Rows(w, a, stride, count, out);
}

float DotF16(const uint8_t* w, const float* x, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i)));
    const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i + 16)));
    acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), acc1);
  }
  return HorizontalSum(_mm256_add_ps(acc0, acc1));
}

float DotF32(const uint8_t* w, const float* x, int64_t n) {
  const float* wf = reinterpret_cast<const float*>(w);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i), _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i + 8), _mm256_loadu_ps(x + i + 8), acc1);
  }
  return HorizontalSum(_mm256_add_ps(acc0, acc1));
}

// Four registers of `out` stay in place while every row's weight meets them.
// A head eight wide (stories260K's) is one register, so its even and odd rows
// go to two running sums, added at the end, that do not wait on each other.
void WeightedRowSum(const float* weights, const float* rows, int64_t count, int64_t width, float* out) {
  if (width == 8) {
    __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();
    int64_t t = 0;
    for (; t + 2 <= count; t += 2) {
      even = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + t), _mm256_loadu_ps(rows + t * 8), even);
      odd = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + t + 1), _mm256_loadu_ps(rows + t * 8 + 8), odd);
    }
    if (t < count) even = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + t), _mm256_loadu_ps(rows + t * 8), even);
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_loadu_ps(out), _mm256_add_ps(even, odd)));
    return;
  }
  int64_t j = 0;
  for (; j + 32 <= width; j += 32) {
    __m256 a0 = _mm256_loadu_ps(out + j), a1 = _mm256_loadu_ps(out + j + 8);
    __m256 a2 = _mm256_loadu_ps(out + j + 16), a3 = _mm256_loadu_ps(out + j + 24);
    for (int64_t t = 0; t < count; ++t) {
      const __m256 w = _mm256_broadcast_ss(weights + t);
      const float* row = rows + t * width + j;
      a0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(row), a0);
      a1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(row + 8), a1);
      a2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(row + 16), a2);
      a3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(row + 24), a3);
    }
    _mm256_storeu_ps(out + j, a0);
    _mm256_storeu_ps(out + j + 8, a1);
    _mm256_storeu_ps(out + j + 16, a2);
    _mm256_storeu_ps(out + j + 24, a3);
  }
  for (; j < width; ++j) {
    float sum = out[j];
    for (int64_t t = 0; t < count; ++t) sum = std::fma(weights[t], rows[t * width + j], sum);
    out[j] = sum;
  }
}

// Eight keys a pass, each its own chain of multiply-adds, their eight sums
// reduced together at the end (three rounds of pairwise adds for all eight,
// where a dot a key pays its own reduction and call).
// The sum of each of eight registers' lanes, in order: hadd twice leaves
// registers 0-3 in each half (low and high four lanes' sums); adding the
// halves of the two quartets gives the eight.
inline __m256 SumsOfEight(const __m256 acc[8]) {
  const __m256 first = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
  const __m256 second = _mm256_hadd_ps(_mm256_hadd_ps(acc[4], acc[5]), _mm256_hadd_ps(acc[6], acc[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(first, second, 0x20), _mm256_permute2f128_ps(first, second, 0x31));
}

void KeyScores(const float* keys, int64_t count, int64_t width, const float* query, float scale, float* scores) {
  int64_t t = 0;
  if (width % 8 == 0) {
    const __m256 scales = _mm256_set1_ps(scale);
    for (; t + 8 <= count; t += 8) {
      __m256 acc[8];
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) acc[k] = _mm256_setzero_ps();
      for (int64_t j = 0; j < width; j += 8) {
        const __m256 q = _mm256_loadu_ps(query + j);
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
          acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(keys + (t + k) * width + j), q, acc[k]);
        }
      }
      _mm256_storeu_ps(scores + t, _mm256_mul_ps(SumsOfEight(acc), scales));
    }
  }
  for (; t < count; ++t) {
    const float* key = keys + t * width;
    if (width % 16 == 0) {
      scores[t] = scale * DotF32(reinterpret_cast<const uint8_t*>(key), query, width);
      continue;
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < width; ++j) sum = std::fma(key[j], query[j], sum);
    scores[t] = scale * sum;
  }
}

// F16C's conversions, eight at a time; the odd tail one at a time the same way.
void StoreHalves(const float* from, int64_t count, uint8_t* to) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(to + 2 * i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(from + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < count; ++i) {
    const uint16_t half = static_cast<uint16_t>(
        _mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(from[i]), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), 0));
    std::memcpy(to + 2 * i, &half, sizeof(half));
  }
}

void LoadHalves(const uint8_t* from, int64_t count, float* to) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    _mm256_storeu_ps(to + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(from + 2 * i))));
  }
  for (; i < count; ++i) to[i] = HalfToFloat(from + 2 * i);
}

// QuantizeQ8_0 eight lanes at a time, to the same bytes: the block's largest
// magnitude, d = that / 127 stored as a half, each value times 1 / d rounded
// half away from zero (as roundf: its truncation, moved one step out where
// the part cut off is half or more; that part is exact).
void StoreQ8_0(const float* from, int64_t count, uint8_t* to) {
  const __m256 magnitude_bits = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t i = 0; i < count; i += 32, to += 34) {
    __m256 v[4];
    __m256 largest = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(from + i + 8 * k);
      largest = _mm256_max_ps(largest, _mm256_and_ps(v[k], magnitude_bits));
    }
    __m128 half = _mm_max_ps(_mm256_castps256_ps128(largest), _mm256_extractf128_ps(largest, 1));
    half = _mm_max_ps(half, _mm_movehl_ps(half, half));
    half = _mm_max_ss(half, _mm_movehdup_ps(half));
    const float d = _mm_cvtss_f32(half) / 127.0f;
    const __m256 inverse = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    const uint16_t d_half =
        static_cast<uint16_t>(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(d), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), 0));
    std::memcpy(to, &d_half, sizeof(d_half));
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 scaled = _mm256_mul_ps(v[k], inverse);
      const __m256 truncated = _mm256_round_ps(scaled, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m256 cut = _mm256_and_ps(_mm256_sub_ps(scaled, truncated), magnitude_bits);
      const __m256 away = _mm256_and_ps(_mm256_cmp_ps(cut, _mm256_set1_ps(0.5f), _CMP_GE_OQ),
                                        _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_andnot_ps(magnitude_bits, scaled)));
      q[k] = _mm256_cvttps_epi32(_mm256_add_ps(truncated, away));
    }
    // packs interleave 128-bit lanes: dwords come out as rows 0,1,2,3 of each half; put them back in order.
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(to + 2),
                        _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
}

void LoadQ8_0(const uint8_t* from, int64_t count, float* to) {
  for (int64_t i = 0; i < count; i += 32, from += 34) {
    const __m256 d = _mm256_set1_ps(HalfToFloat(from));
    for (int k = 0; k < 4; ++k) {
      const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(from + 2 + 8 * k)));
      _mm256_storeu_ps(to + i + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
    }
  }
}

// AVX2, FMA and F16C: what every set here needs. F16C from CPUID itself: not
// every compiler's __builtin_cpu_supports knows it.
bool CpuRunsAvx2() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
  return f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// The set of this file's kernels, named `name`; the scalar ones for the types it has none for.
KernelSet X86Kernels(std::string_view name) {
  KernelSet x86 = ScalarKernels();
  x86.name = name;
  x86.quantize = Quantize;
  x86.quantize_super = QuantizeSuper;
  x86.dot_f16 = DotF16;
  x86.dot_f32 = DotF32;
  x86.weighted_row_sum = WeightedRowSumsRowByRow<WeightedRowSum>;
  x86.key_scores = KeyScoresRowByRow<KeyScores>;
  x86.store_f16 = StoreHalves;
  x86.load_f16 = LoadHalves;
  x86.store_q8_0 = StoreQ8_0;
  x86.load_q8_0 = LoadQ8_0;
  x86.prefill_in_kernels = true;
  x86.Set(GgmlType::kQ8_0, DotOne<Q8_0Block>, DotFour<Q8_0Block>);
  x86.Set(GgmlType::kQ4_0, DotOne<Q4_0Block>, DotFour<Q4_0Block>);
  x86.Set(GgmlType::kQ4_1, DotOne<Q4_1Block>, DotFour<Q4_1Block>);
  x86.Set(GgmlType::kQ5_0, DotOne<Q5_0Block>, DotFour<Q5_0Block>);
  x86.Set(GgmlType::kQ5_1, DotOne<Q5_1Block>, DotFour<Q5_1Block>);
  x86.Set(GgmlType::kIQ4_NL, DotOne<Iq4_NLBlock>, DotFour<Iq4_NLBlock>);
  x86.Set(GgmlType::kQ2_K, SuperBlockDotOne<DotRowsQ2_K<1>>, SuperBlockDotFour<DotRowsQ2_K<4>>);
  x86.Set(GgmlType::kQ3_K, SuperBlockDotOne<DotRowsQ3_K<1>>, SuperBlockDotFour<DotRowsQ3_K<4>>);
  x86.Set(GgmlType::kQ4_K, SuperBlockDotOne<DotRowsQ4_K<1>>, SuperBlockDotFour<DotRowsQ4_K<4>>);
  x86.Set(GgmlType::kQ5_K, SuperBlockDotOne<DotRowsQ5_K<1>>, SuperBlockDotFour<DotRowsQ5_K<4>>);
  x86.Set(GgmlType::kQ6_K, SuperBlockDotOne<DotRowsQ6_K<1>>, SuperBlockDotFour<DotRowsQ6_K<4>>);
  x86.Set(GgmlType::kIQ4_XS, SuperBlockDotOne<DotRowsIq4_XS<1>>, SuperBlockDotFour<DotRowsIq4_XS<4>>);
  return x86;
}

}  // namespace
}  // namespace edgellm::engine::kernels

#endif  // EDGELLM_ENGINE_QUANT_KERNELS_X86_H_
