// engine/architecture.h — what sets one model family apart from the Llama
// block, as data: one row per `general.architecture` in architecture.cpp.
//
// Every family here shares the decoder skeleton (pre-norm attention with
// rotary positions and grouped-query heads, then a gated MLP) and the GGUF
// tensor names llama.cpp writes (blk.N.attn_q.weight, ...). A row says which
// optional tensors a layer has and how its heads rotate; the weight loader
// (llama_model.cpp) reads the row, and the three forwards (cpu_forward.cpp,
// torch_forward.cpp, train/lora_model.cpp) compute what the loaded weights
// hold. Hyperparameters are read from `<name>.` keys for every family.
#ifndef EDGELLM_ENGINE_ARCHITECTURE_H_
#define EDGELLM_ENGINE_ARCHITECTURE_H_

#include <string>
#include <string_view>

namespace edgellm::engine {

// How a head's values are paired for the rotation.
enum class RopeStyle {
  // (x[2i], x[2i+1]): llama.cpp's converter permutes Llama's q and k rows
  // so that this pairing computes Hugging Face's rotate-half.
  kAdjacentPairs,
  // (x[i], x[i + rope_dims/2]): GPT-NeoX's rotate-half on unpermuted rows.
  kHalves,
};

struct Architecture {
  std::string_view name;  // general.architecture
  RopeStyle rope = RopeStyle::kAdjacentPairs;
  // blk.N.attn_{q,k,v}.bias, [q width] and [kv width] (Qwen2).
  bool qkv_bias = false;
  // blk.N.attn_{q,k}_norm.weight, [head_dim]: RMSNorm of each head before
  // the rotation (Qwen3).
  bool qk_norm = false;
  // Whether the GGUF q and k rows are Hugging Face's rows permuted for
  // kAdjacentPairs, so that a PEFT adapter's B rows of q_proj and k_proj
  // must be reordered on load and save (lora_adapter.cpp).
  bool hf_permuted_qk = false;
};

// The row for `name`, or nullptr for an architecture edgellm cannot run.
const Architecture* FindArchitecture(std::string_view name);
// "llama, qwen2, qwen3": for error messages and the README.
std::string ArchitectureNames();

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_ARCHITECTURE_H_
