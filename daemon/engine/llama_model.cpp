#include "daemon/engine/llama_model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/compute_threads.h"
#include "daemon/engine/cpu_forward.h"
#include "daemon/engine/forward_backend.h"
#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/lora_adapter.h"

namespace edgellm::engine {
namespace {

constexpr int32_t kDefaultMaxContext = 4096;

// Whether F32 data can be read as floats where it lies: a file may align its
// tensors to 1 or 2 bytes (a power of two, as GGUF allows), and a misaligned
// float is undefined behaviour. Other types are read byte-wise.
bool FloatsReadableInPlace(const GgufTensorInfo& info, const uint8_t* data) {
  return info.type != GgmlType::kF32 || reinterpret_cast<uintptr_t>(data) % alignof(float) == 0;
}

}  // namespace

struct LlamaModel::Impl {
  LlamaConfig config;
  ModelOptions options;
  std::unique_ptr<GgufReader> gguf;
  std::unique_ptr<Tokenizer> tokenizer;
  const GgufTensorInfo* token_embd = nullptr;
  CpuModelWeights cpu;
  // Float copies the weights point into: vectors stored in another type, and
  // matrices without an in-place kernel (or all of them, for the reference
  // path). Each buffer stays put when the outer vector grows.
  std::vector<std::vector<float>> owned;
  std::vector<float> rope_cos, rope_sin;
  std::vector<float> sliding_rope_cos, sliding_rope_sin;  // Gemma 3's sliding layers
  int32_t context_length = 0;
  uint64_t weight_bytes_per_token = 0;
  std::unique_ptr<ForwardBackend> backend;  // another implementation of the forward, if attached
  std::set<std::string> used_tensors;

  absl::Status LoadWeights();
  // Packs the matrices the best kernel set can pack (ModelOptions::pack_weights).
  absl::Status PackWeights();
  int32_t packed_matrices = 0;
  absl::StatusOr<const GgufTensorInfo*> Expect(const std::string& name, std::vector<uint64_t> dims);
  absl::StatusOr<WeightMatrix> LoadMatrix(const std::string& name, uint64_t in, uint64_t out);
  absl::StatusOr<const float*> LoadVector(const std::string& name, uint64_t n);
  // nullptr when the file has no tensor `name` and it is not `required`.
  absl::StatusOr<const float*> LoadOptionalVector(const std::string& name, uint64_t n, bool required);
  // A [rope_dims / 2] table of positive divisors of the rotary angle.
  absl::StatusOr<const float*> LoadFreqFactors(const std::string& name);
  // The rotary tables, the model's and each layer's.
  absl::Status LoadRope();
  // InvalidArgument naming a tensor of the file that no load read.
  absl::Status CheckEveryTensorUsed() const;
  absl::Status CheckTokens(absl::Span<const TokenId> tokens) const;
};

absl::StatusOr<const GgufTensorInfo*> LlamaModel::Impl::Expect(const std::string& name,
                                                               std::vector<uint64_t> dims) {
  const GgufTensorInfo* info = gguf->FindTensor(name);
  if (info == nullptr) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("model: missing tensor ", name, " (a ", config.architecture, " model has it)"));
  }
  if (info->dims != dims) {
    auto show = [](const std::vector<uint64_t>& d) {
      std::string s = "[";
      for (size_t i = 0; i < d.size(); ++i) absl::StrAppend(&s, i ? ", " : "", d[i]);
      return s + "]";
    };
    return absl::InvalidArgumentError(
        edgellm::StrCat("model: tensor ", name, " has shape ", show(info->dims), ", expected ", show(dims)));
  }
  used_tensors.insert(name);
  return info;
}

absl::StatusOr<WeightMatrix> LlamaModel::Impl::LoadMatrix(const std::string& name, uint64_t in, uint64_t out) {
  EDGELLM_ASSIGN_OR_RETURN(const GgufTensorInfo* info, Expect(name, {in, out}));
  const absl::Span<const uint8_t> data = gguf->TensorData(*info);
  WeightMatrix matrix = MatrixOf(*info, data.data());
  if (options.dequantize_weights || !CanMultiplyInPlace(*info) || !FloatsReadableInPlace(*info, data.data())) {
    if (!CanDequantize(info->type)) {
      return absl::UnimplementedError(
          edgellm::StrCat("model: tensor ", name, " has type ", TraitsOf(info->type).name, ", not supported yet"));
    }
    std::vector<float>& copy = owned.emplace_back(in * out);
    EDGELLM_RETURN_IF_ERROR(Dequantize(info->type, data, absl::MakeSpan(copy)));
    matrix = {GgmlType::kF32, reinterpret_cast<const uint8_t*>(copy.data()), static_cast<int64_t>(in),
              static_cast<int64_t>(out)};
  }
  weight_bytes_per_token += matrix.bytes();
  return matrix;
}

