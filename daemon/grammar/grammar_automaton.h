// grammar/grammar_automaton.h — a grammar run over bytes, as a deterministic
// automaton built lazily while output is generated, with the set of tokens
// each of its states allows.
//
// The grammar is compiled to bytes first (a character class becomes the
// UTF-8 byte sequences of its code points), so a token is allowed exactly
// when its bytes can continue the output, whatever characters it splits. A
// matcher state is the set of pushdown stacks the grammar may be in (as in
// llama.cpp); stacks share their tails and are interned, so a state is a
// small sorted list of ids. Each state, once met, gets its transitions for
// all 256 bytes and, once asked, its token mask: a bitset over the vocabulary
// found in one walk down the token trie. Both are kept, so a state met again
// costs one lookup, and the per-token cost does not grow with the vocabulary
// once the states of an output's shape have been seen (a JSON string's
// inside is one state, whatever its length).
#ifndef EDGELLM_GRAMMAR_GRAMMAR_AUTOMATON_H_
#define EDGELLM_GRAMMAR_GRAMMAR_AUTOMATON_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/mutex.h"
#include "daemon/grammar/gbnf_parser.h"
#include "daemon/grammar/token_trie.h"

namespace edgellm::grammar {

// 256 bits: the bytes one element of a grammar reads.
struct ByteSet {
  std::array<uint64_t, 4> words{};
  bool Has(uint8_t byte) const { return (words[byte >> 6] >> (byte & 63)) & 1; }
  void Add(uint8_t first, uint8_t last) {
    for (int b = first; b <= last; ++b) words[b >> 6] |= uint64_t{1} << (b & 63);
  }
  bool operator==(const ByteSet&) const = default;
};

// A grammar over bytes; immutable.
class ByteGrammar {
 public:
  static std::shared_ptr<const ByteGrammar> Compile(const GrammarRules& rules);
  // ParseGbnf, then Compile.
  static absl::StatusOr<std::shared_ptr<const ByteGrammar>> FromGbnf(std::string_view text,
                                                                     const GbnfLimits& limits = {});

  enum class Kind : uint8_t { kBytes, kRule, kEnd };
  struct Element {
    Kind kind;
    int32_t value;  // kBytes: index into byte_sets(); kRule: the rule
  };
  const std::vector<Element>& elements() const { return elements_; }
  const std::vector<ByteSet>& byte_sets() const { return byte_sets_; }
  // Where each alternative of rule r starts in elements().
  const std::vector<int32_t>& alternatives(int32_t rule) const { return alternatives_[static_cast<size_t>(rule)]; }
  int32_t root() const { return root_; }

 private:
  std::vector<Element> elements_;
  std::vector<ByteSet> byte_sets_;
  std::vector<std::vector<int32_t>> alternatives_;
  int32_t root_ = 0;
};

// What one automaton may hold before the request using it is refused.
struct AutomatonLimits {
  size_t max_bytes = 256u << 20;  // states, their transitions, stacks and masks
  size_t max_stacks = 4096;       // stacks one state may hold (an ambiguous grammar)
};

using StateId = int32_t;
inline constexpr StateId kDeadState = 0;  // no stack left: nothing can follow

// Thread-safe.
class GrammarAutomaton {
 public:
  GrammarAutomaton(std::shared_ptr<const ByteGrammar> grammar, std::shared_ptr<const TokenTrie> trie,
                   AutomatonLimits limits = {});

  // The state before any output; ResourceExhausted beyond the limits.
  absl::StatusOr<StateId> Start();
  // The state after `bytes` (kDeadState when the grammar refuses them).
  absl::StatusOr<StateId> Advance(StateId state, std::string_view bytes);
  // The state after token `token`'s piece.
  absl::StatusOr<StateId> AdvanceToken(StateId state, int32_t token);
  // The tokens that may come next: one bit per token of the vocabulary,
  // end-of-generation tokens set where the grammar may finish. The span stays
  // valid for the automaton's life.
  absl::StatusOr<absl::Span<const uint64_t>> Mask(StateId state);
  // The output so far is complete here / nothing but the end may follow.
  bool Accepting(StateId state) const;
  bool Complete(StateId state) const;

  const TokenTrie& trie() const { return *trie_; }
  size_t memory_bytes() const;
  size_t state_count() const;

 private:
  struct StackNode {
    int32_t position;  // an element of the grammar; -1 for the empty stack
    int32_t below;     // the node under it
  };
  struct State {
    std::vector<int32_t> stacks;  // sorted node ids; node 0 is the empty stack (the output may end)
    std::array<StateId, 256> next;
    int32_t mask = -1;  // into masks_
  };

  absl::StatusOr<StateId> StartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<StateId> NextLocked(StateId state, uint8_t byte) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every stack reached from `position` over `below` whose top reads a byte
  // (or the empty stack), appended to `out`.
  absl::Status Expand(int32_t position, int32_t below, std::vector<int32_t>& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int32_t Node(int32_t position, int32_t below) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<StateId> Intern(std::vector<int32_t> stacks) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckMemory() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t MemoryLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<const ByteGrammar> grammar_;
  const std::shared_ptr<const TokenTrie> trie_;
  const AutomatonLimits limits_;
  const size_t mask_words_;

  mutable Mutex mu_;
  std::vector<StackNode> nodes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, int32_t> node_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<State>> states_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::vector<int32_t>, StateId> state_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<uint64_t[]>> masks_ ABSL_GUARDED_BY(mu_);
  StateId start_ ABSL_GUARDED_BY(mu_) = -1;
  size_t stack_entries_ ABSL_GUARDED_BY(mu_) = 0;
  // Scratch of Expand, kept to avoid allocating per byte.
  std::vector<std::pair<int32_t, int32_t>> work_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, bool> seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgellm::grammar

#endif  // EDGELLM_GRAMMAR_GRAMMAR_AUTOMATON_H_
