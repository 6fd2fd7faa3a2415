// serve/grammar_cache.h — compiled grammars kept for the requests that send
// the same one again (an app sends its schema with every request), so the
// automaton's states and token masks found by one request serve the next.
#ifndef EDGELLM_SERVE_GRAMMAR_CACHE_H_
#define EDGELLM_SERVE_GRAMMAR_CACHE_H_

#include <functional>
#include <list>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "daemon/grammar/gbnf_parser.h"
#include "daemon/grammar/grammar_automaton.h"
#include "daemon/grammar/token_trie.h"

namespace edgellm::serve {

struct GrammarCacheConfig {
  size_t capacity = 16;  // grammars kept, least recently used dropped first
  // What the kept automata may hold together; beyond it the least recently
  // used are dropped (requests running on one keep it until they end).
  size_t max_bytes = 128u << 20;
  grammar::GbnfLimits gbnf;
  grammar::AutomatonLimits automaton{.max_bytes = 32u << 20, .max_stacks = 4096};
};

// Thread-safe.
class GrammarCache {
 public:
  // `make_trie` gives the model's token trie; it runs once, at the first
  // grammar, so a daemon whose requests send none never pays for it.
  GrammarCache(std::function<std::shared_ptr<const grammar::TokenTrie>()> make_trie, GrammarCacheConfig config = {});

  // The automaton of GBNF `text` over the model's vocabulary: the kept one,
  // or a new one. InvalidArgument or ResourceExhausted as ParseGbnf says.
  absl::StatusOr<std::shared_ptr<grammar::GrammarAutomaton>> Get(const std::string& text);

  size_t size() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<grammar::GrammarAutomaton>>;

  const std::function<std::shared_ptr<const grammar::TokenTrie>()> make_trie_;
  const GrammarCacheConfig config_;
  mutable Mutex mu_;
  std::shared_ptr<const grammar::TokenTrie> trie_ ABSL_GUARDED_BY(mu_);
  std::list<Entry> recent_ ABSL_GUARDED_BY(mu_);  // most recently used first
  absl::flat_hash_map<std::string, std::list<Entry>::iterator> index_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_GRAMMAR_CACHE_H_
