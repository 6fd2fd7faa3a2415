// engine/torch_ops.h — the decoder block's row-wise operations in LibTorch ops,
// shared by the LibTorch forward (torch_forward.cpp) and the LoRA trainer's
// autograd model, so both compute them the same way. Includes ATen: only for
// code that links edgellm::engine_torch.
#ifndef EDGELLM_ENGINE_TORCH_OPS_H_
#define EDGELLM_ENGINE_TORCH_OPS_H_

#include <ATen/ATen.h>

#include "daemon/engine/architecture.h"

namespace edgellm::engine {

// x * weight / sqrt(mean(x²) + eps) over the last dimension.
inline at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, float eps) {
  return x * at::rsqrt(x.square().mean(-1, /*keepdim=*/true) + eps) * weight;
}

// Rotates the pairs of the first rope_dims of each head: adjacent ones
// (x[2i], x[2i+1]) or halves (x[i], x[i + rope_dims/2]) as `style` says.
// x: [..., heads, head_dim]; cos, sin: broadcastable to [..., 1, rope_dims / 2].
inline at::Tensor ApplyRope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t rope_dims,
                            RopeStyle style) {
  const int64_t head_dim = x.size(-1), half = rope_dims / 2;
  at::Tensor rotated;
  if (style == RopeStyle::kAdjacentPairs) {
    const at::Tensor pairs = x.narrow(-1, 0, rope_dims).unflatten(-1, {half, 2});
    const at::Tensor x0 = pairs.select(-1, 0);
    const at::Tensor x1 = pairs.select(-1, 1);
    rotated = at::stack({x0 * cos - x1 * sin, x0 * sin + x1 * cos}, -1).flatten(-2);
  } else {
    const at::Tensor x0 = x.narrow(-1, 0, half);
    const at::Tensor x1 = x.narrow(-1, half, half);
    rotated = at::cat({x0 * cos - x1 * sin, x0 * sin + x1 * cos}, -1);
  }
  if (rope_dims == head_dim) return rotated;
  return at::cat({rotated, x.narrow(-1, rope_dims, head_dim - rope_dims)}, -1);
}

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_TORCH_OPS_H_
