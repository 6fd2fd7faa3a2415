#include "daemon/engine/torch_forward.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/cpu_forward.h"
#include "daemon/engine/forward_backend.h"
#include "daemon/engine/linear.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/engine/thread_pool.h"
#include "daemon/engine/torch_ops.h"

namespace edgellm::engine {
namespace {

// The model's loaded weights (cpu_forward.h) as tensors and Linears; the
// optional ones are undefined where the layer has none.
struct LayerWeights {
  at::Tensor attn_norm;  // [n_embd]
  std::unique_ptr<Linear> wq, wk, wv, wo;
  at::Tensor q_bias, k_bias, v_bias, q_norm, k_norm;
  at::Tensor post_attention_norm;
  at::Tensor ffn_norm;  // [n_embd]
  std::unique_ptr<Linear> gate, up, down;
  at::Tensor post_ffn_norm;
  int rope_table = 0;  // index into TorchForward::rope_tables_
};

// Writes `rows` ([n, n_head_kv, head_dim], contiguous on the CPU) as the
// keys (or values) of `layer` at positions pos0.. of `cache`, whose blocks
// are reserved.
void WriteKvRows(KvCache& cache, int layer, bool values, const at::Tensor& rows, int32_t pos0) {
  const KvBlockPool& pool = cache.pool();
  const int64_t heads = pool.shape().n_head_kv, head_dim = pool.shape().head_dim;
  const int32_t block_size = pool.block_size();
  const float* src = rows.data_ptr<float>();
  const int32_t n = static_cast<int32_t>(rows.size(0));
  for (int32_t i = 0; i < n; ++i) {
    const int32_t p = pos0 + i;
    const int32_t block = cache.block_table()[p / block_size];
    for (int64_t h = 0; h < heads; ++h) {
      pool.StoreHeadRow(src + (i * heads + h) * head_dim, pool.HeadData(block, layer, h, values), p % block_size,
                        values);
    }
  }
}

// The keys (or values) of `layer` at positions 0..total-1 of `cache`:
// [n_head_kv, total, head_dim], contiguous.
at::Tensor GatherKvRows(const KvCache& cache, int layer, bool values, int32_t total) {
  const KvBlockPool& pool = cache.pool();
  const int64_t heads = pool.shape().n_head_kv, head_dim = pool.shape().head_dim;
  const int32_t block_size = pool.block_size();
  at::Tensor out = at::empty({heads, total, head_dim}, at::kFloat);
  float* dst = out.data_ptr<float>();
  for (int32_t p = 0; p < total; p += block_size) {
    const int32_t run = std::min(block_size, total - p);
    const int32_t block = cache.block_table()[p / block_size];
    for (int64_t h = 0; h < heads; ++h) {
      pool.LoadHeadRows(pool.HeadData(block, layer, h, values), 0, run, values, dst + (h * total + p) * head_dim);
    }
  }
  return out;
}

void CopyLogits(const at::Tensor& logits, std::vector<float>* out) {
  const at::Tensor cpu = logits.to(at::kCPU).contiguous();
  out->resize(static_cast<size_t>(cpu.numel()));
  std::memcpy(out->data(), cpu.data_ptr<float>(), out->size() * sizeof(float));
}
class TorchForward final : public ForwardBackend {
 public:
  TorchForward(const LlamaModel& model, at::Device device)
      : model_(model), config_(model.config()), device_(device) {}

  absl::Status Load();
  absl::Status Forward(absl::Span<const TokenId> tokens, absl::Span<const CpuSequence> sequences,
                       std::vector<float>* logits) const override;

 private:
  // Rows [first, first + count) of a batch: one sequence at positions pos0 onward.
  struct SequenceRows {
    int64_t first;
    int64_t count;
    int32_t pos0;
    KvCache* cache;  // nullptr: attend only to these rows
    bool all_logits;  // every row's logits, or only the last row's
    const LoraAdapter* adapter;  // nullptr: none
  };

