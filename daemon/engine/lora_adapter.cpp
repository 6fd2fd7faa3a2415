#include "daemon/engine/lora_adapter.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <deque>
#include <filesystem>
#include <random>

#include "absl/algorithm/container.h"
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

// A module of the Hugging Face model that PEFT adapts, and the projections
// it holds, in row order: one each for most families; Phi-3's qkv_proj holds
// q, k and v and its gate_up_proj gate and up.
struct PeftModule {
  std::string_view name;
  std::vector<LoraTarget> parts;
};

const std::vector<PeftModule>& FusedModules() {
  static const std::vector<PeftModule> modules = {
      {"qkv_proj", {LoraTarget::kQ, LoraTarget::kK, LoraTarget::kV}},
      {"o_proj", {LoraTarget::kO}},
      {"gate_up_proj", {LoraTarget::kGate, LoraTarget::kUp}},
      {"down_proj", {LoraTarget::kDown}}};
  return modules;
}

// The modules holding `targets`: Phi-3's fused ones in model order, or one per
// target in the order given.
std::vector<PeftModule> ModulesFor(const Architecture& arch, const std::vector<LoraTarget>& targets) {
  std::vector<PeftModule> modules;
  if (arch.fused_projections) {
    for (const PeftModule& m : FusedModules()) {
      if (std::any_of(m.parts.begin(), m.parts.end(), [&](LoraTarget t) { return absl::c_linear_search(targets, t); })) {
        modules.push_back(m);
      }
    }
  } else {
    for (LoraTarget t : targets) modules.push_back({LoraTargetName(t), {t}});
  }
  return modules;
}

// The module of the architecture called `name`, or nullopt.
std::optional<PeftModule> ModuleNamed(const Architecture& arch, std::string_view name) {
  if (arch.fused_projections) {
    for (const PeftModule& m : FusedModules()) {
      if (m.name == name) return m;
    }
    return std::nullopt;
  }
  std::optional<LoraTarget> t = LoraTargetFromName(name);
  if (!t) return std::nullopt;
  return PeftModule{LoraTargetName(*t), {*t}};
}

std::string ModuleNames(const Architecture& arch) {
  std::vector<std::string> names;
  if (arch.fused_projections) {
    for (const PeftModule& m : FusedModules()) names.emplace_back(m.name);
  } else {
    for (std::string_view name : kTargetNames) names.emplace_back(name);
  }
  return absl::StrJoin(names, " ");
}

std::string ModuleTensorName(int32_t layer, const PeftModule& module, bool b) {
  return edgellm::StrCat("base_model.model.model.layers.", layer, IsAttention(module.parts[0]) ? ".self_attn." : ".mlp.",
                         module.name, b ? ".lora_B.weight" : ".lora_A.weight");
}

