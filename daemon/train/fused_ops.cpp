#include "daemon/train/fused_ops.h"

#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <vector>

#include "daemon/engine/thread_pool.h"

namespace edgellm::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor WeightView(const float* weight, int64_t size) {
  return at::from_blob(const_cast<float*>(weight), {size}, at::TensorOptions(at::kFloat));
}

class RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const float* weight, double eps) {
    const at::Tensor w = WeightView(weight, x.size(-1));
    const at::Tensor inverse_rms = at::rsqrt(x.square().mean(-1, /*keepdim=*/true) + eps);
    ctx->save_for_backward({x, inverse_rms});
    ctx->saved_data["weight"] = reinterpret_cast<int64_t>(weight);
    return x * inverse_rms * w;
  }

  // With r = rsqrt(mean(x²) + eps) and gw = grad · w:
  // dx = r · gw − x · r³ · mean(gw · x).
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &inverse_rms = saved[1];
    const auto* weight = reinterpret_cast<const float*>(ctx->saved_data["weight"].toInt());
    const at::Tensor gw = grads[0] * WeightView(weight, x.size(-1));
    const at::Tensor projection = (gw * x).mean(-1, /*keepdim=*/true) * inverse_rms.pow(3);
    return {gw * inverse_rms - x * projection, at::Tensor(), at::Tensor()};
  }
};

class SiluGluFunction : public torch::autograd::Function<SiluGluFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    ctx->save_for_backward({gate, up});
    return at::silu(gate) * up;
  }

  // silu(g)' = s · (1 + g · (1 − s)) with s = sigmoid(g).
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &gate = saved[0], &up = saved[1];
    const at::Tensor s = at::sigmoid(gate);
    const at::Tensor grad_gate = grads[0] * up * s * (1 + gate * (1 - s));
    const at::Tensor grad_up = grads[0] * gate * s;
    return {grad_gate, grad_up};
  }
};

// Turns rows of logits (capped here where softcap > 0) into their losses
// and, when `gradient`, into ∂loss/∂(x · outputᵀ) in place. Each pool task
// takes a run of rows through ATen's vectorized operations.
void LossRows(float* logits, int64_t rows, int64_t vocab, const int64_t* labels, float softcap, bool gradient,
              double* losses) {
  engine::ThreadPool::Shared().Run(rows, 8, [&](int64_t begin, int64_t end) {
    at::Tensor z = at::from_blob(logits + begin * vocab, {end - begin, vocab}, at::TensorOptions(at::kFloat));
    const at::Tensor label = at::from_blob(const_cast<int64_t*>(labels + begin), {end - begin, 1},
                                           at::TensorOptions(at::kLong));
    at::Tensor cap_slope;  // 1 − tanh², the cap's derivative
    if (softcap > 0.0f) {
      z.div_(softcap).tanh_();
      cap_slope = 1 - z.square();
      z.mul_(softcap);
    }
    const at::Tensor largest = std::get<0>(z.max(1, /*keepdim=*/true));
    const at::Tensor logsumexp = (z - largest).exp_().sum(1, /*keepdim=*/true).log_().add_(largest);
    const at::Tensor loss = (logsumexp - z.gather(1, label)).to(at::kDouble);
    std::copy_n(loss.data_ptr<double>(), end - begin, losses + begin);
    if (!gradient) return;
    z.sub_(logsumexp).exp_();
    z.scatter_add_(1, label, at::full({end - begin, 1}, -1.0f, z.options()));
    if (cap_slope.defined()) z.mul_(cap_slope);
  });
}

class OutputLossFunction : public torch::autograd::Function<OutputLossFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& labels_in,
                            const engine::WeightMatrix* output, double softcap) {
    const at::Tensor x = x_in.contiguous(), labels = labels_in.contiguous();
    const int64_t rows = x.size(0), in = output->in_features, vocab = output->out_features;
    TORCH_CHECK(x.size(1) == in, "output loss: rows of ", x.size(1), " values for a matrix of ", in);
    TORCH_CHECK(labels.numel() == rows, "output loss: ", labels.numel(), " labels for ", rows, " rows");
    const int64_t* label = labels.data_ptr<int64_t>();
    for (int64_t r = 0; r < rows; ++r) {
      TORCH_CHECK(label[r] >= 0 && label[r] < vocab, "output loss: label ", label[r], " outside the vocabulary");
    }
    const bool gradient = x_in.requires_grad();
    at::Tensor grad_x = gradient ? at::empty({rows, in}, x.options()) : at::Tensor();
    at::Tensor logits = at::empty({std::min(rows, kOutputLossChunkRows), vocab}, x.options());
    std::vector<double> losses(static_cast<size_t>(rows));
    for (int64_t first = 0; first < rows; first += kOutputLossChunkRows) {
      const int64_t n = std::min(kOutputLossChunkRows, rows - first);
      engine::Multiply(*output, x.data_ptr<float>() + first * in, logits.data_ptr<float>(), n,
                       ForwardPrecision(*output));
      LossRows(logits.data_ptr<float>(), n, vocab, label + first, static_cast<float>(softcap), gradient,
               losses.data() + first);
      if (gradient) {
        engine::MultiplyTransposed(*output, logits.data_ptr<float>(), grad_x.data_ptr<float>() + first * in, n);
      }
    }
    if (gradient) ctx->save_for_backward({grad_x});
    double sum = 0.0;
    for (double loss : losses) sum += loss;
    return at::scalar_tensor(sum, x.options());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {ctx->get_saved_variables()[0] * grads[0], at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

engine::ActivationPrecision ForwardPrecision(const engine::WeightMatrix& weight) {
  return weight.type == engine::GgmlType::kF32 ? engine::ActivationPrecision::kFloat
                                               : engine::ActivationPrecision::kInt8;
}

at::Tensor FusedRmsNorm(const at::Tensor& x, const float* weight, float eps) {
  return RmsNormFunction::apply(x, weight, static_cast<double>(eps));
}

at::Tensor FusedSiluGlu(const at::Tensor& gate, const at::Tensor& up) { return SiluGluFunction::apply(gate, up); }

at::Tensor OutputLoss(const at::Tensor& x, const at::Tensor& labels, const engine::WeightMatrix& output,
                      float softcap) {
  return OutputLossFunction::apply(x, labels, &output, static_cast<double>(softcap));
}

}  // namespace edgellm::train
