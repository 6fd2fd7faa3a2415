// engine/linear.h — a weight matrix times activations, behind one interface so
// that how the weight is stored and multiplied can change per layer.
//
// On the CPU, weights are multiplied in place in the memory-mapped file
// (weight_matrix.h). On another device they are dequantized to float32 once
// at load.
// Engine-internal: includes ATen.
#ifndef EDGELLM_ENGINE_LINEAR_H_
#define EDGELLM_ENGINE_LINEAR_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "daemon/engine/weight_matrix.h"

namespace edgellm::engine {

// Thread-compatible: Forward is const and may run concurrently.
class Linear {
 public:
  virtual ~Linear() = default;
  // x: [n_rows, in_features] float32 -> [n_rows, out_features] float32.
  virtual at::Tensor Forward(const at::Tensor& x) const = 0;
  virtual int64_t in_features() const = 0;
  virtual int64_t out_features() const = 0;
  // Bytes of weight this layer reads per forward (for bandwidth figures).
  virtual uint64_t weight_bytes() const = 0;
};

// The Linear for a weight the model loaded (in place in the mapping, or a
// float copy the model owns; either must outlive the result): multiplied
// where it lies on the CPU, dequantized to a float32 copy on another device.
absl::StatusOr<std::unique_ptr<Linear>> MakeLinear(const WeightMatrix& weight, const at::Device& device);

// `n` floats the model loaded, as a tensor on `device` (viewed in place on the CPU).
at::Tensor VectorTensor(const float* values, int64_t n, const at::Device& device);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_LINEAR_H_
