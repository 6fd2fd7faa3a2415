#include "daemon/engine/linear.h"

#include <ATen/ATen.h>

#include "common/str_cat.h"
#include "common/status_macros.h"

namespace edgellm::engine {
namespace {

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

// A weight multiplied in place in the mapping, on the CPU (weight_matrix.h).
class InPlaceLinear final : public Linear {
 public:
  explicit InPlaceLinear(WeightMatrix weight) : weight_(weight) {}

  at::Tensor Forward(const at::Tensor& x) const override {
    const at::Tensor input = x.contiguous();
    at::Tensor y = at::empty({input.size(0), weight_.out_features}, input.options());
    Multiply(weight_, input.data_ptr<float>(), y.data_ptr<float>(), input.size(0));
    return y;
  }
  int64_t in_features() const override { return weight_.in_features; }
  int64_t out_features() const override { return weight_.out_features; }
  uint64_t weight_bytes() const override { return weight_.bytes(); }

 private:
  WeightMatrix weight_;
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
  if (device.is_cpu() && !dequantize && CanMultiplyInPlace(info)) {
    return std::unique_ptr<Linear>(new InPlaceLinear(MatrixOf(info, data.data())));
  }
  EDGELLM_ASSIGN_OR_RETURN(at::Tensor weight, TensorToFloat(info, data, device));
  return std::unique_ptr<Linear>(new DenseLinear(std::move(weight)));
}

}  // namespace edgellm::engine
