#include "daemon/engine/quant_matmul.h"

#include <algorithm>
#include <vector>

#include "common/str_cat.h"
#include "daemon/engine/thread_pool.h"

namespace edgellm::engine {
namespace {

// Weight bytes per chunk of work: enough to pay for handing it to another
// thread (a few microseconds), so a tiny matrix stays on the calling thread.
constexpr uint64_t kBytesPerChunk = 32 << 10;

int64_t RowsPerChunk(uint64_t row_bytes) {
  return std::max<int64_t>(8, static_cast<int64_t>(kBytesPerChunk / std::max<uint64_t>(row_bytes, 1)));
}

// A tiled multiply pays off from a tile's worth of activation rows; its
// chunks are whole tiles of weight rows.
constexpr int64_t kTileRows = 4;

// y = x · Wᵀ for quantized weights: each activation row is quantized once,
// `block` values per Activation, into a buffer reused across calls (the
// scheduler thread runs every forward), then meets every weight row through
// the type's tiled multiply when it has one and there are rows enough, else
// its dot, four rows at a time where it has a four-row kernel.
template <typename Activation>
void MultiplyQuantized(const uint8_t* weight, const float* x, float* y, MatMulShape shape, uint64_t row_bytes,
                       int64_t block, void (*quantize)(const float*, Activation*, int64_t),
                       float (*dot)(const uint8_t*, const Activation*, int64_t),
                       void (*dot4)(const uint8_t*, const Activation*, int64_t, int64_t, float[4]),
                       void (*multiply)(const uint8_t*, uint64_t, int64_t, const Activation*, int64_t, int64_t,
                                        float*, int64_t),
                       ThreadPool& threads) {
  const int64_t in = shape.in_features, out = shape.out_features, rows = shape.rows;
  const int64_t blocks = in / block;
  thread_local std::vector<Activation> activations;
  if (activations.size() < static_cast<size_t>(rows * blocks)) activations.resize(static_cast<size_t>(rows * blocks));
  Activation* a = activations.data();
  threads.Run(rows, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) quantize(x + r * in, a + r * blocks, blocks);
  });
  if (multiply != nullptr && rows >= kTileRows) {
    const int64_t chunk = (RowsPerChunk(row_bytes) + kTileRows - 1) / kTileRows * kTileRows;
    threads.Run(out, chunk, [&](int64_t begin, int64_t end) {
      multiply(weight + begin * row_bytes, row_bytes, end - begin, a, rows, blocks, y + begin, out);
    });
    return;
  }
  // A chunk's weight rows (about kBytesPerChunk) stay in cache while every
  // group of four activation rows meets all of them: the activations of a
  // long prompt, megabytes, stream past once per chunk rather than once per
  // weight row.
  threads.Run(out, RowsPerChunk(row_bytes), [&](int64_t begin, int64_t end) {
    int64_t r = 0;
    for (; dot4 != nullptr && r + 4 <= rows; r += 4) {
      for (int64_t o = begin; o < end; ++o) {
        float four[4];
        dot4(weight + o * row_bytes, a + r * blocks, blocks, blocks, four);
        for (int i = 0; i < 4; ++i) y[(r + i) * out + o] = four[i];
      }
    }
    for (; r < rows; ++r) {
      for (int64_t o = begin; o < end; ++o) y[r * out + o] = dot(weight + o * row_bytes, a + r * blocks, blocks);
    }
  });
}

}  // namespace

bool HasMatMulKernel(GgmlType type) {
  return type == GgmlType::kF32 || type == GgmlType::kF16 || kernels::ScalarKernels().HasDot(type);
}

absl::Status QuantMatMul(GgmlType type, const uint8_t* weight, const float* x, float* y, MatMulShape shape,
                         const kernels::KernelSet* kernel_set, ThreadPool* pool) {
  if (!HasMatMulKernel(type)) {
    return absl::InvalidArgumentError(edgellm::StrCat("matmul: no kernel for ", TraitsOf(type).name, " weights"));
  }
  const int64_t block = std::max<int64_t>(kernels::kBlock, TraitsOf(type).block_size);
  if (shape.in_features <= 0 || shape.in_features % block != 0 || shape.rows < 0 || shape.out_features < 0) {
    return absl::InvalidArgumentError(edgellm::StrCat("matmul: ", shape.in_features, " inputs are not whole ",
                                                      TraitsOf(type).name, " blocks of ", block));
  }
  const kernels::KernelSet& k = kernel_set != nullptr ? *kernel_set : kernels::BestKernels();
  ThreadPool& threads = pool != nullptr ? *pool : ThreadPool::Shared();
  const int64_t in = shape.in_features, out = shape.out_features, rows = shape.rows;
  const uint64_t row_bytes = RowBytes(type, static_cast<uint64_t>(in));

  if (type == GgmlType::kF32 || type == GgmlType::kF16) {
    const kernels::DotFloatFn dot = type == GgmlType::kF32 ? k.dot_f32 : k.dot_f16;
    threads.Run(out, RowsPerChunk(row_bytes), [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) {
        const uint8_t* w = weight + o * row_bytes;
        for (int64_t r = 0; r < rows; ++r) y[r * out + o] = dot(w, x + r * in, in);
      }
    });
    return absl::OkStatus();
  }

  if (const kernels::DotSuperFn dot = k.SuperDot(type)) {
    MultiplyQuantized(weight, x, y, shape, row_bytes, static_cast<int64_t>(kSuperBlock), k.quantize_super, dot,
                      k.SuperDot4(type), k.SuperMultiply(type), threads);
  } else {
    MultiplyQuantized(weight, x, y, shape, row_bytes, kernels::kBlock, k.quantize, k.Dot(type), k.Dot4(type),
                      k.Multiply(type), threads);
  }
  return absl::OkStatus();
}

}  // namespace edgellm::engine
