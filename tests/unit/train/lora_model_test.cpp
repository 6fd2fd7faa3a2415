#include "daemon/train/lora_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "daemon/engine/model_rewrite.h"
#include "daemon/engine/weight_matrix.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/test_support.h"

namespace edgellm::train {
namespace {

using engine::GgmlType;
using engine::LoraTarget;
using engine::TokenId;
using edgellm::testing::LoadModel;
using edgellm::testing::SyntheticModel;
using edgellm::testing::TestDir;

engine::LoraAdapter RandomAdapter(const engine::LlamaConfig& config, int rank, float dropout = 0.0f) {
  engine::LoraConfig lora;
  lora.rank = rank;
  lora.alpha = 2.0f * rank;
  lora.dropout = dropout;
  lora.targets = engine::AllLoraTargets();
  engine::LoraAdapter adapter = *engine::LoraAdapter::Create(lora, config);
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (int32_t layer = 0; layer < config.n_layer; ++layer) {
    for (LoraTarget t : lora.targets) {
      for (float& v : adapter.Find(layer, t)->b) v = normal(rng);
    }
  }
  return adapter;
}

// One row per example: labels are the next tokens, positions from 0.
TrainingBatch RowsOf(const std::vector<std::vector<TokenId>>& examples, bool packed) {
  std::vector<std::vector<int64_t>> tokens, labels, positions, segments;
  for (size_t e = 0; e < examples.size(); ++e) {
    if (!packed || tokens.empty()) tokens.emplace_back(), labels.emplace_back(), positions.emplace_back(), segments.emplace_back();
    const std::vector<TokenId>& x = examples[e];
    for (size_t i = 0; i < x.size(); ++i) {
      tokens.back().push_back(x[i]);
      labels.back().push_back(i + 1 < x.size() ? x[i + 1] : -1);
      positions.back().push_back(static_cast<int64_t>(i));
      segments.back().push_back(packed ? static_cast<int64_t>(e) : 0);
    }
  }
  size_t length = 0;
  for (const auto& row : tokens) length = std::max(length, row.size());
  const int64_t n = static_cast<int64_t>(tokens.size()), t = static_cast<int64_t>(length);
  TrainingBatch batch{at::zeros({n, t}, at::kLong), at::full({n, t}, -1, at::kLong), at::zeros({n, t}, at::kLong),
                      at::full({n, t}, -1, at::kLong)};
  for (int64_t r = 0; r < n; ++r) {
    for (size_t i = 0; i < tokens[r].size(); ++i) {
      batch.tokens[r][static_cast<int64_t>(i)] = tokens[r][i];
      batch.labels[r][static_cast<int64_t>(i)] = labels[r][i];
      batch.positions[r][static_cast<int64_t>(i)] = positions[r][i];
      batch.segments[r][static_cast<int64_t>(i)] = segments[r][i];
    }
  }
  return batch;
}

std::vector<TokenId> SomeTokens(int n, int vocab, int salt) {
  std::vector<TokenId> t;
  for (int i = 0; i < n; ++i) t.push_back((i * 37 + salt * 101 + 11) % vocab);
  return t;
}

// The summed cross-entropy of the next tokens, from the inference forward's logits.
double InferenceLoss(const engine::LlamaModel& model, const std::vector<TokenId>& tokens,
                     const engine::LoraAdapter& adapter) {
  auto cache = edgellm::testing::NewCache(model);
  std::vector<float> logits;
  EXPECT_TRUE(model.Forward(tokens, cache.get(), true, &logits, &adapter).ok());
  const int64_t vocab = model.config().n_vocab;
  double loss = 0.0;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    const float* row = logits.data() + static_cast<int64_t>(i) * vocab;
    double largest = row[0];
    for (int64_t v = 1; v < vocab; ++v) largest = std::max<double>(largest, row[v]);
    double sum = 0.0;
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - largest);
    loss += largest + std::log(sum) - row[tokens[i + 1]];
  }
  return loss;
}

std::vector<at::Tensor> Grads(const LoraModel& model) {
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : model.trainable()) grads.push_back(p.grad().clone());
  return grads;
}

// A shape of each architecture: Llama (2 and 3.x), Qwen2, Qwen3, Phi-3, Gemma 2, Gemma 3.
const std::vector<std::string>& FamilyShapes() {
  static const std::vector<std::string> shapes = {"test-spm",  "test-llama3", "test-qwen2", "test-qwen3",
                                                   "test-phi3", "test-gemma2", "test-gemma3"};
  return shapes;
}

