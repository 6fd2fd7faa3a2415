#include "daemon/engine/model_rewrite.h"

#include <cblas.h>

#include <cstdio>
#include <vector>

#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/gguf_writer.h"

namespace edgellm::engine {
namespace {

// The GGUF name of each projection within a block, in LoraTarget order.
constexpr std::array<std::string_view, kLoraTargetCount> kGgufNames = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

// The adapter's weights for GGUF tensor `name` ("blk.3.attn_q.weight"), or nullptr.
const LoraWeights* AdapterFor(const LoraAdapter* adapter, const std::string& name) {
  if (adapter == nullptr) return nullptr;
  int layer = -1;
  char projection[32] = {};
  int consumed = 0;
  if (std::sscanf(name.c_str(), "blk.%d.%31[a-z_].weight%n", &layer, projection, &consumed) != 2 ||
      consumed != static_cast<int>(name.size()) || layer < 0 || layer >= adapter->n_layer()) {
    return nullptr;
  }
  for (int t = 0; t < kLoraTargetCount; ++t) {
    if (kGgufNames[t] == projection) return adapter->Find(layer, static_cast<LoraTarget>(t));
  }
  return nullptr;
}

// N for a tensor "blk.N.…", -1 for the others.
int32_t LayerOf(const std::string& name) {
  int layer = -1;
  return std::sscanf(name.c_str(), "blk.%d.", &layer) == 1 ? layer : -1;
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
    const LoraWeights* lora = AdapterFor(options.adapter, info.name);
    GgmlType type = info.type;
    if (info.dims.size() == 2 && (options.type || options.mix)) {
      GgmlType wanted = options.type.value_or(GgmlType::kF32);
      if (options.mix) {
        const bool output = info.name == "output.weight" || (info.name == "token_embd.weight" && tied_embeddings);
        wanted = MixedType(*options.mix, info.name, LayerOf(info.name), config.n_layer, info.dims[0], output);
      }
      if (info.dims[0] % TraitsOf(wanted).block_size == 0) type = wanted;
    }
    if (lora == nullptr && type == info.type) {
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
          if (lora != nullptr) {
            // W[out, in] += scale · B[out, rank] · A[rank, in]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(lora->out),
                        static_cast<int>(lora->in), rank, scale, lora->b.data(), rank, lora->a.data(),
                        static_cast<int>(lora->in), 1.0f, weight.data(), static_cast<int>(lora->in));
          }
          return Quantize(type, weight, out);
        }));
  }
  return writer.Write(path);
}

}  // namespace edgellm::engine
