#include "daemon/train/fused_attention.h"

#include <cblas.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "daemon/engine/fast_exp.h"
#include "daemon/engine/thread_pool.h"

namespace edgellm::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// One row and head's view of the tensors: where its queries, keys, values
// (and their gradients) start, and the row strides.
struct Geometry {
  AttentionShape shape;
  const int64_t* segments = nullptr;
  const int64_t* positions = nullptr;

  int64_t q_stride() const { return shape.heads * shape.head_dim; }
  int64_t kv_stride() const { return shape.kv_heads * shape.head_dim; }
  int64_t QueryOffset(int64_t row, int64_t head) const { return row * shape.length * q_stride() + head * shape.head_dim; }
  int64_t KeyOffset(int64_t row, int64_t head) const {
    const int64_t kv_head = head / (shape.heads / shape.kv_heads);
    return row * shape.length * kv_stride() + kv_head * shape.head_dim;
  }

  bool Sees(int64_t row, int64_t i, int64_t j) const {
    if (i == j) return true;
    const int64_t* segment = segments + row * shape.length;
    if (j > i || segment[i] != segment[j]) return false;
    const int64_t* position = positions + row * shape.length;
    return shape.window <= 0 || position[i] - position[j] < shape.window;
  }
};

// Scratch of length × length floats, one per thread and use.
float* Scratch(std::vector<float>& buffer, int64_t length) {
  const size_t size = static_cast<size_t>(length * length);
  if (buffer.size() < size) buffer.resize(size);
  return buffer.data();
}

// The scores of one row and head, scaled and capped, into s ([length, length]);
// positions a query does not see get -inf.
void Scores(const Geometry& g, const float* q, const float* k, int64_t row, int64_t head, float* s) {
  const AttentionShape& shape = g.shape;
  const int length = static_cast<int>(shape.length);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, length, length, static_cast<int>(shape.head_dim), shape.scale,
              q + g.QueryOffset(row, head), static_cast<int>(g.q_stride()), k + g.KeyOffset(row, head),
              static_cast<int>(g.kv_stride()), 0.0f, s, length);
  const float cap = shape.softcap;
  for (int64_t i = 0; i < length; ++i) {
    float* s_row = s + i * length;
    for (int64_t j = 0; j < length; ++j) {
      if (!g.Sees(row, i, j)) {
        s_row[j] = -std::numeric_limits<float>::infinity();
      } else if (cap > 0.0f) {
        s_row[j] = cap * std::tanh(s_row[j] / cap);
      }
    }
  }
}

void Forward(const Geometry& g, const float* q, const float* k, const float* v, float* out, float* logsumexp) {
  const AttentionShape& shape = g.shape;
  const int64_t length = shape.length;
  engine::ThreadPool::Shared().Run(shape.rows * shape.heads, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> buffer;
    float* p = Scratch(buffer, length);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t row = task / shape.heads, head = task % shape.heads;
      Scores(g, q, k, row, head, p);
      float* lse = logsumexp + task * length;
      for (int64_t i = 0; i < length; ++i) {
        float* p_row = p + i * length;
        const float largest = *std::max_element(p_row, p_row + i + 1);
        for (int64_t j = 0; j <= i; ++j) p_row[j] -= largest;
        engine::ExpInPlace(p_row, i + 1);
        double sum = 0.0;
        for (int64_t j = 0; j <= i; ++j) sum += p_row[j];
        const float inverse = static_cast<float>(1.0 / sum);
        for (int64_t j = 0; j <= i; ++j) p_row[j] *= inverse;
        std::fill(p_row + i + 1, p_row + length, 0.0f);
        lse[i] = largest + static_cast<float>(std::log(sum));
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(length), static_cast<int>(shape.head_dim),
                  static_cast<int>(length), 1.0f, p, static_cast<int>(length), v + g.KeyOffset(row, head),
                  static_cast<int>(g.kv_stride()), 0.0f, out + g.QueryOffset(row, head), static_cast<int>(g.q_stride()));
    }
  });
}

