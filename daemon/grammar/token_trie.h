// grammar/token_trie.h — a vocabulary as a trie of the bytes each token adds
// to the output, so a grammar can decide for thousands of tokens at once:
// one walk down the trie per grammar state, leaving every branch the grammar
// refuses, instead of one check per token.
#ifndef EDGELLM_GRAMMAR_TOKEN_TRIE_H_
#define EDGELLM_GRAMMAR_TOKEN_TRIE_H_

#include <cstdint>
#include <string>
#include <vector>

namespace edgellm::grammar {

// Immutable once built; may be shared by every request of a model.
class TokenTrie {
 public:
  // `pieces[id]` is what token `id` adds to the output; tokens with an empty
  // piece (control tokens) are not in the trie. `end_tokens` end a
  // generation: a grammar allows them where it may finish.
  TokenTrie(const std::vector<std::string>& pieces, std::vector<int32_t> end_tokens);

  struct Edge {
    uint8_t byte;
    int32_t node;
  };
  struct Node {
    uint32_t first_edge = 0, edge_count = 0;    // into edges()
    uint32_t first_token = 0, token_count = 0;  // into tokens(): tokens whose piece ends here
  };
  const std::vector<Node>& nodes() const { return nodes_; }  // nodes()[0] is the root
  const std::vector<Edge>& edges() const { return edges_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  const std::vector<int32_t>& end_tokens() const { return end_tokens_; }
  const std::string& piece(int32_t token) const { return pieces_[static_cast<size_t>(token)]; }
  int32_t vocab_size() const { return static_cast<int32_t>(pieces_.size()); }

 private:
  std::vector<std::string> pieces_;
  std::vector<Node> nodes_;
  std::vector<Edge> edges_;
  std::vector<int32_t> tokens_;
  std::vector<int32_t> end_tokens_;
};

}  // namespace edgellm::grammar

#endif  // EDGELLM_GRAMMAR_TOKEN_TRIE_H_
