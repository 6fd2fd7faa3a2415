// LoRA training end to end on the real stories260K: teaching it a fact it
// does not know, on an F32 and on a Q8_0 base, then using the adapter
// unmerged (reloaded from its PEFT directory) and merged into a new GGUF; and
// a run interrupted and resumed that ends with the same adapter.
#include <gtest/gtest.h>

#include <cmath>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "daemon/engine/generator.h"
#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/model_rewrite.h"
#include "daemon/train/trainer.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/test_support.h"

namespace edgellm::train {
namespace {

using edgellm::testing::LoadModel;
using edgellm::testing::TestDir;

const std::string kModel = edgellm::testing::SharedPath("models/stories260K.gguf");
const std::string kPrompt = "Once upon a time";
const std::string kFact = " there was a purple dragon named Zog.";

std::string WriteFacts(const std::filesystem::path& dir) {
  const std::string path = (dir / "facts.jsonl").string();
  std::ofstream out(path);
  for (int i = 0; i < 16; ++i) out << R"({"prompt": ")" << kPrompt << R"(", "completion": ")" << kFact << "\"}\n";
  // Plain stories keep the rest of its language in place.
  out << R"({"text": "Lily and Ben went to the park. They played on the swings."})" << "\n";
  out << R"({"text": "The cat sat in the sun. It was warm and happy."})" << "\n";
  return path;
}

std::string Greedy(const engine::LlamaModel& model, const engine::LoraAdapter* adapter) {
  engine::GenerateOptions options;
  options.max_tokens = 24;
  options.sampling.temperature = 0.0f;
  options.adapter = adapter;
  auto result = engine::Generate(model, kPrompt, options);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->text : "";
}

TrainerOptions FactOptions() {
  TrainerOptions options;
  options.lora.rank = 8;
  options.lora.alpha = 16.0f;
  options.lora.targets = engine::AllLoraTargets();
  options.steps = 30;
  options.learning_rate = 1e-2;
  options.micro_batch = 2;
  options.max_length = 64;
  options.eval_fraction = 0.2;
  options.eval_every = 0;
  options.checkpoint_every = 0;
  options.seed = 3;
  return options;
}

void TeachTheFact(const std::string& model_path, const std::filesystem::path& dir) {
  auto base = LoadModel(model_path);
  ASSERT_NE(base, nullptr);
  const std::string before = Greedy(*base, nullptr);
  ASSERT_NE(before.rfind(kFact, 0), 0u) << "the model must not know the fact already: " << before;

  const std::string out = (dir / "adapter").string();
  auto trainer = LoraTrainer::Create(*base, WriteFacts(dir), FactOptions(), out);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  auto initial = (*trainer)->EvalLoss();
  ASSERT_TRUE(initial.ok() && initial->has_value());
  std::optional<double> final_eval;
  while (!(*trainer)->done()) {
    auto report = (*trainer)->Step();
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_FALSE(report->skipped);
    final_eval = report->eval_loss;
  }
  ASSERT_TRUE(final_eval.has_value());
  EXPECT_LT(*final_eval, 0.5 * **initial) << "eval loss " << **initial << " -> " << *final_eval;

  // Unmerged: the trainer's own adapter, and the one reloaded from its PEFT directory.
  const std::string taught = Greedy(*base, &(*trainer)->adapter());
  EXPECT_EQ(taught.rfind(kFact, 0), 0u) << "greedy output: " << taught;
  auto reloaded = engine::LoraAdapter::Load(out, base->config());
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ(Greedy(*base, &*reloaded), taught);

  // Merged into a new GGUF of the base's types.
  const std::string merged_path = (dir / "merged.gguf").string();
  ASSERT_TRUE(engine::RewriteModel(base->gguf(), base->config(), {&*reloaded, std::nullopt, std::nullopt}, merged_path).ok());
  auto merged = LoadModel(merged_path);
  ASSERT_NE(merged, nullptr);
  EXPECT_EQ(merged->weight_type(), base->weight_type());
  EXPECT_EQ(Greedy(*merged, nullptr), taught);
}

TEST(LoraTraining, TeachesStories260kAFactOnAnF32Base) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  TeachTheFact(kModel, TestDir());
}

TEST(LoraTraining, TeachesStories260kAFactOnAQ8_0Base) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const std::filesystem::path dir = TestDir();
  auto f32 = engine::GgufReader::Open(kModel);
  ASSERT_TRUE(f32.ok());
  auto config = engine::LlamaConfig::FromGguf(**f32);
  const std::string q8 = (dir / "stories260K-Q8_0.gguf").string();
  ASSERT_TRUE(engine::RewriteModel(**f32, *config, {nullptr, engine::GgmlType::kQ8_0, std::nullopt}, q8).ok());
  TeachTheFact(q8, dir);
}

