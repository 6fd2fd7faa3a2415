// engine/synthetic_model.h — writes GGUF files of every architecture with random
// weights at the shapes of real models, so benchmarks and tests never need a
// download. The tokenizer is a working one (see synthetic_vocab.h).
#ifndef EDGELLM_ENGINE_SYNTHETIC_MODEL_H_
#define EDGELLM_ENGINE_SYNTHETIC_MODEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "daemon/engine/quant_mix.h"
#include "daemon/engine/quant_types.h"

namespace edgellm::engine {

struct ModelShape {
  std::string name;
  int32_t n_layer;
  int32_t n_embd;
  int32_t n_head;
  int32_t n_head_kv;
  int32_t n_ff;
  int32_t n_vocab;
  int32_t n_ctx;
  std::string tokenizer;  // "llama" or "gpt2"
  bool tied_embeddings;   // no output.weight: the output reuses token_embd
  std::string architecture = "llama";  // a row of architecture.h
  int32_t head_dim = 0;  // 0: n_embd / n_head; else written as attention.key_length
  float rope_freq_base = 10000.0f;
  float rms_norm_eps = 1e-5f;
  // Writes rope_freqs.weight with Llama 3.1's rope scaling (factor 32, for an
  // original context of 8192), as Llama 3.x files carry it.
  bool llama3_rope_scaling = false;
  // Writes Phi-3's rope_factors_long/short.weight and an original context of n_ctx.
  bool long_rope_factors = false;
  int32_t sliding_window = 0;  // attention.sliding_window, for the families that slide
};

// stories260k, smol-135m, tinyllama-1.1b, llama3.2-1b, qwen2.5-0.5b,
// qwen2.5-1.5b, qwen3-0.6b, phi3.5-mini, gemma2-2b, gemma3-1b, and small test
// shapes: test-spm and test-bpe, whose widths are multiples of 32, test-k,
// whose widths are multiples of 256 (whole K-quant super-blocks), and
// test-llama3, test-qwen2, test-qwen3, test-phi3, test-gemma2 and test-gemma3
// with each family's tensors (the Gemma ones slide over 8 positions).
const std::vector<ModelShape>& KnownShapes();
std::optional<ModelShape> FindShape(std::string_view name);

struct SyntheticModelOptions {
  ModelShape shape;
  // Type of the 2-D weights (norms stay F32). A matrix whose rows are not a
  // whole number of blocks is stored as F16 instead, as llama.cpp does.
  GgmlType type = GgmlType::kF32;
  uint64_t seed = 1;
  // A GGUF whose `tokenizer.*` keys are copied (a real model's vocabulary,
  // e.g. llama.cpp's vocab-only files); the vocabulary's size replaces the
  // shape's. Empty: a synthetic vocabulary (synthetic_vocab.h).
  std::string vocab_from;
};

// Writes the model to `path` atomically; with `mix`, each weight gets the
// type llama-quantize gives it in that mix (quant_mix.h) instead of
// options.type. InvalidArgument for a type that cannot be written; I/O
// errors name the file.
absl::Status WriteSyntheticModel(const SyntheticModelOptions& options, const std::string& path,
                                 std::optional<QuantMix> mix = std::nullopt);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_SYNTHETIC_MODEL_H_
