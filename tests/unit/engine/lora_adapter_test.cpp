#include "daemon/engine/lora_adapter.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <limits>

#include "common/str_cat.h"
#include "daemon/engine/safetensors.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/test_support.h"

namespace edgellm::engine {
namespace {

using edgellm::testing::TestDir;

// The synthetic "test-spm" model's shape: 2 layers, 64 wide, 4 heads of 16,
// 2 KV heads, 128 feed-forward.
LlamaConfig SmallModel() {
  static const LlamaConfig config =
      edgellm::testing::LoadModel(edgellm::testing::SyntheticModel("test-spm", GgmlType::kF32))->config();
  return config;
}

LoraConfig AllTargets(int rank = 4) {
  LoraConfig config;
  config.rank = rank;
  config.alpha = 8.0f;
  config.targets = AllLoraTargets();
  return config;
}

// Gives every B value a distinct number: B[row][j] = row + j / 100.
void NumberB(LoraAdapter& adapter) {
  for (int32_t layer = 0; layer < adapter.n_layer(); ++layer) {
    for (LoraTarget t : adapter.config().targets) {
      LoraWeights& w = *adapter.Find(layer, t);
      for (int64_t row = 0; row < w.out; ++row) {
        for (int64_t j = 0; j < adapter.config().rank; ++j) {
          w.b[row * adapter.config().rank + j] = static_cast<float>(row) + static_cast<float>(j) / 100.0f + layer;
        }
      }
    }
  }
}

void WriteText(const std::filesystem::path& path, const std::string& text) { std::ofstream(path) << text; }

TEST(LoraAdapter, StartsAsInTheLoraPaperAndTheSameOnEveryMachine) {
  auto adapter = LoraAdapter::Create(AllTargets(), SmallModel());
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  EXPECT_EQ(adapter->parameter_count(), 2 * 4 * ((64 + 64) + (64 + 32) * 2 + (64 + 64) + (64 + 128) * 2 + (128 + 64)));
  const LoraWeights& down = *adapter->Find(1, LoraTarget::kDown);
  EXPECT_EQ(down.in, 128);
  EXPECT_EQ(down.out, 64);
  const float bound = 1.0f / std::sqrt(128.0f);
  float largest = 0.0f;
  for (float v : down.a) largest = std::max(largest, std::fabs(v));
  EXPECT_LE(largest, bound);
  EXPECT_GT(largest, 0.9f * bound) << "uniform over the whole range";
  for (float v : down.b) EXPECT_EQ(v, 0.0f);

  auto again = LoraAdapter::Create(AllTargets(), SmallModel());
  EXPECT_EQ(again->Find(1, LoraTarget::kDown)->a, down.a) << "the same seed gives the same A";
  EXPECT_NE(again->Find(0, LoraTarget::kDown)->a, down.a) << "each layer has its own A";
  LoraConfig other_seed = AllTargets();
  other_seed.seed = 7;
  EXPECT_NE(LoraAdapter::Create(other_seed, SmallModel())->Find(1, LoraTarget::kDown)->a, down.a);
  EXPECT_FLOAT_EQ(AllTargets().scale(), 2.0f);
  LoraConfig rs = AllTargets();
  rs.use_rslora = true;
  EXPECT_FLOAT_EQ(rs.scale(), 4.0f);
}

TEST(LoraAdapter, ABadConfigIsRefused) {
  LoraConfig c = AllTargets();
  c.rank = 0;
  EXPECT_EQ(LoraAdapter::Create(c, SmallModel()).status().code(), absl::StatusCode::kInvalidArgument);
  c = AllTargets();
  c.dropout = 1.0f;
  EXPECT_EQ(LoraAdapter::Create(c, SmallModel()).status().code(), absl::StatusCode::kInvalidArgument);
  c = AllTargets();
  c.targets.push_back(LoraTarget::kQ);
  EXPECT_EQ(LoraAdapter::Create(c, SmallModel()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LoraAdapter, SavedInThePeftLayoutAndReadBackExactly) {
  const std::filesystem::path dir = TestDir() / "adapter";
  LoraConfig config = AllTargets();
  config.freeze_a = true;
  config.seed = 1234;
  config.dropout = 0.05f;
  auto adapter = LoraAdapter::Create(config, SmallModel());
  ASSERT_TRUE(adapter.ok());
  NumberB(*adapter);
  ASSERT_TRUE(adapter->Save(dir.string(), "test-spm").ok());

  auto loaded = LoraAdapter::Load(dir.string(), SmallModel());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config().rank, 4);
  EXPECT_EQ(loaded->config().alpha, 8.0f);
  EXPECT_EQ(loaded->config().dropout, 0.05f);
  EXPECT_EQ(loaded->config().targets, config.targets);
  EXPECT_TRUE(loaded->config().freeze_a);
  EXPECT_EQ(loaded->config().seed, 1234u);
  for (int32_t layer = 0; layer < 2; ++layer) {
    for (LoraTarget t : config.targets) {
      EXPECT_EQ(loaded->Find(layer, t)->a, adapter->Find(layer, t)->a) << LoraTargetName(t);
      EXPECT_EQ(loaded->Find(layer, t)->b, adapter->Find(layer, t)->b) << LoraTargetName(t);
    }
  }

  // What PEFT reads: its names and shapes, q_proj's B rows in Hugging Face
  // order (each head's rotation pairs de-interleaved), v_proj's as they are.
  auto raw = SafetensorsReader::Open((dir / "adapter_model.safetensors").string());
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ((*raw)->tensors().size(), 2u * 7 * 2);
  const SafetensorsTensor* qb = (*raw)->Find("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
  ASSERT_NE(qb, nullptr);
  EXPECT_EQ(qb->shape, (std::vector<int64_t>{64, 4}));
  std::vector<float> hf(64 * 4);
  ReadFloats(*qb, absl::MakeSpan(hf));
  EXPECT_EQ(hf[1 * 4], 2.0f) << "HF row 1 (first half, pair 1) is GGUF row 2";
  EXPECT_EQ(hf[8 * 4], 1.0f) << "HF row 8 (second half, pair 0) is GGUF row 1";
  EXPECT_EQ(hf[(16 + 9) * 4], 16.0f + 3.0f) << "head 1: HF row 9 is GGUF row 3";
  const SafetensorsTensor* vb = (*raw)->Find("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
  ASSERT_NE(vb, nullptr);
  std::vector<float> v(32 * 4);
  ReadFloats(*vb, absl::MakeSpan(v));
  EXPECT_EQ(v[5 * 4], 5.0f + 1.0f);
  ASSERT_NE((*raw)->Find("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight"), nullptr);

  std::ifstream config_file(dir / "adapter_config.json");
  const std::string json((std::istreambuf_iterator<char>(config_file)), std::istreambuf_iterator<char>());
  EXPECT_NE(json.find("\"peft_type\": \"LORA\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"r\": 4"), std::string::npos) << json;
  EXPECT_NE(json.find("\"base_model_name_or_path\": \"test-spm\""), std::string::npos) << json;
}

// Qwen's GGUF rows are Hugging Face's (its heads rotate halves, so the
// converter does not permute them): q_proj's and k_proj's B rows are saved as
// they are, and read back so.
TEST(LoraAdapter, QwenRowsKeepTheHuggingFaceOrder) {
  for (const char* shape : {"test-qwen2", "test-qwen3"}) {
    const LlamaConfig model =
        edgellm::testing::LoadModel(edgellm::testing::SyntheticModel(shape, GgmlType::kF32))->config();
    const std::filesystem::path dir = TestDir() / shape;
    auto adapter = LoraAdapter::Create(AllTargets(), model);
    ASSERT_TRUE(adapter.ok()) << adapter.status();
    NumberB(*adapter);
    ASSERT_TRUE(adapter->Save(dir.string(), shape).ok());
    auto raw = SafetensorsReader::Open((dir / "adapter_model.safetensors").string());
    ASSERT_TRUE(raw.ok()) << raw.status();
    for (const char* projection : {"q_proj", "k_proj"}) {
      const SafetensorsTensor* b = (*raw)->Find(std::string("base_model.model.model.layers.0.self_attn.") +
                                                projection + ".lora_B.weight");
      ASSERT_NE(b, nullptr) << projection;
      std::vector<float> hf(static_cast<size_t>(b->shape[0] * b->shape[1]));
      ReadFloats(*b, absl::MakeSpan(hf));
      for (int64_t row = 0; row < b->shape[0]; ++row) EXPECT_EQ(hf[row * 4], static_cast<float>(row)) << shape;
    }
    auto loaded = LoraAdapter::Load(dir.string(), model);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(loaded->Find(1, LoraTarget::kQ)->b, adapter->Find(1, LoraTarget::kQ)->b) << shape;
    EXPECT_EQ(loaded->Find(1, LoraTarget::kK)->b, adapter->Find(1, LoraTarget::kK)->b) << shape;
  }
}

LlamaConfig Phi3Model() {
  static const LlamaConfig config =
      edgellm::testing::LoadModel(edgellm::testing::SyntheticModel("test-phi3", GgmlType::kF32))->config();
  return config;
}

std::vector<float> ReadAll(const SafetensorsReader& reader, const std::string& name) {
  const SafetensorsTensor* t = reader.Find(name);
  EXPECT_NE(t, nullptr) << name;
  if (t == nullptr) return {};
  std::vector<float> values(static_cast<size_t>(t->shape[0] * t->shape[1]));
  ReadFloats(*t, absl::MakeSpan(values));
  return values;
}

// Phi-3's Hugging Face model has qkv_proj and gate_up_proj where Llama has
// q/k/v_proj and gate/up_proj: the adapter is saved as PEFT would train it
// on those modules — q and v as one LoRA of rank 2r with stacked A's and a
// block-diagonal B (k's rows zero) and alpha doubled, so that PEFT computes
// exactly what the two separate adapters do — and read back exactly.
TEST(LoraAdapter, Phi3AdaptersUseHuggingFacesFusedModules) {
  const LlamaConfig model = Phi3Model();
  const int64_t q = ShapeOf(model, LoraTarget::kQ).out, kv = ShapeOf(model, LoraTarget::kK).out;
  const int64_t d = model.n_embd, ff = model.n_ff;
  LoraConfig config = AllTargets();
  config.targets = {LoraTarget::kQ, LoraTarget::kV, LoraTarget::kGate, LoraTarget::kDown};
  auto adapter = LoraAdapter::Create(config, model);
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  NumberB(*adapter);
  const std::filesystem::path dir = TestDir() / "phi3";
  ASSERT_TRUE(adapter->Save(dir.string(), "test-phi3").ok());

  auto raw = SafetensorsReader::Open((dir / "adapter_model.safetensors").string());
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ((*raw)->tensors().size(), static_cast<size_t>(model.n_layer) * 3 * 2) << "qkv, gate_up and down";
  EXPECT_EQ((*raw)->Find("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), nullptr);
  const std::string qkv = "base_model.model.model.layers.1.self_attn.qkv_proj.";
  ASSERT_NE((*raw)->Find(qkv + "lora_A.weight"), nullptr);
  EXPECT_EQ((*raw)->Find(qkv + "lora_A.weight")->shape, (std::vector<int64_t>{8, d}));
  EXPECT_EQ((*raw)->Find(qkv + "lora_B.weight")->shape, (std::vector<int64_t>{q + 2 * kv, 8}));
  const std::vector<float> a = ReadAll(**raw, qkv + "lora_A.weight");
  const std::vector<float> b = ReadAll(**raw, qkv + "lora_B.weight");
  const LoraWeights& wq = *adapter->Find(1, LoraTarget::kQ);
  const LoraWeights& wv = *adapter->Find(1, LoraTarget::kV);
  EXPECT_TRUE(std::equal(wq.a.begin(), wq.a.end(), a.begin())) << "q's A first";
  EXPECT_TRUE(std::equal(wv.a.begin(), wv.a.end(), a.begin() + 4 * d)) << "then v's";
  EXPECT_EQ(b[2 * 8 + 1], wq.b[2 * 4 + 1]) << "q's rows, first block";
  EXPECT_EQ(b[2 * 8 + 5], 0.0f) << "q's rows, v's block";
  for (int64_t row = q; row < q + kv; ++row) {
    for (int64_t c = 0; c < 8; ++c) ASSERT_EQ(b[row * 8 + c], 0.0f) << "k is not adapted";
  }
  EXPECT_EQ(b[(q + kv + 3) * 8 + 4 + 2], wv.b[3 * 4 + 2]) << "v's rows, second block";
  EXPECT_EQ((*raw)->Find("base_model.model.model.layers.0.mlp.gate_up_proj.lora_B.weight")->shape,
            (std::vector<int64_t>{2 * ff, 4}))
      << "gate alone: rank r, up's rows zero";

  std::ifstream config_file(dir / "adapter_config.json");
  const nlohmann::json json = nlohmann::json::parse(config_file);
  EXPECT_EQ(json["target_modules"], (nlohmann::json{"qkv_proj", "gate_up_proj", "down_proj"}));
  EXPECT_EQ(json["rank_pattern"], (nlohmann::json{{"qkv_proj", 8}}));
  EXPECT_EQ(json["alpha_pattern"], (nlohmann::json{{"qkv_proj", 16.0}}));

  auto loaded = LoraAdapter::Load(dir.string(), model);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config().targets, config.targets);
  for (int32_t layer = 0; layer < model.n_layer; ++layer) {
    for (LoraTarget t : config.targets) {
      EXPECT_EQ(loaded->Find(layer, t)->a, adapter->Find(layer, t)->a) << LoraTargetName(t);
      EXPECT_EQ(loaded->Find(layer, t)->b, adapter->Find(layer, t)->b) << LoraTargetName(t);
    }
    EXPECT_EQ(loaded->Find(layer, LoraTarget::kK), nullptr);
  }
}

// An adapter PEFT trained on Phi-3's fused modules has one A per module: each
// projection gets that A and its own rows of B.
TEST(LoraAdapter, AFusedModuleTrainedByPeftGivesEachProjectionItsRows) {
  const LlamaConfig model = Phi3Model();
  const int64_t q = ShapeOf(model, LoraTarget::kQ).out, kv = ShapeOf(model, LoraTarget::kK).out;
  const int64_t d = model.n_embd, ff = model.n_ff;
  const std::filesystem::path dir = TestDir() / "peft";
  std::filesystem::create_directories(dir);
  WriteText(dir / "adapter_config.json",
            R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["qkv_proj", "gate_up_proj"],
                "rank_pattern": {}, "alpha_pattern": {}})");
  std::vector<std::vector<float>> storage;
  storage.reserve(static_cast<size_t>(model.n_layer) * 4);
  SafetensorsWriter writer;
  for (int32_t layer = 0; layer < model.n_layer; ++layer) {
    const std::string p = edgellm::StrCat("base_model.model.model.layers.", layer, ".");
    const auto add = [&](const std::string& name, int64_t rows, int64_t columns) {
      std::vector<float>& v = storage.emplace_back(static_cast<size_t>(rows * columns));
      for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 97) / 97.0f + static_cast<float>(layer);
      ASSERT_TRUE(writer.Add(p + name, {rows, columns}, v).ok());
    };
    add("self_attn.qkv_proj.lora_A.weight", 4, d);
    add("self_attn.qkv_proj.lora_B.weight", q + 2 * kv, 4);
    add("mlp.gate_up_proj.lora_A.weight", 4, d);
    add("mlp.gate_up_proj.lora_B.weight", 2 * ff, 4);
  }
  ASSERT_TRUE(writer.Write((dir / "adapter_model.safetensors").string()).ok());

  auto loaded = LoraAdapter::Load(dir.string(), model);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config().targets, (std::vector<LoraTarget>{LoraTarget::kQ, LoraTarget::kK, LoraTarget::kV,
                                                                LoraTarget::kGate, LoraTarget::kUp}));
  const std::vector<float>& a = storage[4];  // layer 1's qkv A
  const std::vector<float>& b = storage[5];
  for (LoraTarget t : {LoraTarget::kQ, LoraTarget::kK, LoraTarget::kV}) {
    EXPECT_EQ(loaded->Find(1, t)->a, a) << LoraTargetName(t);
  }
  const int64_t first_row = q + kv;  // v's
  const std::vector<float>& v = loaded->Find(1, LoraTarget::kV)->b;
  EXPECT_TRUE(std::equal(v.begin(), v.end(), b.begin() + first_row * 4));
  const std::vector<float>& up = loaded->Find(1, LoraTarget::kUp)->b;
  EXPECT_TRUE(std::equal(up.begin(), up.end(), storage[7].begin() + ff * 4));
}

// A fused module saved with stacked A's must have a block-diagonal B: a value
// outside a projection's own block cannot be held by separate adapters.
// Saves a Phi-3 adapter on q_proj and v_proj (parts of one fused qkv_proj) in `dir`.
void SavePhi3QvAdapter(const std::filesystem::path& dir) {
  LoraConfig config = AllTargets();
  config.targets = {LoraTarget::kQ, LoraTarget::kV};
  auto adapter = LoraAdapter::Create(config, Phi3Model());
  ASSERT_TRUE(adapter.ok());
  ASSERT_TRUE(adapter->Save(dir.string(), "m").ok());
}

TEST(LoraAdapter, AFusedModuleThatSeparateAdaptersCannotHoldIsRefused) {
  const LlamaConfig model = Phi3Model();
  const std::filesystem::path dir = TestDir();
  SavePhi3QvAdapter(dir / "good");
  auto raw = SafetensorsReader::Open((dir / "good" / "adapter_model.safetensors").string());
  ASSERT_TRUE(raw.ok());
  std::vector<std::vector<float>> storage;
  storage.reserve((*raw)->tensors().size());
  SafetensorsWriter writer;
  writer.SetMetadata("edgellm.targets", "q_proj,v_proj");
  for (const SafetensorsTensor& t : (*raw)->tensors()) {
    std::vector<float>& v = storage.emplace_back(ReadAll(**raw, t.name));
    if (t.name == "base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight") v[1 * 8 + 6] = 0.5f;
    ASSERT_TRUE(writer.Add(t.name, t.shape, v).ok());
  }
  std::filesystem::create_directories(dir / "mixed");
  ASSERT_TRUE(writer.Write((dir / "mixed" / "adapter_model.safetensors").string()).ok());
  std::filesystem::copy_file(dir / "good" / "adapter_config.json", dir / "mixed" / "adapter_config.json");
  const absl::Status status = LoraAdapter::Load((dir / "mixed").string(), model).status();
  EXPECT_NE(status.message().find("qkv_proj.lora_B.weight is not block-diagonal at row 1 column 6 (q_proj)"),
            std::string::npos)
      << status;

  // Llama's module names mean nothing to Phi-3.
  WriteText(dir / "good" / "adapter_config.json", R"({"peft_type": "LORA", "r": 4, "target_modules": ["q_proj"]})");
  EXPECT_NE(LoraAdapter::Load((dir / "good").string(), model).status().message().find(
                "unknown target module \"q_proj\" (known for phi3: qkv_proj o_proj gate_up_proj down_proj)"),
            std::string::npos);
}

TEST(LoraAdapter, AHostileRankOrAlphaPatternIsRefusedWithTheModuleName) {
  const LlamaConfig model = Phi3Model();
  const std::filesystem::path dir = TestDir();
  SavePhi3QvAdapter(dir);
  std::ifstream config_file(dir / "adapter_config.json");
  const nlohmann::json saved = nlohmann::json::parse(config_file);
  ASSERT_TRUE(LoraAdapter::Load(dir.string(), model).ok());
  // Values no converter may turn into an integer, ranks no matrix has, and a scale no sane alpha gives.
  for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"rank_pattern", 1e300}, {"rank_pattern", -8}, {"rank_pattern", 0}, {"rank_pattern", 8.5},
           {"rank_pattern", "8"}, {"alpha_pattern", 1e308}, {"alpha_pattern", -16}, {"alpha_pattern", nullptr}}) {
    nlohmann::json hostile = saved;
    hostile[key]["qkv_proj"] = value;
    WriteText(dir / "adapter_config.json", hostile.dump());
    const absl::Status status = LoraAdapter::Load(dir.string(), model).status();
    EXPECT_FALSE(status.ok()) << key << " " << value.dump();
    EXPECT_NE(status.message().find("qkv_proj"), std::string::npos) << key << " " << value.dump() << ": " << status;
  }
}

