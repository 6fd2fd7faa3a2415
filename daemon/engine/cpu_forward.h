// engine/cpu_forward.h — the decoder forward on the CPU in one fused pass over
// plain float buffers: torch-free, and allocation-free once its per-thread
// buffers have grown to the largest batch seen.
//
// Every weight matrix is read in place in the mapping (weight_matrix.h), once
// per forward for the rows of every sequence. Attention reads the keys and
// values straight from each sequence's KV blocks, a block at a time, so it
// neither gathers them nor needs memory that grows with the sequence.
#ifndef EDGELLM_ENGINE_CPU_FORWARD_H_
#define EDGELLM_ENGINE_CPU_FORWARD_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "daemon/engine/kv_cache.h"
#include "daemon/engine/llama_config.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/engine/tokenizer.h"
#include "daemon/engine/weight_matrix.h"

namespace edgellm::engine {

// One decoder layer. The optional tensors are null unless the
// architecture's row (architecture.h) says the layer has them.
struct CpuLayerWeights {
  const float* attn_norm;  // [n_embd]
  WeightMatrix wq, wk, wv, wo;
  const float* q_bias = nullptr;  // [n_head * head_dim]
  const float* k_bias = nullptr;  // [n_head_kv * head_dim]
  const float* v_bias = nullptr;  // [n_head_kv * head_dim]
  const float* q_norm = nullptr;  // [head_dim], every query head
  const float* k_norm = nullptr;  // [head_dim], every key head
  const float* post_attention_norm = nullptr;  // [n_embd]
  const float* ffn_norm;  // [n_embd]
  WeightMatrix gate, up, down;
  const float* post_ffn_norm = nullptr;  // [n_embd]
  // The layer's rotary tables, [context, rope_dims / 2] each: the model's,
  // or the sliding layers' own (Gemma 3).
  const float* rope_cos;
  const float* rope_sin;
};

// Pointers into the mapping or into buffers the model owns, all of which
// outlive every forward.
struct CpuModelWeights {
  GgmlType embedding_type;
  const uint8_t* embedding;  // token_embd: n_vocab rows of n_embd values
  std::vector<CpuLayerWeights> layers;
  const float* output_norm;  // [n_embd]
  WeightMatrix output;
  const float* rope_cos;  // [context, rope_dims / 2], of the global (non-sliding) layers
  const float* rope_sin;
};

// Rows [first, first + count) of a forward: one sequence, at positions
// cache->length() onward, whose KV blocks for them are reserved.
struct CpuSequence {
  int64_t first;
  int64_t count;
  KvCache* cache;
  bool all_logits;  // every row's logits, or only the last row's
  // Applied unmerged to this sequence's rows (lora_adapter.h); nullptr: none.
  const LoraAdapter* adapter = nullptr;
};

// How a rotary table turns positions into angles.
struct RopeSpec {
  int32_t rope_dims;
  float base;
  float freq_scale = 1.0f;   // linear scaling: every angle times this
  float attn_factor = 1.0f;  // cos and sin times this (Phi-3's long rope)
  // [rope_dims / 2] divisors of each frequency's angle (Llama 3's
  // rope_freqs.weight, Phi-3's rope_factors_*); null: all 1.
  const float* freq_factors = nullptr;
};

// The rotary tables for positions 0..context-1: attn_factor times cos and
// sin of freq_scale * pos * base^(-2i / rope_dims) / freq_factors[i],
// [context, rope_dims / 2] each, with the angle stepped in float as
// llama.cpp does.
void FillRopeTables(const RopeSpec& spec, int32_t context, std::vector<float>* cos, std::vector<float>* sin);

// Runs `tokens` (checked: ids in the vocabulary, positions in the context)
// through the model, writes each sequence's new keys and values into its
// cache's blocks (the cache's length is left to the caller), and sets
// `logits` to the logits of the rows the sequences ask for, in order, each
// n_vocab wide. With `hidden`, those rows' final hidden states (after the
// output norm, n_embd wide) go there instead, and no logits are computed.
void CpuForward(const LlamaConfig& config, const CpuModelWeights& weights, absl::Span<const TokenId> tokens,
                absl::Span<const CpuSequence> sequences, std::vector<float>* logits,
                std::vector<float>* hidden = nullptr);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_CPU_FORWARD_H_
