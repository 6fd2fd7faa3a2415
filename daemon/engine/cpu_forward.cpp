#include "daemon/engine/cpu_forward.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "daemon/engine/attention.h"
#include "daemon/engine/cpu_clones.h"
#include "daemon/engine/gelu.h"
#include "daemon/engine/kv_block_pool.h"
#include "daemon/engine/quant_kernels.h"
#include "daemon/engine/swiglu.h"
#include "daemon/engine/thread_pool.h"

namespace edgellm::engine {
namespace {

// Rows per chunk of the job that positions rows' heads where attention does
// not (a prompt's rows, a speculative check's): a few rows stay on the
// calling thread. The other row-wise work (norms, activations) is done in
// the products' jobs that quantize their input, a row a chunk.
constexpr int64_t kRowsPerChunk = 8;
// Query-key products worth a chunk of attention work of its own (a couple of
// microseconds, about what handing it over costs): smol-135m decoded 2.5%
// faster at 1 << 13 than at 1 << 16 (its three KV heads then split into six
// parts from 86 positions on).
constexpr int64_t kMinAttentionWorkPerChunk = 1 << 13;
// Query-key products of a step's whole attention below which it stays on the
// calling thread: the other thread's half came back later than the caller
// would have finished it, since it starts a hand-off late and reads the new
// keys, the queries and the scratch from the caller's cache. stories260K (all
// of its context under this) decodes 16.3-19.4k tok/s with its four heads
// shared, 20.9-22.3k without.
constexpr int64_t kMinAttentionWorkShared = 1 << 15;

// Grows `buffer` to hold at least `n` floats from a cache line's start and
// returns that start; never shrinks, so a warm buffer is reused without
// allocating. The kernels' 64-byte loads and stores of rows that start
// mid-line touch two lines each (attention's scratch above all: attention.cpp).
float* Room(std::vector<float>& buffer, int64_t n) {
  constexpr size_t kLine = 64;
  const size_t room = static_cast<size_t>(n) + kLine / sizeof(float) - 1;
  if (buffer.size() < room) buffer.resize(room);
  const size_t past_line = reinterpret_cast<uintptr_t>(buffer.data()) % kLine;
  return buffer.data() + (past_line == 0 ? 0 : (kLine - past_line) / sizeof(float));
}

// The buffers of one forward, kept per calling thread.
struct Workspace {
  std::vector<float> x, normed, q, k, v, attention, projected, gate, up;
  // Attention scratch per (sequence, KV head) task, not per thread, so which
  // thread runs a task never decides whether memory grows.
  std::vector<float> attention_scratch;
  std::vector<int64_t> scratch_offsets;  // per sequence
  std::vector<int32_t> positions;  // per row
  std::vector<KvCache*> row_caches;  // per row: the cache its keys and values go to
  std::vector<int64_t> logit_rows;
  std::vector<float> lora;  // a sequence's rows times A
  std::vector<uint8_t> embedding_row;  // a token's row of a packed tied embedding
};

// out = x * weight / sqrt(mean(x²) + eps), summed in double as llama.cpp does,
// in eight running sums (one chain of dependent double adds was a decode
// step's longest piece of serial work outside the kernels). Cloned per
// vector width, as Rope below: the baseline build splits each eight-lane
// vector into SSE halves.
EDGELLM_CPU_CLONES void RmsNorm(const float* x, const float* weight, float eps, int64_t n, float* out) {
  using Floats = float __attribute__((vector_size(32)));
  using Doubles = double __attribute__((vector_size(64)));
  constexpr int64_t kLanes = 8;
  Doubles sums = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    Floats part;
    std::memcpy(&part, x + i, sizeof(part));
    const Doubles wide = __builtin_convertvector(part, Doubles);
    sums += wide * wide;
  }
  double sum = 0.0;
  for (int64_t l = 0; l < kLanes; ++l) sum += sums[l];
  for (; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

// Rotates the pairs of the first rope_dims values of each of `heads` heads
// at `position`: adjacent ones (v[2i], v[2i+1]) or halves (v[i], v[i + half])
// as the architecture pairs them.
EDGELLM_CPU_CLONES void Rope(float* v, int64_t heads, const LlamaConfig& config, const CpuLayerWeights& w,
                             int32_t position) {
  const int64_t half = config.rope_dims / 2;
  const float* cos = w.rope_cos + static_cast<int64_t>(position) * half;
  const float* sin = w.rope_sin + static_cast<int64_t>(position) * half;
  const bool adjacent = config.arch->rope == RopeStyle::kAdjacentPairs;
  const int64_t stride = adjacent ? 2 : 1, partner = adjacent ? 1 : half;
  for (int64_t h = 0; h < heads; ++h) {
    float* head = v + h * config.head_dim;
    for (int64_t i = 0; i < half; ++i) {
      float& a = head[i * stride];
      float& b = head[i * stride + partner];
      const float x0 = a, x1 = b;
      a = x0 * cos[i] - x1 * sin[i];
      b = x0 * sin[i] + x1 * cos[i];
    }
  }
}

// Adds `bias` to a row `width` wide.
void AddBias(float* y, const float* bias, int64_t width) {
  for (int64_t i = 0; i < width; ++i) y[i] += bias[i];
}

// Adds one row's attention or feed-forward output to its residual stream
// `x`, normed first by `post_norm` where the layer has a norm after it.
void AddToResidual(const float* post_norm, float* projected, float* x, float eps, int64_t d) {
  if (post_norm != nullptr) RmsNorm(projected, post_norm, eps, d, projected);
  for (int64_t i = 0; i < d; ++i) x[i] += projected[i];
}

// KV heads [first, first + count) and the query heads that share them.
struct KvHeads {
  int64_t first = 0;
  int64_t count = 0;
};

// Writes one row's keys and values of `heads` (k and v point at the row's
// first head) as those of `layer` at position `pos` of `cache`.
void WriteKv(KvCache& cache, int32_t layer, const float* k, const float* v, int32_t pos, KvHeads heads) {
  const KvBlockPool& pool = cache.pool();
  const int64_t head_dim = pool.shape().head_dim;
  const int32_t block_size = pool.block_size();
  const int32_t block = cache.block_table()[pos / block_size];
  for (int64_t h = heads.first; h < heads.first + heads.count; ++h) {
    pool.StoreHeadRow(k + h * head_dim, pool.HeadData(block, layer, h, false), pos % block_size, false);
    pool.StoreHeadRow(v + h * head_dim, pool.HeadData(block, layer, h, true), pos % block_size, true);
  }
}

// Makes one row's `heads` ready for attention at `pos` — biases, per-head
// norms, the rotary embedding, the query's scale where the architecture
// scales it first — and writes their keys and values to `cache`. q, k and v
// point at the row.
void PositionHeads(const LlamaConfig& config, const CpuLayerWeights& lw, int32_t layer, float* q, float* k, float* v,
                   KvCache& cache, int32_t pos, KvHeads heads) {
  const int64_t hd = config.head_dim, group = config.n_head / config.n_head_kv;
  float* q_heads = q + heads.first * group * hd;
  float* k_heads = k + heads.first * hd;
  const int64_t q_width = heads.count * group * hd, kv_width = heads.count * hd;
  if (lw.q_bias != nullptr) AddBias(q_heads, lw.q_bias + heads.first * group * hd, q_width);
  if (lw.k_bias != nullptr) AddBias(k_heads, lw.k_bias + heads.first * hd, kv_width);
  if (lw.v_bias != nullptr) AddBias(v + heads.first * hd, lw.v_bias + heads.first * hd, kv_width);
  if (lw.q_norm != nullptr) {
    for (int64_t i = 0; i < q_width; i += hd) RmsNorm(q_heads + i, lw.q_norm, config.rms_norm_eps, hd, q_heads + i);
    for (int64_t i = 0; i < kv_width; i += hd) RmsNorm(k_heads + i, lw.k_norm, config.rms_norm_eps, hd, k_heads + i);
  }
  Rope(q_heads, heads.count * group, config, lw, pos);
  Rope(k_heads, heads.count, config, lw, pos);
  if (config.arch->prescaled_query) {
    for (int64_t i = 0; i < q_width; ++i) q_heads[i] *= config.attention_scale;
  }
  WriteKv(cache, layer, k, v, pos, heads);
}

// Adds each adapted sequence's low-rank term to its rows of `y`:
// y += scale · (x·Aᵀ)·Bᵀ, with x and y as wide as the projection's input and
// output. Rank-sized products, so they stay on the calling thread.
void AddAdapters(absl::Span<const CpuSequence> sequences, int32_t layer, LoraTarget target, const float* x,
                 float* y, std::vector<float>& scratch) {
  for (const CpuSequence& seq : sequences) {
    if (seq.adapter == nullptr) continue;
    const LoraWeights* w = seq.adapter->Find(layer, target);
    if (w == nullptr) continue;
    const int rank = seq.adapter->config().rank, in = static_cast<int>(w->in), out = static_cast<int>(w->out);
    const int rows = static_cast<int>(seq.count);
    float* xa = Room(scratch, seq.count * rank);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, rank, in, 1.0f, x + seq.first * in, in, w->a.data(),
                in, 0.0f, xa, rank);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, rank, seq.adapter->scale(), xa, rank,
                w->b.data(), rank, 1.0f, y + seq.first * out, out);
  }
}

}  // namespace

