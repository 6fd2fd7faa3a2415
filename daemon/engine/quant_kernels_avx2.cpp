// AVX2 + FMA + F16C kernels. This file alone is compiled with those
// instructions enabled; BestKernels() only picks it on a CPU that has them.
#include "daemon/engine/quant_kernels.h"
#include "daemon/engine/k_quants.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

#include <cstring>

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
  const __m256i pairs = _mm256_maddubs_epi16(u, s);  // 16 x int16, no overflow for |u| <= 127 or u <= 15
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

void Quantize(const float* x, ActivationBlock* out, int64_t blocks) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < blocks; ++b, x += kBlock) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(x + 8 * i);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_mask, v[i]));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float d = _mm_cvtss_f32(m4) / 127.0f;
    const __m256 inverse = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    __m256i q[4];
    for (int i = 0; i < 4; ++i) {
      const __m256 scaled = _mm256_round_ps(_mm256_mul_ps(v[i], inverse), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      q[i] = _mm256_cvtps_epi32(scaled);
    }
    // Sum of q, then pack 32 int32 into 32 int8 in order.
    const __m256i sum8 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    __m128i sum4 = _mm_add_epi32(_mm256_castsi256_si128(sum8), _mm256_extracti128_si256(sum8, 1));
    sum4 = _mm_add_epi32(sum4, _mm_shuffle_epi32(sum4, 0x4e));
    sum4 = _mm_add_epi32(sum4, _mm_shuffle_epi32(sum4, 0xb1));
    const __m256i q16a = _mm256_packs_epi32(q[0], q[1]);  // lanes interleave: fixed by the permute below
    const __m256i q16b = _mm256_packs_epi32(q[2], q[3]);
    __m256i q8 = _mm256_packs_epi16(q16a, q16b);
    q8 = _mm256_permutevar8x32_epi32(q8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].q), q8);
    out[b].d = d;
    out[b].sum_d = d * static_cast<float>(_mm_cvtsi128_si32(sum4));
  }
}

// Q8_0: the magnitudes (maddubs's unsigned operand) and the signs.
struct UnpackedQ8_0 {
  __m256i magnitude, sign;
};
inline UnpackedQ8_0 UnpackQ8_0(const uint8_t* w) {
  const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2));
  return {_mm256_sign_epi8(wq, wq), wq};
}
inline __m256i UnpackedDotQ8_0(const UnpackedQ8_0& w, const ActivationBlock& a) {
  const __m256i aq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q));
  return DotBytes(w.magnitude, _mm256_sign_epi8(aq, w.sign));
}

// 16 bytes of nibbles as 32 unsigned bytes 0..15: low nibbles in the low
// lane, high nibbles in the high lane (weights 0-15, then 16-31).
inline __m256i UnpackNibbles(const uint8_t* qs) {
  const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
}

// Q4_0: the 32 weights as unsigned bytes 0..15. The -8 offset is not applied
// here: it costs one multiply-add per block in float, through the
// activations' sum_d.
inline __m256i UnpackQ4_0(const uint8_t* w) { return UnpackNibbles(w + 2); }
inline __m256i UnpackedDotUnsigned(const __m256i& w, const ActivationBlock& a) {
  return DotBytes(w, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q)));
}

// Q5_0: the nibbles with bit i of qh as bit 4 of weight i, unsigned 0..31;
// the -16 offset goes through sum_d as Q4_0's does.
inline __m256i UnpackQ5_0(const uint8_t* w) {
  uint32_t qh;
  std::memcpy(&qh, w + 2, sizeof(qh));
  // Byte i of `spread` is byte i / 8 of qh; OR-ing every bit but bit i % 8 and
  // comparing with all-ones leaves 0xFF exactly where bit i is set.
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int32_t>(qh)),
      _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)),
                                        _mm256_set1_epi64x(-1));
  return _mm256_or_si256(UnpackNibbles(w + 6), _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
}

// One block's integer dot with one activation block, as 8 int32 lanes.
inline __m256i BlockDotQ8_0(const uint8_t* w, const ActivationBlock& a) { return UnpackedDotQ8_0(UnpackQ8_0(w), a); }
inline __m256i BlockDotQ4_0(const uint8_t* w, const ActivationBlock& a) {
  return UnpackedDotUnsigned(UnpackQ4_0(w), a);
}
inline __m256i BlockDotQ5_0(const uint8_t* w, const ActivationBlock& a) {
  return UnpackedDotUnsigned(UnpackQ5_0(w), a);
}

// A row's dot from its two float accumulators and, for a type whose weights
// are stored with an offset (Q4_0: nibble - 8), the two offset sums
// Σ d_w * sum_d. Shared by the one-row and four-row kernels so both round alike.
inline float FinishDot(__m256 acc0, __m256 acc1, float offset_sum, float offset) {
  return _mm_cvtss_f32(_mm_fnmadd_ss(_mm_set_ss(offset), _mm_set_ss(offset_sum),
                                     _mm_set_ss(HorizontalSum(_mm256_add_ps(acc0, acc1)))));
}

