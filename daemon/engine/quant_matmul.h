// engine/quant_matmul.h — activations times a GGUF weight matrix read in
// place, for every weight type the engine computes with.
//
// The weight is the tensor's bytes as the file stores them, [out][in] in
// GGUF's row order (row o is output o), never copied or dequantized. For
// quantized types each activation row is quantized once per call, then every
// weight row is read once for all activation rows — a decode step of many
// sequences, or a prefill chunk, streams the weights once. The work is split
// by output rows over the shared ThreadPool. Torch-free.
#ifndef EDGELLM_ENGINE_QUANT_MATMUL_H_
#define EDGELLM_ENGINE_QUANT_MATMUL_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "daemon/engine/quant_kernels.h"
#include "daemon/engine/quant_types.h"
#include "daemon/engine/thread_pool.h"

namespace edgellm::engine {

// True for the weight types QuantMatMul computes: F32, F16, and every type with a kernel (quant_kernels.h).
bool HasMatMulKernel(GgmlType type);

struct MatMulShape {
  int64_t rows;          // activation rows
  int64_t in_features;   // a multiple of 32 (of 256 for the K types)
  int64_t out_features;
  // The weight is in the kernel set's packed form (KernelSet::pack; whole
  // groups of sixteen rows), which only its packed multiply reads.
  bool packed = false;
};

// y[rows, out] = x[rows, in] · Wᵀ, with W the `type` weight at `weight`
// (RowBytes(type, in) bytes per output row). InvalidArgument for a type
// without a kernel or a size that is not whole blocks. `kernels` defaults to
// the best set for this CPU; `pool` to the shared one.
//
// `prepare_rows`, when given, is called on the pool for every activation row
// before it is read — (begin, end) a run of rows, each row once — to write x
// there: the norm or activation that makes a product's input, in the job that
// quantizes its rows instead of a job of its own.
absl::Status QuantMatMul(GgmlType type, const uint8_t* weight, const float* x, float* y, MatMulShape shape,
                         const kernels::KernelSet* kernel_set = nullptr, ThreadPool* pool = nullptr,
                         std::optional<ChunkFn> prepare_rows = std::nullopt);

// One product of QuantMatMulShared: out_features rows of weight (as
// QuantMatMul takes it) into y[rows, out_features].
struct SharedProduct {
  const uint8_t* weight;
  int64_t out_features;
  float* y;
  bool packed = false;  // as MatMulShape::packed; the same for every product of a call
};
inline constexpr size_t kMaxSharedProducts = 4;

// y_p = x · W_pᵀ for up to kMaxSharedProducts weights of one type that read
// the same activations (a layer's query, key and value projections; its gate
// and up ones): x is quantized once, and the rows of all the products are
// one job for the pool, split evenly, instead of one job each.
absl::Status QuantMatMulShared(GgmlType type, absl::Span<const SharedProduct> products, const float* x, int64_t rows,
                               int64_t in_features, const kernels::KernelSet* kernel_set = nullptr,
                               ThreadPool* pool = nullptr, std::optional<ChunkFn> prepare_rows = std::nullopt);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_QUANT_MATMUL_H_
