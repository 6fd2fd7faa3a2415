// engine/quant_kernels.h — dot products of one GGUF weight row with one row
// of activations, per instruction set, chosen once at run time.
//
// Quantized weights meet activations quantized on the fly to 8 bits, so the
// inner loop is integer multiply-adds: the 32-weight block types (the legacy
// types and IQ4_NL) meet ActivationBlocks, one scale per 32 values; the
// super-block types (the K types and IQ4_XS) meet SuperActivationBlocks, one
// scale per 256 values, so a whole super-block's dot stays in integers and
// is scaled once. F16 and F32 weights meet float activations. Every kernel
// has a portable scalar version, the reference the others are tested
// against; the AVX2 (with FMA and F16C) versions, and the same built with
// VNNI, are selected when the CPU has them, the NEON ones on aarch64, each
// set falling back to the scalar kernel of a type it has none for.
// Engine-internal: quant_matmul.h is the interface the model uses.
#ifndef EDGELLM_ENGINE_QUANT_KERNELS_H_
#define EDGELLM_ENGINE_QUANT_KERNELS_H_

#include <array>
#include <cstdint>
#include <string_view>

#include "daemon/engine/k_quants.h"
#include "daemon/engine/quant_types.h"

namespace edgellm::engine::kernels {

inline constexpr int64_t kBlock = 32;  // values per block of the 32-weight types

// 32 activations quantized to int8: x ≈ d * q. `sum_q` is the sum of q and
// `sum_d` d times it (the block's sum in real units), which let a kernel of
// a type stored with an offset (Q4_0 stores w + 8) apply it once per block
// instead of once per weight: in the integer dot, or in floats.
struct ActivationBlock {
  float d;
  float sum_d;
  int8_t q[kBlock];
  int32_t sum_q;
};

// A super-block's 256 activations (k_quants.h's kSuperBlock) quantized to
// int8 with one scale: x ≈ d * q. group_sums[g] is the sum of q over values
// 16g..16g+15, which lets a kernel apply a weight type's per-group offsets
// or mins once per group.
inline constexpr int kGroupsPerSuperBlock = 16;
struct alignas(64) SuperActivationBlock {
  int8_t q[kSuperBlock];
  int16_t group_sums[kGroupsPerSuperBlock];
  float d;
};

// Quantizes `blocks` * 32 floats (round to nearest, scale = max |x| / 127).
using QuantizeFn = void (*)(const float* x, ActivationBlock* out, int64_t blocks);
// The same for `count` * 256 floats, one scale each.
using QuantizeSuperFn = void (*)(const float* x, SuperActivationBlock* out, int64_t count);
// Dot of a quantized weight row of `blocks` 32-value blocks with quantized activations.
using DotQuantFn = float (*)(const uint8_t* weights, const ActivationBlock* a, int64_t blocks);
// Dots of one quantized weight row with 4 activation rows at once (each
// `stride` blocks after the last): the weight blocks are loaded and unpacked
// once for the four. out[i] equals the single-row dot with row i exactly.
using DotQuant4Fn = void (*)(const uint8_t* weights, const ActivationBlock* a, int64_t stride, int64_t blocks,
                             float out[4]);
// The same for a super-block type's row of `count` super-blocks.
using DotSuperFn = float (*)(const uint8_t* weights, const SuperActivationBlock* a, int64_t count);
using DotSuper4Fn = void (*)(const uint8_t* weights, const SuperActivationBlock* a, int64_t stride, int64_t count,
                             float out[4]);
// y[r·y_stride + o] for `out_rows` weight rows of a 32-weight block type
// (each `row_bytes` after the last) and `rows` activation rows (each `blocks`
// after the last): a tile of weight rows and activation rows meets per load,
// and every result equals the one-row dot of its pair exactly.
using MultiplyQuantFn = void (*)(const uint8_t* weights, uint64_t row_bytes, int64_t out_rows,
                                 const ActivationBlock* a, int64_t rows, int64_t blocks, float* y, int64_t y_stride);
// The same for a super-block type's rows of `count` super-blocks.
using MultiplySuperFn = void (*)(const uint8_t* weights, uint64_t row_bytes, int64_t out_rows,
                                 const SuperActivationBlock* a, int64_t rows, int64_t count, float* y,
                                 int64_t y_stride);
// Rewrites `out_rows` weight rows of `blocks` blocks (a multiple of sixteen
// rows, each `row_bytes` after the last; super-blocks for the K types) in
// place into a set's packed form.
using PackFn = void (*)(uint8_t* weights, uint64_t row_bytes, int64_t out_rows, int64_t blocks);
// Weight rows a packed group holds: a packed matrix has whole groups.
inline constexpr int64_t kPackedGroupRows = 16;
// Row `p` (< kPackedGroupRows) of the packed group of `blocks` blocks at
// `group` back in the file's layout, into `out`: a packed tied output matrix
// is still the embedding table, read a row at a time.
using UnpackRowFn = void (*)(const uint8_t* group, int p, int64_t blocks, uint8_t* out);
// Dot of an F16 or F32 weight row of n values (n % 32 == 0) with float activations.
using DotFloatFn = float (*)(const uint8_t* weights, const float* x, int64_t n);
// For each of `queries` query rows q: out[q·out_stride + j] +=
// Σ_t weights[q·weight_stride + t] · rows[t·width + j] for j < width,
// t < count, each value's terms added in order of t: attention's weighted sum
// of a block's values for the query heads that share its KV head.
using WeightedRowSumFn = void (*)(const float* weights, int64_t weight_stride, int64_t queries, const float* rows,
                                  int64_t count, int64_t width, float* out, int64_t out_stride);
// scores[q·score_stride + t] = scale · Σ_j keys[t·width + j] · queries[q·query_stride + j]
// for t < count and each of `n_queries` query rows q: attention's scores of
// the query heads that share a KV head against a run of its keys.
using KeyScoresFn = void (*)(const float* keys, int64_t count, int64_t width, const float* queries,
                             int64_t query_stride, int64_t n_queries, float scale, float* scores,
                             int64_t score_stride);

// The two above reading the keys (or values) as the KV cache stores them,
// where they lie — IEEE halves, or Q8_0 blocks (a row of `width` values is
// width / 32 of them) — widening them in registers as they go instead of
// into a scratch first: each result bit for bit what the float kernel gives
// on the rows widened (LoadHalvesFn, LoadQ8_0Fn). For widths ReadsInPlace
// accepts.
using KeyScoresInPlaceFn = void (*)(const uint8_t* keys, int64_t count, int64_t width, const float* queries,
                                    int64_t query_stride, int64_t n_queries, float scale, float* scores,
                                    int64_t score_stride);
using WeightedRowSumInPlaceFn = void (*)(const float* weights, int64_t weight_stride, int64_t queries,
                                         const uint8_t* rows, int64_t count, int64_t width, float* out,
                                         int64_t out_stride);
// Positions a register of keys stored transposed holds (KvBlockPool::keys_transposed).
inline constexpr int64_t kTransposedKeyRun = 16;
// KeyScoresFn of keys stored transposed, as halves: keys [0, count) lie in
// blocks of `block_size` positions (a multiple of kTransposedKeyRun), key t
// in blocks[t / block_size], its value j the half at element
// j · block_size + t % block_size. Each score is the float kernel's on the
// keys widened within the rounding of a sum taken in another order; the
// scores past `count` in each row are left as they are.
using KeyScoresTransposedFn = void (*)(const uint8_t* const* blocks, int64_t count, int64_t block_size,
                                       int64_t width, const float* queries, int64_t query_stride, int64_t n_queries,
                                       float scale, float* scores, int64_t score_stride);
// Whether rows of `width` values met by `query_rows` query rows go to the
// kernels above: whole registers of sixty-four values, at most 256 (their
// last keys are widened on the stack), and rows one pass takes — each pass
// widens every key again, so for more rows (tinyllama-1.1b's eight query
// heads a KV head: three passes) widening once into a scratch is cheaper.
inline constexpr int64_t kMaxInPlaceWidth = 256;
inline constexpr int64_t kMaxInPlaceRows = 3;
inline bool ReadsInPlace(int64_t width, int64_t query_rows) {
  return width % 64 == 0 && width <= kMaxInPlaceWidth && query_rows <= kMaxInPlaceRows;
}

// The forms above from kernels of one query row, the rows one after another:
// for sets whose registers cannot hold several rows' sums at once.
template <void (*kOneRow)(const float*, const float*, int64_t, int64_t, float*)>
void WeightedRowSumsRowByRow(const float* weights, int64_t weight_stride, int64_t queries, const float* rows,
                             int64_t count, int64_t width, float* out, int64_t out_stride) {
  for (int64_t q = 0; q < queries; ++q) kOneRow(weights + q * weight_stride, rows, count, width, out + q * out_stride);
}
template <void (*kOneRow)(const float*, int64_t, int64_t, const float*, float, float*)>
void KeyScoresRowByRow(const float* keys, int64_t count, int64_t width, const float* queries, int64_t query_stride,
                       int64_t n_queries, float scale, float* scores, int64_t score_stride) {
  for (int64_t q = 0; q < n_queries; ++q) {
    kOneRow(keys, count, width, queries + q * query_stride, scale, scores + q * score_stride);
  }
}
// `count` floats to IEEE halves, rounded to nearest (ties to even) as
// common/fp16.h rounds, and back: every set gives the same bits.
using StoreHalvesFn = void (*)(const float* from, int64_t count, uint8_t* to);
using LoadHalvesFn = void (*)(const uint8_t* from, int64_t count, float* to);
// `count` floats (a multiple of 32) to Q8_0 blocks, as ggml's reference
// quantizer makes them (QuantizeQ8_0: round half away from zero), and back:
// every set gives the same bytes and floats. A KV cache of q8_0 stores and
// reads its rows with these.
using StoreQ8_0Fn = void (*)(const float* from, int64_t count, uint8_t* to);
using LoadQ8_0Fn = void (*)(const uint8_t* from, int64_t count, float* to);

// GGML type ids are below this.
inline constexpr size_t kTypeSlots = 40;

struct KernelSet {
  std::string_view name;  // "scalar", "avx2", "neon"
  QuantizeFn quantize = nullptr;
  QuantizeSuperFn quantize_super = nullptr;
  DotFloatFn dot_f16 = nullptr;
  DotFloatFn dot_f32 = nullptr;
  WeightedRowSumFn weighted_row_sum = nullptr;
  KeyScoresFn key_scores = nullptr;
  // nullptr where a set widens halves (or Q8_0 blocks) into a scratch for the two above.
  WeightedRowSumInPlaceFn weighted_row_sum_f16 = nullptr;
  KeyScoresInPlaceFn key_scores_f16 = nullptr;
  WeightedRowSumInPlaceFn weighted_row_sum_q8_0 = nullptr;
  KeyScoresInPlaceFn key_scores_q8_0 = nullptr;
  // nullptr where a set widens transposed keys into rows for key_scores.
  KeyScoresTransposedFn key_scores_f16_transposed = nullptr;
  StoreHalvesFn store_f16 = nullptr;
  LoadHalvesFn load_f16 = nullptr;
  StoreQ8_0Fn store_q8_0 = nullptr;
  LoadQ8_0Fn load_q8_0 = nullptr;
  // By GGML type id, the dot of that type's weights with quantized
  // activations, and the four-row one where there is one; nullptr: none. A
  // type has entries in `dot` or in `super_dot`, never both.
  std::array<DotQuantFn, kTypeSlots> dot{};
  std::array<DotQuant4Fn, kTypeSlots> dot4{};
  std::array<DotSuperFn, kTypeSlots> super_dot{};
  std::array<DotSuper4Fn, kTypeSlots> super_dot4{};
  // By GGML type id, the tiled multiply for many activation rows (prefill)
  // where this set has one.
  std::array<MultiplyQuantFn, kTypeSlots> multiply{};
  std::array<MultiplySuperFn, kTypeSlots> super_multiply{};
  // By GGML type id, true where `multiply` puts sixteen weight rows side by
  // side in its registers: then it beats the dots for any number of activation
  // rows, one included, and is handed whole groups of sixteen weight rows.
  std::array<bool, kTypeSlots> multiply_interleaved{};
  // By GGML type id, where an interleaving `multiply` has a form to pack a
  // matrix into once at load (same bytes, its groups of sixteen rows already
  // interleaved): the packing, and the multiply that reads the packed form
  // (bit for bit what `multiply` gives on the unpacked rows). Only these read
  // a packed matrix.
  std::array<PackFn, kTypeSlots> pack{};
  std::array<UnpackRowFn, kTypeSlots> unpack_row{};
  std::array<MultiplyQuantFn, kTypeSlots> multiply_packed{};
  // The same for the super-block types: their packed multiply is within float
  // rounding of `super_multiply` (it sums each super-block in one integer),
  // and gives a row the same value whatever the number of activation rows.
  std::array<MultiplySuperFn, kTypeSlots> super_multiply_packed{};
  // True where this set's four-row kernels multiply a prefill chunk faster
  // than dequantizing the weight for BLAS does (BM_PrefillMatMul): then the
  // kernels take every row count for the types that have one.
  bool prefill_in_kernels = false;

