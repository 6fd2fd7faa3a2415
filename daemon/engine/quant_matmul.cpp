#include "daemon/engine/quant_matmul.h"

#include <algorithm>
#include <array>
#include <vector>

#include "common/str_cat.h"
#include "daemon/engine/thread_pool.h"

namespace edgellm::engine {
namespace {

// Weight bytes per chunk of work: enough to pay for handing it to another
// thread (a few microseconds), so a tiny matrix stays on the calling thread.
constexpr uint64_t kBytesPerChunk = 32 << 10;
// Float weights are read at several times the bytes per multiply-add of
// quantized ones: at 32 KiB a chunk, stories260K (F32) handed most of its
// products to the other thread for less work than the hand-off costs, and
// decoded at 5,400 tokens/s on two threads where one gave 8,500.
constexpr uint64_t kFloatBytesPerChunk = 128 << 10;

int64_t RowsPerChunk(uint64_t row_bytes, uint64_t bytes_per_chunk = kBytesPerChunk) {
  return std::max<int64_t>(8, static_cast<int64_t>(bytes_per_chunk / std::max<uint64_t>(row_bytes, 1)));
}

// A tiled multiply pays off from a tile's worth of activation rows; its
// chunks are whole tiles of weight rows. An interleaving one pays off from
// one activation row, and its chunks are whole groups of sixteen weight rows.
constexpr int64_t kTileRows = 4;
constexpr int64_t kInterleavedRows = 16;

// Chunks of whole tiles, about RowsPerChunk rows each, and as many of them
// for every thread: a small model's 576-row matrix in 5 chunks leaves one
// of two threads a chunk behind the other on every product.
int64_t BalancedChunk(int64_t out, uint64_t row_bytes, int64_t tile, int threads) {
  const int64_t per_thread = (out + threads - 1) / threads;
  const int64_t target = RowsPerChunk(row_bytes);
  const int64_t chunks_each = std::max<int64_t>(1, (per_thread + target / 2) / target);
  const int64_t rows = std::max<int64_t>(1, (per_thread + chunks_each - 1) / chunks_each);
  return (rows + tile - 1) / tile * tile;
}

// A type's kernels for one activation layout (ActivationBlock or SuperActivationBlock).
template <typename Activation>
struct QuantKernels {
  void (*quantize)(const float*, Activation*, int64_t);
  float (*dot)(const uint8_t*, const Activation*, int64_t);
  void (*dot4)(const uint8_t*, const Activation*, int64_t, int64_t, float[4]);
  void (*multiply)(const uint8_t*, uint64_t, int64_t, const Activation*, int64_t, int64_t, float*, int64_t);
  bool interleaved;
};

// y_p = x · W_pᵀ for quantized weights of one type that read the same
// activations: each activation row is quantized once, `block` values per
// Activation, into a buffer reused across calls (the scheduler thread runs
// every forward), then meets every weight row of every product through the
// type's tiled multiply when it has one and there are rows enough (any, for
// an interleaving one), else its dot, four rows at a time where it has a
// four-row kernel. The products' chunks are one job for the pool; the rows
// are prepared (QuantMatMul's prepare_rows) where they are quantized.
template <typename Activation>
void MultiplyQuantized(absl::Span<const SharedProduct> products, const float* x, int64_t rows, int64_t in,
                       uint64_t row_bytes, int64_t block, const QuantKernels<Activation>& k, ThreadPool& threads,
                       std::optional<ChunkFn> prepare_rows) {
  const int64_t blocks = in / block;
  thread_local std::vector<Activation> activations;
  if (activations.size() < static_cast<size_t>(rows * blocks)) activations.resize(static_cast<size_t>(rows * blocks));
  Activation* a = activations.data();
  threads.Run(rows, 1, [&](int64_t begin, int64_t end) {
    if (prepare_rows) (*prepare_rows)(begin, end);
    for (int64_t r = begin; r < end; ++r) k.quantize(x + r * in, a + r * blocks, blocks);
  });
  const bool tiled = k.multiply != nullptr && (rows >= kTileRows || k.interleaved);
  int64_t total_out = 0;
  for (const SharedProduct& product : products) total_out += product.out_features;
  const int64_t tile = tiled ? (k.interleaved ? kInterleavedRows : kTileRows) : 1;
  const int64_t chunk = BalancedChunk(total_out, row_bytes, tile, threads.size());
  // The job's tasks are the products' tiles in turn: tile t is tile
  // t - first_tile[p] of product p. Chunks are `chunk` rows, tapering to a
  // tile at the end of each thread's share.
  std::array<int64_t, kMaxSharedProducts + 1> first_tile{};
  for (size_t p = 0; p < products.size(); ++p) {
    first_tile[p + 1] = first_tile[p] + (products[p].out_features + tile - 1) / tile;
  }
  threads.RunTapered(first_tile[products.size()], chunk / tile, 1, [&](int64_t begin, int64_t end) {
    for (size_t p = 0; p < products.size(); ++p) {
      const int64_t from = std::max(begin, first_tile[p]), to = std::min(end, first_tile[p + 1]);
      if (from >= to) continue;
      const SharedProduct& product = products[p];
      const int64_t out = product.out_features, first = (from - first_tile[p]) * tile;
      const int64_t count = std::min((to - from) * tile, out - first);
      const uint8_t* weight = product.weight + first * row_bytes;
      float* y = product.y + first;
      if (tiled) {
        k.multiply(weight, row_bytes, count, a, rows, blocks, y, out);
        continue;
      }
      // A chunk's weight rows (about kBytesPerChunk) stay in cache while
      // every group of four activation rows meets all of them: the
      // activations of a long prompt, megabytes, stream past once per chunk
      // rather than once per weight row.
      int64_t r = 0;
      for (; k.dot4 != nullptr && r + 4 <= rows; r += 4) {
        for (int64_t o = 0; o < count; ++o) {
          float four[4];
          k.dot4(weight + o * row_bytes, a + r * blocks, blocks, blocks, four);
          for (int i = 0; i < 4; ++i) y[(r + i) * out + o] = four[i];
        }
      }
      for (; r < rows; ++r) {
        for (int64_t o = 0; o < count; ++o) y[r * out + o] = k.dot(weight + o * row_bytes, a + r * blocks, blocks);
      }
    }
  });
}

}  // namespace

bool HasMatMulKernel(GgmlType type) {
  return type == GgmlType::kF32 || type == GgmlType::kF16 || kernels::ScalarKernels().HasDot(type);
}

absl::Status QuantMatMul(GgmlType type, const uint8_t* weight, const float* x, float* y, MatMulShape shape,
                         const kernels::KernelSet* kernel_set, ThreadPool* pool,
                         std::optional<ChunkFn> prepare_rows) {
  const SharedProduct product{weight, shape.out_features, y, shape.packed};
  return QuantMatMulShared(type, {&product, 1}, x, shape.rows, shape.in_features, kernel_set, pool, prepare_rows);
}

absl::Status QuantMatMulShared(GgmlType type, absl::Span<const SharedProduct> products, const float* x, int64_t rows,
                               int64_t in_features, const kernels::KernelSet* kernel_set, ThreadPool* pool,
                               std::optional<ChunkFn> prepare_rows) {
  if (!HasMatMulKernel(type)) {
    return absl::InvalidArgumentError(edgellm::StrCat("matmul: no kernel for ", TraitsOf(type).name, " weights"));
  }
  const int64_t block = std::max<int64_t>(kernels::kBlock, TraitsOf(type).block_size);
  if (in_features <= 0 || in_features % block != 0 || rows < 0) {
    return absl::InvalidArgumentError(edgellm::StrCat("matmul: ", in_features, " inputs are not whole ",
                                                      TraitsOf(type).name, " blocks of ", block));
  }
  if (products.empty() || products.size() > kMaxSharedProducts) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("matmul: ", products.size(), " products, not 1 to ", kMaxSharedProducts));
  }
  for (const SharedProduct& product : products) {
    if (product.out_features < 0) return absl::InvalidArgumentError("matmul: a negative output width");
  }
  const kernels::KernelSet& k = kernel_set != nullptr ? *kernel_set : kernels::BestKernels();
  ThreadPool& threads = pool != nullptr ? *pool : ThreadPool::Shared();
  if (products[0].packed) {
    const kernels::MultiplyQuantFn multiply_packed = k.MultiplyPacked(type);
    const kernels::MultiplySuperFn super_multiply_packed = k.SuperMultiplyPacked(type);
    if (multiply_packed == nullptr && super_multiply_packed == nullptr) {
      return absl::FailedPreconditionError(edgellm::StrCat("matmul: the ", k.name, " kernels cannot read packed ",
                                                           TraitsOf(type).name, " weights"));
    }
    for (const SharedProduct& product : products) {
      if (!product.packed || product.out_features % kernels::kPackedGroupRows != 0) {
        return absl::InvalidArgumentError("matmul: packed and unpacked weights in one call, or a packed one of "
                                          "rows that are not whole groups of sixteen");
      }
    }
    // Interleaving: every row count goes to the (packed) multiply, in chunks of whole groups.
    const uint64_t row_bytes = RowBytes(type, static_cast<uint64_t>(in_features));
    if (super_multiply_packed != nullptr) {
      const QuantKernels<kernels::SuperActivationBlock> packed{k.quantize_super, k.SuperDot(type), nullptr,
                                                               super_multiply_packed, true};
      MultiplyQuantized(products, x, rows, in_features, row_bytes, block, packed, threads, prepare_rows);
    } else {
      const QuantKernels<kernels::ActivationBlock> packed{k.quantize, k.Dot(type), nullptr, multiply_packed, true};
      MultiplyQuantized(products, x, rows, in_features, row_bytes, kernels::kBlock, packed, threads, prepare_rows);
    }
    return absl::OkStatus();
  }
  const int64_t in = in_features;
  const uint64_t row_bytes = RowBytes(type, static_cast<uint64_t>(in));

  if (type == GgmlType::kF32 || type == GgmlType::kF16) {
    if (prepare_rows) threads.Run(rows, 1, *prepare_rows);
    const kernels::DotFloatFn dot = type == GgmlType::kF32 ? k.dot_f32 : k.dot_f16;
    for (const SharedProduct& product : products) {
      const int64_t out = product.out_features;
      const int64_t chunk = RowsPerChunk(row_bytes, kFloatBytesPerChunk);
      threads.RunTapered(out, chunk, std::max<int64_t>(1, chunk / 8), [&](int64_t begin, int64_t end) {
        for (int64_t o = begin; o < end; ++o) {
          const uint8_t* w = product.weight + o * row_bytes;
          for (int64_t r = 0; r < rows; ++r) product.y[r * out + o] = dot(w, x + r * in, in);
        }
      });
    }
    return absl::OkStatus();
  }

  if (const kernels::DotSuperFn dot = k.SuperDot(type)) {
    const QuantKernels<kernels::SuperActivationBlock> super{k.quantize_super, dot, k.SuperDot4(type),
                                                            k.SuperMultiply(type), false};
    MultiplyQuantized(products, x, rows, in, row_bytes, static_cast<int64_t>(kSuperBlock), super, threads,
                      prepare_rows);
  } else {
    const QuantKernels<kernels::ActivationBlock> legacy{k.quantize, k.Dot(type), k.Dot4(type), k.Multiply(type),
                                                        k.MultiplyInterleaved(type)};
    MultiplyQuantized(products, x, rows, in, row_bytes, kernels::kBlock, legacy, threads, prepare_rows);
  }
  return absl::OkStatus();
}

}  // namespace edgellm::engine
