#include "daemon/engine/token_trie_of.h"

namespace edgellm::engine {

std::shared_ptr<const grammar::TokenTrie> TokenTrieOf(const Tokenizer& tokenizer) {
  std::vector<std::string> pieces(static_cast<size_t>(tokenizer.vocab_size()));
  std::vector<int32_t> end_tokens;
  for (TokenId id = 0; id < tokenizer.vocab_size(); ++id) {
    if (tokenizer.IsEndOfGeneration(id)) end_tokens.push_back(id);
    if (tokenizer.vocab().kinds[static_cast<size_t>(id)] != TokenKind::kUnknown) {
      pieces[static_cast<size_t>(id)] = tokenizer.TokenToPiece(id);
    }
  }
  return std::make_shared<grammar::TokenTrie>(pieces, std::move(end_tokens));
}

}  // namespace edgellm::engine
