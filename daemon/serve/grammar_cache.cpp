#include "daemon/serve/grammar_cache.h"

namespace edgellm::serve {

GrammarCache::GrammarCache(std::function<std::shared_ptr<const grammar::TokenTrie>()> make_trie,
                           GrammarCacheConfig config)
    : make_trie_(std::move(make_trie)), config_(config) {}

absl::StatusOr<std::shared_ptr<grammar::GrammarAutomaton>> GrammarCache::Get(const std::string& text) {
  std::shared_ptr<const grammar::TokenTrie> trie;
  {
    MutexLock lock(&mu_);
    if (auto it = index_.find(text); it != index_.end()) {
      recent_.splice(recent_.begin(), recent_, it->second);
      return it->second->second;
    }
    if (trie_ == nullptr) trie_ = make_trie_();
    trie = trie_;
  }
  // Compiled outside the lock: a large grammar does not hold up the others.
  absl::StatusOr<std::shared_ptr<const grammar::ByteGrammar>> compiled = grammar::ByteGrammar::FromGbnf(text, config_.gbnf);
  if (!compiled.ok()) return compiled.status();
  auto automaton = std::make_shared<grammar::GrammarAutomaton>(*std::move(compiled), std::move(trie), config_.automaton);
  MutexLock lock(&mu_);
  if (auto it = index_.find(text); it != index_.end()) return it->second->second;  // another request was first
  recent_.emplace_front(text, automaton);
  index_[text] = recent_.begin();
  // Automata grow as their requests run: their sizes are taken now, and the
  // oldest dropped until the rest fit (the new one always stays).
  size_t kept_bytes = 0;
  size_t kept = 0;
  for (auto it = recent_.begin(); it != recent_.end();) {
    const size_t bytes = it->second->memory_bytes();
    if (it == recent_.begin() || (kept < config_.capacity && kept_bytes + bytes <= config_.max_bytes)) {
      kept_bytes += bytes;
      ++kept;
      ++it;
    } else {
      index_.erase(it->first);
      it = recent_.erase(it);
    }
  }
  return automaton;
}

size_t GrammarCache::size() const {
  MutexLock lock(&mu_);
  return recent_.size();
}

}  // namespace edgellm::serve
