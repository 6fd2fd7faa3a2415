#include "daemon/engine/architecture.h"

#include <array>

namespace edgellm::engine {
namespace {

// Llama 1/2/3.x, Mistral, SmolLM, TinyLlama: the plain block.
constexpr Architecture kLlama = {.name = "llama", .rope = RopeStyle::kAdjacentPairs, .hf_permuted_qk = true};
// Qwen2, Qwen2.5: biases on the q, k and v projections.
constexpr Architecture kQwen2 = {.name = "qwen2", .rope = RopeStyle::kHalves, .qkv_bias = true};
// Qwen3 (dense): per-head RMSNorm of q and k, no biases.
constexpr Architecture kQwen3 = {.name = "qwen3", .rope = RopeStyle::kHalves, .qk_norm = true};

// Phi-3, Phi-3.5 (mini): fused projections; llama.cpp ignores the sliding
// window these files declare, and so does edgellm.
constexpr Architecture kPhi3 = {
    .name = "phi3", .rope = RopeStyle::kHalves, .fused_projections = true, .prescaled_query = true};
// Gemma 2: scaled embeddings, post-norms, GELU, soft-capping, a sliding window every other layer.
constexpr Architecture kGemma2 = {.name = "gemma2",
                                  .rope = RopeStyle::kHalves,
                                  .post_norms = true,
                                  .scaled_embedding = true,
                                  .activation = Activation::kGeluTanh,
                                  .prescaled_query = true,
                                  .default_attention_softcap = 50.0f,
                                  .default_final_softcap = 30.0f,
                                  .sliding_window_pattern = 2,
                                  .default_sliding_window = 4096,
                                  .wide_query_scale_layers = 46};
// Gemma 3 (text): Gemma 2's block with q/k norms instead of soft-capping, and
// five sliding layers (rope base 10000) to each global one.
constexpr Architecture kGemma3 = {.name = "gemma3",
                                  .rope = RopeStyle::kHalves,
                                  .qk_norm = true,
                                  .post_norms = true,
                                  .scaled_embedding = true,
                                  .activation = Activation::kGeluTanh,
                                  .prescaled_query = true,
                                  .sliding_window_pattern = 6,
                                  .sliding_rope_base = 10000.0f,
                                  .wide_query_scale_layers = 62};

constexpr std::array<const Architecture*, 6> kArchitectures = {&kLlama, &kQwen2, &kQwen3, &kPhi3, &kGemma2, &kGemma3};

}  // namespace

const Architecture* FindArchitecture(std::string_view name) {
  for (const Architecture* a : kArchitectures) {
    if (a->name == name) return a;
  }
  return nullptr;
}

std::string ArchitectureNames() {
  std::string names;
  for (const Architecture* a : kArchitectures) {
    if (!names.empty()) names += ", ";
    names += a->name;
  }
  return names;
}

}  // namespace edgellm::engine