// Two blocks per iteration into two accumulators: the multiply-adds of
// neighbouring blocks overlap instead of waiting on one another. kOffset is
// the value the type subtracts from every stored weight (Q4_0: 8).
template <int kBlockBytes, __m256i (*BlockDot)(const uint8_t*, const ActivationBlock&), int kOffset>
float DotBlocks(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m128 offset_sum0 = _mm_setzero_ps(), offset_sum1 = _mm_setzero_ps();
  auto accumulate = [&](__m256& acc, __m128& offset_sum, const uint8_t* block_w, const ActivationBlock& block) {
    const __m128 scale = LoadHalf(block_w);
    acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_mul_ss(scale, _mm_set_ss(block.d))),
                          _mm256_cvtepi32_ps(BlockDot(block_w, block)), acc);
    if constexpr (kOffset != 0) offset_sum = _mm_fmadd_ss(scale, _mm_set_ss(block.sum_d), offset_sum);
  };
  int64_t b = 0;
  for (; b + 1 < blocks; b += 2, w += 2 * kBlockBytes) {
    PrefetchWeights(w);
    accumulate(acc0, offset_sum0, w, a[b]);
    accumulate(acc1, offset_sum1, w + kBlockBytes, a[b + 1]);
  }
  if (b < blocks) accumulate(acc0, offset_sum0, w, a[b]);
  return FinishDot(acc0, acc1, _mm_cvtss_f32(_mm_add_ss(offset_sum0, offset_sum1)), kOffset);
}

// Four activation rows against one weight row, in exactly the order of
// DotBlocks (even blocks into one accumulator, odd into another, the same
// finish), so a sequence gets the same result batched or alone. The weight
// block is loaded and unpacked once for the four.
template <int kBlockBytes, typename Unpacked, Unpacked (*Unpack)(const uint8_t*),
          __m256i (*UnpackedDot)(const Unpacked&, const ActivationBlock&), int kOffset>
void Dot4Blocks(const uint8_t* w, const ActivationBlock* a, int64_t stride, int64_t blocks, float out[4]) {
  __m256 acc0[4], acc1[4];
  for (int i = 0; i < 4; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
  __m128 offset_sum0 = _mm_setzero_ps(), offset_sum1 = _mm_setzero_ps();  // lane i: row i
  auto accumulate = [&](__m256* acc, __m128& offset_sum, const uint8_t* block_w, int64_t b) {
    const Unpacked unpacked = Unpack(block_w);
    const __m128 scale = LoadHalf(block_w);
    for (int i = 0; i < 4; ++i) {
      const ActivationBlock& block = a[i * stride + b];
      acc[i] = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_mul_ss(scale, _mm_set_ss(block.d))),
                               _mm256_cvtepi32_ps(UnpackedDot(unpacked, block)), acc[i]);
    }
    if constexpr (kOffset != 0) {
      const __m128 sums = _mm_setr_ps(a[b].sum_d, a[stride + b].sum_d, a[2 * stride + b].sum_d, a[3 * stride + b].sum_d);
      offset_sum = _mm_fmadd_ps(_mm_broadcastss_ps(scale), sums, offset_sum);
    }
  };
  int64_t b = 0;
  for (; b + 1 < blocks; b += 2, w += 2 * kBlockBytes) {
    PrefetchWeights(w);
    accumulate(acc0, offset_sum0, w, b);
    accumulate(acc1, offset_sum1, w + kBlockBytes, b + 1);
  }
  if (b < blocks) accumulate(acc0, offset_sum0, w, b);
  alignas(16) float offsets[4];
  _mm_store_ps(offsets, _mm_add_ps(offset_sum0, offset_sum1));
  for (int i = 0; i < 4; ++i) out[i] = FinishDot(acc0[i], acc1[i], offsets[i], kOffset);
}

void Dot4Q8_0(const uint8_t* w, const ActivationBlock* a, int64_t stride, int64_t blocks, float out[4]) {
  Dot4Blocks<34, UnpackedQ8_0, UnpackQ8_0, UnpackedDotQ8_0, 0>(w, a, stride, blocks, out);
}

void Dot4Q4_0(const uint8_t* w, const ActivationBlock* a, int64_t stride, int64_t blocks, float out[4]) {
  Dot4Blocks<18, __m256i, UnpackQ4_0, UnpackedDotUnsigned, 8>(w, a, stride, blocks, out);
}

