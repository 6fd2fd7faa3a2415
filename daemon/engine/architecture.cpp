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

constexpr std::array<const Architecture*, 3> kArchitectures = {&kLlama, &kQwen2, &kQwen3};

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
