// train/fused_ops.h — the training forward's pointwise and output steps as
// autograd functions that keep only what their backward pass needs.
//
// ATen's composites keep every intermediate: an RMS norm its normalized
// input, SwiGLU the SiLU of the gate, the cross-entropy the logits, their
// log-softmax and its gradient ([tokens, vocabulary] each: 200 MB apiece for
// 1,024 tokens of a 49k vocabulary). These keep their inputs (and a scalar
// per row), and the output loss never holds more than a chunk of logits.
// Engine-internal to train/: includes ATen.
#ifndef EDGELLM_TRAIN_FUSED_OPS_H_
#define EDGELLM_TRAIN_FUSED_OPS_H_

#include <ATen/ATen.h>

#include "daemon/engine/weight_matrix.h"

namespace edgellm::train {

// How a frozen matrix multiplies the training forward's activations: as the
// engine serves it (int8 activations for a quantized type), so that an adapter
// learns on the forward that will run it.
engine::ActivationPrecision ForwardPrecision(const engine::WeightMatrix& weight);

// x · rsqrt(mean(x²) + eps) · weight over the last dimension, with a frozen
// `weight` (float, x.size(-1) values, alive until backward).
at::Tensor FusedRmsNorm(const at::Tensor& x, const float* weight, float eps);

// silu(gate) · up.
at::Tensor FusedSiluGlu(const at::Tensor& gate, const at::Tensor& up);

// Rows of logits OutputLoss makes at once: 256 rows of a 49k vocabulary are 50 MB.
constexpr int64_t kOutputLossChunkRows = 256;

// The summed cross-entropy of `labels` (int64, each in [0, vocabulary)) under
// the logits softcap(x · outputᵀ) of the rows of x ([rows, in], float32);
// `softcap` 0: none. The logits are made a chunk of rows at a time and, when x
// requires grad, turned into x's gradient at once: the loss is a scalar, so
// its backward pass only scales that gradient.
at::Tensor OutputLoss(const at::Tensor& x, const at::Tensor& labels, const engine::WeightMatrix& output,
                      float softcap);

}  // namespace edgellm::train

#endif  // EDGELLM_TRAIN_FUSED_OPS_H_
