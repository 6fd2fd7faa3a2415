#include "daemon/engine/quant_mix.h"

namespace edgellm::engine {
namespace {

// llama-quantize's choice of the layers that get more bits.
bool UsesMoreBits(int32_t layer, int32_t n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

// The type llama-quantize falls back to when rows are not whole super-blocks.
GgmlType Fallback(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_K: return GgmlType::kQ5_0;
    case GgmlType::kQ5_K: return GgmlType::kQ5_1;
    case GgmlType::kQ6_K: return GgmlType::kQ8_0;
    default: return type;
  }
}

}  // namespace

std::optional<QuantMix> QuantMixFromName(std::string_view name) {
  if (name == "Q4_K_M") return QuantMix::kQ4_K_M;
  return std::nullopt;
}

int32_t MixFileType(QuantMix mix) {
  (void)mix;  // Q4_K_M is the only mix so far
  return 15;
}

GgmlType MixedType(QuantMix mix, std::string_view tensor, int32_t layer, int32_t n_layer, uint64_t row_length,
                   bool output) {
  (void)mix;  // Q4_K_M is the only mix so far
  GgmlType type = GgmlType::kQ4_K;
  if (output) {
    type = GgmlType::kQ6_K;
  } else if (tensor.ends_with("attn_qkv.weight")) {
    type = GgmlType::kQ5_K;
  } else if ((tensor.ends_with("attn_v.weight") || tensor.ends_with("ffn_down.weight")) && layer >= 0 &&
             UsesMoreBits(layer, n_layer)) {
    type = GgmlType::kQ6_K;
  }
  if (row_length % TraitsOf(type).block_size != 0) type = Fallback(type);
  return type;
}

}  // namespace edgellm::engine
