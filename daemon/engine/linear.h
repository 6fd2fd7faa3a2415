// engine/linear.h — a weight matrix times activations, behind one interface so
// that how the weight is stored and multiplied can change per layer.
//
// On the CPU, weights are multiplied in place in the memory-mapped file
// (weight_matrix.h). On another device, or when asked for the reference path,
// they are dequantized to float32 once at load.
// Engine-internal: includes ATen.
#ifndef EDGELLM_ENGINE_LINEAR_H_
#define EDGELLM_ENGINE_LINEAR_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "daemon/engine/gguf.h"
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

// Builds the Linear for a GGUF weight `[in, out]` whose bytes are `data`
// (which must outlive the result). `dequantize` forces the float32 reference
// path. InvalidArgument for a tensor that is not 2-D; Unimplemented for a
// type that cannot be computed.
absl::StatusOr<std::unique_ptr<Linear>> MakeLinear(const GgufTensorInfo& info, absl::Span<const uint8_t> data,
                                                   const at::Device& device, bool dequantize = false);

// Tensor `info` as float32 on `device`, its shape the GGUF dims reversed (a
// weight [in, out] becomes [out, in]). F32 data on the CPU is viewed in place.
absl::StatusOr<at::Tensor> TensorToFloat(const GgufTensorInfo& info, absl::Span<const uint8_t> data,
                                         const at::Device& device);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_LINEAR_H_