// The training forward computes what the serving forward computes, for every architecture.
TEST(LoraModel, ItsLossIsTheInferenceForwardsLoss) {
  for (const std::string& shape : FamilyShapes()) {
    for (GgmlType type : {GgmlType::kF32, GgmlType::kQ8_0, GgmlType::kQ4_0}) {
      auto base = LoadModel(SyntheticModel(shape, type));
      ASSERT_NE(base, nullptr);
      engine::LoraAdapter adapter = RandomAdapter(base->config(), 4);
      const LoraModel model(*base, adapter, false);
      const std::vector<TokenId> tokens = SomeTokens(24, base->config().n_vocab, 1);
      const double expected = InferenceLoss(*base, tokens, adapter);
      // Training differentiates Gemma's GELU unrounded (torch_ops.h): about 1e-4 of the loss.
      const double tolerance = base->config().arch->activation == engine::Activation::kGeluTanh ? 3e-4 : 1e-4;
      EXPECT_NEAR(model.Loss(RowsOf({tokens}, false)), expected, tolerance * expected)
          << shape << " " << engine::TraitsOf(type).name;
    }
  }
}

// Examples packed into one row train exactly as they would one per row.
TEST(LoraModel, APackedRowIsItsExamplesApart) {
  auto base = LoadModel(SyntheticModel("test-bpe", GgmlType::kF32));
  engine::LoraAdapter adapter = RandomAdapter(base->config(), 4);
  const LoraModel model(*base, adapter, false);
  const std::vector<std::vector<TokenId>> examples = {SomeTokens(9, 512, 2), SomeTokens(5, 512, 3),
                                                      SomeTokens(12, 512, 4)};
  const double packed = model.Loss(RowsOf(examples, true));
  const double apart = model.Loss(RowsOf(examples, false));
  EXPECT_NEAR(packed, apart, 1e-5 * apart);
  double one_by_one = 0.0;
  for (const auto& e : examples) one_by_one += InferenceLoss(*base, e, adapter);
  EXPECT_NEAR(packed, one_by_one, 1e-4 * one_by_one);
}