absl::StatusOr<const float*> LlamaModel::Impl::LoadVector(const std::string& name, uint64_t n) {
  EDGELLM_ASSIGN_OR_RETURN(const GgufTensorInfo* info, Expect(name, {n}));
  const absl::Span<const uint8_t> data = gguf->TensorData(*info);
  // F32 is read where it lies; the mapping outlives the model.
  if (info->type == GgmlType::kF32 && FloatsReadableInPlace(*info, data.data())) {
    return reinterpret_cast<const float*>(data.data());
  }
  if (!CanDequantize(info->type)) {
    return absl::UnimplementedError(
        edgellm::StrCat("model: tensor ", name, " has type ", TraitsOf(info->type).name, ", not supported yet"));
  }
  std::vector<float>& copy = owned.emplace_back(n);
  EDGELLM_RETURN_IF_ERROR(Dequantize(info->type, data, absl::MakeSpan(copy)));
  return copy.data();
}

absl::StatusOr<const float*> LlamaModel::Impl::LoadOptionalVector(const std::string& name, uint64_t n,
                                                                  bool required) {
  if (!required && gguf->FindTensor(name) == nullptr) return nullptr;
  return LoadVector(name, n);
}

absl::Status LlamaModel::Impl::CheckEveryTensorUsed() const {
  for (const GgufTensorInfo& t : gguf->tensors()) {
    if (!used_tensors.contains(t.name)) {
      return absl::InvalidArgumentError(edgellm::StrCat("model: tensor ", t.name, " is not part of a ",
                                                        config.architecture, " model of ", config.n_layer,
                                                        " layers (block_count)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<const float*> LlamaModel::Impl::LoadFreqFactors(const std::string& name) {
  const int32_t n = config.rope_dims / 2;
  EDGELLM_ASSIGN_OR_RETURN(const float* factors, LoadVector(name, static_cast<uint64_t>(n)));
  for (int32_t i = 0; i < n; ++i) {
    if (!(factors[i] > 0.0f) || !std::isfinite(factors[i])) {
      return absl::InvalidArgumentError(
          edgellm::StrCat("model: ", name, "[", i, "] = ", factors[i], " is not a positive number"));
    }
  }
  return factors;
}

absl::Status LlamaModel::Impl::LoadRope() {
  // Per-frequency divisors of the angle: Llama 3.x's rope_freqs (llama3
  // scaling), or Phi-3's long factors beyond the original context and its
  // short ones within it.
  const float* freq_factors = nullptr;
  if (gguf->FindTensor("rope_freqs.weight") != nullptr) {
    EDGELLM_ASSIGN_OR_RETURN(freq_factors, LoadFreqFactors("rope_freqs.weight"));
  }
  if (gguf->FindTensor("rope_factors_long.weight") != nullptr ||
      gguf->FindTensor("rope_factors_short.weight") != nullptr) {
    EDGELLM_ASSIGN_OR_RETURN(const float* long_factors, LoadFreqFactors("rope_factors_long.weight"));
    EDGELLM_ASSIGN_OR_RETURN(const float* short_factors, LoadFreqFactors("rope_factors_short.weight"));
    freq_factors = context_length > config.rope_original_context ? long_factors : short_factors;
  }
  FillRopeTables({config.rope_dims, config.rope_freq_base, config.rope_freq_scale, config.rope_attn_factor,
                  freq_factors},
                 context_length, &rope_cos, &rope_sin);
  cpu.rope_cos = rope_cos.data();
  cpu.rope_sin = rope_sin.data();
  bool any_sliding = false;
  for (int32_t i = 0; i < config.n_layer; ++i) any_sliding = any_sliding || config.IsSlidingLayer(i);
  const bool own_sliding_tables = any_sliding && (config.rope_freq_base_sliding != config.rope_freq_base ||
                                                  config.rope_freq_scale_sliding != config.rope_freq_scale);
  if (own_sliding_tables) {
    FillRopeTables({config.rope_dims, config.rope_freq_base_sliding, config.rope_freq_scale_sliding,
                    config.rope_attn_factor, freq_factors},
                   context_length, &sliding_rope_cos, &sliding_rope_sin);
  }
  for (int32_t i = 0; i < config.n_layer; ++i) {
    const bool sliding = own_sliding_tables && config.IsSlidingLayer(i);
    cpu.layers[i].rope_cos = sliding ? sliding_rope_cos.data() : rope_cos.data();
    cpu.layers[i].rope_sin = sliding ? sliding_rope_sin.data() : rope_sin.data();
  }
  return absl::OkStatus();
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
  cpu.embedding_type = token_embd->type;
  cpu.embedding = gguf->TensorData(*token_embd).data();
  cpu.layers.resize(config.n_layer);
  for (int32_t i = 0; i < config.n_layer; ++i) {
    const std::string p = edgellm::StrCat("blk.", i, ".");
    CpuLayerWeights& w = cpu.layers[i];
    EDGELLM_ASSIGN_OR_RETURN(w.attn_norm, LoadVector(p + "attn_norm.weight", d));
    if (config.arch->fused_projections && gguf->FindTensor(p + "attn_qkv.weight") != nullptr) {
      EDGELLM_ASSIGN_OR_RETURN(const WeightMatrix qkv, LoadMatrix(p + "attn_qkv.weight", d, q_dim + 2 * kv_dim));
      w.wq = RowsOf(qkv, 0, q_dim);
      w.wk = RowsOf(qkv, q_dim, kv_dim);
      w.wv = RowsOf(qkv, q_dim + kv_dim, kv_dim);
    } else {
      EDGELLM_ASSIGN_OR_RETURN(w.wq, LoadMatrix(p + "attn_q.weight", d, q_dim));
      EDGELLM_ASSIGN_OR_RETURN(w.wk, LoadMatrix(p + "attn_k.weight", d, kv_dim));
      EDGELLM_ASSIGN_OR_RETURN(w.wv, LoadMatrix(p + "attn_v.weight", d, kv_dim));
    }
    EDGELLM_ASSIGN_OR_RETURN(w.wo, LoadMatrix(p + "attn_output.weight", q_dim, d));
    // Required where the architecture has them; a Llama file may carry them too, as llama.cpp allows.
    EDGELLM_ASSIGN_OR_RETURN(w.q_bias, LoadOptionalVector(p + "attn_q.bias", q_dim, config.arch->qkv_bias));
    EDGELLM_ASSIGN_OR_RETURN(w.k_bias, LoadOptionalVector(p + "attn_k.bias", kv_dim, config.arch->qkv_bias));
    EDGELLM_ASSIGN_OR_RETURN(w.v_bias, LoadOptionalVector(p + "attn_v.bias", kv_dim, config.arch->qkv_bias));
    if (config.arch->qk_norm) {
      EDGELLM_ASSIGN_OR_RETURN(w.q_norm, LoadVector(p + "attn_q_norm.weight", config.head_dim));
      EDGELLM_ASSIGN_OR_RETURN(w.k_norm, LoadVector(p + "attn_k_norm.weight", config.head_dim));
    }
    if (config.arch->post_norms) {
      EDGELLM_ASSIGN_OR_RETURN(w.post_attention_norm, LoadVector(p + "post_attention_norm.weight", d));
      EDGELLM_ASSIGN_OR_RETURN(w.post_ffn_norm, LoadVector(p + "post_ffw_norm.weight", d));
    }
    EDGELLM_ASSIGN_OR_RETURN(w.ffn_norm, LoadVector(p + "ffn_norm.weight", d));
    if (config.arch->fused_projections) {
      EDGELLM_ASSIGN_OR_RETURN(const WeightMatrix gate_up, LoadMatrix(p + "ffn_up.weight", d, 2 * ff));
      w.gate = RowsOf(gate_up, 0, ff);
      w.up = RowsOf(gate_up, ff, ff);
    } else {
      EDGELLM_ASSIGN_OR_RETURN(w.gate, LoadMatrix(p + "ffn_gate.weight", d, ff));
      EDGELLM_ASSIGN_OR_RETURN(w.up, LoadMatrix(p + "ffn_up.weight", d, ff));
    }
    EDGELLM_ASSIGN_OR_RETURN(w.down, LoadMatrix(p + "ffn_down.weight", ff, d));
  }
  EDGELLM_ASSIGN_OR_RETURN(cpu.output_norm, LoadVector("output_norm.weight", d));
  // Models with tied embeddings have no output.weight and reuse token_embd.
  const std::string output_name = gguf->FindTensor("output.weight") ? "output.weight" : "token_embd.weight";
  EDGELLM_ASSIGN_OR_RETURN(cpu.output, LoadMatrix(output_name, d, vocab));
  EDGELLM_RETURN_IF_ERROR(LoadRope());
  return CheckEveryTensorUsed();
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

LlamaModel::LlamaModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LlamaModel::~LlamaModel() = default;

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::Load(const std::string& path, const ModelOptions& options) {
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<GgufReader> gguf, GgufReader::Open(path, options.file_access));
  return FromGguf(std::move(gguf), options);
}

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::FromGguf(std::unique_ptr<GgufReader> gguf,
                                                                 const ModelOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  ConfigureComputeThreads(options.threads);

  impl->gguf = std::move(gguf);
  EDGELLM_ASSIGN_OR_RETURN(impl->config, LlamaConfig::FromGguf(*impl->gguf));
  EDGELLM_ASSIGN_OR_RETURN(impl->tokenizer, Tokenizer::FromGguf(*impl->gguf));
  if (impl->tokenizer->vocab_size() != impl->config.n_vocab) {
    return absl::InvalidArgumentError(edgellm::StrCat("model: tokenizer has ", impl->tokenizer->vocab_size(),
                                                   " tokens, token_embd has ", impl->config.n_vocab));
  }
  impl->context_length = options.context_length > 0 ? options.context_length
                                                    : std::min(impl->config.n_ctx_train, kDefaultMaxContext);
  EDGELLM_RETURN_IF_ERROR(
      CheckKvShape({impl->config.n_layer, impl->config.n_head_kv, impl->config.head_dim, options.kv_type}));
  try {
    EDGELLM_RETURN_IF_ERROR(impl->LoadWeights());
    if (options.pack_weights && options.file_access == FileAccess::kResident) {
      EDGELLM_RETURN_IF_ERROR(impl->PackWeights());
    }
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
  return {impl_->config.n_layer, impl_->config.n_head_kv, impl_->config.head_dim, impl_->options.kv_type};
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
                                 std::vector<float>* logits, const LoraAdapter* adapter) const {
  return RunBatch({{tokens, cache, all_logits, adapter}}, logits);
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
    if (item.adapter != nullptr) {
      if (absl::Status s = item.adapter->CheckFits(impl_->config); !s.ok()) {
        return absl::InvalidArgumentError(edgellm::StrCat("batch item ", i, ": ", s.message()));
      }
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
                    item.all_logits, item.adapter});
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
  if (impl_->backend != nullptr) {
    EDGELLM_RETURN_IF_ERROR(impl_->backend->Forward(all_tokens, seqs, logits));
  } else {
    CpuForward(impl_->config, impl_->cpu, all_tokens, seqs, logits);
  }
  for (size_t i = 0; i < items.size(); ++i) items[i].cache->Append(items[i].tokens);
  return absl::OkStatus();
}

absl::Status LlamaModel::ForwardNoCache(absl::Span<const TokenId> tokens, std::vector<float>* logits) const {
  EDGELLM_RETURN_IF_ERROR(impl_->CheckTokens(tokens));
  if (static_cast<int64_t>(tokens.size()) > impl_->context_length) {
    return absl::OutOfRangeError("forward: more tokens than the context holds");
  }
  if (impl_->backend != nullptr) {
    const CpuSequence all = {0, static_cast<int64_t>(tokens.size()), nullptr, true};
    return impl_->backend->Forward(tokens, {&all, 1}, logits);
  }
  // The fused pass attends through a cache: a fresh one that holds just these tokens.
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<KvCache> cache, NewCache(static_cast<int32_t>(tokens.size())));
  return Forward(tokens, cache.get(), true, logits);
}

absl::Status LlamaModel::Embed(absl::Span<const std::vector<TokenId>> inputs, std::vector<float>* embeddings) const {
  if (inputs.empty()) return absl::InvalidArgumentError("embed: no inputs");
  KvPoolOptions pool_options;
  pool_options.prefix_caching = false;
  pool_options.block_count = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].empty()) return absl::InvalidArgumentError(edgellm::StrCat("embed: input ", i, " has no tokens"));
    if (absl::Status s = impl_->CheckTokens(inputs[i]); !s.ok()) {
      return absl::InvalidArgumentError(edgellm::StrCat("embed: input ", i, ": ", s.message()));
    }
    if (static_cast<int64_t>(inputs[i].size()) > impl_->context_length) {
      return absl::OutOfRangeError(edgellm::StrCat("embed: input ", i, " has ", inputs[i].size(),
                                                   " tokens; the context holds ", impl_->context_length));
    }
    pool_options.block_count += (static_cast<int32_t>(inputs[i].size()) + pool_options.block_size - 1) /
                                pool_options.block_size;
  }
  // The keys and values are needed only within this forward: one pool that holds exactly them.
  EDGELLM_ASSIGN_OR_RETURN(std::shared_ptr<KvBlockPool> pool, NewBlockPool(pool_options));
  std::vector<std::unique_ptr<KvCache>> caches;
  std::vector<CpuSequence> seqs;
  std::vector<TokenId> all_tokens;
  for (const std::vector<TokenId>& input : inputs) {
    std::unique_ptr<KvCache> cache = pool->NewCache(static_cast<int32_t>(input.size()));
    EDGELLM_RETURN_IF_ERROR(cache->Reserve(static_cast<int32_t>(input.size())));
    seqs.push_back({static_cast<int64_t>(all_tokens.size()), static_cast<int64_t>(input.size()), cache.get(), true});
    all_tokens.insert(all_tokens.end(), input.begin(), input.end());
    caches.push_back(std::move(cache));
  }
  std::vector<float> hidden, unused_logits;
  CpuForward(impl_->config, impl_->cpu, all_tokens, seqs, &unused_logits, &hidden);
  const size_t d = static_cast<size_t>(impl_->config.n_embd);
  embeddings->assign(inputs.size() * d, 0.0f);
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::vector<double> sum(d, 0.0);
    for (int64_t r = seqs[i].first; r < seqs[i].first + seqs[i].count; ++r) {
      for (size_t j = 0; j < d; ++j) sum[j] += hidden[static_cast<size_t>(r) * d + j];
    }
    double norm = 0.0;
    for (double v : sum) norm += v * v;
    norm = std::sqrt(norm);
    for (size_t j = 0; j < d; ++j) (*embeddings)[i * d + j] = norm > 0 ? static_cast<float>(sum[j] / norm) : 0.0f;
  }
  return absl::OkStatus();
}

