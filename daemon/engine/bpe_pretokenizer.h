// engine/bpe_pretokenizer.h — splits text into words before byte-level BPE.
//
// Implements the GPT-2 pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// by hand over code points (Unicode classes from ICU), so no regex engine is
// needed. The pieces concatenate back to the input exactly.
//
// With `split_digits` every \p{N} character is first made a piece of its own
// and the pattern runs on the text between them — the pre-tokenizer that
// llama.cpp uses for "smollm", "starcoder", "refact", "command-r", "codeshell"
// and "exaone".
#ifndef EDGELLM_ENGINE_BPE_PRETOKENIZER_H_
#define EDGELLM_ENGINE_BPE_PRETOKENIZER_H_

#include <string_view>
#include <vector>

namespace edgellm::engine {

std::vector<std::string_view> PreTokenizeGpt2(std::string_view text, bool split_digits = false);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_BPE_PRETOKENIZER_H_