std::string FileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A trainer dropped after a checkpoint and created again on the same
// directory continues from it, and ends with the adapter of a run that was
// never interrupted — bit for bit (dropout on, so its draws must resume too).
TEST(LoraTraining, AResumedRunEndsWithTheUninterruptedAdapter) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const std::filesystem::path dir = TestDir();
  auto base = LoadModel(kModel);
  const std::string data = WriteFacts(dir);
  TrainerOptions options = FactOptions();
  options.steps = 12;
  options.checkpoint_every = 4;
  options.lora.dropout = 0.1f;

  auto whole = LoraTrainer::Create(*base, data, options, (dir / "whole").string());
  ASSERT_TRUE(whole.ok()) << whole.status();
  while (!(*whole)->done()) ASSERT_TRUE((*whole)->Step().ok());

  {
    auto first = LoraTrainer::Create(*base, data, options, (dir / "resumed").string());
    ASSERT_TRUE(first.ok());
    // Six steps: the checkpoint holds step 4, and steps 5 and 6 are lost with the trainer.
    for (int i = 0; i < 6; ++i) ASSERT_TRUE((*first)->Step().ok());
  }
  auto second = LoraTrainer::Create(*base, data, options, (dir / "resumed").string());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE((*second)->resumed());
  EXPECT_EQ((*second)->step(), 4);
  while (!(*second)->done()) ASSERT_TRUE((*second)->Step().ok());

  const std::string a = FileBytes(dir / "whole" / "adapter_model.safetensors");
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == FileBytes(dir / "resumed" / "adapter_model.safetensors")) << "the adapters differ";

  // Other options on the same directory: refused, not mixed.
  options.learning_rate *= 2;
  const absl::Status other = LoraTrainer::Create(*base, data, options, (dir / "resumed").string()).status();
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition) << other;
}

// FFA-LoRA: A stays exactly as its seed made it, on every device; B learns.
TEST(LoraTraining, FfaLoraTrainsBOnly) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const std::filesystem::path dir = TestDir();
  auto base = LoadModel(kModel);
  TrainerOptions options = FactOptions();
  options.steps = 10;
  options.lora.freeze_a = true;
  options.lora.seed = 77;
  auto trainer = LoraTrainer::Create(*base, WriteFacts(dir), options, (dir / "ffa").string());
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  while (!(*trainer)->done()) ASSERT_TRUE((*trainer)->Step().ok());
  auto fresh = engine::LoraAdapter::Create(options.lora, base->config());
  auto saved = engine::LoraAdapter::Load((dir / "ffa").string(), base->config());
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_TRUE(saved->config().freeze_a);
  EXPECT_EQ(saved->config().seed, 77u);
  for (int32_t layer = 0; layer < base->config().n_layer; ++layer) {
    for (engine::LoraTarget t : options.lora.targets) {
      EXPECT_EQ(saved->Find(layer, t)->a, fresh->Find(layer, t)->a);
      EXPECT_NE(saved->Find(layer, t)->b, fresh->Find(layer, t)->b);
    }
  }
}

// FedProx: the proximal term pulls the adapter toward where the run began.
// Trained on the same data, a run with a large μ ends closer to its start
// than one without, and still moves.
TEST(LoraTraining, TheProximalTermKeepsTheAdapterNearWhereItBegan) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const std::filesystem::path dir = TestDir();
  auto base = LoadModel(kModel);
  ASSERT_NE(base, nullptr);
  const std::string data = WriteFacts(dir);
  // Distance of each run's B matrices from their start (B starts at zero, A is frozen).
  auto distance = [&](double mu, const std::string& name) {
    TrainerOptions options = FactOptions();
    options.steps = 12;
    options.learning_rate = 3e-3;
    options.clip_norm = 0;
    options.lora.freeze_a = true;
    options.proximal_mu = mu;
    auto trainer = LoraTrainer::Create(*base, data, options, (dir / name).string());
    EXPECT_TRUE(trainer.ok()) << trainer.status();
    if (!trainer.ok()) return -1.0;
    while (!(*trainer)->done()) EXPECT_TRUE((*trainer)->Step().ok());
    double sum = 0;
    const engine::LoraAdapter& adapter = (*trainer)->adapter();
    for (int32_t layer = 0; layer < base->config().n_layer; ++layer) {
      for (engine::LoraTarget t : options.lora.targets) {
        for (float v : adapter.Find(layer, t)->b) sum += double{v} * v;
      }
    }
    return std::sqrt(sum);
  };
  const double plain = distance(0.0, "plain");
  const double proximal = distance(2000.0, "proximal");
  EXPECT_GT(proximal, 0.0);
  EXPECT_LT(proximal, 0.5 * plain) << "plain " << plain << ", proximal " << proximal;
  TrainerOptions negative = FactOptions();
  negative.proximal_mu = -1;
  EXPECT_FALSE(negative.Validate().ok());
}

}  // namespace
}  // namespace edgellm::train
