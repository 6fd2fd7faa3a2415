#include "daemon/engine/lora_adapter.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <random>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/atomic_file.h"
#include "common/hashing.h"
#include "common/read_file.h"
#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/safetensors.h"

namespace edgellm::engine {
namespace {

constexpr std::array<std::string_view, kLoraTargetCount> kTargetNames = {
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
// Far above any rank worth training on an edge node; bounds what a file can ask for.
constexpr int32_t kMaxRank = 1024;
constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kWeightsFile = "adapter_model.safetensors";

bool IsAttention(LoraTarget t) {
  return t == LoraTarget::kQ || t == LoraTarget::kK || t == LoraTarget::kV || t == LoraTarget::kO;
}

// A's values for (seed, layer, target), the same on every machine: the
// Mersenne Twister's output is fixed by the standard, and the conversion to
// float is exact.
void InitA(uint64_t seed, int32_t layer, LoraTarget target, int64_t in, std::vector<float>& a) {
  std::mt19937_64 rng(
      MixSeeds(seed, static_cast<uint64_t>(layer) * kLoraTargetCount + static_cast<uint64_t>(target)));
  const float bound = 1.0f / std::sqrt(static_cast<float>(in));
  for (float& v : a) {
    const float unit = static_cast<float>(rng() >> 40) * 0x1.0p-24f;  // [0, 1)
    v = (2.0f * unit - 1.0f) * bound;
  }
}

// Row `row` of q_proj/k_proj in GGUF order is this row in Hugging Face order:
// the converter views each head's rows as [2, head_dim / 2] and transposes them.
int64_t HfRow(int64_t row, int64_t head_dim) {
  const int64_t head = row / head_dim, within = row % head_dim;
  return head * head_dim + (within % 2) * (head_dim / 2) + within / 2;
}

// Whether B's rows of `t` differ in order between GGUF and Hugging Face for an architecture.
bool NeedsRowOrder(const Architecture& arch, LoraTarget t) {
  return arch.hf_permuted_qk && (t == LoraTarget::kQ || t == LoraTarget::kK);
}

}  // namespace

std::string_view LoraTargetName(LoraTarget target) { return kTargetNames[static_cast<int>(target)]; }

const std::vector<LoraTarget>& AllLoraTargets() {
  static const std::vector<LoraTarget> all = {LoraTarget::kQ,    LoraTarget::kK,  LoraTarget::kV,   LoraTarget::kO,
                                              LoraTarget::kGate, LoraTarget::kUp, LoraTarget::kDown};
  return all;
}

absl::StatusOr<std::vector<LoraTarget>> ParseLoraTargets(std::string_view list) {
  if (list == "all") return AllLoraTargets();
  std::vector<LoraTarget> targets;
  for (absl::string_view piece : absl::StrSplit(absl::string_view(list.data(), list.size()), ',', absl::SkipEmpty())) {
    const std::string name(piece.data(), piece.size());
    std::optional<LoraTarget> t = LoraTargetFromName(name);
    if (!t) {
      return absl::InvalidArgumentError(edgellm::StrCat(
          "unknown target '", name, "'; use all or a list of q_proj k_proj v_proj o_proj gate_proj up_proj down_proj"));
    }
    targets.push_back(*t);
  }
  if (targets.empty()) return absl::InvalidArgumentError("no LoRA targets given");
  return targets;
}

std::optional<LoraTarget> LoraTargetFromName(std::string_view name) {
  for (int i = 0; i < kLoraTargetCount; ++i) {
    if (kTargetNames[i] == name) return static_cast<LoraTarget>(i);
  }
  return std::nullopt;
}

ProjectionShape ShapeOf(const LlamaConfig& c, LoraTarget target) {
  const int64_t d = c.n_embd, q = int64_t{c.n_head} * c.head_dim, kv = int64_t{c.n_head_kv} * c.head_dim;
  switch (target) {
    case LoraTarget::kQ: return {d, q};
    case LoraTarget::kK: return {d, kv};
    case LoraTarget::kV: return {d, kv};
    case LoraTarget::kO: return {q, d};
    case LoraTarget::kGate: return {d, c.n_ff};
    case LoraTarget::kUp: return {d, c.n_ff};
    case LoraTarget::kDown: return {c.n_ff, d};
  }
  return {0, 0};
}

std::string PeftTensorName(int32_t layer, LoraTarget target, bool b) {
  return edgellm::StrCat("base_model.model.model.layers.", layer, IsAttention(target) ? ".self_attn." : ".mlp.",
                         LoraTargetName(target), b ? ".lora_B.weight" : ".lora_A.weight");
}

float LoraConfig::scale() const {
  return use_rslora ? alpha / std::sqrt(static_cast<float>(rank)) : alpha / static_cast<float>(rank);
}

absl::Status LoraConfig::Validate() const {
  if (rank < 1 || rank > kMaxRank) {
    return absl::InvalidArgumentError(edgellm::StrCat("lora: rank ", rank, " is outside 1..", kMaxRank));
  }
  if (!std::isfinite(alpha) || alpha <= 0.0f) {
    return absl::InvalidArgumentError(edgellm::StrCat("lora: alpha ", alpha, " is not positive"));
  }
  if (!(dropout >= 0.0f && dropout < 1.0f)) {
    return absl::InvalidArgumentError(edgellm::StrCat("lora: dropout ", dropout, " is outside [0, 1)"));
  }
  if (targets.empty()) return absl::InvalidArgumentError("lora: no target modules");
  for (size_t i = 0; i < targets.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (targets[i] == targets[j]) {
        return absl::InvalidArgumentError(
            edgellm::StrCat("lora: target ", LoraTargetName(targets[i]), " is listed twice"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LoraAdapter> LoraAdapter::Create(const LoraConfig& config, const LlamaConfig& model) {
  EDGELLM_RETURN_IF_ERROR(config.Validate());
  LoraAdapter adapter;
  adapter.config_ = config;
  adapter.n_head_ = model.n_head;
  adapter.arch_ = model.arch;
  adapter.n_head_kv_ = model.n_head_kv;
  adapter.layers_.resize(model.n_layer);
  for (int32_t layer = 0; layer < model.n_layer; ++layer) {
    for (LoraTarget target : config.targets) {
      const ProjectionShape shape = ShapeOf(model, target);
      LoraWeights& w = adapter.layers_[layer][static_cast<int>(target)].emplace();
      w.in = shape.in;
      w.out = shape.out;
      w.a.resize(static_cast<size_t>(config.rank * shape.in));
      w.b.assign(static_cast<size_t>(shape.out * config.rank), 0.0f);
      InitA(config.seed, layer, target, shape.in, w.a);
    }
  }
  return adapter;
}

const LoraWeights* LoraAdapter::Find(int32_t layer, LoraTarget target) const {
  const std::optional<LoraWeights>& w = layers_[layer][static_cast<int>(target)];
  return w ? &*w : nullptr;
}

LoraWeights* LoraAdapter::Find(int32_t layer, LoraTarget target) {
  std::optional<LoraWeights>& w = layers_[layer][static_cast<int>(target)];
  return w ? &*w : nullptr;
}

absl::Status LoraAdapter::CheckFits(const LlamaConfig& model) const {
  if (n_layer() != model.n_layer) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("adapter has ", n_layer(), " layers, the model ", model.n_layer));
  }
  for (LoraTarget target : config_.targets) {
    const ProjectionShape shape = ShapeOf(model, target);
    const LoraWeights* w = Find(0, target);
    if (w == nullptr || w->in != shape.in || w->out != shape.out) {
      return absl::InvalidArgumentError(edgellm::StrCat("adapter's ", LoraTargetName(target),
                                                        " does not fit the model's [", shape.out, ", ", shape.in, "]"));
    }
  }
  return absl::OkStatus();
}

int64_t LoraAdapter::parameter_count() const {
  int64_t n = 0;
  for (const auto& layer : layers_) {
    for (const auto& w : layer) {
      if (w) n += static_cast<int64_t>(w->a.size() + w->b.size());
    }
  }
  return n;
}

absl::Status LoraAdapter::Save(const std::string& dir, std::string_view base_model_name) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::PermissionDeniedError(edgellm::StrCat("adapter: cannot create ", dir, ": ", ec.message()));

  nlohmann::ordered_json json;
  json["peft_type"] = "LORA";
  json["task_type"] = "CAUSAL_LM";
  json["base_model_name_or_path"] = std::string(base_model_name);
  json["r"] = config_.rank;
  json["lora_alpha"] = config_.alpha;
  json["lora_dropout"] = config_.dropout;
  std::vector<std::string> targets;
  for (LoraTarget t : config_.targets) targets.emplace_back(LoraTargetName(t));
  json["target_modules"] = targets;
  json["bias"] = "none";
  json["fan_in_fan_out"] = false;
  json["use_rslora"] = config_.use_rslora;
  json["inference_mode"] = true;

  // B of q_proj and k_proj goes out in the Hugging Face row order.
  std::vector<std::vector<float>> reordered;
  reordered.reserve(layers_.size() * 2);
  SafetensorsWriter writer;
  writer.SetMetadata("format", "pt");
  writer.SetMetadata("edgellm.freeze_a", config_.freeze_a ? "true" : "false");
  writer.SetMetadata("edgellm.seed", std::to_string(config_.seed));
  const int64_t rank = config_.rank;
  for (int32_t layer = 0; layer < n_layer(); ++layer) {
    for (LoraTarget target : config_.targets) {
      const LoraWeights& w = *Find(layer, target);
      absl::Span<const float> b = w.b;
      if (NeedsRowOrder(*arch_, target)) {
        const int64_t head_dim = w.out / (target == LoraTarget::kQ ? n_head_ : n_head_kv_);
        std::vector<float>& hf = reordered.emplace_back(w.b.size());
        for (int64_t row = 0; row < w.out; ++row) {
          std::copy_n(w.b.begin() + row * rank, rank, hf.begin() + HfRow(row, head_dim) * rank);
        }
        b = hf;
      }
      EDGELLM_RETURN_IF_ERROR(writer.Add(PeftTensorName(layer, target, false), {rank, w.in}, w.a));
      EDGELLM_RETURN_IF_ERROR(writer.Add(PeftTensorName(layer, target, true), {w.out, rank}, b));
    }
  }
  const std::filesystem::path base(dir);
  EDGELLM_RETURN_IF_ERROR(writer.Write((base / kWeightsFile).string()));
  return WriteFileAtomically((base / kConfigFile).string(), json.dump(2) + "\n");
}

absl::StatusOr<LoraAdapter> LoraAdapter::Load(const std::string& dir, const LlamaConfig& model) {
  const std::filesystem::path base(dir);
  const std::string config_path = (base / kConfigFile).string();
  EDGELLM_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(config_path));
  auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(edgellm::StrCat(config_path, ": ", parts...));
  };
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return bad("not a JSON object");
  auto field = [&](const char* key) -> const nlohmann::json* {
    auto it = json.find(key);
    return it == json.end() || it->is_null() ? nullptr : &*it;
  };
  if (const nlohmann::json* type = field("peft_type"); type == nullptr || *type != "LORA") {
    return bad("peft_type is not LORA");
  }
  LoraConfig config;
  const nlohmann::json* r = field("r");
  if (r == nullptr || !r->is_number_integer()) return bad("r (the rank) is missing or not an integer");
  config.rank = r->get<int32_t>();
  const nlohmann::json* alpha = field("lora_alpha");
  if (alpha != nullptr && !alpha->is_number()) return bad("lora_alpha is not a number");
  // PEFT's default alpha is 8.
  config.alpha = alpha != nullptr ? alpha->get<float>() : 8.0f;
  if (const nlohmann::json* dropout = field("lora_dropout")) {
    if (!dropout->is_number()) return bad("lora_dropout is not a number");
    config.dropout = dropout->get<float>();
  }
  if (const nlohmann::json* rs = field("use_rslora")) config.use_rslora = rs->is_boolean() && rs->get<bool>();
  const nlohmann::json* modules = field("target_modules");
  if (modules == nullptr || !modules->is_array()) {
    return bad("target_modules must be a list of names (a pattern string is not supported)");
  }
  config.targets.clear();
  for (const nlohmann::json& m : *modules) {
    std::optional<LoraTarget> t = m.is_string() ? LoraTargetFromName(m.get<std::string>()) : std::nullopt;
    if (!t) {
      return bad("unknown target module ", m.dump(),
                 " (known: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj)");
    }
    config.targets.push_back(*t);
  }
  if (const nlohmann::json* bias = field("bias"); bias != nullptr && *bias != "none") {
    return absl::UnimplementedError(edgellm::StrCat(config_path, ": bias ", bias->dump(), " is not supported"));
  }
  if (const nlohmann::json* f = field("fan_in_fan_out"); f != nullptr && f->is_boolean() && f->get<bool>()) {
    return absl::UnimplementedError(edgellm::StrCat(config_path, ": fan_in_fan_out is not supported"));
  }
  for (const char* key : {"rank_pattern", "alpha_pattern", "layers_to_transform", "modules_to_save"}) {
    const nlohmann::json* value = field(key);
    if (value != nullptr && !value->empty()) {
      return absl::UnimplementedError(edgellm::StrCat(config_path, ": ", key, " is not supported"));
    }
  }
  if (absl::Status s = config.Validate(); !s.ok()) return bad(s.message());

  const std::string weights_path = (base / kWeightsFile).string();
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsReader> reader, SafetensorsReader::Open(weights_path));
  if (auto it = reader->metadata().find("edgellm.freeze_a"); it != reader->metadata().end()) {
    config.freeze_a = it->second == "true";
  }
  if (auto it = reader->metadata().find("edgellm.seed"); it != reader->metadata().end()) {
    config.seed = std::strtoull(it->second.c_str(), nullptr, 10);
  }

