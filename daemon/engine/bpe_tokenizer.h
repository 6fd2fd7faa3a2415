// engine/bpe_tokenizer.h — gpt2-style byte-level BPE.
//
// Text is split into words by the GPT-2 pre-tokenizer, every byte of a word is
// mapped to a printable code point (the GPT-2 byte-to-unicode table, so "Ġ" is
// a space), and adjacent symbols are merged by merge rank, lowest first and
// leftmost on ties. Decoding maps the code points back to bytes.
#ifndef EDGELLM_ENGINE_BPE_TOKENIZER_H_
#define EDGELLM_ENGINE_BPE_TOKENIZER_H_

#include <array>
#include <memory>
#include <string>
#include <unordered_map>

#include "daemon/engine/tokenizer.h"

namespace edgellm::engine {

// The GPT-2 byte <-> code point table.
uint32_t Gpt2ByteToCodePoint(uint8_t byte);
// -1 for a code point that no byte maps to.
int Gpt2CodePointToByte(uint32_t code_point);

class BpeTokenizer final : public Tokenizer {
 public:
  // InvalidArgument for a merge that is not "left right", or an unsupported
  // pre-tokenizer (`tokenizer.ggml.pre`: default, gpt2, mpt, olmo, and the
  // digit-splitting smollm, starcoder, refact, command-r, codeshell, exaone).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(Vocab vocab);

 protected:
  void EncodeText(std::string_view text, bool after_special, std::vector<TokenId>* out) const override;
  std::string NormalPiece(TokenId id) const override;

 private:
  explicit BpeTokenizer(Vocab vocab) : Tokenizer(std::move(vocab)) {}
  void EncodeWord(const std::string& mapped, std::vector<TokenId>* out) const;
  int MergeRank(std::string_view left, std::string_view right) const;

  std::unordered_map<std::string, int> merge_ranks_;  // "left right" -> rank
  bool split_digits_ = false;                         // see PreTokenizeGpt2
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_BPE_TOKENIZER_H_
