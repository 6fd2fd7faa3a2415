#include "daemon/engine/llama_config.h"

#include <cmath>

#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/gguf_reader.h"

namespace edgellm::engine {
namespace {

constexpr int64_t kMaxDimension = 1 << 20;

absl::StatusOr<int32_t> ReadDim(const GgufReader& gguf, const std::string& key, int64_t fallback = -1) {
  absl::StatusOr<int64_t> v = fallback >= 0 ? gguf.GetInt(key, fallback) : gguf.GetInt(key);
  if (!v.ok()) return v.status();
  if (*v <= 0 || *v > kMaxDimension) {
    return absl::InvalidArgumentError(edgellm::StrCat("model: ", key, " = ", *v, " is out of range"));
  }
  return static_cast<int32_t>(*v);
}

// A positive float at `key`, or `fallback` when the file has none.
absl::StatusOr<float> ReadPositive(const GgufReader& gguf, const std::string& key, double fallback) {
  EDGELLM_ASSIGN_OR_RETURN(double v, gguf.GetFloat(key, fallback));
  if (!(v > 0) || !std::isfinite(v)) {
    return absl::InvalidArgumentError(edgellm::StrCat("model: ", key, " = ", v, " must be a positive number"));
  }
  return static_cast<float>(v);
}

// Linear rope scaling (the angle divided by the factor) and Phi-3's long-rope
// keys; YaRN and other schemes are refused by name.
absl::Status ReadRopeScaling(const GgufReader& gguf, const std::string& a, LlamaConfig& c) {
  std::string type = "none";
  if (gguf.Find(a + ".rope.scaling.type") != nullptr) {
    EDGELLM_ASSIGN_OR_RETURN(type, gguf.GetString(a + ".rope.scaling.type"));
  }
  if (type == "linear") {
    EDGELLM_ASSIGN_OR_RETURN(float factor, ReadPositive(gguf, a + ".rope.scaling.factor", 1.0));
    c.rope_freq_scale = 1.0f / factor;
  } else if (type != "none" && type != "longrope") {
    return absl::InvalidArgumentError(edgellm::StrCat("model: ", a, ".rope.scaling.type '", type,
                                                      "' is not supported (none, linear and longrope are)"));
  }
  EDGELLM_ASSIGN_OR_RETURN(c.rope_original_context,
                           ReadDim(gguf, a + ".rope.scaling.original_context_length", c.n_ctx_train));
  EDGELLM_ASSIGN_OR_RETURN(c.rope_attn_factor, ReadPositive(gguf, a + ".rope.scaling.attn_factor", 1.0));
  return absl::OkStatus();
}

// What the family's row (architecture.h) adds: the query scale, soft caps,
// sliding windows, scaled embeddings.
absl::Status ReadFamilyParameters(const GgufReader& gguf, const std::string& a, LlamaConfig& c) {
  const Architecture& arch = *c.arch;
  const int32_t scale_width = arch.wide_query_scale_layers != 0 && c.n_layer == arch.wide_query_scale_layers
                                  ? c.n_embd / c.n_head
                                  : c.head_dim;
  c.attention_scale = 1.0f / std::sqrt(static_cast<float>(scale_width));
  if (arch.default_attention_softcap > 0 || gguf.Find(a + ".attn_logit_softcapping") != nullptr) {
    EDGELLM_ASSIGN_OR_RETURN(c.attention_softcap,
                             ReadPositive(gguf, a + ".attn_logit_softcapping", arch.default_attention_softcap));
  }
  if (arch.default_final_softcap > 0 || gguf.Find(a + ".final_logit_softcapping") != nullptr) {
    EDGELLM_ASSIGN_OR_RETURN(c.final_softcap,
                             ReadPositive(gguf, a + ".final_logit_softcapping", arch.default_final_softcap));
  }
  if (arch.sliding_window_pattern > 0) {
    if (gguf.Find(a + ".attention.sliding_window") != nullptr || arch.default_sliding_window > 0) {
      EDGELLM_ASSIGN_OR_RETURN(c.sliding_window,
                               ReadDim(gguf, a + ".attention.sliding_window", arch.default_sliding_window));
    }
  }
  if (arch.sliding_rope_base > 0) {
    c.rope_freq_base_sliding = arch.sliding_rope_base;
    c.rope_freq_scale_sliding = 1.0f;
  } else {
    c.rope_freq_base_sliding = c.rope_freq_base;
    c.rope_freq_scale_sliding = c.rope_freq_scale;
  }
  if (arch.scaled_embedding) c.embedding_scale = std::sqrt(static_cast<float>(c.n_embd));
  return absl::OkStatus();
}

}  // namespace

bool LlamaConfig::IsSlidingLayer(int32_t layer) const {
  const int32_t pattern = arch->sliding_window_pattern;
  return sliding_window > 0 && pattern > 0 && layer % pattern < pattern - 1;
}

absl::StatusOr<LlamaConfig> LlamaConfig::FromGguf(const GgufReader& gguf) {
  LlamaConfig c;
  EDGELLM_ASSIGN_OR_RETURN(c.architecture, gguf.GetString("general.architecture"));
  c.arch = FindArchitecture(c.architecture);
  if (c.arch == nullptr) {
    return absl::InvalidArgumentError(edgellm::StrCat("model: general.architecture '", c.architecture,
                                                      "' is not supported (", ArchitectureNames(), " are)"));
  }
  if (gguf.Find("general.name") != nullptr) {
    EDGELLM_ASSIGN_OR_RETURN(c.name, gguf.GetString("general.name"));
  }
  const std::string& a = c.architecture;
  EDGELLM_ASSIGN_OR_RETURN(c.n_layer, ReadDim(gguf, a + ".block_count"));
  EDGELLM_ASSIGN_OR_RETURN(c.n_embd, ReadDim(gguf, a + ".embedding_length"));
  EDGELLM_ASSIGN_OR_RETURN(c.n_head, ReadDim(gguf, a + ".attention.head_count"));
  EDGELLM_ASSIGN_OR_RETURN(c.n_head_kv, ReadDim(gguf, a + ".attention.head_count_kv", c.n_head));
  EDGELLM_ASSIGN_OR_RETURN(c.n_ff, ReadDim(gguf, a + ".feed_forward_length"));
  EDGELLM_ASSIGN_OR_RETURN(c.n_ctx_train, ReadDim(gguf, a + ".context_length", 2048));
  if (c.n_head % c.n_head_kv != 0) {
    return absl::InvalidArgumentError(edgellm::StrCat("model: ", a, ".attention.head_count_kv = ", c.n_head_kv,
                                                      " does not divide ", a, ".attention.head_count = ", c.n_head));
  }
  // Qwen3 and Gemma heads are wider than n_embd / n_head; the file says so.
  if (gguf.Find(a + ".attention.key_length") != nullptr) {
    EDGELLM_ASSIGN_OR_RETURN(c.head_dim, ReadDim(gguf, a + ".attention.key_length"));
  } else if (c.n_embd % c.n_head != 0) {
    return absl::InvalidArgumentError(edgellm::StrCat("model: ", a, ".attention.head_count = ", c.n_head,
                                                      " does not divide ", a, ".embedding_length = ", c.n_embd,
                                                      " and there is no ", a, ".attention.key_length"));
  } else {
    c.head_dim = c.n_embd / c.n_head;
  }
  EDGELLM_ASSIGN_OR_RETURN(int32_t value_length, ReadDim(gguf, a + ".attention.value_length", c.head_dim));
  if (value_length != c.head_dim) {
    return absl::InvalidArgumentError(edgellm::StrCat("model: ", a, ".attention.value_length = ", value_length,
                                                      " differs from the key length ", c.head_dim,
                                                      " (not supported)"));
  }
  EDGELLM_ASSIGN_OR_RETURN(c.rope_dims, ReadDim(gguf, a + ".rope.dimension_count", c.head_dim));
  if (c.rope_dims > c.head_dim || c.rope_dims % 2 != 0) {
    return absl::InvalidArgumentError(edgellm::StrCat("model: ", a, ".rope.dimension_count = ", c.rope_dims,
                                                      " must be even and at most the head size ", c.head_dim));
  }
  EDGELLM_ASSIGN_OR_RETURN(double base, gguf.GetFloat(a + ".rope.freq_base", 10000.0));
  EDGELLM_ASSIGN_OR_RETURN(double eps, gguf.GetFloat(a + ".attention.layer_norm_rms_epsilon", 1e-5));
  if (!(base > 0) || !(eps > 0)) {
    return absl::InvalidArgumentError("model: rope.freq_base and layer_norm_rms_epsilon must be positive");
  }
  c.rope_freq_base = static_cast<float>(base);
  c.rms_norm_eps = static_cast<float>(eps);
  EDGELLM_RETURN_IF_ERROR(ReadRopeScaling(gguf, a, c));
  EDGELLM_RETURN_IF_ERROR(ReadFamilyParameters(gguf, a, c));

  const GgufTensorInfo* embd = gguf.FindTensor("token_embd.weight");
  if (embd == nullptr) return absl::InvalidArgumentError("model: missing tensor token_embd.weight");
  if (embd->dims.size() != 2 || embd->dims[0] != static_cast<uint64_t>(c.n_embd) || embd->dims[1] > kMaxDimension) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("model: token_embd.weight is not [", a, ".embedding_length = ", c.n_embd, ", vocab]"));
  }
  c.n_vocab = static_cast<int32_t>(embd->dims[1]);
  if (gguf.Find(a + ".vocab_size") != nullptr) {
    EDGELLM_ASSIGN_OR_RETURN(int32_t vocab_size, ReadDim(gguf, a + ".vocab_size"));
    if (vocab_size != c.n_vocab) {
      return absl::InvalidArgumentError(edgellm::StrCat("model: ", a, ".vocab_size = ", vocab_size,
                                                        " but token_embd.weight has ", c.n_vocab, " rows"));
    }
  }
  return c;
}

}  // namespace edgellm::engine
