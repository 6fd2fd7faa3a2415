#include "daemon/engine/attention.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "daemon/engine/fast_exp.h"
#include "daemon/engine/kv_block_pool.h"
#include "daemon/engine/quant_kernels.h"

namespace edgellm::engine {
namespace {

// Query rows of one KV head up to which attention skips BLAS (a decode step's
// group of heads sharing it).
constexpr int64_t kFewQueryRows = 8;
// KV blocks whose scores go through one softmax step: each row's maximum,
// rescale and exponentials run once per span rather than once per block,
// and a prompt's rows meet the span's keys and values in one product. At a
// block a step, that bookkeeping (on rows of 16 scores) and its BLAS calls
// were a third of a smol-135m prompt's time.
constexpr int64_t kSpanBlocks = 8;

int64_t SpanPositions(int32_t block_size) { return kSpanBlocks * block_size; }

// Whether `m` query rows read keys and values where they lie (a decode
// step's few) rather than meet a gathered copy in one BLAS product.
bool FewQueries(int64_t m) { return m <= kFewQueryRows; }

// Positions of keys and values that `m` query rows meet as a float copy: a
// prompt's many rows a whole span, gathered for their BLAS products; a
// decode step's few rows of a cache of halves or Q8_0 one block, widened
// once for all of them (into L1: a span of widened keys and values, 64 KiB
// at a head of 64, had to be written to L2 and read back); none for the few
// rows of a float cache, which read each block where it lies.
int64_t GatheredPositions(int64_t m, int32_t block_size, KvType type) {
  if (!FewQueries(m)) return SpanPositions(block_size);
  return type == KvType::kF32 ? 0 : block_size;
}

// Floats in a cache line. Each part of the scratch starts on one, as does
// the scratch itself (cpu_forward.cpp): the kernels' 64-byte loads of keys
// and values widened into it split across two lines otherwise, and a
// decode row's scores of a block took half as long again.
constexpr int64_t kLineFloats = 16;
int64_t WholeLines(int64_t floats) { return (floats + kLineFloats - 1) / kLineFloats * kLineFloats; }

// A scratch of AttentionScratch floats for `m` query rows: their queries
// and (unnormalized) outputs [m, head_dim], one span's scores [m, span],
// each row's maximum and sum so far, and the keys and values gathered from
// the cache (GatheredPositions of each, [positions, head_dim]), each in
// whole cache lines.
template <typename Float>
struct ScratchView {
  Float *queries, *result, *scores, *row_max, *row_sum, *keys, *values;
};
template <typename Float>
ScratchView<Float> ViewScratch(Float* scratch, int64_t m, int64_t hd, int32_t block_size, KvType type) {
  const int64_t span = SpanPositions(block_size);
  ScratchView<Float> v;
  v.queries = scratch;
  v.result = v.queries + WholeLines(m * hd);
  v.scores = v.result + WholeLines(m * hd);
  v.row_max = v.scores + WholeLines(m * span);
  v.row_sum = v.row_max + WholeLines(m);
  const int64_t gathered = GatheredPositions(m, block_size, type);
  v.keys = gathered > 0 ? v.row_sum + WholeLines(m) : nullptr;
  v.values = gathered > 0 ? v.keys + WholeLines(gathered * hd) : nullptr;
  return v;
}

}  // namespace

int64_t AttentionScratch(const LlamaConfig& config, int64_t rows, const KvBlockPool& pool) {
  const int64_t m = static_cast<int64_t>(config.n_head / config.n_head_kv) * rows;
  const int64_t span = SpanPositions(pool.block_size());
  const int64_t gathered = GatheredPositions(m, pool.block_size(), pool.shape().type);
  return 2 * WholeLines(m * config.head_dim) + WholeLines(m * span) + 2 * WholeLines(m) +
         2 * WholeLines(gathered * config.head_dim);
}

void AttendOneKvHead(const LlamaConfig& config, const CpuSequence& seq, int32_t pos0, int32_t layer,
                     int64_t kv_head, int32_t window, const float* q, float* scratch, float* out,
                     AttentionPart part) {
  const int64_t n = seq.count, hd = config.head_dim;
  const int64_t group = config.n_head / config.n_head_kv;
  const int64_t q_width = static_cast<int64_t>(config.n_head) * hd;
  const int64_t m = group * n;  // query rows, ordered (head in group, row)
  const int64_t total = pos0 + n;
  const KvBlockPool& pool = seq.cache->pool();
  const int32_t block_size = pool.block_size();
  const ScratchView<float> view = ViewScratch(scratch, m, hd, block_size, pool.shape().type);
  float *queries = view.queries, *result = view.result, *scores = view.scores;
  float *row_max = view.row_max, *row_sum = view.row_sum;
  for (int64_t g = 0; g < group; ++g) {
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(queries + (g * n + i) * hd, q + (seq.first + i) * q_width + (kv_head * group + g) * hd,
                  static_cast<size_t>(hd) * sizeof(float));
    }
  }
  std::fill(row_max, row_max + m, -std::numeric_limits<float>::infinity());
  std::fill(row_sum, row_sum + m, 0.0f);
  std::fill(result, result + m * hd, 0.0f);
  // The query was scaled already where the family scales it after the rotation.
  const float scale = config.arch->prescaled_query ? 1.0f : config.attention_scale;
  const float softcap = config.attention_softcap;
  const float inverse_softcap = softcap > 0 ? 1.0f / softcap : 0.0f;
  // Row i, at position pos0 + i, sees positions [first_seen(i), pos0 + i].
  auto first_seen = [&](int64_t i) { return window > 0 ? std::max<int64_t>(0, pos0 + i - window + 1) : 0; };
  // A decode step's few query rows meet each block's keys and values through
  // the engine's float kernels: at these sizes BLAS spends more packing its
  // operands than multiplying them (a fifth of a small model's decode step).
  const bool few_queries = FewQueries(m);
  const kernels::KernelSet& kernel_set = kernels::BestKernels();
  const kernels::KeyScoresFn key_scores = kernel_set.key_scores;
  const kernels::WeightedRowSumFn weighted_row_sum = kernel_set.weighted_row_sum;
  const KvType type = pool.shape().type;
  const bool floats = type == KvType::kF32;
  // The kernels that read a cache of halves or Q8_0 blocks where it lies, if the set has them.
  // Keys stored transposed go to their own kernel, or are widened into rows.
  const bool keys_transposed = pool.keys_transposed();
  const kernels::KeyScoresTransposedFn key_scores_transposed =
      keys_transposed ? kernel_set.key_scores_f16_transposed : nullptr;
  const kernels::KeyScoresInPlaceFn key_scores_in_place =
      keys_transposed          ? nullptr
      : type == KvType::kF16  ? kernel_set.key_scores_f16
      : type == KvType::kQ8_0 ? kernel_set.key_scores_q8_0
                               : nullptr;
  const kernels::WeightedRowSumInPlaceFn weighted_row_sum_in_place =
      type == KvType::kF16     ? kernel_set.weighted_row_sum_f16
      : type == KvType::kQ8_0 ? kernel_set.weighted_row_sum_q8_0
                               : nullptr;
  const int64_t span = SpanPositions(block_size);
  // This part's share of the blocks from the first one any row sees.
  const int64_t first_block = first_seen(0) / block_size, blocks = (total + block_size - 1) / block_size - first_block;
  const int64_t part_begin = (first_block + blocks * part.index / part.count) * block_size;
  const int64_t part_end = std::min(total, (first_block + blocks * (part.index + 1) / part.count) * block_size);
  const int64_t head_bytes = pool.head_bytes();
  // Where this KV head's keys (or values) of the sequence's block `index` lie.
  const auto head_data = [&](int64_t index, bool values) {
    return pool.HeadData(seq.cache->block_table()[index], layer, kv_head, values);
  };
  // Asks memory for a head's keys (or values) of a block. A lambda, which
  // GCC 12 inlines with its prefetches: a function that only prefetches it
  // finds pure and deletes the calls of (with KvBlockPool::LayerData inline,
  // no prefetcht0 was left in AttendOneKvHead). Check the object code after
  // moving them.
  const auto ask_for = [head_bytes](const uint8_t* head) {
    for (int64_t line = 0; line < head_bytes; line += 64) __builtin_prefetch(head + line);
  };
  for (int64_t p0 = part_begin; p0 < part_end; p0 += span) {
    const int64_t run = std::min(span, part_end - p0);
    // Calls visit(offset, keys, values, count) for each block of the span:
    // its positions from p0 + offset on, where its keys and values lie.
    const auto for_each_block = [&](const auto& visit) {
      for (int64_t offset = 0; offset < run; offset += block_size) {
        const int64_t index = (p0 + offset) / block_size;
        visit(offset, head_data(index, false), head_data(index, true), std::min<int64_t>(block_size, run - offset));
      }
    };
    // A prompt's rows meet the whole span's keys and values in one product each.
    if (!few_queries) {
      // Transposed keys are widened as they lie: hd rows of the span's positions.
      for_each_block([&](int64_t offset, const uint8_t* keys, const uint8_t* values, int64_t count) {
        if (keys_transposed) {
          pool.LoadKeyColumns(keys, count, view.keys + offset, run);
        } else {
          pool.LoadHeadRows(keys, 0, count, false, view.keys + offset * hd);
        }
        pool.LoadHeadRows(values, 0, count, true, view.values + offset * hd);
      });
    }
    // What the few rows' pass over keys (or values) reads after the block at
    // `offset`: the next block's, then the span's first values, then the next
    // span's first keys. Each block's are a few KiB somewhere in the pool, too
    // short a run for the hardware prefetcher to have started on before it
    // ends: asked for a block ahead, a decode step's widening of halves went
    // from 11% of its time to 4% (smol-135m, 129-256 positions).
    const auto read_after = [&](int64_t offset, bool values) -> const uint8_t* {
      if (offset + block_size < run) return head_data((p0 + offset) / block_size + 1, values);
      if (!values) return head_data(p0 / block_size, true);
      if (p0 + span < part_end) return head_data((p0 + span) / block_size, false);
      return nullptr;
    };
    // Rows before p0 see none of this span (a prompt's early rows and the
    // later spans of its own chunk): each head's rows from `first` on are
    // multiplied, and the others left as they are.
    const int64_t first = std::max<int64_t>(0, p0 - pos0), seeing = n - first;
    // The few rows' kernels take the query rows of every head in the group
    // at once where all of them see the span (a decode step's always), each
    // head's seeing rows otherwise: rows (head g, i >= first) lie together.
    const int64_t row_runs = first == 0 ? 1 : group, rows_per_run = first == 0 ? m : seeing;
    // The few rows' kernels read keys or values block by block, each block
    // met by every query head of the KV head before the next: floats, or
    // halves and Q8_0 blocks where they lie (visit_in_place, where the set
    // reads them in place), or widened once into the scratch.
    const bool in_place_widths = kernels::ReadsInPlace(hd, rows_per_run);
    const bool keys_in_place = key_scores_in_place != nullptr && in_place_widths;
    const bool values_in_place = weighted_row_sum_in_place != nullptr && in_place_widths;
    const auto for_each_kv_block = [&](bool values, const auto& visit_floats, const auto& visit_in_place) {
      for_each_block([&](int64_t offset, const uint8_t* keys_at, const uint8_t* values_at, int64_t count) {
        const uint8_t* at = values ? values_at : keys_at;
        if (const uint8_t* next = read_after(offset, values)) ask_for(next);
        if (values ? values_in_place : keys_in_place) {
          visit_in_place(offset, at, count);
        } else if (floats) {
          visit_floats(offset, reinterpret_cast<const float*>(at), count);
        } else {
          float* widened = values ? view.values : view.keys;
          pool.LoadHeadRows(at, 0, count, values, widened);
          visit_floats(offset, widened, count);
        }
      });
    };
    if (few_queries) {
      const auto scores_of = [&](auto score_keys) {
        return [&, score_keys](int64_t offset, const auto* keys, int64_t count) {
          for (int64_t g = 0; g < row_runs; ++g) {
            const int64_t r = g * n + first;
            score_keys(keys, count, hd, queries + r * hd, hd, rows_per_run, scale, scores + r * run + offset, run);
          }
        };
      };
      if (key_scores_transposed != nullptr) {
        // The span's keys in one call, sixty-four a pass (the kernel asks
        // for each pass's successor); its first values asked for meanwhile.
        const uint8_t* key_blocks[kSpanBlocks];
        int64_t blocks_in_span = 0;
        for_each_block([&](int64_t, const uint8_t* keys, const uint8_t*, int64_t) {
          key_blocks[blocks_in_span++] = keys;
        });
        ask_for(head_data(p0 / block_size, true));
        for (int64_t g = 0; g < row_runs; ++g) {
          const int64_t r = g * n + first;
          key_scores_transposed(key_blocks, run, block_size, hd, queries + r * hd, hd, rows_per_run, scale,
                                scores + r * run, run);
        }
      } else {
        for_each_kv_block(false, scores_of(key_scores), scores_of(key_scores_in_place));
      }
    } else {
      for (int64_t g = 0; g < group; ++g) {
        const float* group_queries = queries + (g * n + first) * hd;
        float* group_scores = scores + (g * n + first) * run;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, keys_transposed ? CblasNoTrans : CblasTrans,
                    static_cast<int>(seeing), static_cast<int>(run), static_cast<int>(hd), scale, group_queries,
                    static_cast<int>(hd), view.keys, static_cast<int>(keys_transposed ? run : hd), 0.0f,
                    group_scores, static_cast<int>(run));
      }
    }
    for (int64_t g = 0; g < group; ++g) {
      for (int64_t i = first; i < n; ++i) {
        const int64_t r = g * n + i;
        float* row = scores + r * run;
        const int64_t from = std::max<int64_t>(0, first_seen(i) - p0);
        const int64_t valid = std::min<int64_t>(run, pos0 + i + 1 - p0);
        if (valid <= from) {
          std::fill(row, row + run, 0.0f);
          continue;
        }
        if (softcap > 0) {
          for (int64_t t = from; t < valid; ++t) row[t] = softcap * std::tanh(row[t] * inverse_softcap);
        }
        const float span_max = MaxOf(row + from, valid - from);
        const float new_max = std::max(row_max[r], span_max);
        // A row's first visible span finds its maximum at -inf: the rescale is 0 of nothing.
        if (new_max > row_max[r] && row_sum[r] > 0.0f) {
          const float rescale = std::exp(row_max[r] - new_max);
          row_sum[r] *= rescale;
          for (int64_t j = 0; j < hd; ++j) result[r * hd + j] *= rescale;
        }
        row_max[r] = new_max;
        std::fill(row, row + from, 0.0f);
        row_sum[r] += ShiftedExpInPlace(row + from, valid - from, new_max);
        std::fill(row + valid, row + run, 0.0f);
      }
    }
    if (few_queries) {
      const auto sums_of = [&](auto sum_rows) {
        return [&, sum_rows](int64_t offset, const auto* values, int64_t count) {
          for (int64_t g = 0; g < row_runs; ++g) {
            const int64_t r = g * n + first;
            sum_rows(scores + r * run + offset, run, rows_per_run, values, count, hd, result + r * hd, hd);
          }
        };
      };
      for_each_kv_block(true, sums_of(weighted_row_sum), sums_of(weighted_row_sum_in_place));
    } else {
      for (int64_t g = 0; g < group; ++g) {
        const float* group_scores = scores + (g * n + first) * run;
        float* group_result = result + (g * n + first) * hd;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(seeing), static_cast<int>(hd),
                    static_cast<int>(run), 1.0f, group_scores, static_cast<int>(run), view.values,
                    static_cast<int>(hd), 1.0f, group_result, static_cast<int>(hd));
      }
    }
  }
  if (part.count > 1) return;  // MergeAttentionParts finishes
  for (int64_t g = 0; g < group; ++g) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = g * n + i;
      const float inverse = 1.0f / row_sum[r];
      float* dst = out + (seq.first + i) * q_width + (kv_head * group + g) * hd;
      for (int64_t j = 0; j < hd; ++j) dst[j] = result[r * hd + j] * inverse;
    }
  }
}

