#include "daemon/train/lora_model.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>

#include "common/hashing.h"
#include "daemon/engine/quant_types.h"
#include "daemon/engine/torch_ops.h"
#include "daemon/engine/weight_matrix.h"
#include "daemon/train/fused_attention.h"
#include "daemon/train/fused_ops.h"

namespace edgellm::train {

using engine::LoraTarget;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct LoraModel::Context {
  int64_t rows = 0;    // batch rows
  int64_t length = 0;  // tokens per row
  // Per rotary table of the model: [rows * length, 1, rope_dims / 2] each.
  std::vector<std::pair<at::Tensor, at::Tensor>> rotations;
  AttentionMask mask;
  DropoutSeed dropout;
};

namespace {

class FrozenLinearFunction : public torch::autograd::Function<FrozenLinearFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const engine::WeightMatrix* weight) {
    ctx->saved_data["weight"] = reinterpret_cast<int64_t>(weight);
    const at::Tensor input = x.contiguous();
    const int64_t rows = input.numel() / weight->in_features;
    std::vector<int64_t> shape = input.sizes().vec();
    shape.back() = weight->out_features;
    at::Tensor y = at::empty(shape, input.options());
    engine::Multiply(*weight, input.data_ptr<float>(), y.data_ptr<float>(), rows, ForwardPrecision(*weight));
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto* weight = reinterpret_cast<const engine::WeightMatrix*>(ctx->saved_data["weight"].toInt());
    const at::Tensor grad = grads[0].contiguous();
    const int64_t rows = grad.numel() / weight->out_features;
    std::vector<int64_t> shape = grad.sizes().vec();
    shape.back() = weight->in_features;
    at::Tensor grad_x = at::empty(shape, grad.options());
    engine::MultiplyTransposed(*weight, grad.data_ptr<float>(), grad_x.data_ptr<float>(), rows);
    return {grad_x, at::Tensor()};
  }
};

