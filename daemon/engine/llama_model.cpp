#include "daemon/engine/llama_model.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>

#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/compute_threads.h"
#include "daemon/engine/cpu_forward.h"
#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/linear.h"

namespace edgellm::engine {
namespace {

constexpr int32_t kDefaultMaxContext = 4096;

struct LayerWeights {
  at::Tensor attn_norm;  // [n_embd]
  std::unique_ptr<Linear> wq, wk, wv, wo;
  at::Tensor ffn_norm;  // [n_embd]
  std::unique_ptr<Linear> gate, up, down;
};

at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, float eps) {
  return x * at::rsqrt(x.square().mean(-1, /*keepdim=*/true) + eps) * weight;
}

// Rotates adjacent pairs (x[2i], x[2i+1]) of the first rope_dims of each head.
// x: [n, heads, head_dim]; cos, sin: [n, 1, rope_dims / 2].
at::Tensor ApplyRope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t rope_dims) {
  const int64_t head_dim = x.size(-1);
  const at::Tensor pairs = x.narrow(-1, 0, rope_dims).unflatten(-1, {rope_dims / 2, 2});
  const at::Tensor x0 = pairs.select(-1, 0);
  const at::Tensor x1 = pairs.select(-1, 1);
  at::Tensor rotated = at::stack({x0 * cos - x1 * sin, x0 * sin + x1 * cos}, -1).flatten(-2);
  if (rope_dims == head_dim) return rotated;
  return at::cat({rotated, x.narrow(-1, rope_dims, head_dim - rope_dims)}, -1);
}

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
    float* block = pool.LayerData(cache.block_table()[p / block_size], layer, values);
    for (int64_t h = 0; h < heads; ++h) {
      std::memcpy(block + (h * block_size + p % block_size) * head_dim, src + (i * heads + h) * head_dim,
                  static_cast<size_t>(head_dim) * sizeof(float));
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
    const float* block = pool.LayerData(cache.block_table()[p / block_size], layer, values);
    for (int64_t h = 0; h < heads; ++h) {
      std::memcpy(dst + (h * total + p) * head_dim, block + h * block_size * head_dim,
                  static_cast<size_t>(run * head_dim) * sizeof(float));
    }
  }
  return out;
}

}  // namespace

struct LlamaModel::Impl {
  LlamaConfig config;
  ModelOptions options;
  at::Device device{at::kCPU};
  std::unique_ptr<GgufReader> gguf;
  std::unique_ptr<Tokenizer> tokenizer;
  const GgufTensorInfo* token_embd = nullptr;
  std::vector<LayerWeights> layers;
  at::Tensor output_norm;  // [n_embd]
  std::unique_ptr<Linear> output;
  at::Tensor rope_cos, rope_sin;  // [context, rope_dims / 2]
  int32_t context_length = 0;
  uint64_t weight_bytes_per_token = 0;
  // The fused torch-free pass (cpu_forward.h), when every weight is computed
  // in place on the CPU; otherwise forwards run on LibTorch.
  std::optional<CpuModelWeights> cpu;

  absl::Status LoadWeights();
  void PrepareCpuForward();
  absl::StatusOr<const GgufTensorInfo*> Expect(const std::string& name, std::vector<uint64_t> dims) const;
  absl::StatusOr<std::unique_ptr<Linear>> LoadLinear(const std::string& name, uint64_t in, uint64_t out);
  absl::StatusOr<at::Tensor> LoadVector(const std::string& name, uint64_t n);
  void BuildRopeTables();

  // Rows [first, first + count) of a batch: one sequence at positions pos0 onward.
  struct SequenceRows {
    int64_t first;
    int64_t count;
    int32_t pos0;
    KvCache* cache;  // nullptr: attend only to these rows
    bool all_logits;  // every row's logits, or only the last row's
  };