// Gradients of q, k and v. Each task is one row and key-value head, so the
// query heads that share it add into its dk and dv one after another.
void Backward(const Geometry& g, const float* q, const float* k, const float* v, const float* out,
              const float* logsumexp, const float* grad_out, float* dq, float* dk, float* dv) {
  const AttentionShape& shape = g.shape;
  const int64_t length = shape.length, hd = shape.head_dim, group = shape.heads / shape.kv_heads;
  const int n = static_cast<int>(length), lq = static_cast<int>(g.q_stride()), lkv = static_cast<int>(g.kv_stride());
  engine::ThreadPool::Shared().Run(shape.rows * shape.kv_heads, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores_buffer, dp_buffer, grad_buffer;
    float* p = Scratch(scores_buffer, length);
    float* dp = Scratch(dp_buffer, length);
    float* ds = Scratch(grad_buffer, length);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t row = task / shape.kv_heads;
      for (int64_t head = task % shape.kv_heads * group; head < (task % shape.kv_heads + 1) * group; ++head) {
        const int64_t qo = g.QueryOffset(row, head), ko = g.KeyOffset(row, head);
        const float* lse = logsumexp + (row * shape.heads + head) * length;
        Scores(g, q, k, row, head, p);
        // dP = dO · vᵀ.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, static_cast<int>(hd), 1.0f, grad_out + qo, lq,
                    v + ko, lkv, 0.0f, dp, n);
        for (int64_t i = 0; i < length; ++i) {
          float* p_row = p + i * length;
          const float* dp_row = dp + i * length;
          float* ds_row = ds + i * length;
          float delta = 0.0f;  // Σ dO · O of this query: the softmax's row term
          for (int64_t c = 0; c < hd; ++c) delta += grad_out[qo + i * lq + c] * out[qo + i * lq + c];
          // The cap's slope, 1 − (s / cap)², while p holds the capped scores
          // (any finite value where the query does not see: its probability is 0).
          for (int64_t j = 0; j <= i; ++j) {
            const bool capped = shape.softcap > 0.0f && p_row[j] != -std::numeric_limits<float>::infinity();
            const float t = capped ? p_row[j] / shape.softcap : 0.0f;
            ds_row[j] = 1.0f - t * t;
          }
          // The probabilities again, from the scores and the forward's log-sum-exp
          // (exp(-inf) is 0 where the query does not see); later keys are 0.
          for (int64_t j = 0; j <= i; ++j) p_row[j] -= lse[i];
          engine::ExpInPlace(p_row, i + 1);
          std::fill(p_row + i + 1, p_row + length, 0.0f);
          for (int64_t j = 0; j <= i; ++j) ds_row[j] *= p_row[j] * (dp_row[j] - delta) * shape.scale;
          std::fill(ds_row + i + 1, ds_row + length, 0.0f);
        }
        // dv += pᵀ · dO; dq = dS · k; dk += dSᵀ · q.
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, static_cast<int>(hd), n, 1.0f, p, n, grad_out + qo, lq,
                    1.0f, dv + ko, lkv);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, static_cast<int>(hd), n, 1.0f, ds, n, k + ko, lkv,
                    0.0f, dq + qo, lq);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, static_cast<int>(hd), n, 1.0f, ds, n, q + qo, lq, 1.0f,
                    dk + ko, lkv);
      }
    }
  });
}

Geometry GeometryOf(AutogradContext* ctx) {
  Geometry g;
  const auto& d = ctx->saved_data;
  g.shape.rows = d.at("rows").toInt();
  g.shape.length = d.at("length").toInt();
  g.shape.heads = d.at("heads").toInt();
  g.shape.kv_heads = d.at("kv_heads").toInt();
  g.shape.head_dim = d.at("head_dim").toInt();
  g.shape.scale = static_cast<float>(d.at("scale").toDouble());
  g.shape.softcap = static_cast<float>(d.at("softcap").toDouble());
  g.shape.window = static_cast<int32_t>(d.at("window").toInt());
  return g;
}

class FusedAttentionFunction : public torch::autograd::Function<FusedAttentionFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q_in, const at::Tensor& k_in,
                            const at::Tensor& v_in, const at::Tensor& segments, const at::Tensor& positions,
                            const AttentionShape* shape_in) {
    const AttentionShape& shape = *shape_in;
    const at::Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    const at::Tensor seg = segments.contiguous(), pos = positions.contiguous();
    Geometry g{shape, seg.data_ptr<int64_t>(), pos.data_ptr<int64_t>()};
    at::Tensor out = at::empty({shape.rows * shape.length, shape.heads * shape.head_dim}, q.options());
    at::Tensor logsumexp = at::empty({shape.rows, shape.heads, shape.length}, q.options());
    Forward(g, q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), out.data_ptr<float>(),
            logsumexp.data_ptr<float>());
    ctx->save_for_backward({q, k, v, out, logsumexp, seg, pos});
    auto& d = ctx->saved_data;
    d["rows"] = shape.rows;
    d["length"] = shape.length;
    d["heads"] = shape.heads;
    d["kv_heads"] = shape.kv_heads;
    d["head_dim"] = shape.head_dim;
    d["scale"] = static_cast<double>(shape.scale);
    d["softcap"] = static_cast<double>(shape.softcap);
    d["window"] = static_cast<int64_t>(shape.window);
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &logsumexp = saved[4];
    Geometry g = GeometryOf(ctx);
    g.segments = saved[5].data_ptr<int64_t>();
    g.positions = saved[6].data_ptr<int64_t>();
    const at::Tensor grad_out = grads[0].contiguous();
    at::Tensor dq = at::empty_like(q), dk = at::zeros_like(k), dv = at::zeros_like(v);
    Backward(g, q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), out.data_ptr<float>(),
             logsumexp.data_ptr<float>(), grad_out.data_ptr<float>(), dq.data_ptr<float>(), dk.data_ptr<float>(),
             dv.data_ptr<float>());
    return {dq, dk, dv, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor FusedAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMask& mask,
                          const AttentionShape& shape) {
  return FusedAttentionFunction::apply(q, k, v, mask.segments, mask.positions, &shape);
}

}  // namespace edgellm::train