// Gradients of A and B against central finite differences of the loss,
// along a direction that mixes the gradient with noise (float32 losses are
// too coarse for single coordinates).
void ExpectGradientsMatchFiniteDifferences(const std::string& shape) {
  auto base = LoadModel(SyntheticModel(shape, GgmlType::kF32));
  ASSERT_NE(base, nullptr);
  engine::LoraAdapter adapter = RandomAdapter(base->config(), 2);
  const LoraModel model(*base, adapter, false);
  const int vocab = base->config().n_vocab;
  const TrainingBatch batch = RowsOf({SomeTokens(10, vocab, 5), SomeTokens(7, vocab, 6)}, false);
  model.LossAndBackward(batch, DropoutSeed{}, 1.0);
  const std::vector<at::Tensor> grads = Grads(model);
  at::manual_seed(3);
  int checked = 0;
  for (size_t p = 0; p < model.trainable().size(); p += 3) {
    at::Tensor param = model.trainable()[p];
    const at::Tensor g = grads[p];
    if (g.norm().item<double>() == 0.0) continue;
    const at::Tensor noise = at::randn_like(g);
    at::Tensor direction = g / g.norm() + noise / noise.norm();
    direction = direction / direction.norm();
    const double analytic = (g * direction).sum().item<double>();
    const at::Tensor saved = param.detach().clone();
    const double h = 1e-2;
    {
      at::NoGradGuard no_grad;
      param.add_(direction, h);
    }
    const double up = model.Loss(batch);
    {
      at::NoGradGuard no_grad;
      param.copy_(saved).add_(direction, -h);
    }
    const double down = model.Loss(batch);
    {
      at::NoGradGuard no_grad;
      param.copy_(saved);
    }
    const double numeric = (up - down) / (2.0 * h);
    EXPECT_NEAR(analytic, numeric, 1e-3 + 0.02 * std::fabs(numeric)) << model.trainable_names()[p];
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST(LoraModel, GradientsMatchFiniteDifferences) {
  for (const std::string& shape : FamilyShapes()) {
    SCOPED_TRACE(shape);
    ExpectGradientsMatchFiniteDifferences(shape);
  }
}

// Recomputing each layer in the backward pass (dropout included) gives the
// gradients of keeping its activations.
TEST(LoraModel, RecomputedLayersGiveTheSameGradients) {
  auto base = LoadModel(SyntheticModel("test-spm", GgmlType::kQ8_0));
  engine::LoraAdapter kept_adapter = RandomAdapter(base->config(), 4, 0.2f);
  engine::LoraAdapter recomputed_adapter = RandomAdapter(base->config(), 4, 0.2f);
  const LoraModel kept(*base, kept_adapter, false);
  const LoraModel recomputed(*base, recomputed_adapter, true);
  const TrainingBatch batch = RowsOf({SomeTokens(16, 384, 7), SomeTokens(11, 384, 8)}, true);
  const DropoutSeed dropout{0.2f, 42};
  const double loss_kept = kept.LossAndBackward(batch, dropout, 0.5);
  const double loss_recomputed = recomputed.LossAndBackward(batch, dropout, 0.5);
  EXPECT_DOUBLE_EQ(loss_kept, loss_recomputed);
  const std::vector<at::Tensor> a = Grads(kept), b = Grads(recomputed);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(at::allclose(a[i], b[i], 1e-4, 1e-6)) << kept.trainable_names()[i];
  }
  EXPECT_NE(kept.Loss(batch), loss_kept) << "dropout was on while training";
}

// A quantized base trains as its weights held in F32 would: its forward
// multiplies int8 activations as the engine serves it, and its backward
// dequantizes the weights a tile at a time, so the loss agrees to the
// activations' rounding and every gradient points the same way.
TEST(LoraModel, AQuantizedBaseTrainsAsItsF32Copy) {
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K}) {
    auto quantized = LoadModel(SyntheticModel(type == GgmlType::kQ4_K ? "test-k" : "test-spm", type));
    ASSERT_NE(quantized, nullptr);
    const std::string f32_path = (TestDir() / "f32.gguf").string();
    ASSERT_TRUE(engine::RewriteModel(quantized->gguf(), quantized->config(), {nullptr, GgmlType::kF32, std::nullopt}, f32_path).ok());
    auto f32 = LoadModel(f32_path);
    engine::LoraAdapter qa = RandomAdapter(quantized->config(), 4), fa = RandomAdapter(quantized->config(), 4);
    const LoraModel on_quantized(*quantized, qa, false), on_f32(*f32, fa, false);
    const TrainingBatch batch = RowsOf({SomeTokens(40, quantized->config().n_vocab, 9)}, false);
    const double lq = on_quantized.LossAndBackward(batch, DropoutSeed{}, 1.0);
    const double lf = on_f32.LossAndBackward(batch, DropoutSeed{}, 1.0);
    EXPECT_NEAR(lq, lf, 2e-3 * lf) << engine::TraitsOf(type).name;
    const std::vector<at::Tensor> gq = Grads(on_quantized), gf = Grads(on_f32);
    for (size_t i = 0; i < gq.size(); ++i) {
      const double cosine = (gq[i] * gf[i]).sum().item<double>() / (gq[i].norm() * gf[i].norm()).item<double>();
      EXPECT_GE(cosine, 0.999) << engine::TraitsOf(type).name << " " << on_f32.trainable_names()[i];
      EXPECT_NEAR(gq[i].norm().item<double>(), gf[i].norm().item<double>(), 0.015 * gf[i].norm().item<double>())
          << engine::TraitsOf(type).name << " " << on_f32.trainable_names()[i];
    }
  }
}

// FrozenLinear's input gradient is the product with the dequantized weight.
TEST(LoraModel, AFrozenLinearsGradientIsTheDequantizedProduct) {
  for (GgmlType type : {GgmlType::kF32, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ6_K}) {
    const int64_t in = 512, out = 96, rows = 7;
    std::mt19937 rng(5);
    std::normal_distribution<float> normal;
    std::vector<float> w(in * out);
    for (float& v : w) v = normal(rng);
    std::vector<uint8_t> bytes(engine::RowBytes(type, in) * out);
    ASSERT_TRUE(engine::Quantize(type, w, absl::MakeSpan(bytes)).ok());
    std::vector<float> dequantized(w.size());
    ASSERT_TRUE(engine::Dequantize(type, bytes, absl::MakeSpan(dequantized)).ok());
    const engine::WeightMatrix matrix{type, bytes.data(), in, out};
    const at::Tensor x = at::randn({rows, in}).requires_grad_(true);
    const at::Tensor g = at::randn({rows, out});
    FrozenLinear(x, matrix).backward(g);
    const at::Tensor expected = at::matmul(g, at::from_blob(dequantized.data(), {out, in}));
    EXPECT_TRUE(at::allclose(x.grad(), expected, 1e-4, 1e-3)) << engine::TraitsOf(type).name;
  }
}

}  // namespace
}  // namespace edgellm::train