  absl::Status CheckTokens(absl::Span<const TokenId> tokens) const;
  at::Tensor Embed(absl::Span<const TokenId> tokens) const;
  // x: [rows, n_embd], the rows of every sequence in `seqs`; keys and values
  // are appended to each sequence's cache. Returns the logits of every row
  // for the sequences that ask for all_logits, else of their last row.
  at::Tensor Run(at::Tensor x, const std::vector<SequenceRows>& seqs) const;
  // cos, sin: [rows, 1, rope_dims / 2]; masks: per sequence, undefined for one row.
  at::Tensor Attention(const LayerWeights& w, const at::Tensor& h, const std::vector<SequenceRows>& seqs,
                       const at::Tensor& cos, const at::Tensor& sin, int layer,
                       const std::vector<at::Tensor>& masks) const;
};

absl::StatusOr<const GgufTensorInfo*> LlamaModel::Impl::Expect(const std::string& name,
                                                               std::vector<uint64_t> dims) const {
  const GgufTensorInfo* info = gguf->FindTensor(name);
  if (info == nullptr) return absl::InvalidArgumentError(edgellm::StrCat("model: missing tensor ", name));
  if (info->dims != dims) {
    auto show = [](const std::vector<uint64_t>& d) {
      std::string s = "[";
      for (size_t i = 0; i < d.size(); ++i) absl::StrAppend(&s, i ? ", " : "", d[i]);
      return s + "]";
    };
    return absl::InvalidArgumentError(
        edgellm::StrCat("model: tensor ", name, " has shape ", show(info->dims), ", expected ", show(dims)));
  }
  return info;
}

absl::StatusOr<std::unique_ptr<Linear>> LlamaModel::Impl::LoadLinear(const std::string& name, uint64_t in,
                                                                     uint64_t out) {
  EDGELLM_ASSIGN_OR_RETURN(const GgufTensorInfo* info, Expect(name, {in, out}));
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<Linear> linear,
                           MakeLinear(*info, gguf->TensorData(*info), device, options.dequantize_weights));
  weight_bytes_per_token += linear->weight_bytes();
  return linear;
}

absl::StatusOr<at::Tensor> LlamaModel::Impl::LoadVector(const std::string& name, uint64_t n) {
  EDGELLM_ASSIGN_OR_RETURN(const GgufTensorInfo* info, Expect(name, {n}));
  return TensorToFloat(*info, gguf->TensorData(*info), device);
}

absl::Status LlamaModel::Impl::LoadWeights() {
  const uint64_t d = config.n_embd;
  const uint64_t q_dim = static_cast<uint64_t>(config.n_head) * config.head_dim;
  const uint64_t kv_dim = static_cast<uint64_t>(config.n_head_kv) * config.head_dim;
  const uint64_t ff = config.n_ff;
  const uint64_t vocab = config.n_vocab;
  EDGELLM_ASSIGN_OR_RETURN(token_embd, Expect("token_embd.weight", {d, vocab}));
  if (!CanDequantize(token_embd->type)) {
    return absl::UnimplementedError(edgellm::StrCat("model: token_embd.weight type ",
                                                 TraitsOf(token_embd->type).name, " is not supported yet"));
  }
  layers.resize(config.n_layer);
  for (int32_t i = 0; i < config.n_layer; ++i) {
    const std::string p = edgellm::StrCat("blk.", i, ".");
    LayerWeights& w = layers[i];
    EDGELLM_ASSIGN_OR_RETURN(w.attn_norm, LoadVector(p + "attn_norm.weight", d));
    EDGELLM_ASSIGN_OR_RETURN(w.wq, LoadLinear(p + "attn_q.weight", d, q_dim));
    EDGELLM_ASSIGN_OR_RETURN(w.wk, LoadLinear(p + "attn_k.weight", d, kv_dim));
    EDGELLM_ASSIGN_OR_RETURN(w.wv, LoadLinear(p + "attn_v.weight", d, kv_dim));
    EDGELLM_ASSIGN_OR_RETURN(w.wo, LoadLinear(p + "attn_output.weight", q_dim, d));
    EDGELLM_ASSIGN_OR_RETURN(w.ffn_norm, LoadVector(p + "ffn_norm.weight", d));
    EDGELLM_ASSIGN_OR_RETURN(w.gate, LoadLinear(p + "ffn_gate.weight", d, ff));
    EDGELLM_ASSIGN_OR_RETURN(w.up, LoadLinear(p + "ffn_up.weight", d, ff));
    EDGELLM_ASSIGN_OR_RETURN(w.down, LoadLinear(p + "ffn_down.weight", ff, d));
  }
  EDGELLM_ASSIGN_OR_RETURN(output_norm, LoadVector("output_norm.weight", d));
  // Models with tied embeddings have no output.weight and reuse token_embd.
  const std::string output_name = gguf->FindTensor("output.weight") ? "output.weight" : "token_embd.weight";
  EDGELLM_ASSIGN_OR_RETURN(output, LoadLinear(output_name, d, vocab));
  return absl::OkStatus();
}

