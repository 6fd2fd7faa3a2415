#include "daemon/train/fused_ops.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <vector>

#include "daemon/engine/torch_ops.h"
#include "daemon/train/fused_attention.h"

namespace edgellm::train {
namespace {

// The attention the fused function replaces, in ATen's operations: every
// query head's keys and values repeated, the scores masked and soft-maxed.
at::Tensor ComposedAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMask& mask,
                             const AttentionShape& s) {
  auto heads = [&](const at::Tensor& t, int64_t count) {
    return t.view({s.rows, s.length, count, s.head_dim}).transpose(1, 2);
  };
  const int64_t group = s.heads / s.kv_heads;
  const at::Tensor keys = heads(k, s.kv_heads).repeat_interleave(group, 1);
  const at::Tensor values = heads(v, s.kv_heads).repeat_interleave(group, 1);
  const at::Tensor same = mask.segments.unsqueeze(2) == mask.segments.unsqueeze(1);
  at::Tensor allowed = same & at::ones({s.length, s.length}, at::kBool).tril();
  if (s.window > 0) allowed &= (mask.positions.unsqueeze(2) - mask.positions.unsqueeze(1)) < s.window;
  allowed |= at::eye(s.length, at::kBool);
  const at::Tensor additive = at::zeros({s.rows, 1, s.length, s.length})
                                  .masked_fill_(allowed.logical_not().unsqueeze(1), -std::numeric_limits<float>::infinity());
  const at::Tensor scores = engine::SoftCap(at::matmul(heads(q, s.heads), keys.transpose(2, 3)) * s.scale, s.softcap);
  return at::matmul(at::softmax(scores + additive, -1), values).transpose(1, 2).reshape({s.rows * s.length, -1});
}

// Two rows: the first packs two examples and a pad, the second one example.
AttentionMask PackedMask(int64_t length) {
  at::Tensor segments = at::zeros({2, length}, at::kLong), positions = at::zeros({2, length}, at::kLong);
  for (int64_t i = 0; i < length; ++i) {
    const bool second = i >= length / 3, pad = i >= length - 2;
    segments[0][i] = pad ? -1 : (second ? 1 : 0);
    positions[0][i] = pad ? 0 : (second ? i - length / 3 : i);
    positions[1][i] = i;
  }
  return {segments, positions};
}

TEST(FusedAttention, GivesTheComposedAttentionAndItsGradients) {
  for (const float softcap : {0.0f, 2.0f}) {
    for (const int32_t window : {0, 5}) {
      AttentionShape shape;
      shape.rows = 2;
      shape.length = 19;
      shape.heads = 6;
      shape.kv_heads = 2;
      shape.head_dim = 8;
      shape.scale = 0.35f;
      shape.softcap = softcap;
      shape.window = window;
      SCOPED_TRACE(::testing::Message() << "softcap " << softcap << " window " << window);
      at::manual_seed(4);
      const int64_t tokens = shape.rows * shape.length;
      const at::Tensor q = at::randn({tokens, shape.heads * shape.head_dim}).requires_grad_(true);
      const at::Tensor k = at::randn({tokens, shape.kv_heads * shape.head_dim}).requires_grad_(true);
      const at::Tensor v = at::randn({tokens, shape.kv_heads * shape.head_dim}).requires_grad_(true);
      const at::Tensor upstream = at::randn({tokens, shape.heads * shape.head_dim});
      const AttentionMask mask = PackedMask(shape.length);

      const at::Tensor fused = FusedAttention(q, k, v, mask, shape);
      fused.backward(upstream);
      const std::vector<at::Tensor> fused_grads = {q.grad().clone(), k.grad().clone(), v.grad().clone()};
      for (const at::Tensor& t : {q, k, v}) const_cast<at::Tensor&>(t).mutable_grad().reset();
      const at::Tensor composed = ComposedAttention(q, k, v, mask, shape);
      composed.backward(upstream);

      EXPECT_TRUE(at::allclose(fused, composed, 1e-5, 1e-5)) << (fused - composed).abs().max();
      const std::vector<at::Tensor> composed_grads = {q.grad(), k.grad(), v.grad()};
      for (size_t i = 0; i < fused_grads.size(); ++i) {
        EXPECT_TRUE(at::allclose(fused_grads[i], composed_grads[i], 1e-4, 1e-5))
            << "input " << i << ": " << (fused_grads[i] - composed_grads[i]).abs().max();
      }
    }
  }
}

TEST(FusedOps, RmsNormGivesTheComposedNormAndItsGradient) {
  at::manual_seed(5);
  const at::Tensor x = at::randn({7, 3, 16}).requires_grad_(true);
  std::vector<float> weight(16);
  for (size_t i = 0; i < weight.size(); ++i) weight[i] = 0.5f + 0.1f * static_cast<float>(i);
  const at::Tensor upstream = at::randn({7, 3, 16});
  const at::Tensor fused = FusedRmsNorm(x, weight.data(), 1e-5f);
  fused.backward(upstream);
  const at::Tensor fused_grad = x.grad().clone();
  x.mutable_grad().reset();
  const at::Tensor composed = engine::RmsNorm(x, at::from_blob(weight.data(), {16}), 1e-5f);
  composed.backward(upstream);
  EXPECT_TRUE(at::allclose(fused, composed, 1e-6, 1e-6));
  EXPECT_TRUE(at::allclose(fused_grad, x.grad(), 1e-5, 1e-6)) << (fused_grad - x.grad()).abs().max();
}

TEST(FusedOps, SiluGluGivesTheComposedActivationAndItsGradients) {
  at::manual_seed(6);
  const at::Tensor gate = (3 * at::randn({9, 40})).requires_grad_(true);
  const at::Tensor up = at::randn({9, 40}).requires_grad_(true);
  const at::Tensor upstream = at::randn({9, 40});
  const at::Tensor fused = FusedSiluGlu(gate, up);
  fused.backward(upstream);
  const at::Tensor fused_gate = gate.grad().clone(), fused_up = up.grad().clone();
  gate.mutable_grad().reset();
  up.mutable_grad().reset();
  const at::Tensor composed = at::silu(gate) * up;
  composed.backward(upstream);
  EXPECT_TRUE(at::allclose(fused, composed, 1e-6, 1e-6));
  EXPECT_TRUE(at::allclose(fused_gate, gate.grad(), 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(fused_up, up.grad(), 1e-5, 1e-6));
}

// More rows than one chunk of logits, with and without a cap.
TEST(FusedOps, OutputLossIsTheCrossEntropyOfTheLogitsAndItsGradient) {
  const int64_t rows = 300, in = 64, vocab = 500;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  std::vector<float> weights(static_cast<size_t>(in * vocab));
  for (float& w : weights) w = normal(rng);
  const engine::WeightMatrix output{engine::GgmlType::kF32, reinterpret_cast<const uint8_t*>(weights.data()), in, vocab};
  const at::Tensor w = at::from_blob(weights.data(), {vocab, in});
  for (const float softcap : {0.0f, 3.0f}) {
    SCOPED_TRACE(softcap);
    at::manual_seed(8);
    const at::Tensor x = at::randn({rows, in}).requires_grad_(true);
    const at::Tensor labels = at::randint(vocab, {rows}, at::kLong);
    const at::Tensor fused = OutputLoss(x, labels, output, softcap);
    (fused * 0.5).backward();
    const at::Tensor fused_grad = x.grad().clone();
    x.mutable_grad().reset();
    const at::Tensor composed =
        at::cross_entropy_loss(engine::SoftCap(at::matmul(x, w.t()), softcap), labels, {}, at::Reduction::Sum);
    (composed * 0.5).backward();
    EXPECT_NEAR(fused.item<double>(), composed.item<double>(), 1e-5 * composed.item<double>());
    EXPECT_TRUE(at::allclose(fused_grad, x.grad(), 1e-4, 1e-6)) << (fused_grad - x.grad()).abs().max();
  }
}

TEST(FusedOps, OutputLossRefusesALabelOutsideTheVocabulary) {
  std::vector<float> weights(8 * 4, 0.1f);
  const engine::WeightMatrix output{engine::GgmlType::kF32, reinterpret_cast<const uint8_t*>(weights.data()), 8, 4};
  const at::Tensor x = at::randn({2, 8});
  EXPECT_THROW(OutputLoss(x, at::tensor({1, 4}, at::kLong), output, 0.0f), c10::Error);
  EXPECT_THROW(OutputLoss(x, at::tensor({-1, 0}, at::kLong), output, 0.0f), c10::Error);
}

}  // namespace
}  // namespace edgellm::train