  DotQuantFn Dot(GgmlType type) const { return At(dot, type); }
  DotQuant4Fn Dot4(GgmlType type) const { return At(dot4, type); }
  DotSuperFn SuperDot(GgmlType type) const { return At(super_dot, type); }
  DotSuper4Fn SuperDot4(GgmlType type) const { return At(super_dot4, type); }
  MultiplyQuantFn Multiply(GgmlType type) const { return At(multiply, type); }
  MultiplySuperFn SuperMultiply(GgmlType type) const { return At(super_multiply, type); }
  bool MultiplyInterleaved(GgmlType type) const { return At(multiply_interleaved, type); }
  PackFn Pack(GgmlType type) const { return At(pack, type); }
  UnpackRowFn UnpackRow(GgmlType type) const { return At(unpack_row, type); }
  MultiplyQuantFn MultiplyPacked(GgmlType type) const { return At(multiply_packed, type); }
  MultiplySuperFn SuperMultiplyPacked(GgmlType type) const { return At(super_multiply_packed, type); }
  bool HasDot(GgmlType type) const { return Dot(type) != nullptr || SuperDot(type) != nullptr; }
  bool HasDot4(GgmlType type) const { return Dot4(type) != nullptr || SuperDot4(type) != nullptr; }

  void Set(GgmlType type, DotQuantFn one, DotQuant4Fn four = nullptr) {
    dot[static_cast<size_t>(type)] = one;
    dot4[static_cast<size_t>(type)] = four;
  }
  void Set(GgmlType type, DotSuperFn one, DotSuper4Fn four = nullptr) {
    super_dot[static_cast<size_t>(type)] = one;
    super_dot4[static_cast<size_t>(type)] = four;
  }

 private:
  template <typename Fn>
  static Fn At(const std::array<Fn, kTypeSlots>& table, GgmlType type) {
    return static_cast<size_t>(type) < kTypeSlots ? table[static_cast<size_t>(type)] : Fn{};
  }
};

const KernelSet& ScalarKernels();
// nullptr when this build or this CPU lacks the instructions.
const KernelSet* Avx2Kernels();
const KernelSet* AvxVnniKernels();     // AVX2 with AVX-VNNI
const KernelSet* Avx512VnniKernels();  // AVX2 with AVX512-VNNI and VL
const KernelSet* NeonKernels();  // every aarch64 CPU has NEON
// The fastest set this CPU runs.
const KernelSet& BestKernels();

}  // namespace edgellm::engine::kernels

#endif  // EDGELLM_ENGINE_QUANT_KERNELS_H_