// A layer that keeps only its input, and runs again in the backward pass.
class CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
 public:
  // `anchor` is a scalar that requires grad: the layer's trainable tensors
  // are not inputs of this function, so without it a first layer (whose
  // input is the frozen embedding) would leave the loss without a graph.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& anchor,
                            const LoraModel* model, int64_t layer, const LoraModel::Context* context,
                            const std::vector<at::Tensor>* layer_trainable) {
    ctx->save_for_backward({x});
    ctx->saved_data["model"] = reinterpret_cast<int64_t>(model);
    ctx->saved_data["layer"] = layer;
    ctx->saved_data["context"] = reinterpret_cast<int64_t>(context);
    ctx->saved_data["trainable"] = reinterpret_cast<int64_t>(layer_trainable);
    at::NoGradGuard no_grad;
    return model->Layer(static_cast<int32_t>(layer), x, *context);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto* model = reinterpret_cast<const LoraModel*>(ctx->saved_data["model"].toInt());
    const auto* context = reinterpret_cast<const LoraModel::Context*>(ctx->saved_data["context"].toInt());
    const auto* trainable = reinterpret_cast<const std::vector<at::Tensor>*>(ctx->saved_data["trainable"].toInt());
    const at::Tensor x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    at::AutoGradMode grad_mode(true);
    const at::Tensor y = model->Layer(static_cast<int32_t>(ctx->saved_data["layer"].toInt()), x, *context);
    variable_list inputs = {x};
    inputs.insert(inputs.end(), trainable->begin(), trainable->end());
    const variable_list input_grads = torch::autograd::grad({y}, inputs, {grads[0]}, /*retain_graph=*/false,
                                                            /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t i = 0; i < trainable->size(); ++i) {
      const at::Tensor& g = input_grads[i + 1];
      if (!g.defined()) continue;
      at::Tensor param = (*trainable)[i];
      at::Tensor& accumulated = param.mutable_grad();
      accumulated = accumulated.defined() ? accumulated + g : g.clone();
    }
    return {input_grads[0], at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor FloatView(const float* data, std::vector<int64_t> shape) {
  return at::from_blob(const_cast<float*>(data), shape, at::TensorOptions(at::kFloat));
}

}  // namespace

at::Tensor FrozenLinear(const at::Tensor& x, const engine::WeightMatrix& weight) {
  return FrozenLinearFunction::apply(x, &weight);
}

LoraModel::LoraModel(const engine::LlamaModel& base, engine::LoraAdapter& adapter, bool recompute_layers)
    : config_(base.config()),
      weights_(base.cpu_weights()),
      adapter_(adapter),
      recompute_layers_(recompute_layers) {
  const int64_t rank = adapter.config().rank;
  lora_.resize(config_.n_layer);
  layer_trainable_.resize(config_.n_layer);
  for (int32_t layer = 0; layer < config_.n_layer; ++layer) {
    for (LoraTarget target : adapter.config().targets) {
      engine::LoraWeights& w = *adapter.Find(layer, target);
      at::Tensor a = FloatView(w.a.data(), {rank, w.in});
      at::Tensor b = FloatView(w.b.data(), {w.out, rank});
      if (!adapter.config().freeze_a) {
        a.requires_grad_(true);
        trainable_.push_back(a);
        trainable_names_.push_back(engine::PeftTensorName(layer, target, false));
        layer_trainable_[layer].push_back(a);
      }
      b.requires_grad_(true);
      trainable_.push_back(b);
      trainable_names_.push_back(engine::PeftTensorName(layer, target, true));
      layer_trainable_[layer].push_back(b);
      lora_[layer][static_cast<int>(target)] = {a, b};
    }
  }
  anchor_ = at::zeros({}, at::kFloat).requires_grad_(true);
  const int64_t half = config_.rope_dims / 2;
  std::vector<const float*> seen;
  for (const engine::CpuLayerWeights& w : weights_.layers) {
    auto at_table = std::find(seen.begin(), seen.end(), w.rope_cos);
    if (at_table == seen.end()) {
      seen.push_back(w.rope_cos);
      rope_tables_.emplace_back(FloatView(w.rope_cos, {base.context_length(), half}),
                                FloatView(w.rope_sin, {base.context_length(), half}));
      at_table = seen.end() - 1;
    }
    rope_table_.push_back(static_cast<int>(at_table - seen.begin()));
  }
}

at::Tensor LoraModel::Project(const at::Tensor& x, const engine::WeightMatrix& weight, int32_t layer,
                              LoraTarget target, const Context& context) const {
  at::Tensor y = FrozenLinear(x, weight);
  const auto& [a, b] = lora_[layer][static_cast<int>(target)];
  if (!a.defined()) return y;
  at::Tensor input = x;
  if (context.dropout.rate > 0.0f) {
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(
        MixSeeds(MixSeeds(context.dropout.seed, static_cast<uint64_t>(layer)), static_cast<uint64_t>(target)));
    const at::Tensor keep = at::empty_like(x).bernoulli_(1.0 - context.dropout.rate, generator);
    input = x * keep / (1.0 - context.dropout.rate);
  }
  return y + at::linear(at::linear(input, a), b) * adapter_.scale();
}

at::Tensor LoraModel::Layer(int32_t layer, const at::Tensor& x, const Context& context) const {
  const engine::CpuLayerWeights& w = weights_.layers[layer];
  const int64_t hd = config_.head_dim;
  const int64_t n_head = config_.n_head, n_kv = config_.n_head_kv;
  const float eps = config_.rms_norm_eps;

  const at::Tensor h = FusedRmsNorm(x, w.attn_norm, eps);
  // A projection as [rows * length, heads, hd], with the layer's bias and per-head norm where it has them.
  auto split = [&](at::Tensor projected, const float* bias, const float* norm, int64_t count) {
    if (bias != nullptr) projected = projected + FloatView(bias, {count * hd});
    at::Tensor per_head = projected.view({-1, count, hd});
    return norm != nullptr ? FusedRmsNorm(per_head, norm, eps) : per_head;
  };
  const engine::RopeStyle style = config_.arch->rope;
  const auto& [cos, sin] = context.rotations[rope_table_[layer]];
  at::Tensor q = engine::ApplyRope(split(Project(h, w.wq, layer, LoraTarget::kQ, context), w.q_bias, w.q_norm, n_head),
                                   cos, sin, config_.rope_dims, style);
  const at::Tensor k = engine::ApplyRope(split(Project(h, w.wk, layer, LoraTarget::kK, context), w.k_bias, w.k_norm, n_kv),
                                         cos, sin, config_.rope_dims, style);
  // Where the family scales the query after its rotation, the scores are not scaled again.
  if (config_.arch->prescaled_query) q = q * config_.attention_scale;
  const at::Tensor v = split(Project(h, w.wv, layer, LoraTarget::kV, context), w.v_bias, nullptr, n_kv);
  AttentionShape shape;
  shape.rows = context.rows;
  shape.length = context.length;
  shape.heads = n_head;
  shape.kv_heads = n_kv;
  shape.head_dim = hd;
  shape.scale = config_.arch->prescaled_query ? 1.0f : config_.attention_scale;
  shape.softcap = config_.attention_softcap;
  shape.window = config_.IsSlidingLayer(layer) ? config_.sliding_window : 0;
  const at::Tensor attended = FusedAttention(q.reshape({-1, n_head * hd}), k.reshape({-1, n_kv * hd}),
                                             v.reshape({-1, n_kv * hd}), context.mask, shape);
  at::Tensor projected = Project(attended, w.wo, layer, LoraTarget::kO, context);
  if (w.post_attention_norm != nullptr) projected = FusedRmsNorm(projected, w.post_attention_norm, eps);
  const at::Tensor after_attention = x + projected;

  const at::Tensor h2 = FusedRmsNorm(after_attention, w.ffn_norm, eps);
  const at::Tensor gate = Project(h2, w.gate, layer, LoraTarget::kGate, context);
  const at::Tensor up = Project(h2, w.up, layer, LoraTarget::kUp, context);
  const at::Tensor gated = config_.arch->activation == engine::Activation::kSilu
                               ? FusedSiluGlu(gate, up)
                               : engine::GatedActivation(config_.arch->activation, gate, up, /*round_as_ggml=*/false);
  at::Tensor down = Project(gated, w.down, layer, LoraTarget::kDown, context);
  if (w.post_ffn_norm != nullptr) down = FusedRmsNorm(down, w.post_ffn_norm, eps);
  return after_attention + down;
}

LoraModel::Context LoraModel::MakeContext(const TrainingBatch& batch, const DropoutSeed& dropout) const {
  const int64_t rows = batch.tokens.size(0), length = batch.tokens.size(1);
  Context context;
  context.rows = rows;
  context.length = length;
  context.dropout = dropout;
  const at::Tensor positions = batch.positions.reshape({-1});
  for (const auto& [cos, sin] : rope_tables_) {
    context.rotations.emplace_back(cos.index_select(0, positions).unsqueeze(1), sin.index_select(0, positions).unsqueeze(1));
  }
  context.mask = {batch.segments.contiguous(), batch.positions.contiguous()};
  return context;
}

at::Tensor LoraModel::LossSum(const TrainingBatch& batch, const Context& context) const {
  const int64_t rows = context.rows, length = context.length;
  const int64_t d = config_.n_embd;
  // The embedding of each token, dequantized; the base is frozen, so no gradient goes there.
  at::Tensor x = at::empty({rows * length, d}, at::kFloat);
  const at::Tensor tokens = batch.tokens.reshape({-1}).contiguous();
  const uint64_t row_bytes = engine::RowBytes(weights_.embedding_type, static_cast<uint64_t>(d));
  const int64_t* ids = tokens.data_ptr<int64_t>();
  for (int64_t i = 0; i < rows * length; ++i) {
    const int64_t id = ids[i];
    (void)engine::Dequantize(weights_.embedding_type,
                             absl::MakeConstSpan(weights_.embedding + static_cast<uint64_t>(id) * row_bytes, row_bytes),
                             absl::MakeSpan(x.data_ptr<float>() + i * d, static_cast<size_t>(d)));
  }
  if (config_.embedding_scale != 1.0f) x.mul_(config_.embedding_scale);

  for (int32_t layer = 0; layer < config_.n_layer; ++layer) {
    x = recompute_layers_ && at::GradMode::is_enabled()
            ? CheckpointedLayer::apply(x, anchor_, this, static_cast<int64_t>(layer), &context,
                                       &layer_trainable_[layer])
            : Layer(layer, x, context);
  }
  // Only labelled tokens reach the (vocabulary-wide) output.
  const at::Tensor labels = batch.labels.reshape({-1});
  const at::Tensor labelled = labels.ge(0).nonzero().squeeze(1);
  const at::Tensor last = FusedRmsNorm(x.index_select(0, labelled), weights_.output_norm, config_.rms_norm_eps);
  return OutputLoss(last, labels.index_select(0, labelled), weights_.output, config_.final_softcap);
}

double LoraModel::LossAndBackward(const TrainingBatch& batch, const DropoutSeed& dropout, double loss_scale) const {
  at::AutoGradMode grad_mode(true);
  // Recomputed layers read the context during backward(): it lives until then.
  const Context context = MakeContext(batch, dropout);
  const at::Tensor loss = LossSum(batch, context);
  (loss * loss_scale).backward();
  return loss.item<double>();
}

double LoraModel::Loss(const TrainingBatch& batch) const {
  at::NoGradGuard no_grad;
  return LossSum(batch, MakeContext(batch, DropoutSeed{})).item<double>();
}

}  // namespace edgellm::train
