#include "daemon/engine/synthetic_model.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "common/hashing.h"
#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/architecture.h"
#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/gguf_writer.h"
#include "daemon/engine/synthetic_vocab.h"

namespace edgellm::engine {
namespace {

// Uniform weights with standard deviation `stddev`, from a seed per tensor so
// that the order tensors are written in does not change them.
GgufWriter::TensorFill RandomFill(GgmlType type, uint64_t seed, const std::string& name, float stddev,
                                  uint64_t n) {
  return [=](absl::Span<uint8_t> out) {
    std::vector<float> values(n);
    std::mt19937_64 rng(seed ^ Fnv1a(name));
    const float half_width = stddev * std::sqrt(3.0f);
    for (float& v : values) v = (static_cast<float>(rng() >> 40) * 0x1.0p-24f * 2.0f - 1.0f) * half_width;
    return Quantize(type, values, out);
  };
}

GgufWriter::TensorFill OnesFill(uint64_t n) {
  return [n](absl::Span<uint8_t> out) {
    const std::vector<float> values(n, 1.0f);
    return Quantize(GgmlType::kF32, values, out);
  };
}

// Llama 3.1's rope scaling as its converter writes rope_freqs.weight: factor
// 32 (long wavelengths), 1 (short ones) and a smooth blend between, for an
// original context of 8192 with low and high frequency factors 1 and 4.
std::vector<float> Llama3RopeFactors(int32_t rope_dims, float base) {
  constexpr double kFactor = 32.0, kLowFreqFactor = 1.0, kHighFreqFactor = 4.0, kOriginalContext = 8192.0;
  const double low_wavelength = kOriginalContext / kLowFreqFactor;
  const double high_wavelength = kOriginalContext / kHighFreqFactor;
  std::vector<float> factors;
  for (int32_t i = 0; i < rope_dims; i += 2) {
    const double frequency = 1.0 / std::pow(static_cast<double>(base), static_cast<double>(i) / rope_dims);
    const double wavelength = 2.0 * M_PI / frequency;
    if (wavelength < high_wavelength) {
      factors.push_back(1.0f);
    } else if (wavelength > low_wavelength) {
      factors.push_back(static_cast<float>(kFactor));
    } else {
      const double smooth =
          (kOriginalContext / wavelength - kLowFreqFactor) / (kHighFreqFactor - kLowFreqFactor);
      factors.push_back(static_cast<float>(1.0 / ((1.0 - smooth) / kFactor + smooth)));
    }
  }
  return factors;
}

}  // namespace

const std::vector<ModelShape>& KnownShapes() {
  static const std::vector<ModelShape> shapes = {
      {"stories260k", 5, 64, 8, 4, 172, 512, 512, "llama", false},
      {"smol-135m", 30, 576, 9, 3, 1536, 49152, 2048, "gpt2", true},
      {"tinyllama-1.1b", 22, 2048, 32, 4, 5632, 32000, 2048, "llama", false},
      {"test-spm", 2, 64, 4, 2, 128, 384, 256, "llama", false},
      {"test-bpe", 2, 64, 4, 2, 128, 512, 256, "gpt2", true},
      {"test-k", 2, 256, 4, 2, 512, 384, 256, "llama", false},
      {"llama3.2-1b", 16, 2048, 32, 8, 8192, 128256, 8192, "gpt2", true, "llama", 0, 500000.0f, 1e-5f, true},
      {"qwen2.5-0.5b", 24, 896, 14, 2, 4864, 151936, 4096, "gpt2", true, "qwen2", 0, 1000000.0f, 1e-6f},
      {"qwen2.5-1.5b", 28, 1536, 12, 2, 8960, 151936, 4096, "gpt2", true, "qwen2", 0, 1000000.0f, 1e-6f},
      {"qwen3-0.6b", 28, 1024, 16, 8, 3072, 151936, 4096, "gpt2", true, "qwen3", 128, 1000000.0f, 1e-6f},
      {"test-llama3", 2, 64, 4, 2, 128, 512, 256, "gpt2", true, "llama", 0, 500000.0f, 1e-5f, true},
      {"test-qwen2", 2, 64, 4, 2, 128, 512, 256, "gpt2", false, "qwen2", 0, 1000000.0f, 1e-6f},
      {"test-qwen3", 2, 64, 4, 2, 128, 512, 256, "gpt2", true, "qwen3", 32, 1000000.0f, 1e-6f},
      {"phi3.5-mini", 32, 3072, 32, 32, 8192, 32064, 4096, "llama", false, "phi3", 0, 10000.0f, 1e-5f, false, true},
      {"gemma2-2b", 26, 2304, 8, 4, 9216, 256000, 8192, "llama", true, "gemma2", 256, 10000.0f, 1e-6f, false, false,
       4096},
      {"gemma3-1b", 26, 1152, 4, 1, 6912, 262144, 32768, "llama", true, "gemma3", 256, 1000000.0f, 1e-6f, false, false,
       512},
      {"test-phi3", 2, 64, 4, 2, 128, 384, 256, "llama", false, "phi3", 0, 10000.0f, 1e-5f, false, true},
      {"test-gemma2", 2, 64, 4, 2, 128, 384, 256, "llama", true, "gemma2", 32, 10000.0f, 1e-6f, false, false, 8},
      {"test-gemma3", 6, 64, 4, 2, 128, 384, 256, "llama", true, "gemma3", 32, 1000000.0f, 1e-6f, false, false, 8},
  };
  return shapes;
}

std::optional<ModelShape> FindShape(std::string_view name) {
  for (const ModelShape& s : KnownShapes()) {
    if (s.name == name) return s;
  }
  return std::nullopt;
}

absl::Status WriteSyntheticModel(const SyntheticModelOptions& options, const std::string& path,
                                 std::optional<QuantMix> mix) {
  if (!CanQuantize(options.type)) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("cannot write weights of type ", TraitsOf(options.type).name, " (", WritableTypeNames(), " can)"));
  }
  ModelShape s = options.shape;
  std::unique_ptr<GgufReader> vocab_file;
  Vocab vocab;
  if (options.vocab_from.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(vocab, s.tokenizer == "gpt2" ? MakeBpeVocab(s.n_vocab, options.seed)
                                                          : MakeSpmVocab(s.n_vocab, options.seed));
  } else {
    EDGELLM_ASSIGN_OR_RETURN(vocab_file, GgufReader::Open(options.vocab_from));
    EDGELLM_ASSIGN_OR_RETURN(vocab, Vocab::FromGguf(*vocab_file));
    s.n_vocab = static_cast<int32_t>(vocab.tokens.size());
  }
  const Architecture* arch = FindArchitecture(s.architecture);
  if (arch == nullptr) {
    return absl::InvalidArgumentError(edgellm::StrCat("shape ", s.name, ": unknown architecture ", s.architecture));
  }
  const int32_t head_dim = s.head_dim > 0 ? s.head_dim : s.n_embd / s.n_head;
  const std::string a = s.architecture;
  auto dim = [](int32_t v) { return GgufValue::Uint32(static_cast<uint32_t>(v)); };

  GgufWriter w;
  w.Set("general.architecture", GgufValue::String(a));
  w.Set("general.name", GgufValue::String(edgellm::StrCat(s.name, " (synthetic, random weights)")));
  // llama.cpp's file type of a model mostly of this type (Q4_K: Q4_K_M).
  w.Set("general.file_type", GgufValue::Uint32(static_cast<uint32_t>(std::max(0, TraitsOf(options.type).file_type))));
  w.Set(a + ".vocab_size", dim(s.n_vocab));
  w.Set(a + ".context_length", dim(s.n_ctx));
  w.Set(a + ".embedding_length", dim(s.n_embd));
  w.Set(a + ".block_count", dim(s.n_layer));
  w.Set(a + ".feed_forward_length", dim(s.n_ff));
  w.Set(a + ".attention.head_count", dim(s.n_head));
  w.Set(a + ".attention.head_count_kv", dim(s.n_head_kv));
  if (s.head_dim > 0) {
    w.Set(a + ".attention.key_length", dim(head_dim));
    w.Set(a + ".attention.value_length", dim(head_dim));
  }
  w.Set(a + ".rope.dimension_count", dim(head_dim));
  w.Set(a + ".rope.freq_base", GgufValue::Float32(s.rope_freq_base));
  w.Set(a + ".attention.layer_norm_rms_epsilon", GgufValue::Float32(s.rms_norm_eps));
  if (s.sliding_window > 0) w.Set(a + ".attention.sliding_window", dim(s.sliding_window));
  if (arch->default_attention_softcap > 0) {
    w.Set(a + ".attn_logit_softcapping", GgufValue::Float32(arch->default_attention_softcap));
    w.Set(a + ".final_logit_softcapping", GgufValue::Float32(arch->default_final_softcap));
  }
  if (s.long_rope_factors) w.Set(a + ".rope.scaling.original_context_length", dim(s.n_ctx));
  if (vocab_file == nullptr) {
    vocab.WriteTo(w);
  } else {
    for (const auto& [key, value] : vocab_file->metadata()) {
      if (key.starts_with("tokenizer.")) w.Set(key, value);
    }
  }

  const float stddev = 0.02f;
  // `layer` is -1 outside the blocks.
  auto matrix = [&](const std::string& name, uint64_t in, uint64_t out, int32_t layer) {
    GgmlType type = options.type;
    if (mix.has_value()) {
      const bool output = name == "output.weight" || (name == "token_embd.weight" && s.tied_embeddings);
      type = MixedType(*mix, name, layer, s.n_layer, in, output);
    }
    if (in % TraitsOf(type).block_size != 0) type = GgmlType::kF16;
    return w.AddTensor(name, type, {in, out}, RandomFill(type, options.seed, name, stddev, in * out));
  };
  auto norm = [&](const std::string& name, uint64_t n) {
    return w.AddTensor(name, GgmlType::kF32, {n}, OnesFill(n));
  };
  auto float_vector = [&](const std::string& name, std::vector<float> values) {
    const uint64_t n = values.size();
    return w.AddTensor(name, GgmlType::kF32, {n}, [values = std::move(values)](absl::Span<uint8_t> out) {
      return Quantize(GgmlType::kF32, values, out);
    });
  };
  auto bias = [&](const std::string& name, uint64_t n) {
    return w.AddTensor(name, GgmlType::kF32, {n}, RandomFill(GgmlType::kF32, options.seed, name, stddev, n));
  };
  const uint64_t d = s.n_embd, ff = s.n_ff, vocab_n = s.n_vocab;
  const uint64_t q_dim = static_cast<uint64_t>(s.n_head) * head_dim;
  const uint64_t kv_dim = static_cast<uint64_t>(s.n_head_kv) * head_dim;
  EDGELLM_RETURN_IF_ERROR(matrix("token_embd.weight", d, vocab_n, -1));
  EDGELLM_RETURN_IF_ERROR(norm("output_norm.weight", d));
  if (!s.tied_embeddings) EDGELLM_RETURN_IF_ERROR(matrix("output.weight", d, vocab_n, -1));
  if (s.long_rope_factors) {
    // Phi-3's factors rise from 1 at the shortest wavelengths; the long ones further.
    std::vector<float> short_factors, long_factors;
    for (int32_t i = 0; i < head_dim / 2; ++i) {
      const float ramp = static_cast<float>(i) / static_cast<float>(head_dim / 2);
      short_factors.push_back(1.0f + 0.5f * ramp);
      long_factors.push_back(1.0f + 20.0f * ramp);
    }
    EDGELLM_RETURN_IF_ERROR(float_vector("rope_factors_short.weight", short_factors));
    EDGELLM_RETURN_IF_ERROR(float_vector("rope_factors_long.weight", long_factors));
  }
  if (s.llama3_rope_scaling) {
    EDGELLM_RETURN_IF_ERROR(float_vector("rope_freqs.weight", Llama3RopeFactors(head_dim, s.rope_freq_base)));
  }
  for (int32_t i = 0; i < s.n_layer; ++i) {
    const std::string p = edgellm::StrCat("blk.", i, ".");
    EDGELLM_RETURN_IF_ERROR(norm(p + "attn_norm.weight", d));
    if (arch->fused_projections) {
      EDGELLM_RETURN_IF_ERROR(matrix(p + "attn_qkv.weight", d, q_dim + 2 * kv_dim, i));
    } else {
      EDGELLM_RETURN_IF_ERROR(matrix(p + "attn_q.weight", d, q_dim, i));
      EDGELLM_RETURN_IF_ERROR(matrix(p + "attn_k.weight", d, kv_dim, i));
      EDGELLM_RETURN_IF_ERROR(matrix(p + "attn_v.weight", d, kv_dim, i));
    }
    EDGELLM_RETURN_IF_ERROR(matrix(p + "attn_output.weight", q_dim, d, i));
    if (arch->qkv_bias) {
      EDGELLM_RETURN_IF_ERROR(bias(p + "attn_q.bias", q_dim));
      EDGELLM_RETURN_IF_ERROR(bias(p + "attn_k.bias", kv_dim));
      EDGELLM_RETURN_IF_ERROR(bias(p + "attn_v.bias", kv_dim));
    }
    if (arch->qk_norm) {
      EDGELLM_RETURN_IF_ERROR(norm(p + "attn_q_norm.weight", static_cast<uint64_t>(head_dim)));
      EDGELLM_RETURN_IF_ERROR(norm(p + "attn_k_norm.weight", static_cast<uint64_t>(head_dim)));
    }
    if (arch->post_norms) {
      EDGELLM_RETURN_IF_ERROR(norm(p + "post_attention_norm.weight", d));
      EDGELLM_RETURN_IF_ERROR(norm(p + "post_ffw_norm.weight", d));
    }
    EDGELLM_RETURN_IF_ERROR(norm(p + "ffn_norm.weight", d));
    if (arch->fused_projections) {
      EDGELLM_RETURN_IF_ERROR(matrix(p + "ffn_up.weight", d, 2 * ff, i));
    } else {
      EDGELLM_RETURN_IF_ERROR(matrix(p + "ffn_gate.weight", d, ff, i));
      EDGELLM_RETURN_IF_ERROR(matrix(p + "ffn_up.weight", d, ff, i));
    }
    EDGELLM_RETURN_IF_ERROR(matrix(p + "ffn_down.weight", ff, d, i));
  }
  return w.Write(path);
}

}  // namespace edgellm::engine
