// engine/model_rewrite.h — writes a new GGUF from a loaded one: a LoRA
// adapter merged into the weights (`edgellm merge`), and/or the weights
// converted to another type (`edgellm quantize`). One tensor is in memory at
// a time, so rewriting a model needs about one weight matrix of extra memory.
#ifndef EDGELLM_ENGINE_MODEL_REWRITE_H_
#define EDGELLM_ENGINE_MODEL_REWRITE_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/llama_config.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/engine/quant_mix.h"
#include "daemon/engine/quant_types.h"

namespace edgellm::engine {

struct RewriteOptions {
  // Merged as W + scale·B·A into the projections it adapts; each is then
  // re-quantized to its own type in the base (not owned; nullptr: none).
  const LoraAdapter* adapter = nullptr;
  // Every 2-D weight whose rows are whole blocks of this type is converted
  // to it; the rest (norms, rows of another width) keep their type, as
  // llama.cpp's quantizer does. nullopt: every tensor keeps its type.
  std::optional<GgmlType> type;
  // Instead of one type, each 2-D weight gets its type in this mix, as
  // llama-quantize lays it out (quant_mix.h); rows that are not whole blocks
  // of that type keep theirs. Not with `type`.
  std::optional<QuantMix> mix;
};

// Writes `base` (a Llama model of `config`) rewritten to `path`, atomically.
// InvalidArgument for an adapter made for another shape, a type that cannot
// be written, or both a type and a mix; the metadata is carried over
// (general.file_type updated).
absl::Status RewriteModel(const GgufReader& base, const LlamaConfig& config, const RewriteOptions& options,
                          const std::string& path);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_MODEL_REWRITE_H_