void MergeAttentionParts(const LlamaConfig& config, const CpuSequence& seq, int64_t kv_head, const float* scratch,
                         int64_t scratch_stride, int64_t parts, float* out) {
  const int64_t n = seq.count, hd = config.head_dim;
  const int64_t group = config.n_head / config.n_head_kv;
  const int64_t q_width = static_cast<int64_t>(config.n_head) * hd;
  const int64_t m = group * n;
  const int32_t block_size = seq.cache->pool().block_size();
  const KvType type = seq.cache->pool().shape().type;
  for (int64_t g = 0; g < group; ++g) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = g * n + i;
      // A part with none of the positions this row sees has a sum of 0 and adds nothing.
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t p = 0; p < parts; ++p) {
        const ScratchView<const float> part = ViewScratch(scratch + p * scratch_stride, m, hd, block_size, type);
        if (part.row_sum[r] > 0.0f) max = std::max(max, part.row_max[r]);
      }
      float* dst = out + (seq.first + i) * q_width + (kv_head * group + g) * hd;
      std::fill(dst, dst + hd, 0.0f);
      float total = 0.0f;
      for (int64_t p = 0; p < parts; ++p) {
        const ScratchView<const float> part = ViewScratch(scratch + p * scratch_stride, m, hd, block_size, type);
        if (!(part.row_sum[r] > 0.0f)) continue;
        const float weight = std::exp(part.row_max[r] - max);
        total += part.row_sum[r] * weight;
        for (int64_t j = 0; j < hd; ++j) dst[j] += part.result[r * hd + j] * weight;
      }
      const float inverse = 1.0f / total;
      for (int64_t j = 0; j < hd; ++j) dst[j] *= inverse;
    }
  }
}

int64_t AttentionParts(int64_t tasks, int threads, int64_t work_per_task, int64_t min_work_per_part) {
  if (tasks <= 0 || threads <= 1) return 1;
  // The fewest parts that make the tasks a multiple of the threads.
  const int64_t parts = threads / std::gcd(tasks, static_cast<int64_t>(threads));
  if (parts <= 1 || work_per_task / parts < min_work_per_part) return 1;
  return parts;
}

}  // namespace edgellm::engine
