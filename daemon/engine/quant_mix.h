// engine/quant_mix.h — the type of each weight in a quantization mix as
// llama-quantize lays one out, so synthetic files have the mixes people
// download. Q4_K_M: Q4_K, with Q6_K for the output and for the attention
// values and MLP down-projections of the layers that matter most (the first
// and last eighth and every third between), Q5_K for a fused attn_qkv, and
// llama-quantize's fallbacks (Q5_0 for Q4_K, Q5_1 for Q5_K, Q8_0 for Q6_K)
// where rows are not whole 256-value super-blocks.
#ifndef EDGELLM_ENGINE_QUANT_MIX_H_
#define EDGELLM_ENGINE_QUANT_MIX_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "daemon/engine/quant_types.h"

namespace edgellm::engine {

enum class QuantMix { kQ4_K_M };

// "Q4_K_M"; nullopt for a name that is not a mix.
std::optional<QuantMix> QuantMixFromName(std::string_view name);

// The general.file_type llama.cpp gives a file of `mix` (LLAMA_FTYPE_MOSTLY_Q4_K_M: 15).
int32_t MixFileType(QuantMix mix);

// The type of the 2-D weight `tensor` (its GGUF name; `layer` of `n_layer`
// for blk.N tensors, -1 otherwise) with rows of `row_length` values, in a
// file of `mix`. `output` says the tensor is the output projection (the
// token embedding of a model with tied embeddings included).
GgmlType MixedType(QuantMix mix, std::string_view tensor, int32_t layer, int32_t n_layer, uint64_t row_length,
                   bool output);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_QUANT_MIX_H_
