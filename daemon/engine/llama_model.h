// engine/llama_model.h — a decoder model loaded from GGUF: Llama and the
// families whose differences architecture.h describes.
//
// The Llama block (RMSNorm, RoPE, grouped-query attention, SwiGLU MLP), with
// each family's extra tensors (biases, q/k norms) where it has them. On
// the CPU it runs the engine's fused pass (cpu_forward.h) with the weights
// read in place in the memory-mapped file; nothing here needs LibTorch, so a
// process that only serves never loads it. The LibTorch forward (other
// devices, and an independent reference) attaches through torch_forward.h.
#ifndef EDGELLM_ENGINE_LLAMA_MODEL_H_
#define EDGELLM_ENGINE_LLAMA_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "daemon/engine/kv_block_pool.h"
#include "daemon/engine/kv_cache.h"
#include "daemon/engine/llama_config.h"
#include "daemon/engine/mapped_file.h"
#include "daemon/engine/tokenizer.h"

namespace edgellm::engine {

class ForwardBackend;
class GgufReader;
struct CpuModelWeights;
class LoraAdapter;

struct ModelOptions {
  // CPU compute threads, process-wide (see compute_threads.h); 0 = one per core.
  int32_t threads = 0;
  // Positions a new KV cache holds; 0 = the trained context, at most 4096.
  int32_t context_length = 0;
  // Compute every weight in float32, dequantized once at load: the reference
  // the kernels are checked against (slower, and it holds a copy). Weights
  // of a type without a kernel are always computed so.
  bool dequantize_weights = false;
  // How the file is held (mapped_file.h): read into memory, or mapped from
  // the page cache (shared with other readers, nothing read at load).
  FileAccess file_access = FileAccess::kResident;
  // With a resident file: rewrite every matrix the best kernel set can pack
  // (KernelSet::pack) into that form once, in place, so that no forward
  // interleaves its rows again. A packed model runs only the engine's CPU
  // forward: not LibTorch's (UseLibTorch refuses it), not training.
  bool pack_weights = false;
  // How caches made by NewCache and NewBlockPool store keys and values.
  KvType kv_type = KvType::kF32;
};

// One sequence's share of a batched forward.
struct BatchItem {
  absl::Span<const TokenId> tokens;  // run at positions cache->length() onward
  KvCache* cache;
  bool all_logits = false;  // the logits of every token, not only the last (speculative checks)
  // A LoRA adapter made for this model, applied unmerged to this item only
  // (lora_adapter.h; not owned); nullptr: the base model.
  const LoraAdapter* adapter = nullptr;
};

// Immutable after Load (and AttachBackend). Forward may run concurrently on
// different caches.
class LlamaModel {
 public:
  // Maps `path`, validates every tensor's shape and type, and prepares the
  // weights. NotFound, InvalidArgument (malformed file or unsupported
  // architecture) or Unimplemented (a tensor type not supported yet).
  static absl::StatusOr<std::unique_ptr<LlamaModel>> Load(const std::string& path, const ModelOptions& options);
  // The same from a GGUF already open (or read from bytes); errors as Load.
  static absl::StatusOr<std::unique_ptr<LlamaModel>> FromGguf(std::unique_ptr<GgufReader> gguf,
                                                              const ModelOptions& options);
  ~LlamaModel();
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  const LlamaConfig& config() const;
  const Tokenizer& tokenizer() const;
  const GgufReader& gguf() const;
  // Positions of a cache made with NewCache().
  int32_t context_length() const;
  // Elements of every tensor in the file.
  uint64_t parameter_count() const;
  // The type holding most bytes of 2-D weights ("F32", "Q8_0", ...): the model's quantization.
  std::string_view weight_type() const;
  // Bytes of weights the compute reads for one token (all matrices as stored
  // for compute, e.g. dequantized; the embedding row excluded).
  uint64_t weight_bytes_per_token() const;

  // What one position of the KV cache holds.
  KvShape kv_shape() const;
  // A pool of KV blocks for many sequences (see kv_block_pool.h).
  // InvalidArgument for bad options, ResourceExhausted if it cannot be mapped.
  absl::StatusOr<std::shared_ptr<KvBlockPool>> NewBlockPool(KvPoolOptions options) const;
  // A cache for one sequence of up to `capacity` positions (0 = context_length())
  // in a pool of its own that holds exactly that. Errors as NewBlockPool.
  absl::StatusOr<std::unique_ptr<KvCache>> NewCache(int32_t capacity = 0) const;

  // Runs `tokens` at positions cache->length() onward in one forward, appends
  // their keys and values to `cache`, and writes the logits of the last token
  // (all_logits = false) or of every token ([n, vocab] row-major) to `logits`.
  // InvalidArgument for an empty input or an id outside the vocabulary,
  // OutOfRange when the cache would overflow its capacity or the context,
  // ResourceExhausted when its pool has too few free blocks; the cache holds
  // the same tokens on error.
  // With `adapter`, runs the model with that adapter applied (see BatchItem).
  absl::Status Forward(absl::Span<const TokenId> tokens, KvCache* cache, bool all_logits,
                       std::vector<float>* logits, const LoraAdapter* adapter = nullptr) const;

  // Runs several sequences in one forward, as continuous batching needs: every
  // weight matrix is read once for the rows of all of them, while attention
  // stays within each sequence and its own cache. Items may mix a prefill
  // chunk with single decode tokens. Writes the logits of each item's last
  // token, or of all its tokens when it asks for all_logits, to `logits`
  // (rows in item order, vocab wide) and appends to every cache.
  // Errors as Forward, naming the item, for a cache given twice and for an
  // adapter made for another model's shape; no cache changes on error.
  absl::Status ForwardBatch(absl::Span<const BatchItem> items, std::vector<float>* logits) const;

  // `tokens` at positions 0..n-1 in one forward of their own, as a reference
  // for the cached path; logits of every token.
  absl::Status ForwardNoCache(absl::Span<const TokenId> tokens, std::vector<float>* logits) const;

  // One embedding per input: the mean of its tokens' final hidden states
  // (after the output norm), scaled to unit length, n_embd values each, rows
  // in input order. All inputs run in one forward (on the CPU pass, whatever
  // backend is attached), at positions 0 onward, each attending only to itself.
  // InvalidArgument for an empty input or an id outside the vocabulary,
  // OutOfRange for an input longer than the context.
  absl::Status Embed(absl::Span<const std::vector<TokenId>> inputs, std::vector<float>* embeddings) const;

  // The weights as the fused pass reads them: in place in the mapping, or
  // the model's float copies. The LoRA trainer runs these same weights with
  // autograd, so training needs no second copy of the model.
  const CpuModelWeights& cpu_weights() const;
  // Matrices packed at load (ModelOptions::pack_weights); 0 when none was.
  int32_t packed_matrices() const;

  // From now on, forwards run on `backend` (see forward_backend.h). Call
  // before the first forward.
  void AttachBackend(std::unique_ptr<ForwardBackend> backend);

 private:
  struct Impl;
  explicit LlamaModel(std::unique_ptr<Impl> impl);
  absl::Status RunBatch(absl::Span<const BatchItem> items, std::vector<float>* logits) const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_LLAMA_MODEL_H_
