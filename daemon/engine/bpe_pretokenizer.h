// engine/bpe_pretokenizer.h — splits text into words before byte-level BPE,
// as llama.cpp does for each `tokenizer.ggml.pre`.
//
// A pre-tokenizer is a list of patterns applied in turn: each one splits
// every piece the previous ones left into its matches and the runs between
// them (split_regex.h), so the pieces always concatenate back to the input.
// The GPT-2 pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
// runs by hand over code points (it is the most common one; llama.cpp has a
// hand-written version of it too), every other pattern through SplitRegex.
//
// Adding a pre-tokenizer is one entry in the table in bpe_pretokenizer.cpp:
// its names and its patterns, copied from the model's tokenizer.json as
// llama.cpp adapts them.
#ifndef EDGELLM_ENGINE_BPE_PRETOKENIZER_H_
#define EDGELLM_ENGINE_BPE_PRETOKENIZER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/engine/split_regex.h"

namespace edgellm::engine {

// The GPT-2 pattern alone; with `split_digits` every \p{N} character is first
// made a piece of its own (the "smollm"/"starcoder" pre-tokenizer).
std::vector<std::string_view> PreTokenizeGpt2(std::string_view text, bool split_digits = false);

// Immutable; safe to share between threads.
class PreTokenizer {
 public:
  // The pre-tokenizer llama.cpp uses for `name` ("" means llama.cpp's
  // default); InvalidArgument listing the supported names otherwise.
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> ForName(std::string_view name);
  // Every name ForName accepts.
  static std::vector<std::string> Names();

  std::vector<std::string_view> Split(std::string_view text) const;
  // Whether a word that is itself a token skips the merges (Llama 3's BPE).
  bool ignore_merges() const { return ignore_merges_; }

 private:
  // One pattern: the hand-written GPT-2 one when `regex` is empty.
  struct Step {
    std::unique_ptr<SplitRegex> regex;
  };
  PreTokenizer() = default;

  std::vector<Step> steps_;
  bool ignore_merges_ = false;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_BPE_PRETOKENIZER_H_
