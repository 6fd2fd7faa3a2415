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

absl::StatusOr<std::unique_ptr<Linear>> MakeLinear(const WeightMatrix& weight, const at::Device& device) {
  if (device.is_cpu()) return std::unique_ptr<Linear>(new InPlaceLinear(weight));
  try {
    at::Tensor dense = at::empty({weight.out_features, weight.in_features}, at::TensorOptions(at::kFloat));
    EDGELLM_RETURN_IF_ERROR(Dequantize(weight.type, absl::MakeConstSpan(weight.data, weight.bytes()),
                                       absl::MakeSpan(dense.data_ptr<float>(), static_cast<size_t>(dense.numel()))));
    return std::unique_ptr<Linear>(new DenseLinear(dense.to(device)));
  } catch (const c10::Error& e) {
    return absl::InternalError(edgellm::StrCat("weight to ", device.str(), ": ", e.what_without_backtrace()));
  }
}

at::Tensor VectorTensor(const float* values, int64_t n, const at::Device& device) {
  // The model's buffers are read-only to every forward and outlive them.
  const at::Tensor view = at::from_blob(const_cast<float*>(values), {n}, at::TensorOptions(at::kFloat));
  return device.is_cpu() ? view : view.to(device);
}

}  // namespace edgellm::engine