void Dot4Q5_0(const uint8_t* w, const ActivationBlock* a, int64_t stride, int64_t blocks, float out[4]) {
  Dot4Blocks<22, __m256i, UnpackQ5_0, UnpackedDotUnsigned, 16>(w, a, stride, blocks, out);
}

float DotQ8_0(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  return DotBlocks<34, BlockDotQ8_0, 0>(w, a, blocks);
}

float DotQ4_0(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  return DotBlocks<18, BlockDotQ4_0, 8>(w, a, blocks);
}

float DotQ5_0(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  return DotBlocks<22, BlockDotQ5_0, 16>(w, a, blocks);
}

// Q4_K: 32 bytes of qs hold sub-blocks 2c (low nibbles) and 2c+1 (high).
float DotQ4_K(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t s = 0; s < blocks / 8; ++s, w += kQ4_KBytes, a += 8) {
    for (size_t line = 0; line < kQ4_KBytes; line += 64) PrefetchWeights(w + line);
    const float d = HalfToFloat(w), dmin = HalfToFloat(w + 2);
    for (int c = 0; c < 4; ++c) {
      const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16 + 32 * c));
      const __m256i q[2] = {_mm256_and_si256(bytes, low_nibbles),
                            _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low_nibbles)};
      for (int h = 0; h < 2; ++h) {
        const int j = 2 * c + h;
        uint8_t scale, min;
        Q4_KScaleMin(w + 4, j, &scale, &min);
        const __m256i aq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[j].q));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * scale * a[j].d), _mm256_cvtepi32_ps(DotBytes(q[h], aq)), acc);
        mins += dmin * min * a[j].sum_d;
      }
    }
  }
  return HorizontalSum(acc) - mins;
}

// Q6_K: quarter k of half n (32 weights) meets activation block 4n + k; its
// two 16-weight groups have their own scales.
float DotQ6_K(const uint8_t* w, const ActivationBlock* a, int64_t blocks) {
  const __m256i low_nibbles = _mm256_set1_epi8(0x0f), two_bits = _mm256_set1_epi8(3);
  const __m256i offset = _mm256_set1_epi8(32);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t s = 0; s < blocks / 8; ++s, w += kQ6_KBytes, a += 8) {
    for (size_t line = 0; line < kQ6_KBytes; line += 64) PrefetchWeights(w + line);
    const float d = HalfToFloat(w + 208);
    const int8_t* scales = reinterpret_cast<const int8_t*>(w + 192);
    for (int n = 0; n < 2; ++n) {
      const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * n));
      const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * n + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 128 + 32 * n));
      const __m256i low[4] = {_mm256_and_si256(ql0, low_nibbles), _mm256_and_si256(ql1, low_nibbles),
                              _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low_nibbles),
                              _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low_nibbles)};
      for (int k = 0; k < 4; ++k) {
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), two_bits);
        const __m256i q = _mm256_or_si256(low[k], _mm256_slli_epi16(high, 4));  // 0..63
        const ActivationBlock& block = a[4 * n + k];
        const __m256i aq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.q));
        // Σ (q - 32) a per lane: lanes 0-3 are the first 16 weights, 4-7 the second.
        const __m256i dot = _mm256_sub_epi32(DotBytes(q, aq), DotBytes(offset, aq));
        const int group = 2 * (4 * n + k);
        const __m256i group_scales = _mm256_setr_epi32(scales[group], scales[group], scales[group], scales[group],
                                                       scales[group + 1], scales[group + 1], scales[group + 1],
                                                       scales[group + 1]);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * block.d), _mm256_cvtepi32_ps(_mm256_mullo_epi32(dot, group_scales)),
                              acc);
      }
    }
  }
  return HorizontalSum(acc);
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

}  // namespace

const KernelSet* Avx2Kernels() {
  // F16C from CPUID itself: not every compiler's __builtin_cpu_supports knows it.
  static const bool supported = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
    return f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  static const KernelSet set = [] {
    KernelSet avx2 = ScalarKernels();
    avx2.name = "avx2";
    avx2.quantize = Quantize;
    avx2.dot_f16 = DotF16;
    avx2.dot_f32 = DotF32;
    avx2.Set(GgmlType::kQ8_0, DotQ8_0, Dot4Q8_0);
    avx2.Set(GgmlType::kQ4_0, DotQ4_0, Dot4Q4_0);
    avx2.Set(GgmlType::kQ5_0, DotQ5_0, Dot4Q5_0);
    avx2.Set(GgmlType::kQ4_K, DotQ4_K);
    avx2.Set(GgmlType::kQ6_K, DotQ6_K);
    return avx2;
  }();
  return supported ? &set : nullptr;
}

}  // namespace edgellm::engine::kernels

#else

namespace edgellm::engine::kernels {
const KernelSet* Avx2Kernels() { return nullptr; }
}  // namespace edgellm::engine::kernels

#endif
