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

// The gated MLP's activation: silu(gate) * up, or gelu(gate) * up with
// GELU's tanh approximation.
enum class Activation { kSilu, kGeluTanh };

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
  // blk.N.attn_qkv.weight holds the q, k and v rows in one matrix, and
  // blk.N.ffn_up.weight the gate rows then the up rows, with no ffn_gate
  // (Phi-3). The loader views the parts in place as separate matrices.
  bool fused_projections = false;
  // blk.N.post_attention_norm.weight and blk.N.post_ffw_norm.weight: RMSNorm
  // of the attention and MLP outputs before each joins the residual (Gemma 2/3).
  bool post_norms = false;
  // Token embeddings are multiplied by sqrt(n_embd) (Gemma).
  bool scaled_embedding = false;
  Activation activation = Activation::kSilu;
  // The query is multiplied by the attention scale after its rotation and
  // the scores are not scaled again, the order llama.cpp computes Phi-3 and
  // Gemma in (the same product, rounded differently).
  bool prescaled_query = false;
  // Soft-capping of attention scores and final logits, cap·tanh(x / cap),
  // with these caps unless the file says otherwise (Gemma 2); 0: none.
  float default_attention_softcap = 0.0f;
  float default_final_softcap = 0.0f;
  // Layer il attends within a sliding window when il % pattern < pattern - 1
  // (Gemma 2: every other layer, Gemma 3: five of every six); 0: no layer.
  int32_t sliding_window_pattern = 0;
  // The window when the file has no attention.sliding_window (0: no window then).
  int32_t default_sliding_window = 0;
  // Rope base of the sliding layers, which then ignore rope scaling (Gemma 3); 0: the file's.
  float sliding_rope_base = 0.0f;
  // The block count of the family's 27B model, whose query scale is
  // 1/sqrt(n_embd / n_head) rather than 1/sqrt(head_dim), as llama.cpp decides it.
  int32_t wide_query_scale_layers = 0;
};

// The row for `name`, or nullptr for an architecture edgellm cannot run.
const Architecture* FindArchitecture(std::string_view name);
// "llama, qwen2, qwen3, ...": for error messages.
std::string ArchitectureNames();

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_ARCHITECTURE_H_
