#include "daemon/engine/symbol_merge.h"

#include <queue>

#include "daemon/engine/utf8.h"

namespace edgellm::engine {
namespace {

// One piece of the working sequence: a doubly linked list over a vector.
struct Symbol {
  int prev;
  int next;
  size_t start;
  size_t length;  // 0 once merged into its left neighbour
};

struct Candidate {
  int left;
  int right;
  double priority;
  size_t length;  // of the merged piece; detects entries made stale by other merges
};

struct CandidateOrder {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
  }
};

}  // namespace

std::vector<std::string_view> MergeSymbols(std::string_view text, const MergePriority& priority) {
  std::vector<Symbol> symbols;
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = Utf8SequenceLength(text, pos);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, index + 1, pos, n});
    pos += n;
  }
  if (symbols.empty()) return {};
  symbols.back().next = -1;
  auto piece = [&](int i) { return text.substr(symbols[i].start, symbols[i].length); };

  std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const size_t length = symbols[left].length + symbols[right].length;
    const std::optional<double> p =
        priority(piece(left), piece(right), text.substr(symbols[left].start, length));
    if (p) queue.push({left, right, *p, length});
  };
  for (size_t i = 1; i < symbols.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = symbols[c.left];
    Symbol& right = symbols[c.right];
    if (left.length == 0 || right.length == 0 || left.length + right.length != c.length) continue;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    try_add(left.prev, c.left);
    try_add(c.left, left.next);
  }

  std::vector<std::string_view> pieces;
  for (int i = 0; i >= 0; i = symbols[i].next) pieces.push_back(piece(i));
  return pieces;
}

}  // namespace edgellm::engine
