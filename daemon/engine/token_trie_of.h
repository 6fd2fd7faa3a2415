// engine/token_trie_of.h — a tokenizer's vocabulary as the token trie that
// grammars mask (grammar/token_trie.h).
#ifndef EDGELLM_ENGINE_TOKEN_TRIE_OF_H_
#define EDGELLM_ENGINE_TOKEN_TRIE_OF_H_

#include <memory>

#include "daemon/engine/tokenizer.h"
#include "daemon/grammar/token_trie.h"

namespace edgellm::engine {

// Each token's piece as the output shows it (control and unknown tokens have
// none, so a grammar never allows them); the end-of-generation tokens as the
// ones a grammar allows where it may finish.
std::shared_ptr<const grammar::TokenTrie> TokenTrieOf(const Tokenizer& tokenizer);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_TOKEN_TRIE_OF_H_