// The scale PEFT applies to a module of rank `rank` with `alpha`.
double PeftScale(double alpha, double rank, bool rslora) {
  return rslora ? alpha / std::sqrt(rank) : alpha / rank;
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
  return ModuleTensorName(layer, {LoraTargetName(target), {target}}, b);
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
  for (int t = 0; t < kLoraTargetCount; ++t) adapter.shapes_[t] = ShapeOf(model, static_cast<LoraTarget>(t));
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
  // A fused module adapted in m of its projections is saved as one LoRA of
  // rank m·r: A the m A's stacked, B block-diagonal (zero rows for the
  // projections not adapted), its alpha scaled so that PEFT applies the same
  // scale — what the separate adapters compute, exactly.
  const std::vector<PeftModule> modules = ModulesFor(*arch_, config_.targets);
  const int64_t rank = config_.rank;
  std::vector<std::string> names;
  nlohmann::ordered_json rank_pattern = nlohmann::ordered_json::object();
  nlohmann::ordered_json alpha_pattern = nlohmann::ordered_json::object();
  for (const PeftModule& m : modules) {
    names.emplace_back(m.name);
    const int64_t adapted = absl::c_count_if(m.parts, [&](LoraTarget t) { return Find(0, t) != nullptr; });
    if (adapted > 1) {
      rank_pattern[std::string(m.name)] = rank * adapted;
      alpha_pattern[std::string(m.name)] =
          config_.alpha * (config_.use_rslora ? std::sqrt(static_cast<float>(adapted)) : static_cast<float>(adapted));
    }
  }
  json["target_modules"] = names;
  json["rank_pattern"] = rank_pattern;
  json["alpha_pattern"] = alpha_pattern;
  json["bias"] = "none";
  json["fan_in_fan_out"] = false;
  json["use_rslora"] = config_.use_rslora;
  json["inference_mode"] = true;

  std::deque<std::vector<float>> storage;  // what the writer points at until Write
  SafetensorsWriter writer;
  writer.SetMetadata("format", "pt");
  writer.SetMetadata("edgellm.freeze_a", config_.freeze_a ? "true" : "false");
  writer.SetMetadata("edgellm.seed", std::to_string(config_.seed));
  std::vector<std::string> target_names;
  for (LoraTarget t : config_.targets) target_names.emplace_back(LoraTargetName(t));
  writer.SetMetadata("edgellm.targets", absl::StrJoin(target_names, ","));
  for (int32_t layer = 0; layer < n_layer(); ++layer) {
    for (const PeftModule& m : modules) {
      int64_t rows = 0, adapted = 0;
      for (LoraTarget t : m.parts) {
        rows += shapes_[static_cast<int>(t)].out;
        adapted += Find(layer, t) != nullptr ? 1 : 0;
      }
      const int64_t module_rank = rank * adapted;
      const int64_t in = shapes_[static_cast<int>(m.parts[0])].in;
      std::vector<float>& a = storage.emplace_back(static_cast<size_t>(module_rank * in));
      std::vector<float>& b = storage.emplace_back(static_cast<size_t>(rows * module_rank), 0.0f);
      int64_t first_row = 0, block = 0;
      for (LoraTarget t : m.parts) {
        if (const LoraWeights* w = Find(layer, t)) {
          std::copy(w->a.begin(), w->a.end(), a.begin() + block * rank * in);
          // B of q_proj and k_proj goes out in the Hugging Face row order.
          const bool reorder = NeedsRowOrder(*arch_, t);
          const int64_t head_dim = w->out / (t == LoraTarget::kQ ? n_head_ : n_head_kv_);
          for (int64_t row = 0; row < w->out; ++row) {
            const int64_t hf_row = first_row + (reorder ? HfRow(row, head_dim) : row);
            std::copy_n(w->b.begin() + row * rank, rank, b.begin() + hf_row * module_rank + block * rank);
          }
          ++block;
        }
        first_row += shapes_[static_cast<int>(t)].out;
      }
      EDGELLM_RETURN_IF_ERROR(writer.Add(ModuleTensorName(layer, m, false), {module_rank, in}, a));
      EDGELLM_RETURN_IF_ERROR(writer.Add(ModuleTensorName(layer, m, true), {rows, module_rank}, b));
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
  const Architecture& arch = *model.arch;
  const nlohmann::json* modules = field("target_modules");
  if (modules == nullptr || !modules->is_array()) {
    return bad("target_modules must be a list of names (a pattern string is not supported)");
  }
  if (const nlohmann::json* bias = field("bias"); bias != nullptr && *bias != "none") {
    return absl::UnimplementedError(edgellm::StrCat(config_path, ": bias ", bias->dump(), " is not supported"));
  }
  if (const nlohmann::json* f = field("fan_in_fan_out"); f != nullptr && f->is_boolean() && f->get<bool>()) {
    return absl::UnimplementedError(edgellm::StrCat(config_path, ": fan_in_fan_out is not supported"));
  }
  for (const char* key : {"layers_to_transform", "modules_to_save"}) {
    const nlohmann::json* value = field(key);
    if (value != nullptr && !value->empty()) {
      return absl::UnimplementedError(edgellm::StrCat(config_path, ": ", key, " is not supported"));
    }
  }

  const std::string weights_path = (base / kWeightsFile).string();
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsReader> reader, SafetensorsReader::Open(weights_path));
  const auto metadata = [&](const char* key) -> const std::string* {
    auto it = reader->metadata().find(key);
    return it == reader->metadata().end() ? nullptr : &it->second;
  };
  if (const std::string* v = metadata("edgellm.freeze_a")) config.freeze_a = *v == "true";
  if (const std::string* v = metadata("edgellm.seed")) config.seed = std::strtoull(v->c_str(), nullptr, 10);
  // Which projections of a fused module were adapted, when edgellm saved it;
  // a module trained elsewhere adapts all of its projections.
  std::optional<std::vector<LoraTarget>> saved_targets;
  if (const std::string* v = metadata("edgellm.targets")) {
    absl::StatusOr<std::vector<LoraTarget>> parsed = ParseLoraTargets(*v);
    if (!parsed.ok()) return absl::InvalidArgumentError(edgellm::StrCat(weights_path, ": ", parsed.status().message()));
    saved_targets = *std::move(parsed);
  }

  // A module adapted in m projections is m separate LoRAs of rank r: with one
  // A of rank r shared by all (as PEFT trains a fused module), or with rank
  // m·r, the A's stacked and B block-diagonal (as edgellm saves one).
  struct ModuleInFile {
    PeftModule module;
    std::vector<LoraTarget> adapted;
    bool shared_a = false;
  };
  std::vector<ModuleInFile> in_file;
  config.targets.clear();
  for (const nlohmann::json& m : *modules) {
    std::optional<PeftModule> module = m.is_string() ? ModuleNamed(arch, m.get<std::string>()) : std::nullopt;
    if (!module) return bad("unknown target module ", m.dump(), " (known for ", arch.name, ": ", ModuleNames(arch), ")");
    ModuleInFile& entry = in_file.emplace_back(ModuleInFile{*module, {}, false});
    for (LoraTarget t : module->parts) {
      if (!saved_targets || absl::c_linear_search(*saved_targets, t)) entry.adapted.push_back(t);
    }
    if (entry.adapted.empty()) return bad("target module ", module->name, " adapts none of its projections");
    config.targets.insert(config.targets.end(), entry.adapted.begin(), entry.adapted.end());
  }
  if (absl::Status s = config.Validate(); !s.ok()) return bad(s.message());

  const nlohmann::json* rank_pattern = field("rank_pattern");
  const nlohmann::json* alpha_pattern = field("alpha_pattern");
  for (const nlohmann::json* pattern : {rank_pattern, alpha_pattern}) {
    if (pattern == nullptr || pattern->empty()) continue;
    if (!pattern->is_object()) return bad(pattern == rank_pattern ? "rank_pattern" : "alpha_pattern", " is not an object");
    for (auto item = pattern->begin(); item != pattern->end(); ++item) {
      const std::string& key = item.key();
      const bool fused = absl::c_any_of(
          in_file, [&](const ModuleInFile& e) { return e.module.name == key && e.adapted.size() > 1; });
      if (!fused || !item.value().is_number()) {
        return absl::UnimplementedError(edgellm::StrCat(config_path, ": ", pattern == rank_pattern ? "rank" : "alpha",
                                                        "_pattern for ", key,
                                                        " is not supported (edgellm applies one rank and alpha to "
                                                        "every projection)"));
      }
    }
  }
  for (ModuleInFile& e : in_file) {
    if (e.adapted.size() < 2) continue;
    const std::string name(e.module.name);
    const double rank = rank_pattern != nullptr && rank_pattern->contains(name) ? (*rank_pattern)[name].get<double>()
                                                                               : config.rank;
    const double alpha = alpha_pattern != nullptr && alpha_pattern->contains(name)
                             ? (*alpha_pattern)[name].get<double>()
                             : config.alpha;
    const double blocks = static_cast<double>(config.rank) * static_cast<double>(e.adapted.size());
    const double wanted = PeftScale(config.alpha, config.rank, config.use_rslora);
    const double scale = PeftScale(alpha, rank, config.use_rslora);
    e.shared_a = rank == config.rank;
    if ((!e.shared_a && rank != blocks) || std::fabs(scale - wanted) > 1e-5 * wanted) {
      return absl::UnimplementedError(edgellm::StrCat(config_path, ": module ", name, " has rank ", rank, " and alpha ",
                                                      alpha, "; edgellm reads rank ", config.rank, " or ", blocks,
                                                      " at scale ", wanted));
    }
  }

  // Shaped for the model; every value is then read from the file.
  EDGELLM_ASSIGN_OR_RETURN(LoraAdapter adapter, Create(config, model));
  const int64_t rank = config.rank;
  auto read = [&](const std::string& name, const std::vector<int64_t>& shape) -> absl::StatusOr<std::vector<float>> {
    const SafetensorsTensor* t = reader->Find(name);
    if (t == nullptr) return absl::InvalidArgumentError(edgellm::StrCat(weights_path, ": missing tensor ", name));
    if (t->shape != shape) {
      return absl::InvalidArgumentError(edgellm::StrCat(weights_path, ": tensor ", name, " has shape [",
                                                        absl::StrJoin(t->shape, ", "), "], the model needs [",
                                                        absl::StrJoin(shape, ", "), "]"));
    }
    std::vector<float> values(static_cast<size_t>(shape[0] * shape[1]));
    ReadFloats(*t, absl::MakeSpan(values));
    for (float v : values) {
      if (!std::isfinite(v)) return absl::InvalidArgumentError(edgellm::StrCat(weights_path, ": tensor ", name, " holds ", v));
    }
    return values;
  };
  for (int32_t layer = 0; layer < model.n_layer; ++layer) {
    for (const ModuleInFile& e : in_file) {
      const int64_t module_rank = e.shared_a ? rank : rank * static_cast<int64_t>(e.adapted.size());
      const int64_t in = ShapeOf(model, e.module.parts[0]).in;
      int64_t rows = 0;
      for (LoraTarget t : e.module.parts) rows += ShapeOf(model, t).out;
      const std::string a_name = ModuleTensorName(layer, e.module, false);
      const std::string b_name = ModuleTensorName(layer, e.module, true);
      EDGELLM_ASSIGN_OR_RETURN(const std::vector<float> a, read(a_name, {module_rank, in}));
      EDGELLM_ASSIGN_OR_RETURN(const std::vector<float> b, read(b_name, {rows, module_rank}));
      int64_t first_row = 0, block = 0;
      for (LoraTarget t : e.module.parts) {
        const int64_t out = ShapeOf(model, t).out;
        LoraWeights* w = absl::c_linear_search(e.adapted, t) ? adapter.Find(layer, t) : nullptr;
        const int64_t first_column = w != nullptr && !e.shared_a ? block * rank : 0;
        // Outside an adapted projection's own columns, and in the rows of a projection not adapted, B is zero.
        for (int64_t row = first_row; row < first_row + out; ++row) {
          for (int64_t c = 0; c < module_rank; ++c) {
            const bool own = w != nullptr && c >= first_column && c < first_column + rank;
            if (!own && b[row * module_rank + c] != 0.0f) {
              return absl::InvalidArgumentError(edgellm::StrCat(
                  weights_path, ": ", b_name, " is not block-diagonal at row ", row, " column ", c, " (", LoraTargetName(t),
                  w != nullptr ? ")" : " is not adapted)"));
            }
          }
        }
        if (w != nullptr) {
          std::copy_n(a.begin() + first_column * in, rank * in, w->a.begin());
          const bool reorder = NeedsRowOrder(arch, t);
          const int64_t head_dim = out / (t == LoraTarget::kQ ? model.n_head : model.n_head_kv);
          for (int64_t row = 0; row < out; ++row) {
            const int64_t hf_row = first_row + (reorder ? HfRow(row, head_dim) : row);
            std::copy_n(b.begin() + hf_row * module_rank + first_column, rank, w->b.begin() + row * rank);
          }
          ++block;
        }
        first_row += out;
      }
    }
  }
  if (reader->tensors().size() != static_cast<size_t>(model.n_layer) * in_file.size() * 2) {
    for (const SafetensorsTensor& t : reader->tensors()) {
      bool known = false;
      for (int32_t layer = 0; layer < model.n_layer && !known; ++layer) {
        for (const ModuleInFile& e : in_file) {
          known = known || t.name == ModuleTensorName(layer, e.module, false) ||
                  t.name == ModuleTensorName(layer, e.module, true);
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