const CpuModelWeights& LlamaModel::cpu_weights() const { return impl_->cpu; }

int32_t LlamaModel::packed_matrices() const { return impl_->packed_matrices; }

absl::Status LlamaModel::Impl::PackWeights() {
  std::vector<WeightMatrix*> matrices;
  for (CpuLayerWeights& layer : cpu.layers) {
    for (WeightMatrix* w : {&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.gate, &layer.up, &layer.down}) {
      matrices.push_back(w);
    }
  }
  // A tied output matrix is the embedding table too, whose rows the forward
  // then reads back from the packed form (ReadRow).
  matrices.push_back(&cpu.output);
  std::erase_if(matrices, [](const WeightMatrix* w) { return !CanPack(*w); });
  // Bytes are packed once, however many matrices name them.
  std::set<const uint8_t*> seen;
  std::erase_if(matrices, [&](const WeightMatrix* w) { return !seen.insert(w->data).second; });
  if (matrices.empty()) return absl::OkStatus();
  return gguf->RewriteInPlace([&] {
    for (WeightMatrix* w : matrices) PackInPlace(*w, const_cast<uint8_t*>(w->data));
    packed_matrices = static_cast<int32_t>(matrices.size());
  });
}

void LlamaModel::AttachBackend(std::unique_ptr<ForwardBackend> backend) { impl_->backend = std::move(backend); }

}  // namespace edgellm::engine
