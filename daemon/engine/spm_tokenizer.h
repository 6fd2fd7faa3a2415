// engine/spm_tokenizer.h — the llama SentencePiece tokenizer as llama.cpp runs it.
//
// Spaces become U+2581 ("▁"), a "▁" is prefixed to text that starts the input or
// follows a special token (when the file asks for it), then adjacent symbols
// are merged greedily: always the pair whose concatenation is the
// highest-scoring token, leftmost first on ties. A character that is not in
// the vocabulary falls back to its UTF-8 bytes as <0xXX> tokens.
#ifndef EDGELLM_ENGINE_SPM_TOKENIZER_H_
#define EDGELLM_ENGINE_SPM_TOKENIZER_H_

#include <array>
#include <memory>

#include "daemon/engine/tokenizer.h"

namespace edgellm::engine {

class SpmTokenizer final : public Tokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(Vocab vocab);

 protected:
  void EncodeText(std::string_view text, bool after_special, std::vector<TokenId>* out) const override;
  std::string NormalPiece(TokenId id) const override;

 private:
  explicit SpmTokenizer(Vocab vocab);
  void AppendSymbol(std::string_view symbol, std::vector<TokenId>* out) const;

  std::array<TokenId, 256> byte_tokens_{};  // -1 where the vocabulary lacks the byte
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_SPM_TOKENIZER_H_
