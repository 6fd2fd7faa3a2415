#include "daemon/engine/linear.h"

#include <ATen/ATen.h>

#include <vector>

#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/quant_matmul.h"
#include "daemon/engine/thread_pool.h"

namespace edgellm::engine {
namespace {

// Activation rows up to which the kernels multiply the weight directly (a
// decode step, a few sequences); beyond, BLAS does, a tile at a time.
constexpr int64_t kKernelMaxRows = 32;
// Output rows per BLAS tile: 64 rows of 2048 floats is half a MiB, in cache.
constexpr int64_t kTileRows = 64;

// A float32 weight [out, in] dequantized at load: the reference path, and
// what other devices run.
class DenseLinear final : public Linear {
 public:
  explicit DenseLinear(at::Tensor weight) : weight_(std::move(weight)) {}

  at::Tensor Forward(const at::Tensor& x) const override { return at::linear(x, weight_); }
  int64_t in_features() const override { return weight_.size(1); }
  int64_t out_features() const override { return weight_.size(0); }
  uint64_t weight_bytes() const override { return weight_.nbytes(); }

 private:
  at::Tensor weight_;  // [out, in] float32
};

// A weight multiplied in place in the mapping, on the CPU. A few rows go
// through the engine's kernels (quant_matmul.h). Many rows (a prefill chunk)
// go through BLAS: each thread of the shared pool takes a tile of output rows,
// dequantizes it once (F32 is used as it is) and multiplies every activation
// row by it, with BLAS on that thread alone.
class KernelLinear final : public Linear {
 public:
  KernelLinear(GgmlType type, const uint8_t* weight, int64_t in_features, int64_t out_features)
      : type_(type),
        weight_(weight),
        in_features_(in_features),
        out_features_(out_features),
        row_bytes_(RowBytes(type, static_cast<uint64_t>(in_features))) {}

  at::Tensor Forward(const at::Tensor& x) const override {
    const at::Tensor input = x.contiguous();
    at::Tensor y = at::empty({input.size(0), out_features_}, input.options());
    if (input.size(0) <= kKernelMaxRows) {
      // The shape was validated when the layer was made: this cannot fail.
      (void)QuantMatMul(type_, weight_, input.data_ptr<float>(), y.data_ptr<float>(),
                        {input.size(0), in_features_, out_features_});
    } else {
      ThreadPool::Shared().Run(out_features_, kTileRows,
                               [&](int64_t begin, int64_t end) { MultiplyTile(input, begin, end, y); });
    }
    return y;
  }
  int64_t in_features() const override { return in_features_; }
  int64_t out_features() const override { return out_features_; }
  uint64_t weight_bytes() const override { return static_cast<uint64_t>(out_features_) * row_bytes_; }

 private:
  // y[:, begin:end] = input · W[begin:end]ᵀ.
  void MultiplyTile(const at::Tensor& input, int64_t begin, int64_t end, at::Tensor& y) const {
    c10::InferenceMode inference_mode;
    const int64_t rows = end - begin;
    const uint8_t* tile = weight_ + begin * row_bytes_;
    at::Tensor w;
    if (type_ == GgmlType::kF32) {
      w = at::from_blob(const_cast<uint8_t*>(tile), {rows, in_features_}, at::kFloat);
    } else {
      thread_local std::vector<float> scratch;
      scratch.resize(static_cast<size_t>(rows * in_features_));
      // Sizes were validated when the layer was made: this cannot fail.
      (void)Dequantize(type_, absl::MakeConstSpan(tile, rows * row_bytes_), absl::MakeSpan(scratch));
      w = at::from_blob(scratch.data(), {rows, in_features_}, at::kFloat);
    }
    y.narrow(1, begin, rows).copy_(at::mm(input, w.t()));
  }

  GgmlType type_;
  const uint8_t* weight_;
  int64_t in_features_, out_features_;
  uint64_t row_bytes_;
};

}  // namespace

absl::StatusOr<at::Tensor> TensorToFloat(const GgufTensorInfo& info, absl::Span<const uint8_t> data,
                                         const at::Device& device) {
  if (!CanDequantize(info.type)) {
    return absl::UnimplementedError(
        edgellm::StrCat("tensor ", info.name, ": type ", TraitsOf(info.type).name, " is not supported yet"));
  }
  const std::vector<int64_t> shape(info.dims.rbegin(), info.dims.rend());
  try {
    at::Tensor weight;
    if (info.type == GgmlType::kF32) {
      // The mapping is read-only and outlives the model: view it in place.
      weight = at::from_blob(const_cast<uint8_t*>(data.data()), shape, at::TensorOptions(at::kFloat));
    } else {
      weight = at::empty(shape, at::TensorOptions(at::kFloat));
      EDGELLM_RETURN_IF_ERROR(Dequantize(
          info.type, data, absl::MakeSpan(weight.data_ptr<float>(), static_cast<size_t>(weight.numel()))));
    }
    return device.is_cpu() ? weight : weight.to(device);
  } catch (const c10::Error& e) {
    return absl::InternalError(edgellm::StrCat("tensor ", info.name, ": ", e.what_without_backtrace()));
  }
}

absl::StatusOr<std::unique_ptr<Linear>> MakeLinear(const GgufTensorInfo& info, absl::Span<const uint8_t> data,
                                                   const at::Device& device, bool dequantize) {
  if (info.dims.size() != 2) {
    return absl::InvalidArgumentError(edgellm::StrCat("tensor ", info.name, " is not 2-D"));
  }
  const int64_t in = static_cast<int64_t>(info.dims[0]), out = static_cast<int64_t>(info.dims[1]);
  if (device.is_cpu() && !dequantize && HasMatMulKernel(info.type) && in % kernels::kBlock == 0 &&
      in % TraitsOf(info.type).block_size == 0) {
    return std::unique_ptr<Linear>(new KernelLinear(info.type, data.data(), in, out));
  }
  EDGELLM_ASSIGN_OR_RETURN(at::Tensor weight, TensorToFloat(info, data, device));
  return std::unique_ptr<Linear>(new DenseLinear(std::move(weight)));
}

}  // namespace edgellm::engine