  // Shaped for the model; every value is then read from the file.
  EDGELLM_ASSIGN_OR_RETURN(LoraAdapter adapter, Create(config, model));
  const int64_t rank = config.rank;
  size_t used = 0;
  for (int32_t layer = 0; layer < model.n_layer; ++layer) {
    for (LoraTarget target : config.targets) {
      const ProjectionShape shape = ShapeOf(model, target);
      LoraWeights& w = *adapter.Find(layer, target);
      for (bool is_b : {false, true}) {
        const std::string name = PeftTensorName(layer, target, is_b);
        const SafetensorsTensor* t = reader->Find(name);
        if (t == nullptr) return absl::InvalidArgumentError(edgellm::StrCat(weights_path, ": missing tensor ", name));
        const std::vector<int64_t> expected = is_b ? std::vector<int64_t>{shape.out, rank}
                                                   : std::vector<int64_t>{rank, shape.in};
        if (t->shape != expected) {
          return absl::InvalidArgumentError(edgellm::StrCat(weights_path, ": tensor ", name, " has shape [",
                                                            absl::StrJoin(t->shape, ", "), "], the model needs [",
                                                            absl::StrJoin(expected, ", "), "]"));
        }
        std::vector<float>& values = is_b ? w.b : w.a;
        ReadFloats(*t, absl::MakeSpan(values));
        for (float v : values) {
          if (!std::isfinite(v)) {
            return absl::InvalidArgumentError(edgellm::StrCat(weights_path, ": tensor ", name, " holds ", v));
          }
        }
        ++used;
      }
      if (NeedsRowOrder(*model.arch, target)) {
        const int64_t head_dim = w.out / (target == LoraTarget::kQ ? model.n_head : model.n_head_kv);
        std::vector<float> gguf_order(w.b.size());
        for (int64_t row = 0; row < w.out; ++row) {
          std::copy_n(w.b.begin() + HfRow(row, head_dim) * rank, rank, gguf_order.begin() + row * rank);
        }
        w.b = std::move(gguf_order);
      }
    }
  }
  if (used != reader->tensors().size()) {
    for (const SafetensorsTensor& t : reader->tensors()) {
      bool known = false;
      for (int32_t layer = 0; layer < model.n_layer && !known; ++layer) {
        for (LoraTarget target : config.targets) {
          known = known || t.name == PeftTensorName(layer, target, false) ||
                  t.name == PeftTensorName(layer, target, true);
        }
      }
      if (!known) {
        return absl::InvalidArgumentError(edgellm::StrCat(weights_path, ": unexpected tensor ", t.name,
                                                          " (the model has ", model.n_layer, " layers)"));
      }
    }
  }
  return adapter;
}

}  // namespace edgellm::engine
