// engine/llama_config.h — the hyperparameters of a decoder of any supported
// architecture (architecture.h), read from GGUF metadata.
#ifndef EDGELLM_ENGINE_LLAMA_CONFIG_H_
#define EDGELLM_ENGINE_LLAMA_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/engine/architecture.h"

namespace edgellm::engine {

class GgufReader;

struct LlamaConfig {
  std::string architecture;  // general.architecture, e.g. "llama"
  const Architecture* arch = FindArchitecture("llama");  // its row in architecture.cpp, never null
  std::string name;          // general.name, may be empty
  int32_t n_layer = 0;       // <arch>.block_count
  int32_t n_embd = 0;        // <arch>.embedding_length
  int32_t n_head = 0;        // <arch>.attention.head_count
  int32_t n_head_kv = 0;     // <arch>.attention.head_count_kv (defaults to n_head)
  int32_t n_ff = 0;          // <arch>.feed_forward_length
  int32_t n_vocab = 0;       // rows of token_embd
  int32_t n_ctx_train = 0;   // <arch>.context_length
  int32_t head_dim = 0;      // <arch>.attention.key_length (defaults to n_embd / n_head)
  int32_t rope_dims = 0;     // <arch>.rope.dimension_count (defaults to head_dim)
  float rope_freq_base = 10000.0f;  // <arch>.rope.freq_base
  float rms_norm_eps = 1e-5f;       // <arch>.attention.layer_norm_rms_epsilon
  float rope_freq_scale = 1.0f;     // 1 / <arch>.rope.scaling.factor for linear scaling
  // Rope of the sliding-window layers (architecture.h): Gemma 3's own base.
  float rope_freq_base_sliding = 10000.0f;
  float rope_freq_scale_sliding = 1.0f;
  int32_t rope_original_context = 0;  // <arch>.rope.scaling.original_context_length (Phi-3's long factors)
  float rope_attn_factor = 1.0f;      // <arch>.rope.scaling.attn_factor: multiplies cos and sin
  // Multiplies q·k: 1/sqrt(head_dim) unless the family scales otherwise.
  float attention_scale = 0.0f;
  float attention_softcap = 0.0f;  // <arch>.attn_logit_softcapping; 0: none
  float final_softcap = 0.0f;      // <arch>.final_logit_softcapping; 0: none
  float embedding_scale = 1.0f;    // sqrt(n_embd) where the family scales embeddings
  int32_t sliding_window = 0;      // <arch>.attention.sliding_window; 0: every layer sees all

  // Whether `layer` attends only to the last sliding_window positions.
  bool IsSlidingLayer(int32_t layer) const;

  // Reads and validates; InvalidArgument naming the key that is missing or
  // inconsistent (e.g. heads that do not divide the width), or the
  // architecture when it is not one edgellm runs.
  static absl::StatusOr<LlamaConfig> FromGguf(const GgufReader& gguf);
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_LLAMA_CONFIG_H_