  // Adds each adapted sequence's low-rank term to its rows of `y`, the
  // projection `target` of `x`.
  void AddAdapters(at::Tensor& y, const at::Tensor& x, const std::vector<SequenceRows>& seqs, int layer,
                   LoraTarget target) const;

  // `n` floats of the model's, or undefined for none.
  at::Tensor Vector(const float* values, int64_t n) const;
  at::Tensor Embed(absl::Span<const TokenId> tokens) const;
  // x: [rows, n_embd], the rows of every sequence in `seqs`; keys and values
  // are appended to each sequence's cache. Returns the logits of every row
  // for the sequences that ask for all_logits, else of their last row.
  at::Tensor Run(at::Tensor x, const std::vector<SequenceRows>& seqs) const;
  // A projection's rows [n, heads * head_dim] as [n, heads, head_dim], with
  // the layer's bias added and each head normed where the layer has them.
  at::Tensor HeadsOf(const at::Tensor& projected, const at::Tensor& bias, const at::Tensor& norm,
                     int64_t heads) const;
  // cos, sin: [rows, 1, rope_dims / 2]; masks: per sequence, undefined for one row.
  at::Tensor Attention(const LayerWeights& w, const at::Tensor& h, const std::vector<SequenceRows>& seqs,
                       const at::Tensor& cos, const at::Tensor& sin, int layer,
                       const std::vector<at::Tensor>& masks) const;