void LlamaModel::Impl::PrepareCpuForward() {
  if (!device.is_cpu() || output->in_place() == nullptr) return;
  CpuModelWeights w{token_embd->type, gguf->TensorData(*token_embd).data(), {}, output_norm.data_ptr<float>(),
                    *output->in_place(), rope_cos.data_ptr<float>(), rope_sin.data_ptr<float>()};
  for (const LayerWeights& l : layers) {
    for (const Linear* linear : {l.wq.get(), l.wk.get(), l.wv.get(), l.wo.get(), l.gate.get(), l.up.get(), l.down.get()}) {
      if (linear->in_place() == nullptr) return;
    }
    w.layers.push_back({l.attn_norm.data_ptr<float>(), *l.wq->in_place(), *l.wk->in_place(), *l.wv->in_place(),
                        *l.wo->in_place(), l.ffn_norm.data_ptr<float>(), *l.gate->in_place(), *l.up->in_place(),
                        *l.down->in_place()});
  }
  cpu = std::move(w);
}

void LlamaModel::Impl::BuildRopeTables() {
  // theta_i = pos * base^(-2i/rope_dims), stepped in float as llama.cpp does.
  const int64_t half = config.rope_dims / 2;
  at::Tensor cos = at::empty({context_length, half}, at::kFloat);
  at::Tensor sin = at::empty({context_length, half}, at::kFloat);
  float* c = cos.data_ptr<float>();
  float* s = sin.data_ptr<float>();
  const float theta_scale = std::pow(config.rope_freq_base, -2.0f / static_cast<float>(config.rope_dims));
  for (int64_t pos = 0; pos < context_length; ++pos) {
    float theta = static_cast<float>(pos);
    for (int64_t i = 0; i < half; ++i) {
      c[pos * half + i] = std::cos(theta);
      s[pos * half + i] = std::sin(theta);
      theta *= theta_scale;
    }
  }
  rope_cos = cos.to(device);
  rope_sin = sin.to(device);
}

absl::Status LlamaModel::Impl::CheckTokens(absl::Span<const TokenId> tokens) const {
  if (tokens.empty()) return absl::InvalidArgumentError("forward: no tokens");
  for (TokenId t : tokens) {
    if (t < 0 || t >= config.n_vocab) {
      return absl::InvalidArgumentError(edgellm::StrCat("forward: token id ", t, " is outside the vocabulary of ",
                                                     config.n_vocab));
    }
  }
  return absl::OkStatus();
}

at::Tensor LlamaModel::Impl::Embed(absl::Span<const TokenId> tokens) const {
  const int64_t n = static_cast<int64_t>(tokens.size());
  at::Tensor x = at::empty({n, config.n_embd}, at::kFloat);
  const absl::Span<const uint8_t> table = gguf->TensorData(*token_embd);
  const uint64_t row_bytes = RowBytes(token_embd->type, config.n_embd);
  float* out = x.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    // Ids were checked and the row size validated at load: this cannot fail.
    (void)Dequantize(token_embd->type, table.subspan(tokens[i] * row_bytes, row_bytes),
                     absl::MakeSpan(out + i * config.n_embd, config.n_embd));
  }
  return device.is_cpu() ? x : x.to(device);
}

