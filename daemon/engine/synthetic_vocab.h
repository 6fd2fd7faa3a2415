// engine/synthetic_vocab.h — builds a working tokenizer vocabulary of any size
// without downloading one, for synthetic benchmark models.
//
// Merges are first learned by byte-pair encoding from a small built-in English
// corpus (so English text tokenizes into plausible pieces), then the
// vocabulary is grown to the requested size with merges of random pairs of
// existing tokens. Every text round-trips through the result.
#ifndef EDGELLM_ENGINE_SYNTHETIC_VOCAB_H_
#define EDGELLM_ENGINE_SYNTHETIC_VOCAB_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "daemon/engine/tokenizer.h"

namespace edgellm::engine {

// What every llama SentencePiece vocabulary starts with: <unk> <s> </s> and
// the 256 byte tokens <0x00>..<0xFF> (ids 3..258), scores 0, BOS 1, EOS 2,
// UNK 0, a BOS added and a space prefixed.
Vocab SpmBaseVocab();

// A llama SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens, then
// pieces with descending scores. InvalidArgument if `size` < 300.
absl::StatusOr<Vocab> MakeSpmVocab(int32_t size, uint64_t seed);

// A gpt2 byte-level BPE vocabulary with the smollm pre-tokenizer:
// <|endoftext|> <|im_start|> <|im_end|>, the
// 256 byte symbols, then merged tokens. InvalidArgument if `size` < 300.
absl::StatusOr<Vocab> MakeBpeVocab(int32_t size, uint64_t seed);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_SYNTHETIC_VOCAB_H_