void FillRopeTables(const RopeSpec& spec, int32_t context, std::vector<float>* cos, std::vector<float>* sin) {
  const int64_t half = spec.rope_dims / 2;
  cos->resize(static_cast<size_t>(context * half));
  sin->resize(static_cast<size_t>(context * half));
  const float theta_scale = std::pow(spec.base, -2.0f / static_cast<float>(spec.rope_dims));
  for (int64_t pos = 0; pos < context; ++pos) {
    float theta = static_cast<float>(pos);
    for (int64_t i = 0; i < half; ++i) {
      const float extrapolated = spec.freq_factors != nullptr ? theta / spec.freq_factors[i] : theta;
      const float angle = spec.freq_scale * extrapolated;
      (*cos)[pos * half + i] = std::cos(angle) * spec.attn_factor;
      (*sin)[pos * half + i] = std::sin(angle) * spec.attn_factor;
      theta *= theta_scale;
    }
  }
}

void CpuForward(const LlamaConfig& config, const CpuModelWeights& w, absl::Span<const TokenId> tokens,
                absl::Span<const CpuSequence> sequences, std::vector<float>* logits, std::vector<float>* hidden) {
  thread_local Workspace ws;
  ThreadPool& pool = ThreadPool::Shared();
  const int64_t rows = static_cast<int64_t>(tokens.size());
  const int64_t d = config.n_embd, hd = config.head_dim;
  const int64_t q_width = config.n_head * hd, kv_width = config.n_head_kv * hd, ff = config.n_ff;
  const float eps = config.rms_norm_eps;

  float* x = Room(ws.x, rows * d);
  float* normed = Room(ws.normed, rows * d);
  float* q = Room(ws.q, rows * q_width);
  float* k = Room(ws.k, rows * kv_width);
  float* v = Room(ws.v, rows * kv_width);
  float* attention = Room(ws.attention, rows * q_width);
  float* projected = Room(ws.projected, rows * d);
  float* gate = Room(ws.gate, rows * ff);
  float* up = Room(ws.up, rows * ff);
  ws.positions.clear();
  ws.row_caches.clear();
  ws.logit_rows.clear();
  ws.scratch_offsets.clear();
  // Query-key products of one KV head's attention, on average over the sequences.
  int64_t attended = 0;
  bool one_row_each = true;
  for (const CpuSequence& seq : sequences) {
    attended += seq.count * (seq.cache->length() + seq.count);
    one_row_each = one_row_each && seq.count == 1;
  }
  const int64_t per_head =
      attended * (config.n_head / config.n_head_kv) * hd / static_cast<int64_t>(sequences.size());
  const int64_t kv_tasks = static_cast<int64_t>(sequences.size()) * config.n_head_kv;
  const bool share_attention = kv_tasks * per_head >= kMinAttentionWorkShared;
  // A decode step's KV heads are split into parts where the threads could not share them evenly.
  const int64_t attention_parts = one_row_each && share_attention
                                      ? AttentionParts(kv_tasks, pool.size(), per_head, kMinAttentionWorkPerChunk)
                                      : 1;
  // Where each sequence's row is one task's alone for each KV head, the task
  // positions the row's heads (rotates them and writes them to the cache)
  // itself rather than a job before it: a decode step hands the pool one job
  // a layer fewer.
  const bool position_in_attention = one_row_each && attention_parts == 1;
  // Tasks per chunk: enough multiply-adds to pay for handing them to another
  // thread, and all of them where the whole job is too small to share.
  const int64_t work_per_task = std::max<int64_t>(per_head / attention_parts, 1);
  const int64_t attention_tasks_per_chunk =
      share_attention ? std::max<int64_t>(1, kMinAttentionWorkPerChunk / work_per_task) : kv_tasks;
  // Scratch for as many parts as a long context would split into, so that
  // crossing into it does not make a decode step allocate.
  const int64_t scratch_parts = one_row_each ? AttentionParts(kv_tasks, pool.size(), 1, 0) : 1;
  int64_t scratch_floats = 0;
  bool adapted = false;
  for (const CpuSequence& seq : sequences) {
    adapted = adapted || seq.adapter != nullptr;
    ws.scratch_offsets.push_back(scratch_floats);
    scratch_floats +=
        scratch_parts * config.n_head_kv * AttentionScratch(config, seq.count, seq.cache->pool());
    for (int64_t i = 0; i < seq.count; ++i) {
      ws.positions.push_back(seq.cache->length() + static_cast<int32_t>(i));
      ws.row_caches.push_back(seq.cache);
    }
    for (int64_t i = seq.all_logits ? 0 : seq.count - 1; i < seq.count; ++i) ws.logit_rows.push_back(seq.first + i);
  }

  float* attention_scratch = Room(ws.attention_scratch, scratch_floats);
  // thread_local is not captured: the pool's threads read the caller's buffers through these.
  const int32_t* positions = ws.positions.data();
  KvCache* const* row_caches = ws.row_caches.data();
  const int64_t* scratch_offsets = ws.scratch_offsets.data();
  const uint64_t embedding_row = RowBytes(w.embedding_type, static_cast<uint64_t>(d));
  // A tied output matrix packed at load is the embedding table in the packed form.
  const bool packed_embedding = w.output.packed && w.output.data == w.embedding;
  if (packed_embedding && ws.embedding_row.size() < embedding_row) ws.embedding_row.resize(embedding_row);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = w.embedding + static_cast<uint64_t>(tokens[r]) * embedding_row;
    if (packed_embedding) {
      ReadRow(w.output, tokens[r], ws.embedding_row.data());
      row = ws.embedding_row.data();
    }
    // Ids were checked and the row size validated at load: this cannot fail.
    (void)Dequantize(w.embedding_type, absl::MakeConstSpan(row, embedding_row),
                     absl::MakeSpan(x + r * d, static_cast<size_t>(d)));
    if (config.embedding_scale != 1.0f) {
      for (int64_t i = 0; i < d; ++i) x[r * d + i] *= config.embedding_scale;
    }
  }

  const KvHeads all_heads{0, config.n_head_kv};
  // The row-wise work before a product is done in the job that quantizes
  // its input (Multiply's prepare_rows), not in a job of its own: a decode
  // step of many sequences hands the pool a few jobs fewer per layer.
  for (int32_t layer = 0; layer < config.n_layer; ++layer) {
    const CpuLayerWeights& lw = w.layers[layer];
    // The layer before's feed-forward output joins the residual stream here.
    const CpuLayerWeights* previous = layer > 0 ? &w.layers[layer - 1] : nullptr;
    const auto attention_input = [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        if (previous != nullptr) AddToResidual(previous->post_ffn_norm, projected + r * d, x + r * d, eps, d);
        RmsNorm(x + r * d, lw.attn_norm, eps, d, normed + r * d);
      }
    };
    {
      const WeightMatrix* const projections[] = {&lw.wq, &lw.wk, &lw.wv};
      float* const outputs[] = {q, k, v};
      MultiplyShared(projections, normed, outputs, rows, attention_input);
    }
    if (adapted) {
      AddAdapters(sequences, layer, LoraTarget::kQ, normed, q, ws.lora);
      AddAdapters(sequences, layer, LoraTarget::kK, normed, k, ws.lora);
      AddAdapters(sequences, layer, LoraTarget::kV, normed, v, ws.lora);
    }
    if (!position_in_attention) {
      pool.Run(rows, kRowsPerChunk, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          PositionHeads(config, lw, layer, q + r * q_width, k + r * kv_width, v + r * kv_width, *row_caches[r],
                        positions[r], all_heads);
        }
      });
    }
    const int64_t heads_kv = config.n_head_kv;
    const int32_t window = config.IsSlidingLayer(layer) ? config.sliding_window : 0;
    const int64_t parts = attention_parts;
    pool.Run(kv_tasks * parts, attention_tasks_per_chunk, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t s = task / (heads_kv * parts), kv_head = task / parts % heads_kv, part = task % parts;
        const CpuSequence& seq = sequences[s];
        if (position_in_attention) {
          const int64_t r = seq.first;
          PositionHeads(config, lw, layer, q + r * q_width, k + r * kv_width, v + r * kv_width, *seq.cache,
                        positions[r], {kv_head, 1});
        }
        const int64_t scratch_size = AttentionScratch(config, seq.count, seq.cache->pool());
        float* scratch = attention_scratch + scratch_offsets[s] + (kv_head * parts + part) * scratch_size;
        AttendOneKvHead(config, seq, seq.cache->length(), layer, kv_head, window, q, scratch, attention,
                        {part, parts});
      }
    });
    if (parts > 1) {
      for (size_t s = 0; s < sequences.size(); ++s) {
        const CpuSequence& seq = sequences[s];
        const int64_t scratch_size = AttentionScratch(config, seq.count, seq.cache->pool());
        for (int64_t kv_head = 0; kv_head < heads_kv; ++kv_head) {
          const float* head_scratch = attention_scratch + scratch_offsets[s] + kv_head * parts * scratch_size;
          MergeAttentionParts(config, seq, kv_head, head_scratch, scratch_size, parts, attention);
        }
      }
    }
    Multiply(lw.wo, attention, projected, rows);
    if (adapted) AddAdapters(sequences, layer, LoraTarget::kO, attention, projected, ws.lora);
    const auto feed_forward_input = [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        AddToResidual(lw.post_attention_norm, projected + r * d, x + r * d, eps, d);
        RmsNorm(x + r * d, lw.ffn_norm, eps, d, normed + r * d);
      }
    };
    {
      const WeightMatrix* const projections[] = {&lw.gate, &lw.up};
      float* const outputs[] = {gate, up};
      MultiplyShared(projections, normed, outputs, rows, feed_forward_input);
    }
    if (adapted) {
      AddAdapters(sequences, layer, LoraTarget::kGate, normed, gate, ws.lora);
      AddAdapters(sequences, layer, LoraTarget::kUp, normed, up, ws.lora);
    }
    const bool gelu = config.arch->activation == Activation::kGeluTanh;
    const auto activation = [&](int64_t begin, int64_t end) {
      if (gelu) {
        for (int64_t i = begin * ff; i < end * ff; ++i) gate[i] = GeluTanhAsGgml(gate[i]) * up[i];
      } else {
        SwiGluInPlace(gate + begin * ff, up + begin * ff, (end - begin) * ff);
      }
    };
    Multiply(lw.down, gate, projected, rows, ActivationPrecision::kInt8, activation);
    if (adapted) AddAdapters(sequences, layer, LoraTarget::kDown, gate, projected, ws.lora);
  }

  const int64_t outputs = static_cast<int64_t>(ws.logit_rows.size());
  const float* last_post_ffn_norm = w.layers[config.n_layer - 1].post_ffn_norm;
  for (int64_t o = 0; o < outputs; ++o) {
    const int64_t r = ws.logit_rows[o];
    AddToResidual(last_post_ffn_norm, projected + r * d, x + r * d, eps, d);
    RmsNorm(x + r * d, w.output_norm, eps, d, normed + o * d);
  }
  if (hidden != nullptr) {
    hidden->assign(normed, normed + outputs * d);
    return;
  }
  logits->resize(static_cast<size_t>(outputs * config.n_vocab));
  Multiply(w.output, normed, logits->data(), outputs);
  if (config.final_softcap > 0) {
    const float cap = config.final_softcap, inverse = 1.0f / cap;
    for (float& l : *logits) l = cap * std::tanh(l * inverse);
  }
}

}  // namespace edgellm::engine