at::Tensor LlamaModel::Impl::Attention(const LayerWeights& w, const at::Tensor& h,
                                       const std::vector<SequenceRows>& seqs, const at::Tensor& cos,
                                       const at::Tensor& sin, int layer, const std::vector<at::Tensor>& masks) const {
  const int64_t rows = h.size(0);
  const int64_t n_head = config.n_head, n_kv = config.n_head_kv, hd = config.head_dim;
  const int64_t group = n_head / n_kv;
  // The projections run on every row of the batch at once: each weight is read once.
  const at::Tensor q = ApplyRope(w.wq->Forward(h).view({rows, n_head, hd}), cos, sin, config.rope_dims);
  const at::Tensor k = ApplyRope(w.wk->Forward(h).view({rows, n_kv, hd}), cos, sin, config.rope_dims);
  const at::Tensor v = w.wv->Forward(h).view({rows, n_kv, hd});

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
      keys = GatherKvRows(*r.cache, layer, false, total).to(device);
      values = GatherKvRows(*r.cache, layer, true, total).to(device);
    } else {
      keys = k_s.transpose(0, 1);
      values = v_s.transpose(0, 1);
    }
    const int64_t total = keys.size(1);
    // Query head h reads KV head h / group: view the queries as [n_kv, group * n, hd].
    const at::Tensor queries = q_s.transpose(0, 1).reshape({n_kv, group * n, hd});
    at::Tensor scores = at::matmul(queries, keys.transpose(1, 2)).mul_(1.0 / std::sqrt(static_cast<double>(hd)));
    if (masks[s].defined()) {
      scores = scores.view({n_kv, group, n, total}).add_(masks[s]).view({n_kv, group * n, total});
    }
    const at::Tensor probs = at::softmax(scores, -1);
    outs.push_back(at::matmul(probs, values).view({n_head, n, hd}).transpose(0, 1).reshape({n, n_head * hd}));
  }
  return w.wo->Forward(outs.size() == 1 ? outs[0] : at::cat(outs, 0));
}

at::Tensor LlamaModel::Impl::Run(at::Tensor x, const std::vector<SequenceRows>& seqs) const {
  std::vector<int64_t> positions, logit_rows;
  std::vector<at::Tensor> masks;  // [n, T]: -inf where position t is in the future of query i
  for (const SequenceRows& r : seqs) {
    for (int64_t i = 0; i < r.count; ++i) positions.push_back(r.pos0 + i);
    for (int64_t i = r.all_logits ? 0 : r.count - 1; i < r.count; ++i) logit_rows.push_back(r.first + i);
    masks.push_back(r.count == 1 ? at::Tensor()
                                 : at::full({r.count, r.pos0 + r.count}, -std::numeric_limits<float>::infinity(),
                                            x.options())
                                       .triu(r.pos0 + 1));
  }
  const at::Tensor position_index = at::tensor(positions, at::TensorOptions(at::kLong).device(device));
  const at::Tensor cos = rope_cos.index_select(0, position_index).unsqueeze(1);  // [rows, 1, rope/2]
  const at::Tensor sin = rope_sin.index_select(0, position_index).unsqueeze(1);
  for (int layer = 0; layer < config.n_layer; ++layer) {
    const LayerWeights& w = layers[layer];
    x = x + Attention(w, RmsNorm(x, w.attn_norm, config.rms_norm_eps), seqs, cos, sin, layer, masks);
    const at::Tensor h = RmsNorm(x, w.ffn_norm, config.rms_norm_eps);
    x = x + w.down->Forward(at::silu(w.gate->Forward(h)) * w.up->Forward(h));
  }
  if (static_cast<int64_t>(logit_rows.size()) < x.size(0)) {
    x = x.index_select(0, at::tensor(logit_rows, at::TensorOptions(at::kLong).device(device)));
  }
  return output->Forward(RmsNorm(x, output_norm, config.rms_norm_eps));
}

namespace {
void CopyLogits(const at::Tensor& logits, std::vector<float>* out) {
  const at::Tensor cpu = logits.to(at::kCPU).contiguous();
  out->resize(static_cast<size_t>(cpu.numel()));
  std::memcpy(out->data(), cpu.data_ptr<float>(), out->size() * sizeof(float));
}
}  // namespace

