#include "daemon/engine/model_rewrite.h"

#include <cblas.h>

#include <array>
#include <charconv>
#include <optional>
#include <string_view>
#include <system_error>
#include <vector>

#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/gguf_writer.h"

namespace edgellm::engine {
namespace {

// The GGUF name of each projection within a block, in LoraTarget order.
constexpr std::array<std::string_view, kLoraTargetCount> kGgufNames = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

// "blk.N.REST" split into N and REST; nullopt for other names and for an N
// that is not a small non-negative number.
struct BlockTensorName {
  int32_t layer;
  std::string_view rest;
};
std::optional<BlockTensorName> SplitBlockName(std::string_view name) {
  constexpr std::string_view kPrefix = "blk.";
  if (name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  const char* begin = name.data() + kPrefix.size();
  const char* end = name.data() + name.size();
  int32_t layer = -1;
  const auto [after, error] = std::from_chars(begin, end, layer);
  if (error != std::errc() || after == begin || layer < 0 || after == end || *after != '.') return std::nullopt;
  return BlockTensorName{layer, std::string_view(after + 1, static_cast<size_t>(end - after - 1))};
}

// One adapted projection inside a GGUF weight matrix, whose rows start at first_row.
struct AdaptedRows {
  const LoraWeights* lora;
  int64_t first_row;
};

// The adapter's projections that GGUF tensor `name` ("blk.3.attn_q.weight")
// holds, in row order: one for most tensors, q, k and v for a fused
// attn_qkv, gate and up for a fused ffn_up (Phi-3); empty when none is adapted.
std::vector<AdaptedRows> AdaptedPartsOf(const LoraAdapter* adapter, const LlamaConfig& config,
                                        const std::string& name) {
  if (adapter == nullptr) return {};
  const std::optional<BlockTensorName> block = SplitBlockName(name);
  if (!block || block->layer >= adapter->n_layer()) return {};
  std::vector<LoraTarget> parts;
  if (block->rest == "attn_qkv.weight") {
    parts = {LoraTarget::kQ, LoraTarget::kK, LoraTarget::kV};
  } else if (block->rest == "ffn_up.weight" && config.arch->fused_projections) {
    parts = {LoraTarget::kGate, LoraTarget::kUp};
  } else {
    for (int t = 0; t < kLoraTargetCount; ++t) {
      if (block->rest == edgellm::StrCat(kGgufNames[t], ".weight")) parts = {static_cast<LoraTarget>(t)};
    }
  }
  std::vector<AdaptedRows> adapted;
  int64_t row = 0;
  for (LoraTarget target : parts) {
    if (const LoraWeights* lora = adapter->Find(block->layer, target)) adapted.push_back({lora, row});
    row += ShapeOf(config, target).out;
  }
  return adapted;
}

// N for a tensor "blk.N.…", -1 for the others.
int32_t LayerOf(const std::string& name) {
  const std::optional<BlockTensorName> block = SplitBlockName(name);
  return block ? block->layer : -1;
}

}  // namespace

absl::Status RewriteModel(const GgufReader& base, const LlamaConfig& config, const RewriteOptions& options,
                          const std::string& path) {
  if (options.adapter != nullptr) EDGELLM_RETURN_IF_ERROR(options.adapter->CheckFits(config));
  if (options.type && !CanQuantize(*options.type)) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("rewrite: cannot write weights of type ", TraitsOf(*options.type).name));
  }
  if (options.type && options.mix) {
    return absl::InvalidArgumentError("rewrite: give a weight type or a mix, not both");
  }
  GgufWriter writer(base.alignment());
  for (const auto& [key, value] : base.metadata()) writer.Set(key, value);
  int32_t file_type = -1;
  if (options.mix) {
    file_type = MixFileType(*options.mix);
  } else if (options.type) {
    file_type = TraitsOf(*options.type).file_type;
  }
  if (file_type >= 0) writer.Set("general.file_type", GgufValue::Uint32(static_cast<uint32_t>(file_type)));
  const bool tied_embeddings = base.FindTensor("output.weight") == nullptr;
  for (const GgufTensorInfo& info : base.tensors()) {
    const absl::Span<const uint8_t> data = base.TensorData(info);
    const std::vector<AdaptedRows> adapted = AdaptedPartsOf(options.adapter, config, info.name);
    GgmlType type = info.type;
    if (info.dims.size() == 2 && (options.type || options.mix)) {
      GgmlType wanted = options.type.value_or(GgmlType::kF32);
      if (options.mix) {
        const bool output = info.name == "output.weight" || (info.name == "token_embd.weight" && tied_embeddings);
        wanted = MixedType(*options.mix, info.name, LayerOf(info.name), config.n_layer, info.dims[0], output);
      }
      if (info.dims[0] % TraitsOf(wanted).block_size == 0) type = wanted;
    }
    for (const auto& [lora, first_row] : adapted) {
      if (info.dims.size() != 2 || static_cast<int64_t>(info.dims[0]) != lora->in ||
          first_row + lora->out > static_cast<int64_t>(info.dims[1])) {
        return absl::InvalidArgumentError(edgellm::StrCat("rewrite: the adapter does not fit tensor ", info.name));
      }
    }
    if (adapted.empty() && type == info.type) {
      EDGELLM_RETURN_IF_ERROR(writer.AddTensor(info.name, info.type, info.dims, data));
      continue;
    }
    if (!CanDequantize(info.type) || !CanQuantize(type)) {
      return absl::UnimplementedError(edgellm::StrCat("rewrite: tensor ", info.name, " of type ",
                                                      TraitsOf(info.type).name, " cannot be rewritten as ",
                                                      TraitsOf(type).name));
    }
    const float scale = options.adapter != nullptr ? options.adapter->scale() : 0.0f;
    const int rank = options.adapter != nullptr ? options.adapter->config().rank : 0;
    const GgufTensorInfo* source = &info;
    EDGELLM_RETURN_IF_ERROR(writer.AddTensor(
        info.name, type, info.dims, [=](absl::Span<uint8_t> out) -> absl::Status {
          std::vector<float> weight(source->element_count());
          EDGELLM_RETURN_IF_ERROR(Dequantize(source->type, data, absl::MakeSpan(weight)));
          for (const auto& [lora, first_row] : adapted) {
            // W[first_row + out, in] += scale · B[out, rank] · A[rank, in]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(lora->out),
                        static_cast<int>(lora->in), rank, scale, lora->b.data(), rank, lora->a.data(),
                        static_cast<int>(lora->in), 1.0f, weight.data() + first_row * lora->in,
                        static_cast<int>(lora->in));
          }
          return Quantize(type, weight, out);
        }));
  }
  return writer.Write(path);
}

}  // namespace edgellm::engine
