#include "daemon/grammar/grammar_automaton.h"

#include <algorithm>
#include <map>

#include "common/str_cat.h"

namespace edgellm::grammar {
namespace {

using ByteRanges = std::vector<std::pair<uint8_t, uint8_t>>;

int Utf8Length(uint32_t cp) { return cp <= 0x7F ? 1 : cp <= 0x7FF ? 2 : cp <= 0xFFFF ? 3 : 4; }

std::array<uint8_t, 4> Utf8Bytes(uint32_t cp, int length) {
  std::array<uint8_t, 4> b{};
  if (length == 1) {
    b[0] = static_cast<uint8_t>(cp);
    return b;
  }
  for (int i = length - 1; i > 0; --i) {
    b[i] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    cp >>= 6;
  }
  static constexpr uint8_t kLead[] = {0, 0, 0xC0, 0xE0, 0xF0};
  b[0] = static_cast<uint8_t>(kLead[length] | cp);
  return b;
}

// The UTF-8 encodings of the code points first..last (surrogates left out)
// as sequences of byte ranges, each sequence a product of its ranges.
void SplitUtf8(uint32_t first, uint32_t last, std::vector<ByteRanges>& out) {
  if (first > last) return;
  if (first <= 0xDFFF && last >= 0xD800) {
    if (first < 0xD800) SplitUtf8(first, 0xD7FF, out);
    if (last > 0xDFFF) SplitUtf8(0xE000, last, out);
    return;
  }
  for (uint32_t boundary : {0x7Fu, 0x7FFu, 0xFFFFu}) {
    if (first <= boundary && last > boundary) {
      SplitUtf8(first, boundary, out);
      SplitUtf8(boundary + 1, last, out);
      return;
    }
  }
  const int length = Utf8Length(first);
  for (int i = 1; i < length; ++i) {
    const uint32_t m = (1u << (6 * i)) - 1;
    if ((first & ~m) != (last & ~m)) {
      if ((first & m) != 0) {
        SplitUtf8(first, first | m, out);
        SplitUtf8((first | m) + 1, last, out);
        return;
      }
      if ((last & m) != m) {
        SplitUtf8(first, (last & ~m) - 1, out);
        SplitUtf8(last & ~m, last, out);
        return;
      }
    }
  }
  const std::array<uint8_t, 4> a = Utf8Bytes(first, length), b = Utf8Bytes(last, length);
  ByteRanges ranges;
  for (int i = 0; i < length; ++i) ranges.emplace_back(a[i], b[i]);
  out.push_back(std::move(ranges));
}

uint64_t Key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

}  // namespace

std::shared_ptr<const ByteGrammar> ByteGrammar::Compile(const GrammarRules& rules) {
  auto g = std::make_shared<ByteGrammar>();
  g->root_ = rules.root;
  g->alternatives_.resize(rules.rules.size());
  std::map<std::array<uint64_t, 4>, int32_t> set_index;
  const auto byte_set = [&](const ByteSet& set) {
    auto [it, added] = set_index.emplace(set.words, static_cast<int32_t>(g->byte_sets_.size()));
    if (added) g->byte_sets_.push_back(set);
    return it->second;
  };
  // Classes beyond ASCII become rules of their own, emitted after the grammar's.
  std::map<std::vector<std::pair<uint32_t, uint32_t>>, int32_t> class_rules;
  std::vector<std::pair<int32_t, std::vector<ByteRanges>>> pending;
  const auto element_of = [&](const Symbol& symbol) -> Element {
    if (symbol.rule >= 0) return {Kind::kRule, symbol.rule};
    if (!symbol.chars.empty() && symbol.chars.back().last <= 0x7F) {
      ByteSet set;
      for (const CodepointRange& r : symbol.chars) set.Add(static_cast<uint8_t>(r.first), static_cast<uint8_t>(r.last));
      return {Kind::kBytes, byte_set(set)};
    }
    std::vector<std::pair<uint32_t, uint32_t>> key;
    for (const CodepointRange& r : symbol.chars) key.emplace_back(r.first, r.last);
    auto [it, added] = class_rules.emplace(key, static_cast<int32_t>(g->alternatives_.size()));
    if (added) {
      g->alternatives_.emplace_back();
      std::vector<ByteRanges> sequences;
      for (const CodepointRange& r : symbol.chars) SplitUtf8(r.first, r.last, sequences);
      pending.emplace_back(it->second, std::move(sequences));
    }
    return {Kind::kRule, it->second};
  };
  for (size_t r = 0; r < rules.rules.size(); ++r) {
    for (const std::vector<Symbol>& alternative : rules.rules[r].alternatives) {
      g->alternatives_[r].push_back(static_cast<int32_t>(g->elements_.size()));
      for (const Symbol& symbol : alternative) {
        const Element e = element_of(symbol);
        g->elements_.push_back(e);
      }
      g->elements_.push_back({Kind::kEnd, 0});
    }
  }
  // An empty class (a set of no characters) gets no alternative: it matches nothing.
  for (auto& [rule, sequences] : pending) {
    for (const ByteRanges& sequence : sequences) {
      g->alternatives_[rule].push_back(static_cast<int32_t>(g->elements_.size()));
      for (const auto& [lo, hi] : sequence) {
        ByteSet set;
        set.Add(lo, hi);
        g->elements_.push_back({Kind::kBytes, byte_set(set)});
      }
      g->elements_.push_back({Kind::kEnd, 0});
    }
  }
  return g;
}

absl::StatusOr<std::shared_ptr<const ByteGrammar>> ByteGrammar::FromGbnf(std::string_view text,
                                                                        const GbnfLimits& limits) {
  absl::StatusOr<GrammarRules> rules = ParseGbnf(text, limits);
  if (!rules.ok()) return rules.status();
  return Compile(*rules);
}

GrammarAutomaton::GrammarAutomaton(std::shared_ptr<const ByteGrammar> grammar, std::shared_ptr<const TokenTrie> trie,
                                   AutomatonLimits limits)
    : grammar_(std::move(grammar)),
      trie_(std::move(trie)),
      limits_(limits),
      mask_words_((static_cast<size_t>(trie_->vocab_size()) + 63) / 64) {
  MutexLock lock(&mu_);
  nodes_.push_back({-1, -1});  // node 0: the empty stack
  auto dead = std::make_unique<State>();
  dead->next.fill(kDeadState);
  states_.push_back(std::move(dead));
  state_ids_.emplace(std::vector<int32_t>{}, kDeadState);
}

int32_t GrammarAutomaton::Node(int32_t position, int32_t below) {
  auto [it, added] = node_ids_.emplace(Key(position, below), static_cast<int32_t>(nodes_.size()));
  if (added) nodes_.push_back({position, below});
  return it->second;
}

absl::Status GrammarAutomaton::Expand(int32_t position, int32_t below, std::vector<int32_t>& out) {
  const std::vector<ByteGrammar::Element>& elements = grammar_->elements();
  work_.clear();
  seen_.clear();
  work_.emplace_back(position, below);
  while (!work_.empty()) {
    const auto [p, b] = work_.back();
    work_.pop_back();
    if (!seen_.emplace(Key(p, b), true).second) continue;
    const ByteGrammar::Element& e = elements[static_cast<size_t>(p)];
    switch (e.kind) {
      case ByteGrammar::Kind::kBytes:
        out.push_back(Node(p, b));
        break;
      case ByteGrammar::Kind::kEnd:
        if (b == 0) {
          out.push_back(0);
        } else {
          work_.emplace_back(nodes_[static_cast<size_t>(b)].position, nodes_[static_cast<size_t>(b)].below);
        }
        break;
      case ByteGrammar::Kind::kRule: {
        // A rule at the end of its alternative returns straight to `b`, so
        // right recursion (every repetition) never deepens the stack.
        const bool tail = elements[static_cast<size_t>(p) + 1].kind == ByteGrammar::Kind::kEnd;
        const int32_t then = tail ? b : Node(p + 1, b);
        for (int32_t start : grammar_->alternatives(e.value)) work_.emplace_back(start, then);
        break;
      }
    }
    if (out.size() > limits_.max_stacks) {
      return absl::ResourceExhaustedError(edgellm::StrCat("the grammar is too ambiguous: more than ",
                                                          limits_.max_stacks, " ways to read the output at once"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<StateId> GrammarAutomaton::Intern(std::vector<int32_t> stacks) {
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
  if (stacks.size() > limits_.max_stacks) {
    return absl::ResourceExhaustedError(edgellm::StrCat("the grammar is too ambiguous: more than ",
                                                        limits_.max_stacks, " ways to read the output at once"));
  }
  auto it = state_ids_.find(stacks);
  if (it != state_ids_.end()) return it->second;
  const StateId id = static_cast<StateId>(states_.size());
  auto state = std::make_unique<State>();
  state->next.fill(-1);
  state->stacks = stacks;
  stack_entries_ += stacks.size();
  states_.push_back(std::move(state));
  state_ids_.emplace(std::move(stacks), id);
  if (absl::Status s = CheckMemory(); !s.ok()) return s;
  return id;
}

size_t GrammarAutomaton::MemoryLocked() const {
  return states_.size() * (sizeof(State) + 64) + stack_entries_ * 2 * sizeof(int32_t) +
         nodes_.size() * (sizeof(StackNode) + 16) + masks_.size() * mask_words_ * sizeof(uint64_t);
}

absl::Status GrammarAutomaton::CheckMemory() const {
  if (MemoryLocked() <= limits_.max_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(edgellm::StrCat("the grammar's automaton grew past its limit of ",
                                                      limits_.max_bytes >> 20, " MiB (", states_.size(), " states)"));
}

absl::StatusOr<StateId> GrammarAutomaton::StartLocked() {
  if (start_ >= 0) return start_;
  std::vector<int32_t> stacks;
  for (int32_t start : grammar_->alternatives(grammar_->root())) {
    if (absl::Status s = Expand(start, 0, stacks); !s.ok()) return s;
  }
  absl::StatusOr<StateId> id = Intern(std::move(stacks));
  if (id.ok()) start_ = *id;
  return id;
}

absl::StatusOr<StateId> GrammarAutomaton::Start() {
  MutexLock lock(&mu_);
  return StartLocked();
}

absl::StatusOr<StateId> GrammarAutomaton::NextLocked(StateId state, uint8_t byte) {
  State& from = *states_[static_cast<size_t>(state)];
  if (from.next[byte] >= 0) return from.next[byte];
  std::vector<int32_t> stacks;
  const std::vector<ByteGrammar::Element>& elements = grammar_->elements();
  for (int32_t id : from.stacks) {
    if (id == 0) continue;  // the empty stack reads nothing
    const StackNode node = nodes_[static_cast<size_t>(id)];
    if (!grammar_->byte_sets()[static_cast<size_t>(elements[static_cast<size_t>(node.position)].value)].Has(byte)) {
      continue;
    }
    if (absl::Status s = Expand(node.position + 1, node.below, stacks); !s.ok()) return s;
  }
  absl::StatusOr<StateId> to = Intern(std::move(stacks));
  if (!to.ok()) return to.status();
  states_[static_cast<size_t>(state)]->next[byte] = *to;
  return *to;
}

absl::StatusOr<StateId> GrammarAutomaton::Advance(StateId state, std::string_view bytes) {
  MutexLock lock(&mu_);
  for (char c : bytes) {
    if (state == kDeadState) break;
    absl::StatusOr<StateId> next = NextLocked(state, static_cast<uint8_t>(c));
    if (!next.ok()) return next.status();
    state = *next;
  }
  return state;
}

absl::StatusOr<StateId> GrammarAutomaton::AdvanceToken(StateId state, int32_t token) {
  if (token < 0 || token >= trie_->vocab_size()) return kDeadState;
  return Advance(state, trie_->piece(token));
}

absl::StatusOr<absl::Span<const uint64_t>> GrammarAutomaton::Mask(StateId state) {
  MutexLock lock(&mu_);
  State* s = states_[static_cast<size_t>(state)].get();
  if (s->mask < 0) {
    auto bits = std::make_unique<uint64_t[]>(mask_words_);
    const auto allow = [&](int32_t token) { bits[static_cast<size_t>(token) >> 6] |= uint64_t{1} << (token & 63); };
    const std::vector<TokenTrie::Node>& nodes = trie_->nodes();
    const std::vector<TokenTrie::Edge>& edges = trie_->edges();
    const std::vector<int32_t>& tokens = trie_->tokens();
    // Depth first down the trie, leaving every branch the grammar refuses.
    std::vector<std::pair<int32_t, StateId>> todo = {{0, state}};
    while (!todo.empty()) {
      const auto [n, at] = todo.back();
      todo.pop_back();
      const TokenTrie::Node& node = nodes[static_cast<size_t>(n)];
      for (uint32_t e = node.first_edge; e < node.first_edge + node.edge_count; ++e) {
        absl::StatusOr<StateId> next = NextLocked(at, edges[e].byte);
        if (!next.ok()) return next.status();
        if (*next == kDeadState) continue;
        const TokenTrie::Node& child = nodes[static_cast<size_t>(edges[e].node)];
        for (uint32_t t = child.first_token; t < child.first_token + child.token_count; ++t) allow(tokens[t]);
        if (child.edge_count > 0) todo.emplace_back(edges[e].node, *next);
      }
    }
    s = states_[static_cast<size_t>(state)].get();
    if (!s->stacks.empty() && s->stacks.front() == 0) {
      for (int32_t token : trie_->end_tokens()) {
        if (token >= 0 && token < trie_->vocab_size()) allow(token);
      }
    }
    s->mask = static_cast<int32_t>(masks_.size());
    masks_.push_back(std::move(bits));
    if (absl::Status m = CheckMemory(); !m.ok()) return m;
  }
  return absl::Span<const uint64_t>(masks_[static_cast<size_t>(s->mask)].get(), mask_words_);
}

bool GrammarAutomaton::Accepting(StateId state) const {
  MutexLock lock(&mu_);
  const State& s = *states_[static_cast<size_t>(state)];
  return !s.stacks.empty() && s.stacks.front() == 0;
}

bool GrammarAutomaton::Complete(StateId state) const {
  MutexLock lock(&mu_);
  const State& s = *states_[static_cast<size_t>(state)];
  return s.stacks.size() == 1 && s.stacks.front() == 0;
}

size_t GrammarAutomaton::memory_bytes() const {
  MutexLock lock(&mu_);
  return MemoryLocked();
}

size_t GrammarAutomaton::state_count() const {
  MutexLock lock(&mu_);
  return states_.size();
}

}  // namespace edgellm::grammar
