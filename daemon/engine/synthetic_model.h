// engine/synthetic_model.h — writes Llama-architecture GGUF files with random
// weights at the shapes of real models, so benchmarks and tests never need a
// download. The tokenizer is a working one (see synthetic_vocab.h).
#ifndef EDGELLM_ENGINE_SYNTHETIC_MODEL_H_
#define EDGELLM_ENGINE_SYNTHETIC_MODEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
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
};

// stories260k, smol-135m, tinyllama-1.1b, and small test shapes: test-spm
// and test-bpe, whose widths are multiples of 32, and test-k, whose widths
// are multiples of 256 (whole K-quant super-blocks).
const std::vector<ModelShape>& KnownShapes();
std::optional<ModelShape> FindShape(std::string_view name);

struct SyntheticModelOptions {
  ModelShape shape;
  // Type of the 2-D weights (norms stay F32). A matrix whose rows are not a
  // whole number of blocks is stored as F16 instead, as llama.cpp does.
  GgmlType type = GgmlType::kF32;
  uint64_t seed = 1;
};

// Writes the model to `path` atomically. InvalidArgument for a type that
// cannot be written; I/O errors name the file.
absl::Status WriteSyntheticModel(const SyntheticModelOptions& options, const std::string& path);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_SYNTHETIC_MODEL_H_
