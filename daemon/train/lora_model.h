// train/lora_model.h — the decoder forward of every architecture the engine
// runs, with LibTorch autograd, for training a LoRA adapter on a frozen base:
// the very weights the node serves, read in place in the mapping whatever
// their type (engine::LlamaModel::cpu_weights).
//
// A frozen projection is a custom autograd function: its forward is the
// engine's product (kernels or a dequantized tile + BLAS), its backward
// produces only the input's gradient, dequantizing a tile of the weight at a
// time (engine::MultiplyTransposed) — extra memory of a tile per thread, not
// a layer, not the model. The adapter's A and B are tensors over the
// LoraAdapter's own buffers, so what the optimizer changes is the adapter.
//
// Attention, the norms, SwiGLU and the output's cross-entropy are fused
// autograd functions (fused_attention.h, fused_ops.h) that keep only their
// inputs, not the intermediates of ATen's composites.
//
// With recompute_layers, each layer keeps only its input for the backward
// pass and runs again during it (activation checkpointing): about a third
// more compute for activations of one layer instead of all of them.
// Engine-internal to train/: includes ATen.
#ifndef EDGELLM_TRAIN_LORA_MODEL_H_
#define EDGELLM_TRAIN_LORA_MODEL_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/engine/cpu_forward.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"

namespace edgellm::train {

// Rows of packed tokens, [rows, length] each, int64 (pads: label -1, segment -1).
struct TrainingBatch {
  at::Tensor tokens;
  at::Tensor labels;
  at::Tensor positions;
  at::Tensor segments;
};

// Dropout masks are drawn from (seed, layer, projection), so a recomputed
// layer draws the same ones.
struct DropoutSeed {
  float rate = 0.0f;  // 0: off (evaluation)
  uint64_t seed = 0;
};

// y = x · Wᵀ for a frozen `weight` with the gradient of x in backward.
// x: [..., in] float32.
at::Tensor FrozenLinear(const at::Tensor& x, const engine::WeightMatrix& weight);

class LoraModel {
 public:
  // `base` and `adapter` (made for it) must outlive the model.
  LoraModel(const engine::LlamaModel& base, engine::LoraAdapter& adapter, bool recompute_layers);

  // The sum of the cross-entropy of every labelled token of `batch`; then
  // adds the gradient of loss_scale × that sum to each trainable tensor's grad.
  double LossAndBackward(const TrainingBatch& batch, const DropoutSeed& dropout, double loss_scale) const;
  // The same sum without gradients or dropout (evaluation).
  double Loss(const TrainingBatch& batch) const;

  // The tensors the optimizer updates (B, and A unless the adapter's A is
  // frozen), over the adapter's buffers, with their PEFT names.
  const std::vector<at::Tensor>& trainable() const { return trainable_; }
  const std::vector<std::string>& trainable_names() const { return trainable_names_; }

  // One layer of the forward; public for the checkpointed layer's backward.
  struct Context;
  at::Tensor Layer(int32_t layer, const at::Tensor& x, const Context& context) const;

 private:
  Context MakeContext(const TrainingBatch& batch, const DropoutSeed& dropout) const;
  at::Tensor LossSum(const TrainingBatch& batch, const Context& context) const;
  at::Tensor Project(const at::Tensor& x, const engine::WeightMatrix& weight, int32_t layer,
                     engine::LoraTarget target, const Context& context) const;

  const engine::LlamaConfig& config_;
  const engine::CpuModelWeights& weights_;
  engine::LoraAdapter& adapter_;
  bool recompute_layers_;
  // Per layer and target: A and B as tensors over the adapter's buffers (undefined: not adapted).
  std::vector<std::array<std::pair<at::Tensor, at::Tensor>, engine::kLoraTargetCount>> lora_;
  std::vector<at::Tensor> trainable_;
  std::vector<std::string> trainable_names_;
  std::vector<std::vector<at::Tensor>> layer_trainable_;  // per layer, for its recomputed backward
  at::Tensor anchor_;  // gives recomputed layers a graph (lora_model.cpp)
  // The distinct rotary tables of the layers (cos, sin), [context, rope_dims / 2]
  // each, over the model's tables; rope_table_[layer] indexes them.
  std::vector<std::pair<at::Tensor, at::Tensor>> rope_tables_;
  std::vector<int> rope_table_;
};

}  // namespace edgellm::train

#endif  // EDGELLM_TRAIN_LORA_MODEL_H_
