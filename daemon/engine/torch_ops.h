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

// GELU (tanh approximation) rounded as ggml's CPU backend rounds it (gelu.h):
// input and result through F16, exact past ±10.
inline at::Tensor GeluTanhAsGgml(const at::Tensor& x) {
  const at::Tensor rounded = x.to(at::kHalf).to(at::kFloat);
  const at::Tensor tabled = at::gelu(rounded, "tanh").to(at::kHalf).to(at::kFloat);
  return at::where(x <= -10.0, at::zeros_like(x), at::where(x >= 10.0, x, tabled));
}

// The family's gated MLP activation of `gate`, times `up`. GELU is rounded
// as ggml rounds it where the result must be llama.cpp's (inference), and
// left smooth where it is differentiated (training: the rounding's staircase
// would leave the loss's finite differences meaningless, and moves the loss by
// about 1e-4 of itself).
inline at::Tensor GatedActivation(Activation activation, const at::Tensor& gate, const at::Tensor& up,
                                  bool round_as_ggml) {
  if (activation == Activation::kSilu) return at::silu(gate) * up;
  return (round_as_ggml ? GeluTanhAsGgml(gate) : at::gelu(gate, "tanh")) * up;
}

// cap · tanh(x / cap), as llama.cpp soft-caps Gemma 2's scores and logits; cap 0: x.
inline at::Tensor SoftCap(const at::Tensor& x, float cap) {
  return cap > 0 ? at::tanh(x * (1.0f / cap)) * cap : x;
}

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_TORCH_OPS_H_
