#include "daemon/engine/weight_matrix.h"

#include <cblas.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "absl/types/span.h"
#include "daemon/engine/quant_matmul.h"
#include "daemon/engine/thread_pool.h"

namespace edgellm::engine {
namespace {

// Activation rows up to which the kernels multiply a weight that has no
// four-row kernel directly; beyond, BLAS does, a tile at a time.
constexpr int64_t kKernelMaxRows = 32;
// Output rows per BLAS tile: 64 rows of 2048 floats is half a MiB, in cache.
constexpr int64_t kTileRows = 64;
// MultiplyTransposed: columns of W per pool task, and rows per dequantized tile.
constexpr int64_t kTransposedColumns = 256;
constexpr int64_t kTransposedTileRows = 512;

// Values per block as the kernels count them: 32, or 256 for the K types.
int64_t KernelBlock(GgmlType type) { return std::max<int64_t>(kernels::kBlock, TraitsOf(type).block_size); }

}  // namespace

uint64_t WeightMatrix::bytes() const {
  return static_cast<uint64_t>(out_features) * RowBytes(type, static_cast<uint64_t>(in_features));
}

bool CanMultiplyInPlace(const GgufTensorInfo& info) {
  if (info.dims.size() != 2 || !HasMatMulKernel(info.type)) return false;
  // F32 rows of any length go through BLAS; the kernels want whole blocks.
  const uint64_t in = info.dims[0];
  return info.type == GgmlType::kF32 || (in % kernels::kBlock == 0 && in % TraitsOf(info.type).block_size == 0);
}

WeightMatrix MatrixOf(const GgufTensorInfo& info, const uint8_t* data) {
  return {info.type, data, static_cast<int64_t>(info.dims[0]), static_cast<int64_t>(info.dims[1])};
}

WeightMatrix RowsOf(const WeightMatrix& matrix, int64_t first, int64_t count) {
  const uint64_t row_bytes = RowBytes(matrix.type, static_cast<uint64_t>(matrix.in_features));
  return {matrix.type, matrix.data + static_cast<uint64_t>(first) * row_bytes, matrix.in_features, count,
          matrix.packed};
}

bool CanPack(const WeightMatrix& w) {
  return !w.packed && kernels::BestKernels().Pack(w.type) != nullptr &&
         kernels::BestKernels().UnpackRow(w.type) != nullptr && w.out_features % kernels::kPackedGroupRows == 0 &&
         w.in_features % KernelBlock(w.type) == 0;
}

void PackInPlace(WeightMatrix& w, uint8_t* writable) {
  kernels::BestKernels().Pack(w.type)(writable, RowBytes(w.type, static_cast<uint64_t>(w.in_features)),
                                      w.out_features, w.in_features / KernelBlock(w.type));
  w.packed = true;
}

void ReadRow(const WeightMatrix& w, int64_t row, uint8_t* out) {
  const uint64_t row_bytes = RowBytes(w.type, static_cast<uint64_t>(w.in_features));
  if (!w.packed) {
    std::memcpy(out, w.data + static_cast<uint64_t>(row) * row_bytes, row_bytes);
    return;
  }
  const int64_t p = row % kernels::kPackedGroupRows;
  kernels::BestKernels().UnpackRow(w.type)(w.data + static_cast<uint64_t>(row - p) * row_bytes, static_cast<int>(p),
                                           w.in_features / KernelBlock(w.type), out);
}

namespace {

// Whether the engine's kernels multiply `w` by `rows` activation rows: where
// the four-row kernels beat dequantizing for BLAS (the x86 sets), they take
// any row count; otherwise BLAS takes over past a few rows.
bool KernelsMultiply(const WeightMatrix& w, int64_t rows, ActivationPrecision precision) {
  const kernels::KernelSet& best = kernels::BestKernels();
  const bool kernels_for_any_rows = best.prefill_in_kernels && best.HasDot4(w.type);
  const bool float_kernel = w.type == GgmlType::kF32 || w.type == GgmlType::kF16;
  const bool kernels_allowed = precision == ActivationPrecision::kInt8 || float_kernel;
  return kernels_allowed && (rows <= kKernelMaxRows || kernels_for_any_rows) && w.in_features % kernels::kBlock == 0;
}

}  // namespace

void Multiply(const WeightMatrix& w, const float* x, float* y, int64_t rows, ActivationPrecision precision,
              std::optional<ChunkFn> prepare_rows) {
  if (w.packed || KernelsMultiply(w, rows, precision)) {
    // The shape was checked by CanMultiplyInPlace (and CanPack): this cannot fail.
    (void)QuantMatMul(w.type, w.data, x, y, {rows, w.in_features, w.out_features, w.packed}, nullptr, nullptr,
                      prepare_rows);
    return;
  }
  if (prepare_rows) ThreadPool::Shared().Run(rows, 1, *prepare_rows);
  const int64_t in = w.in_features, out = w.out_features;
  const uint64_t row_bytes = RowBytes(w.type, static_cast<uint64_t>(in));
  ThreadPool::Shared().Run(out, kTileRows, [&](int64_t begin, int64_t end) {
    const int64_t tile_rows = end - begin;
    const uint8_t* tile = w.data + begin * row_bytes;
    const float* tile_floats = reinterpret_cast<const float*>(tile);
    if (w.type != GgmlType::kF32) {
      thread_local std::vector<float> scratch;
      if (scratch.size() < static_cast<size_t>(tile_rows * in)) scratch.resize(static_cast<size_t>(tile_rows * in));
      // Sizes were checked by CanMultiplyInPlace: this cannot fail.
      (void)Dequantize(w.type, absl::MakeConstSpan(tile, tile_rows * row_bytes),
                       absl::MakeSpan(scratch.data(), static_cast<size_t>(tile_rows * in)));
      tile_floats = scratch.data();
    }
    // One row is a matrix-vector product, which BLAS runs where the tile lies;
    // as a product of matrices it first packs the tile (stories260K's
    // 172-wide down projection, a fifth of its decode step).
    if (rows == 1) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(tile_rows), static_cast<int>(in), 1.0f, tile_floats,
                  static_cast<int>(in), x, 1, 0.0f, y + begin, 1);
      return;
    }
    // y[:, begin:end] = x · tileᵀ
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(tile_rows),
                static_cast<int>(in), 1.0f, x, static_cast<int>(in), tile_floats, static_cast<int>(in), 0.0f,
                y + begin, static_cast<int>(out));
  });
}