  const LlamaModel& model_;
  const LlamaConfig& config_;
  at::Device device_;
  std::vector<LayerWeights> layers_;
  at::Tensor output_norm_;  // [n_embd]
  std::unique_ptr<Linear> output_;
  // The distinct rotary tables of the layers (cos, sin), [context, rope_dims / 2] each.
  std::vector<std::pair<at::Tensor, at::Tensor>> rope_tables_;
};

at::Tensor TorchForward::Vector(const float* values, int64_t n) const {
  return values != nullptr ? VectorTensor(values, n, device_) : at::Tensor();
}

absl::Status TorchForward::Load() {
  // The weights the model's loader validated and prepared: one loader for every forward.
  const CpuModelWeights& cpu = model_.cpu_weights();
  const int64_t d = config_.n_embd, hd = config_.head_dim;
  const int64_t q_width = config_.n_head * hd, kv_width = config_.n_head_kv * hd;
  layers_.resize(config_.n_layer);
  for (int32_t i = 0; i < config_.n_layer; ++i) {
    const CpuLayerWeights& c = cpu.layers[i];
    LayerWeights& w = layers_[i];
    w.attn_norm = Vector(c.attn_norm, d);
    EDGELLM_ASSIGN_OR_RETURN(w.wq, MakeLinear(c.wq, device_));
    EDGELLM_ASSIGN_OR_RETURN(w.wk, MakeLinear(c.wk, device_));
    EDGELLM_ASSIGN_OR_RETURN(w.wv, MakeLinear(c.wv, device_));
    EDGELLM_ASSIGN_OR_RETURN(w.wo, MakeLinear(c.wo, device_));
    w.q_bias = Vector(c.q_bias, q_width);
    w.k_bias = Vector(c.k_bias, kv_width);
    w.v_bias = Vector(c.v_bias, kv_width);
    w.q_norm = Vector(c.q_norm, hd);
    w.k_norm = Vector(c.k_norm, hd);
    w.post_attention_norm = Vector(c.post_attention_norm, d);
    w.post_ffn_norm = Vector(c.post_ffn_norm, d);
    w.ffn_norm = Vector(c.ffn_norm, d);
    EDGELLM_ASSIGN_OR_RETURN(w.gate, MakeLinear(c.gate, device_));
    EDGELLM_ASSIGN_OR_RETURN(w.up, MakeLinear(c.up, device_));
    EDGELLM_ASSIGN_OR_RETURN(w.down, MakeLinear(c.down, device_));
  }
  output_norm_ = Vector(cpu.output_norm, d);
  EDGELLM_ASSIGN_OR_RETURN(output_, MakeLinear(cpu.output, device_));
  // The model's own rotary tables (rope factors included), copied to the device.
  const int64_t half = config_.rope_dims / 2;
  std::vector<const float*> seen;
  for (int32_t i = 0; i < config_.n_layer; ++i) {
    const CpuLayerWeights& c = cpu.layers[i];
    auto at_table = std::find(seen.begin(), seen.end(), c.rope_cos);
    if (at_table == seen.end()) {
      seen.push_back(c.rope_cos);
      auto table = [&](const float* values) {
        return at::from_blob(const_cast<float*>(values), {model_.context_length(), half}, at::kFloat)
            .to(device_, false, true);
      };
      rope_tables_.emplace_back(table(c.rope_cos), table(c.rope_sin));
      at_table = seen.end() - 1;
    }
    layers_[i].rope_table = static_cast<int>(at_table - seen.begin());
  }
  return absl::OkStatus();
}

at::Tensor TorchForward::Embed(absl::Span<const TokenId> tokens) const {
  const int64_t n = static_cast<int64_t>(tokens.size());
  at::Tensor x = at::empty({n, config_.n_embd}, at::kFloat);
  const CpuModelWeights& cpu = model_.cpu_weights();
  const uint64_t row_bytes = RowBytes(cpu.embedding_type, config_.n_embd);
  float* out = x.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    // Ids were checked and the row size validated at load: this cannot fail.
    (void)Dequantize(cpu.embedding_type, absl::MakeConstSpan(cpu.embedding + tokens[i] * row_bytes, row_bytes),
                     absl::MakeSpan(out + i * config_.n_embd, config_.n_embd));
  }
  if (config_.embedding_scale != 1.0f) x.mul_(config_.embedding_scale);
  return device_.is_cpu() ? x : x.to(device_);
}

at::Tensor TorchForward::HeadsOf(const at::Tensor& projected, const at::Tensor& bias, const at::Tensor& norm,
                                 int64_t heads) const {
  const at::Tensor biased = bias.defined() ? projected + bias : projected;
  const at::Tensor split = biased.view({biased.size(0), heads, config_.head_dim});
  return norm.defined() ? RmsNorm(split, norm, config_.rms_norm_eps) : split;
}

at::Tensor TorchForward::Attention(const LayerWeights& w, const at::Tensor& h,
                                       const std::vector<SequenceRows>& seqs, const at::Tensor& cos,
                                       const at::Tensor& sin, int layer, const std::vector<at::Tensor>& masks) const {
  const int64_t n_head = config_.n_head, n_kv = config_.n_head_kv, hd = config_.head_dim;
  const int64_t group = n_head / n_kv;
  // The projections run on every row of the batch at once: each weight is read once.
  at::Tensor q_rows = w.wq->Forward(h), k_rows = w.wk->Forward(h), v_rows = w.wv->Forward(h);
  AddAdapters(q_rows, h, seqs, layer, LoraTarget::kQ);
  AddAdapters(k_rows, h, seqs, layer, LoraTarget::kK);
  AddAdapters(v_rows, h, seqs, layer, LoraTarget::kV);
  at::Tensor q = ApplyRope(HeadsOf(q_rows, w.q_bias, w.q_norm, n_head), cos, sin, config_.rope_dims,
                           config_.arch->rope);
  // Where the family scales the query after its rotation, the scores are not scaled again.
  if (config_.arch->prescaled_query) q = q * config_.attention_scale;
  const double score_scale = config_.arch->prescaled_query ? 1.0 : config_.attention_scale;
  const at::Tensor k = ApplyRope(HeadsOf(k_rows, w.k_bias, w.k_norm, n_kv), cos, sin, config_.rope_dims,
                                 config_.arch->rope);
  const at::Tensor v = HeadsOf(v_rows, w.v_bias, at::Tensor(), n_kv);

  std::vector<at::Tensor> outs;
  outs.reserve(seqs.size());
  for (size_t s = 0; s < seqs.size(); ++s) {
    const SequenceRows& r = seqs[s];
    const int64_t n = r.count;
    const at::Tensor q_s = q.narrow(0, r.first, n), k_s = k.narrow(0, r.first, n), v_s = v.narrow(0, r.first, n);
    at::Tensor keys, values;  // [n_kv, T, hd]
    if (r.cache != nullptr) {
      // KV blocks live in host memory: compute on another device copies through it.
      const int32_t total = r.pos0 + static_cast<int32_t>(n);
      WriteKvRows(*r.cache, layer, false, k_s.to(at::kCPU).contiguous(), r.pos0);
      WriteKvRows(*r.cache, layer, true, v_s.to(at::kCPU).contiguous(), r.pos0);
      keys = GatherKvRows(*r.cache, layer, false, total).to(device_);
      values = GatherKvRows(*r.cache, layer, true, total).to(device_);
    } else {
      keys = k_s.transpose(0, 1);
      values = v_s.transpose(0, 1);
    }
    const int64_t total = keys.size(1);
    // Query head h reads KV head h / group: view the queries as [n_kv, group * n, hd].
    const at::Tensor queries = q_s.transpose(0, 1).reshape({n_kv, group * n, hd});
    at::Tensor scores = SoftCap(at::matmul(queries, keys.transpose(1, 2)).mul_(score_scale), config_.attention_softcap);
    if (masks[s].defined()) {
      scores = scores.view({n_kv, group, n, total}).add_(masks[s]).view({n_kv, group * n, total});
    }
    const at::Tensor probs = at::softmax(scores, -1);
    outs.push_back(at::matmul(probs, values).view({n_head, n, hd}).transpose(0, 1).reshape({n, n_head * hd}));
  }
  const at::Tensor attended = outs.size() == 1 ? outs[0] : at::cat(outs, 0);
  at::Tensor projected = w.wo->Forward(attended);
  AddAdapters(projected, attended, seqs, layer, LoraTarget::kO);
  return projected;
}

void TorchForward::AddAdapters(at::Tensor& y, const at::Tensor& x, const std::vector<SequenceRows>& seqs, int layer,
                               LoraTarget target) const {
  for (const SequenceRows& r : seqs) {
    const LoraWeights* w = r.adapter != nullptr ? r.adapter->Find(layer, target) : nullptr;
    if (w == nullptr) continue;
    const int64_t rank = r.adapter->config().rank;
    const at::Tensor a = at::from_blob(const_cast<float*>(w->a.data()), {rank, w->in}, at::kFloat).to(device_);
    const at::Tensor b = at::from_blob(const_cast<float*>(w->b.data()), {w->out, rank}, at::kFloat).to(device_);
    y.narrow(0, r.first, r.count).add_(at::linear(at::linear(x.narrow(0, r.first, r.count), a), b),
                                       r.adapter->scale());
  }
}

at::Tensor TorchForward::Run(at::Tensor x, const std::vector<SequenceRows>& seqs) const {
  std::vector<int64_t> positions, logit_rows;
  // [n, T]: -inf where position t is in the future of query i (and, for the
  // sliding layers, before its window); undefined where nothing is masked.
  std::vector<at::Tensor> masks, sliding_masks;
  const int64_t window = config_.sliding_window;
  for (const SequenceRows& r : seqs) {
    for (int64_t i = 0; i < r.count; ++i) positions.push_back(r.pos0 + i);
    for (int64_t i = r.all_logits ? 0 : r.count - 1; i < r.count; ++i) logit_rows.push_back(r.first + i);
    const bool sliding = window > 0 && r.pos0 + r.count > window;
    // A single decode row with no window to apply masks nothing: build nothing for it.
    at::Tensor none;
    if (r.count > 1 || sliding) {
      none = at::full({r.count, r.pos0 + r.count}, -std::numeric_limits<float>::infinity(), x.options());
    }
    const at::Tensor causal = r.count == 1 ? at::Tensor() : none.triu(r.pos0 + 1);
    masks.push_back(causal);
    if (sliding) {
      const at::Tensor before = none.tril(r.pos0 - window);
      sliding_masks.push_back(causal.defined() ? at::minimum(causal, before) : before);
    } else {
      sliding_masks.push_back(causal);
    }
  }
  const at::Tensor position_index = at::tensor(positions, at::TensorOptions(at::kLong).device(device_));
  std::vector<std::pair<at::Tensor, at::Tensor>> rotations;  // per table: [rows, 1, rope/2]
  for (const auto& [cos, sin] : rope_tables_) {
    rotations.emplace_back(cos.index_select(0, position_index).unsqueeze(1),
                           sin.index_select(0, position_index).unsqueeze(1));
  }
  const float eps = config_.rms_norm_eps;
  for (int layer = 0; layer < config_.n_layer; ++layer) {
    const LayerWeights& w = layers_[layer];
    const auto& [cos, sin] = rotations[w.rope_table];
    at::Tensor attended = Attention(w, RmsNorm(x, w.attn_norm, eps), seqs, cos, sin, layer,
                                    config_.IsSlidingLayer(layer) ? sliding_masks : masks);
    if (w.post_attention_norm.defined()) attended = RmsNorm(attended, w.post_attention_norm, eps);
    x = x + attended;
    const at::Tensor h = RmsNorm(x, w.ffn_norm, eps);
    at::Tensor gate = w.gate->Forward(h), up = w.up->Forward(h);
    AddAdapters(gate, h, seqs, layer, LoraTarget::kGate);
    AddAdapters(up, h, seqs, layer, LoraTarget::kUp);
    const at::Tensor activated = GatedActivation(config_.arch->activation, gate, up, /*round_as_ggml=*/true);
    at::Tensor down = w.down->Forward(activated);
    AddAdapters(down, activated, seqs, layer, LoraTarget::kDown);
    if (w.post_ffn_norm.defined()) down = RmsNorm(down, w.post_ffn_norm, eps);
    x = x + down;
  }
  if (static_cast<int64_t>(logit_rows.size()) < x.size(0)) {
    x = x.index_select(0, at::tensor(logit_rows, at::TensorOptions(at::kLong).device(device_)));
  }
  return SoftCap(output_->Forward(RmsNorm(x, output_norm_, eps)), config_.final_softcap);
}

absl::Status TorchForward::Forward(absl::Span<const TokenId> tokens, absl::Span<const CpuSequence> sequences,
                                   std::vector<float>* logits) const {
  std::vector<SequenceRows> rows;
  for (const CpuSequence& s : sequences) {
    rows.push_back(
        {s.first, s.count, s.cache != nullptr ? s.cache->length() : 0, s.cache, s.all_logits, s.adapter});
  }
  try {
    c10::InferenceMode inference_mode;
    CopyLogits(Run(Embed(tokens), rows), logits);
  } catch (const c10::Error& e) {
    return absl::InternalError(edgellm::StrCat("forward: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status UseLibTorch(LlamaModel& model, const std::string& device) {
  if (model.packed_matrices() > 0) {
    return absl::FailedPreconditionError("model: its weights were packed for the engine's kernels at load; "
                                         "LibTorch needs them as the file has them");
  }
  at::Device parsed(at::kCPU);
  try {
    parsed = at::Device(device);
  } catch (const c10::Error&) {
    return absl::InvalidArgumentError(edgellm::StrCat("model: bad device '", device, "'"));
  }
  // With OpenBLAS present the engine's pool splits every product and each
  // part runs single-threaded, as compute_threads.h explains; else LibTorch's
  // own pool gets the threads.
  const bool have_openblas = dlsym(RTLD_DEFAULT, "openblas_set_num_threads") != nullptr;
  at::set_num_threads(have_openblas ? 1 : ThreadPool::Shared().size());
  auto backend = std::make_unique<TorchForward>(model, parsed);
  try {
    EDGELLM_RETURN_IF_ERROR(backend->Load());
  } catch (const c10::Error& e) {
    return absl::InternalError(edgellm::StrCat("model: ", e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("model: out of memory while loading weights");
  }
  model.AttachBackend(std::move(backend));
  return absl::OkStatus();
}

}  // namespace edgellm::engine
