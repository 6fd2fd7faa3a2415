// engine/bpe_pretokenizer.h — splits text into words before byte-level BPE,
// as llama.cpp does for each `tokenizer.ggml.pre`.
//
// A pre-tokenizer is a list of patterns applied in turn: each one splits
// every piece the previous ones left into its matches and the runs between
// them (split_regex.h), so the pieces always concatenate back to the input.
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

// Immutable; safe to share between threads.
class PreTokenizer {
 public:
  // The pre-tokenizer llama.cpp uses for `name` ("" means llama.cpp's
  // default); InvalidArgument listing the supported names otherwise.
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> ForName(std::string_view name);
  // Every name ForName accepts.
  static std::vector<std::string> Names();
  // Whether llama.cpp adds a BOS for a vocabulary of this pre-tokenizer
  // when the file has no tokenizer.ggml.add_bos_token (the Llama 3 family).
  static bool AddsBosByDefault(std::string_view name);

  std::vector<std::string_view> Split(std::string_view text) const;
  // Whether a word that is itself a token skips the merges (Llama 3's BPE).
  bool ignore_merges() const { return ignore_merges_; }

 private:
  PreTokenizer() = default;

  std::vector<SplitRegex> patterns_;
  bool ignore_merges_ = false;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_BPE_PRETOKENIZER_H_
