// engine/bpe_tokenizer.h — gpt2-style byte-level BPE.
//
// Text is split into words by the file's pre-tokenizer (bpe_pretokenizer.h),
// every byte of a word is mapped to a printable code point (the GPT-2
// byte-to-unicode table, so "Ġ" is a space), and adjacent symbols are merged
// by merge rank, lowest first and leftmost on ties. A symbol that is no token
// falls back to the single-byte tokens of its bytes, as llama.cpp does.
// Decoding maps the code points back to bytes.
#ifndef EDGELLM_ENGINE_BPE_TOKENIZER_H_
#define EDGELLM_ENGINE_BPE_TOKENIZER_H_

#include <array>
#include <memory>
#include <string>

#include "daemon/engine/bpe_pretokenizer.h"
#include "daemon/engine/tokenizer.h"

namespace edgellm::engine {

// The GPT-2 byte <-> code point table.
uint32_t Gpt2ByteToCodePoint(uint8_t byte);
// -1 for a code point that no byte maps to.
int Gpt2CodePointToByte(uint32_t code_point);

class BpeTokenizer final : public Tokenizer {
 public:
  // InvalidArgument for a merge that is not "left right", or a
  // `tokenizer.ggml.pre` that PreTokenizer::ForName does not know.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(Vocab vocab);

 protected:
  void EncodeText(std::string_view text, bool after_special, std::vector<TokenId>* out) const override;
  std::string NormalPiece(TokenId id) const override;

 private:
  BpeTokenizer(Vocab vocab, std::unique_ptr<PreTokenizer> pre)
      : Tokenizer(std::move(vocab)), pre_(std::move(pre)) {}
  void EncodeWord(const std::string& mapped, std::vector<TokenId>* out) const;
  int MergeRank(std::string_view left, std::string_view right) const;

  std::unique_ptr<PreTokenizer> pre_;
  TextIndex merge_ranks_;  // "left right" -> rank
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_BPE_TOKENIZER_H_