void MultiplyShared(absl::Span<const WeightMatrix* const> weights, const float* x, float* const* ys, int64_t rows,
                    std::optional<ChunkFn> prepare_rows) {
  std::array<SharedProduct, kMaxSharedProducts> products;
  bool shared = !weights.empty() && weights.size() <= kMaxSharedProducts;
  for (size_t i = 0; shared && i < weights.size(); ++i) {
    const WeightMatrix& w = *weights[i];
    shared = w.type == weights[0]->type && w.in_features == weights[0]->in_features &&
             w.packed == weights[0]->packed && (w.packed || KernelsMultiply(w, rows, ActivationPrecision::kInt8));
    products[i] = {w.data, w.out_features, ys[i], w.packed};
  }
  if (shared) {
    // The shapes were checked by CanMultiplyInPlace: this cannot fail.
    (void)QuantMatMulShared(weights[0]->type, absl::MakeConstSpan(products.data(), weights.size()), x, rows,
                            weights[0]->in_features, nullptr, nullptr, prepare_rows);
    return;
  }
  // The first product prepares the rows, in its own quantizing job, before any reads them.
  for (size_t i = 0; i < weights.size(); ++i) {
    Multiply(*weights[i], x, ys[i], rows, ActivationPrecision::kInt8, i == 0 ? prepare_rows : std::nullopt);
  }
}

void MultiplyTransposed(const WeightMatrix& w, const float* y, float* x, int64_t rows) {
  const int64_t in = w.in_features, out = w.out_features;
  // Tasks are runs of whole blocks of a row, so each dequantizes on its own.
  const int64_t block = TraitsOf(w.type).block_size;
  const uint64_t block_bytes = RowBytes(w.type, static_cast<uint64_t>(block));
  const uint64_t row_bytes = RowBytes(w.type, static_cast<uint64_t>(in));
  const int64_t blocks = in / block;
  ThreadPool::Shared().Run(blocks, std::max<int64_t>(1, kTransposedColumns / block), [&](int64_t begin, int64_t end) {
    const int64_t c0 = begin * block, width = (end - begin) * block;
    if (w.type == GgmlType::kF32) {
      // x[:, c0:c0+width] = y · W[:, c0:c0+width], read where it lies.
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(width),
                  static_cast<int>(out), 1.0f, y, static_cast<int>(out),
                  reinterpret_cast<const float*>(w.data) + c0, static_cast<int>(in), 0.0f, x + c0,
                  static_cast<int>(in));
      return;
    }
    thread_local std::vector<float> tile;
    const int64_t tile_rows = std::min(out, kTransposedTileRows);
    if (tile.size() < static_cast<size_t>(tile_rows * width)) tile.resize(static_cast<size_t>(tile_rows * width));
    for (int64_t r0 = 0; r0 < out; r0 += tile_rows) {
      const int64_t n = std::min(tile_rows, out - r0);
      for (int64_t r = 0; r < n; ++r) {
        // Sizes were checked when the weight was loaded: this cannot fail.
        (void)Dequantize(w.type,
                         absl::MakeConstSpan(w.data + (r0 + r) * row_bytes + begin * block_bytes,
                                             (end - begin) * block_bytes),
                         absl::MakeSpan(tile.data() + r * width, static_cast<size_t>(width)));
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(width),
                  static_cast<int>(n), 1.0f, y + r0, static_cast<int>(out), tile.data(), static_cast<int>(width),
                  r0 == 0 ? 0.0f : 1.0f, x + c0, static_cast<int>(in));
    }
  });
}

}  // namespace edgellm::engine
