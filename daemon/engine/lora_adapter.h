// engine/lora_adapter.h — a low-rank adapter (LoRA) for a Llama model: for
// each adapted projection W of each layer, matrices A [rank, in] and
// B [out, rank] so that the layer computes W·x + scale·B·(A·x).
//
// Read and written in the PEFT layout, so adapters move between edgellm and
// the Python ecosystem: a directory with adapter_config.json and
// adapter_model.safetensors, tensors named like
// base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight.
// For Llama, GGUF stores q_proj and k_proj with each head's rows interleaved
// for its rotation (llama.cpp's converter permutes them); B's rows of those
// two are kept here in the GGUF order and converted to and from the Hugging
// Face order on save and load, so a PEFT adapter means the same thing on both
// sides. Architectures that rotate halves (Qwen) keep Hugging Face's order.
// Phi-3's Hugging Face model fuses q/k/v into qkv_proj and gate/up into
// gate_up_proj: PEFT adapts those modules, so they are what is written and
// read (lora_adapter.cpp says how separate projections map onto one).
#ifndef EDGELLM_ENGINE_LORA_ADAPTER_H_
#define EDGELLM_ENGINE_LORA_ADAPTER_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/engine/llama_config.h"

namespace edgellm::engine {

enum class LoraTarget { kQ, kK, kV, kO, kGate, kUp, kDown };
inline constexpr int kLoraTargetCount = 7;

// "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj".
std::string_view LoraTargetName(LoraTarget target);
std::optional<LoraTarget> LoraTargetFromName(std::string_view name);
// Every projection, in that order.
const std::vector<LoraTarget>& AllLoraTargets();
// "all", or a comma-separated list of the names above. InvalidArgument
// naming an unknown one.
absl::StatusOr<std::vector<LoraTarget>> ParseLoraTargets(std::string_view list);

// The projection's input and output widths in a model of `config`.
struct ProjectionShape {
  int64_t in;
  int64_t out;
};
ProjectionShape ShapeOf(const LlamaConfig& config, LoraTarget target);

struct LoraConfig {
  int32_t rank = 8;
  float alpha = 16.0f;
  float dropout = 0.0f;  // on the adapter's input, while training
  std::vector<LoraTarget> targets = {LoraTarget::kQ, LoraTarget::kV};
  bool use_rslora = false;  // scale alpha / sqrt(rank) instead of alpha / rank
  // FFA-LoRA: A stays as initialised from `seed` and only B trains, so that
  // averaging B across devices averages the weight updates exactly.
  bool freeze_a = false;
  uint64_t seed = 0;  // A's initialisation: the same seed gives the same A on every machine

  float scale() const;
  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

struct LoraWeights {
  int64_t in = 0;
  int64_t out = 0;
  std::vector<float> a;  // [rank, in] row-major
  std::vector<float> b;  // [out, rank] row-major, rows in GGUF order
};

class LoraAdapter {
 public:
  // A new adapter for a model of `model`, initialised as the LoRA paper does
  // (and PEFT): A uniform in ±1/sqrt(in) from config.seed, B zero — so it
  // starts as the identity. InvalidArgument for a bad config.
  static absl::StatusOr<LoraAdapter> Create(const LoraConfig& config, const LlamaConfig& model);
  // Reads the PEFT directory `dir` and checks it fits `model`: every
  // tensor present with the right shape, none unknown, all finite.
  // NotFound for missing files; InvalidArgument naming what is wrong;
  // Unimplemented for PEFT options edgellm does not apply (bias, per-module
  // ranks, a subset of layers).
  static absl::StatusOr<LoraAdapter> Load(const std::string& dir, const LlamaConfig& model);
  // Writes the PEFT directory (created if needed); each file atomically.
  absl::Status Save(const std::string& dir, std::string_view base_model_name) const;

  const LoraConfig& config() const { return config_; }
  float scale() const { return config_.scale(); }
  int32_t n_layer() const { return static_cast<int32_t>(layers_.size()); }
  // nullptr when the projection is not adapted.
  const LoraWeights* Find(int32_t layer, LoraTarget target) const;
  LoraWeights* Find(int32_t layer, LoraTarget target);
  // OK when this adapter was made for a model of `model`'s shape.
  absl::Status CheckFits(const LlamaConfig& model) const;
  // Trainable values (A and B of every adapted projection) and their bytes as saved.
  int64_t parameter_count() const;

 private:
  LoraConfig config_;
  std::vector<std::array<std::optional<LoraWeights>, kLoraTargetCount>> layers_;
  // q_proj and k_proj head layout, for the Hugging Face row order of B.
  int32_t n_head_ = 0;
  int32_t n_head_kv_ = 0;
  const Architecture* arch_ = nullptr;  // whether that order differs from GGUF's
  // Every projection's shape in the model, adapted or not (a fused PEFT
  // module's B spans the projections it does not adapt too).
  std::array<ProjectionShape, kLoraTargetCount> shapes_{};
};

// The name of A (or B) of `target` in `layer` with one PEFT module per
// projection (Llama's layout): how checkpoints and the trainer name them.
std::string PeftTensorName(int32_t layer, LoraTarget target, bool b);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_LORA_ADAPTER_H_
