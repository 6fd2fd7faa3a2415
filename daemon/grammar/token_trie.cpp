#include "daemon/grammar/token_trie.h"

#include <algorithm>
#include <numeric>

namespace edgellm::grammar {

TokenTrie::TokenTrie(const std::vector<std::string>& pieces, std::vector<int32_t> end_tokens)
    : pieces_(pieces), end_tokens_(std::move(end_tokens)) {
  std::vector<int32_t> order;
  for (size_t id = 0; id < pieces_.size(); ++id) {
    if (!pieces_[id].empty()) order.push_back(static_cast<int32_t>(id));
  }
  // Sorted by piece, the tokens under any trie node are one contiguous run,
  // and those whose piece ends at the node come first.
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return pieces_[a] < pieces_[b] || (pieces_[a] == pieces_[b] && a < b);
  });
  // Breadth-first: each pending node is a run [begin, end) of `order` sharing `depth` bytes.
  struct Pending {
    size_t begin, end, depth;
  };
  std::vector<Pending> queue = {{0, order.size(), 0}};
  nodes_.push_back({});
  for (size_t n = 0; n < queue.size(); ++n) {
    const Pending run = queue[n];
    size_t i = run.begin;
    nodes_[n].first_token = static_cast<uint32_t>(tokens_.size());
    while (i < run.end && pieces_[order[i]].size() == run.depth) tokens_.push_back(order[i++]);
    nodes_[n].token_count = static_cast<uint32_t>(tokens_.size()) - nodes_[n].first_token;
    nodes_[n].first_edge = static_cast<uint32_t>(edges_.size());
    while (i < run.end) {
      const uint8_t byte = static_cast<uint8_t>(pieces_[order[i]][run.depth]);
      size_t j = i;
      while (j < run.end && static_cast<uint8_t>(pieces_[order[j]][run.depth]) == byte) ++j;
      edges_.push_back({byte, static_cast<int32_t>(queue.size())});
      queue.push_back({i, j, run.depth + 1});
      nodes_.push_back({});
      i = j;
    }
    nodes_[n].edge_count = static_cast<uint32_t>(edges_.size()) - nodes_[n].first_edge;
  }
}

}  // namespace edgellm::grammar
