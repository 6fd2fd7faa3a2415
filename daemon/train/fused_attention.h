// train/fused_attention.h — causal self-attention for training, forward and
// backward in one autograd function on the engine's pool.
//
// The composite of ATen operations it replaces kept, per layer, the
// [rows, heads, length, length] probabilities, the grouped keys and values
// repeated to every query head, and contiguous copies of the transposed
// heads for the backward pass. This keeps only its inputs, its output and
// one log-sum-exp per query: the backward pass computes each (row, head)'s
// scores again, a length × length tile in a thread's scratch at a time.
// Engine-internal to train/: includes ATen.
#ifndef EDGELLM_TRAIN_FUSED_ATTENTION_H_
#define EDGELLM_TRAIN_FUSED_ATTENTION_H_

#include <ATen/ATen.h>

#include <cstdint>

namespace edgellm::train {

struct AttentionShape {
  int64_t rows = 0;    // batch rows
  int64_t length = 0;  // tokens per row
  int64_t heads = 0;
  int64_t kv_heads = 0;  // heads / kv_heads query heads share each key and value head
  int64_t head_dim = 0;
  float scale = 1.0f;    // on the query-key products
  float softcap = 0.0f;  // cap · tanh(score / cap) after scaling; 0: none
  int32_t window = 0;    // a query sees keys fewer than this many positions back; 0: any
};

// Which keys each query sees: those of its own segment (example) at or
// before it, within the window, and always itself (so a pad row is never
// empty). segments, positions: int64 [rows, length], alive until backward.
struct AttentionMask {
  at::Tensor segments;
  at::Tensor positions;
};

// softmax(mask(softcap(q · kᵀ · scale))) · v per row and head.
// q: [rows * length, heads * head_dim]; k, v: [rows * length, kv_heads * head_dim];
// float32. Returns [rows * length, heads * head_dim].
at::Tensor FusedAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMask& mask,
                          const AttentionShape& shape);

}  // namespace edgellm::train

#endif  // EDGELLM_TRAIN_FUSED_ATTENTION_H_