LlamaModel::LlamaModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LlamaModel::~LlamaModel() = default;

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::Load(const std::string& path, const ModelOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  try {
    impl->device = at::Device(options.device);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(edgellm::StrCat("model: bad device '", options.device, "'"));
  }
  ConfigureComputeThreads(options.threads);

  EDGELLM_ASSIGN_OR_RETURN(impl->gguf, GgufReader::Open(path));
  EDGELLM_ASSIGN_OR_RETURN(impl->config, LlamaConfig::FromGguf(*impl->gguf));
  EDGELLM_ASSIGN_OR_RETURN(impl->tokenizer, Tokenizer::FromGguf(*impl->gguf));
  if (impl->tokenizer->vocab_size() != impl->config.n_vocab) {
    return absl::InvalidArgumentError(edgellm::StrCat("model: tokenizer has ", impl->tokenizer->vocab_size(),
                                                   " tokens, token_embd has ", impl->config.n_vocab));
  }
  impl->context_length = options.context_length > 0 ? options.context_length
                                                    : std::min(impl->config.n_ctx_train, kDefaultMaxContext);
  try {
    EDGELLM_RETURN_IF_ERROR(impl->LoadWeights());
    impl->BuildRopeTables();
    impl->PrepareCpuForward();
  } catch (const c10::Error& e) {
    return absl::InternalError(edgellm::StrCat("model: ", e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("model: out of memory while loading weights");
  }
  return std::unique_ptr<LlamaModel>(new LlamaModel(std::move(impl)));
}

const LlamaConfig& LlamaModel::config() const { return impl_->config; }
const Tokenizer& LlamaModel::tokenizer() const { return *impl_->tokenizer; }
const GgufReader& LlamaModel::gguf() const { return *impl_->gguf; }

uint64_t LlamaModel::parameter_count() const {
  uint64_t n = 0;
  for (const GgufTensorInfo& t : impl_->gguf->tensors()) n += t.element_count();
  return n;
}

std::string_view LlamaModel::weight_type() const {
  std::map<GgmlType, uint64_t> bytes;
  for (const GgufTensorInfo& t : impl_->gguf->tensors()) {
    if (t.dims.size() == 2) bytes[t.type] += t.n_bytes;
  }
  auto most = std::max_element(bytes.begin(), bytes.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
  return most == bytes.end() ? "none" : TraitsOf(most->first).name;
}
int32_t LlamaModel::context_length() const { return impl_->context_length; }
uint64_t LlamaModel::weight_bytes_per_token() const { return impl_->weight_bytes_per_token; }

KvShape LlamaModel::kv_shape() const {
  return {impl_->config.n_layer, impl_->config.n_head_kv, impl_->config.head_dim};
}

absl::StatusOr<std::shared_ptr<KvBlockPool>> LlamaModel::NewBlockPool(KvPoolOptions options) const {
  return KvBlockPool::Create(kv_shape(), options);
}

absl::StatusOr<std::unique_ptr<KvCache>> LlamaModel::NewCache(int32_t capacity) const {
  if (capacity <= 0) capacity = impl_->context_length;
  KvPoolOptions options;
  options.block_count = (capacity + options.block_size - 1) / options.block_size;
  options.prefix_caching = false;
  EDGELLM_ASSIGN_OR_RETURN(std::shared_ptr<KvBlockPool> pool, NewBlockPool(options));
  return pool->NewCache(capacity);
}

absl::Status LlamaModel::Forward(absl::Span<const TokenId> tokens, KvCache* cache, bool all_logits,
                                 std::vector<float>* logits) const {
  return RunBatch({{tokens, cache, all_logits}}, logits);
}

absl::Status LlamaModel::ForwardBatch(absl::Span<const BatchItem> items, std::vector<float>* logits) const {
  return RunBatch(items, logits);
}

absl::Status LlamaModel::RunBatch(absl::Span<const BatchItem> items, std::vector<float>* logits) const {
  if (items.empty()) return absl::InvalidArgumentError("forward: empty batch");
  // Reused per calling thread, so a warm decode step allocates nothing.
  thread_local std::vector<CpuSequence> seqs;
  thread_local std::vector<TokenId> all_tokens;
  thread_local std::vector<std::pair<KvBlockPool*, int32_t>> blocks_needed;  // per pool, for all its items
  seqs.clear();
  all_tokens.clear();
  blocks_needed.clear();
  for (size_t i = 0; i < items.size(); ++i) {
    const BatchItem& item = items[i];
    if (absl::Status s = impl_->CheckTokens(item.tokens); !s.ok()) {
      return absl::InvalidArgumentError(edgellm::StrCat("batch item ", i, ": ", s.message()));
    }
    KvCache& cache = *item.cache;
    const int64_t end = static_cast<int64_t>(cache.length()) + static_cast<int64_t>(item.tokens.size());
    const int64_t limit = std::min(cache.capacity(), impl_->context_length);
    if (end > limit) {
      return absl::OutOfRangeError(
          edgellm::StrCat("forward: batch item ", i, ": ", end, " positions exceed the context of ", limit));
    }
    for (const CpuSequence& earlier : seqs) {
      if (earlier.cache == &cache) {
        return absl::InvalidArgumentError(edgellm::StrCat("batch item ", i, ": a cache appears twice"));
      }
    }
    auto pool = std::find_if(blocks_needed.begin(), blocks_needed.end(),
                             [&](const auto& entry) { return entry.first == &cache.pool(); });
    if (pool == blocks_needed.end()) pool = blocks_needed.insert(pool, {&cache.pool(), 0});
    pool->second += cache.BlocksToGrow(static_cast<int32_t>(end));
    seqs.push_back({static_cast<int64_t>(all_tokens.size()), static_cast<int64_t>(item.tokens.size()), &cache,
                    item.all_logits});
    all_tokens.insert(all_tokens.end(), item.tokens.begin(), item.tokens.end());
  }
  for (const auto& [pool, needed] : blocks_needed) {
    if (needed > pool->available_blocks()) {
      return absl::ResourceExhaustedError(edgellm::StrCat("forward: the batch needs ", needed,
                                                          " more KV blocks, the pool has ",
                                                          pool->available_blocks(), " available"));
    }
  }
  // Every pool has room for its items: reserving cannot fail now.
  for (const CpuSequence& r : seqs) EDGELLM_RETURN_IF_ERROR(r.cache->Reserve(static_cast<int32_t>(r.count)));
  if (impl_->cpu.has_value()) {
    CpuForward(impl_->config, *impl_->cpu, all_tokens, seqs, logits);
  } else {
    std::vector<Impl::SequenceRows> rows;
    for (const CpuSequence& r : seqs) rows.push_back({r.first, r.count, r.cache->length(), r.cache, r.all_logits});
    try {
      c10::InferenceMode inference_mode;
      CopyLogits(impl_->Run(impl_->Embed(all_tokens), rows), logits);
    } catch (const c10::Error& e) {
      return absl::InternalError(edgellm::StrCat("forward: ", e.what_without_backtrace()));
    }
  }
  for (size_t i = 0; i < items.size(); ++i) items[i].cache->Append(items[i].tokens);
  return absl::OkStatus();
}

absl::Status LlamaModel::ForwardNoCache(absl::Span<const TokenId> tokens, std::vector<float>* logits) const {
  EDGELLM_RETURN_IF_ERROR(impl_->CheckTokens(tokens));
  if (static_cast<int64_t>(tokens.size()) > impl_->context_length) {
    return absl::OutOfRangeError("forward: more tokens than the context holds");
  }
  try {
    c10::InferenceMode inference_mode;
    const std::vector<Impl::SequenceRows> seqs = {{0, static_cast<int64_t>(tokens.size()), 0, nullptr, true}};
    CopyLogits(impl_->Run(impl_->Embed(tokens), seqs), logits);
  } catch (const c10::Error& e) {
    return absl::InternalError(edgellm::StrCat("forward: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

}  // namespace edgellm::engine