TEST(LoraAdapter, ADirectoryThatDoesNotFitIsRefusedWithItsReason) {
  const std::filesystem::path dir = TestDir();
  auto adapter = LoraAdapter::Create(AllTargets(), SmallModel());
  ASSERT_TRUE(adapter->Save((dir / "good").string(), "m").ok());

  EXPECT_EQ(LoraAdapter::Load((dir / "none").string(), SmallModel()).status().code(), absl::StatusCode::kNotFound);

  LlamaConfig deeper = SmallModel();
  deeper.n_layer = 3;
  absl::Status status = LoraAdapter::Load((dir / "good").string(), deeper).status();
  EXPECT_NE(status.message().find("missing tensor base_model.model.model.layers.2"), std::string::npos) << status;

  LlamaConfig shallower = SmallModel();
  shallower.n_layer = 1;
  status = LoraAdapter::Load((dir / "good").string(), shallower).status();
  EXPECT_NE(status.message().find("unexpected tensor base_model.model.model.layers.1"), std::string::npos) << status;

  LlamaConfig wider = SmallModel();
  wider.n_ff = 256;
  status = LoraAdapter::Load((dir / "good").string(), wider).status();
  EXPECT_NE(status.message().find("gate_proj.lora_B.weight has shape [128, 4], the model needs [256, 4]"),
            std::string::npos)
      << status;

  const std::filesystem::path weights = dir / "good" / "adapter_model.safetensors";
  const auto config_with = [&](const std::string& name, const std::string& json) {
    std::filesystem::create_directories(dir / name);
    std::filesystem::copy_file(weights, dir / name / "adapter_model.safetensors");
    WriteText(dir / name / "adapter_config.json", json);
    return LoraAdapter::Load((dir / name).string(), SmallModel()).status();
  };
  const std::string modules =
      R"("target_modules": ["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"])";
  status = config_with("prefix", R"({"peft_type": "PREFIX_TUNING", "r": 4})");
  EXPECT_NE(status.message().find("peft_type is not LORA"), std::string::npos) << status;
  status = config_with("regex", R"({"peft_type": "LORA", "r": 4, "target_modules": ".*proj"})");
  EXPECT_NE(status.message().find("pattern string is not supported"), std::string::npos) << status;
  status = config_with("unknown", R"({"peft_type": "LORA", "r": 4, "target_modules": ["lm_head"]})");
  EXPECT_NE(status.message().find("unknown target module \"lm_head\""), std::string::npos) << status;
  status = config_with("bias", R"({"peft_type": "LORA", "r": 4, "bias": "all", )" + modules + "}");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented) << status;
  status = config_with("pattern", R"({"peft_type": "LORA", "r": 4, "rank_pattern": {"q_proj": 8}, )" + modules + "}");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented) << status;
  status = config_with("rank", R"({"peft_type": "LORA", "r": 8, )" + modules + "}");
  EXPECT_NE(status.message().find("has shape [4, 64], the model needs [8, 64]"), std::string::npos) << status;
  status = config_with("json", "{\"peft_type\": ");
  EXPECT_NE(status.message().find("not a JSON object"), std::string::npos) << status;
  EXPECT_TRUE(config_with("defaults", R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, )" + modules + "}").ok());

  // A value that is not finite.
  auto poisoned = LoraAdapter::Create(AllTargets(), SmallModel());
  poisoned->Find(1, LoraTarget::kUp)->b[3] = std::numeric_limits<float>::quiet_NaN();
  ASSERT_TRUE(poisoned->Save((dir / "nan").string(), "m").ok());
  status = LoraAdapter::Load((dir / "nan").string(), SmallModel()).status();
  EXPECT_NE(status.message().find("layers.1.mlp.up_proj.lora_B.weight holds nan"), std::string::npos) << status;
}

}  // namespace
}  // namespace edgellm::engine
