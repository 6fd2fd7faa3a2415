// engine/attention.h — one sequence's attention for one KV head and the query
// heads that share it, read straight from the sequence's KV blocks.
//
// It runs a span of eight KV blocks at a time, with a running softmax (each
// query row keeps its maximum and sum so far and rescales its partial output
// once per span), so its scratch depends on the rows, never on the length of
// the sequence. A decode step's few rows meet the keys and values block by
// block, every query head of the KV head before the next block: a float
// cache's where they lie (eight keys a pass), a cache of halves' widened once
// into the scratch for all of them; a prompt's rows meet a float copy of the
// span's, gathered once for one product each. The blocks may also be split into
// parts run on different threads and merged after (as flash-decoding does):
// a decode step has one task per KV head, which two threads cannot share
// evenly when there are three of them.
#ifndef EDGELLM_ENGINE_ATTENTION_H_
#define EDGELLM_ENGINE_ATTENTION_H_

#include <cstdint>

#include "daemon/engine/cpu_forward.h"
#include "daemon/engine/kv_block_pool.h"
#include "daemon/engine/llama_config.h"

namespace edgellm::engine {

// Which of `count` consecutive runs of a sequence's visible KV blocks a call covers.
struct AttentionPart {
  int64_t index = 0;
  int64_t count = 1;
};

// Floats of scratch AttendOneKvHead needs for `rows` rows of a sequence
// whose cache lies in `pool` (per part): whole cache lines, so scratches laid
// end to end from a 64-byte boundary each start on one, as its kernels want.
int64_t AttentionScratch(const LlamaConfig& config, int64_t rows, const KvBlockPool& pool);

// Attention of `seq`'s rows (at positions pos0 onward, its keys and values
// already written) for KV head `kv_head` over the blocks of `part`. With one
// part, rows [count, n_head * head_dim] of `out` get those heads' outputs;
// with more, `scratch` keeps the part's unnormalized outputs, maxima and sums
// for MergeAttentionParts and `out` is untouched. In a sliding-window layer
// (`window` > 0) row i sees only the last `window` positions up to its own;
// blocks no row sees are skipped.
void AttendOneKvHead(const LlamaConfig& config, const CpuSequence& seq, int32_t pos0, int32_t layer,
                     int64_t kv_head, int32_t window, const float* q, float* scratch, float* out,
                     AttentionPart part = {});

// The outputs of `parts` parts of one KV head's attention, whose scratches
// lie `scratch_stride` floats apart from `scratch` on: each part's outputs
// weighted by its share of the softmax, into `out` as AttendOneKvHead writes it.
void MergeAttentionParts(const LlamaConfig& config, const CpuSequence& seq, int64_t kv_head, const float* scratch,
                         int64_t scratch_stride, int64_t parts, float* out);

// Parts to split each of `tasks` decode-attention tasks (a sequence's KV
// head, `work_per_task` query-key products each) into so that `threads`
// threads get equal shares: 1 when they already do or when a part would be
// worth less than `min_work_per_part`.
int64_t AttentionParts(int64_t tasks, int threads, int64_t work_per_task, int64_t min_work_per_part);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_ATTENTION_H_
