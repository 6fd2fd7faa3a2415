#include "daemon/engine/synthetic_model.h"

#include <cmath>
#include <random>

#include "common/hashing.h"
#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/gguf_writer.h"
#include "daemon/engine/synthetic_vocab.h"

namespace edgellm::engine {
namespace {

// llama.cpp's general.file_type for the whole-model types we write.
uint32_t FileType(GgmlType type) {
  switch (type) {
    case GgmlType::kF16: return 1;
    case GgmlType::kQ4_0: return 2;
    case GgmlType::kQ8_0: return 7;
    default: return 0;
  }
}

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

}  // namespace

const std::vector<ModelShape>& KnownShapes() {
  static const std::vector<ModelShape> shapes = {
      {"stories260k", 5, 64, 8, 4, 172, 512, 512, "llama", false},
      {"smol-135m", 30, 576, 9, 3, 1536, 49152, 2048, "gpt2", true},
      {"tinyllama-1.1b", 22, 2048, 32, 4, 5632, 32000, 2048, "llama", false},
      {"test-spm", 2, 64, 4, 2, 128, 384, 256, "llama", false},
      {"test-bpe", 2, 64, 4, 2, 128, 512, 256, "gpt2", true},
      {"test-k", 2, 256, 4, 2, 512, 384, 256, "llama", false},
  };
  return shapes;
}

std::optional<ModelShape> FindShape(std::string_view name) {
  for (const ModelShape& s : KnownShapes()) {
    if (s.name == name) return s;
  }
  return std::nullopt;
}

absl::Status WriteSyntheticModel(const SyntheticModelOptions& options, const std::string& path) {
  if (!CanQuantize(options.type)) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("cannot write weights of type ", TraitsOf(options.type).name, " (", WritableTypeNames(), " can)"));
  }
  const ModelShape& s = options.shape;
  EDGELLM_ASSIGN_OR_RETURN(Vocab vocab, s.tokenizer == "gpt2" ? MakeBpeVocab(s.n_vocab, options.seed)
                                                              : MakeSpmVocab(s.n_vocab, options.seed));
  const int32_t head_dim = s.n_embd / s.n_head;

  GgufWriter w;
  w.Set("general.architecture", GgufValue::String("llama"));
  w.Set("general.name", GgufValue::String(edgellm::StrCat(s.name, " (synthetic, random weights)")));
  w.Set("general.file_type", GgufValue::Uint32(FileType(options.type)));
  w.Set("llama.vocab_size", GgufValue::Uint32(static_cast<uint32_t>(s.n_vocab)));
  w.Set("llama.context_length", GgufValue::Uint32(static_cast<uint32_t>(s.n_ctx)));
  w.Set("llama.embedding_length", GgufValue::Uint32(static_cast<uint32_t>(s.n_embd)));
  w.Set("llama.block_count", GgufValue::Uint32(static_cast<uint32_t>(s.n_layer)));
  w.Set("llama.feed_forward_length", GgufValue::Uint32(static_cast<uint32_t>(s.n_ff)));
  w.Set("llama.attention.head_count", GgufValue::Uint32(static_cast<uint32_t>(s.n_head)));
  w.Set("llama.attention.head_count_kv", GgufValue::Uint32(static_cast<uint32_t>(s.n_head_kv)));
  w.Set("llama.rope.dimension_count", GgufValue::Uint32(static_cast<uint32_t>(head_dim)));
  w.Set("llama.rope.freq_base", GgufValue::Float32(10000.0f));
  w.Set("llama.attention.layer_norm_rms_epsilon", GgufValue::Float32(1e-5f));
  vocab.WriteTo(w);

  const float stddev = 0.02f;
  auto matrix = [&](const std::string& name, uint64_t in, uint64_t out) {
    const GgmlType type = in % TraitsOf(options.type).block_size == 0 ? options.type : GgmlType::kF16;
    return w.AddTensor(name, type, {in, out}, RandomFill(type, options.seed, name, stddev, in * out));
  };
  auto norm = [&](const std::string& name, uint64_t n) {
    return w.AddTensor(name, GgmlType::kF32, {n}, OnesFill(n));
  };
  const uint64_t d = s.n_embd, ff = s.n_ff, vocab_n = s.n_vocab;
  const uint64_t q_dim = static_cast<uint64_t>(s.n_head) * head_dim;
  const uint64_t kv_dim = static_cast<uint64_t>(s.n_head_kv) * head_dim;
  EDGELLM_RETURN_IF_ERROR(matrix("token_embd.weight", d, vocab_n));
  EDGELLM_RETURN_IF_ERROR(norm("output_norm.weight", d));
  if (!s.tied_embeddings) EDGELLM_RETURN_IF_ERROR(matrix("output.weight", d, vocab_n));
  for (int32_t i = 0; i < s.n_layer; ++i) {
    const std::string p = edgellm::StrCat("blk.", i, ".");
    EDGELLM_RETURN_IF_ERROR(norm(p + "attn_norm.weight", d));
    EDGELLM_RETURN_IF_ERROR(matrix(p + "attn_q.weight", d, q_dim));
    EDGELLM_RETURN_IF_ERROR(matrix(p + "attn_k.weight", d, kv_dim));
    EDGELLM_RETURN_IF_ERROR(matrix(p + "attn_v.weight", d, kv_dim));
    EDGELLM_RETURN_IF_ERROR(matrix(p + "attn_output.weight", q_dim, d));
    EDGELLM_RETURN_IF_ERROR(norm(p + "ffn_norm.weight", d));
    EDGELLM_RETURN_IF_ERROR(matrix(p + "ffn_gate.weight", d, ff));
    EDGELLM_RETURN_IF_ERROR(matrix(p + "ffn_up.weight", d, ff));
    EDGELLM_RETURN_IF_ERROR(matrix(p + "ffn_down.weight", ff, d));
  }
  return w.Write(path);
}

}  // namespace edgellm::engine
