// engine/weight_matrix.h — a GGUF weight matrix multiplied where it lies in
// the memory-mapped file, for any number of activation rows. Torch-free.
//
// The engine's kernels (quant_matmul.h), which stream the weight once for all
// rows, multiply any number of rows for a type with a four-row kernel where
// those beat BLAS (KernelSet::prefill_in_kernels), and a
// few rows (a decode step, a batch of sequences, a speculative check) for the
// rest. More rows of the rest (a prefill chunk), or F32 rows that are not
// whole blocks of 32, go through BLAS: each thread of the shared pool
// dequantizes a tile of output rows once (F32 is used as it lies) and
// multiplies every activation row by it with single-threaded BLAS.
#ifndef EDGELLM_ENGINE_WEIGHT_MATRIX_H_
#define EDGELLM_ENGINE_WEIGHT_MATRIX_H_

#include <cstdint>
#include <optional>

#include "absl/types/span.h"
#include "daemon/engine/gguf.h"
#include "daemon/engine/quant_types.h"
#include "daemon/engine/thread_pool.h"

namespace edgellm::engine {

struct WeightMatrix {
  GgmlType type = GgmlType::kF32;
  const uint8_t* data = nullptr;  // out_features rows of RowBytes(type, in_features), in the mapping
  int64_t in_features = 0;
  int64_t out_features = 0;
  // Rewritten at load into the best kernel set's packed form (PackInPlace):
  // then only Multiply and MultiplyShared can read it, with int8 activations.
  bool packed = false;

  uint64_t bytes() const;
};

// True when Multiply computes with the GGUF weight `info` in place: F32, or
// a type with a kernel and whole blocks per row.
bool CanMultiplyInPlace(const GgufTensorInfo& info);
WeightMatrix MatrixOf(const GgufTensorInfo& info, const uint8_t* data);
// Output rows [first, first + count) of `matrix`, viewed in place: a part of
// a fused projection (Phi-3's attn_qkv, its gate and up rows).
WeightMatrix RowsOf(const WeightMatrix& matrix, int64_t first, int64_t count);

// Whether the best kernel set has a packed form for `w` (KernelSet::pack,
// and unpack_row to read a row back): a type it packs in place, in whole
// groups of sixteen rows.
bool CanPack(const WeightMatrix& w);
// Rewrites `w`'s bytes, which `writable` points at, into that form and marks
// it packed. Its result is bit for bit the unpacked one's for the 32-weight
// types, within float rounding of it for the K types.
void PackInPlace(WeightMatrix& w, uint8_t* writable);
// Row `row` of `w` in the file's layout into `out` (RowBytes of its inputs),
// unpacked from the packed form if `w` is packed.
void ReadRow(const WeightMatrix& w, int64_t row, uint8_t* out);

// What Multiply may do to the activations of a quantized weight.
enum class ActivationPrecision {
  // Quantized to 8 bits per block of 32 for the integer kernels (as llama.cpp
  // does): inference.
  kInt8,
  // Kept float against the dequantized weight, so the product is the one
  // MultiplyTransposed differentiates: training a frozen base.
  kFloat,
};

// y[rows, out] = x[rows, in] · Wᵀ, all float32 row-major. Allocates only
// while its per-thread scratch grows to the largest tile it has seen.
// `prepare_rows` writes x's rows first, as QuantMatMul's does: in the job
// that quantizes them where the kernels multiply, else in a job of its own.
void Multiply(const WeightMatrix& weight, const float* x, float* y, int64_t rows,
              ActivationPrecision precision = ActivationPrecision::kInt8,
              std::optional<ChunkFn> prepare_rows = std::nullopt);

// ys[i] = x · weights[i]ᵀ for weights that read the same activations (a
// layer's query, key and value projections; its gate and up ones), with
// kInt8 activations: one product of the pool when they are of one type and
// width (x is quantized once), else one Multiply each. `prepare_rows` as Multiply's.
void MultiplyShared(absl::Span<const WeightMatrix* const> weights, const float* x, float* const* ys, int64_t rows,
                    std::optional<ChunkFn> prepare_rows = std::nullopt);

// x[rows, in] = y[rows, out] · W (`weight` not packed): the product backward through a frozen
// weight needs (the gradient of its input). Each pool thread dequantizes a
// tile of W's columns at a time, so the extra memory is a tile per thread,
// never the matrix.
void MultiplyTransposed(const WeightMatrix& weight, const float* y, float* x, int64_t rows);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_WEIGHT_MATRIX_H_
