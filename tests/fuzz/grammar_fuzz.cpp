// libFuzzer target: GBNF grammars from untrusted requests. The bytes before
// the first NUL are the grammar; those after it are output to follow with it.
// A grammar that parses must compile, start, follow any bytes and give token
// masks within the automaton's limits; any refusal is fine, a crash, a hang
// or unbounded memory is not.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/grammar/gbnf_parser.h"
#include "daemon/grammar/grammar_automaton.h"

namespace {

using namespace edgellm::grammar;

std::shared_ptr<const TokenTrie> Vocabulary() {
  static const auto* trie = [] {
    std::vector<std::string> pieces;
    for (int b = 0; b < 256; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
    for (const char* piece : {"{\"", "\":", "\",", "true", "null", "é", "\xE2\x82\xAC", " the", "<tool_call>", "\n\n"}) {
      pieces.push_back(piece);
    }
    pieces.push_back("");  // a control token
    return new std::shared_ptr<const TokenTrie>(std::make_shared<TokenTrie>(pieces, std::vector<int32_t>{266}));
  }();
  return *trie;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view text = input.substr(0, nul);
  const std::string_view output = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  GbnfLimits limits;
  limits.max_symbols = 1 << 14;  // small, so each input stays fast
  absl::StatusOr<std::shared_ptr<const ByteGrammar>> grammar = ByteGrammar::FromGbnf(text, limits);
  if (!grammar.ok()) return 0;
  AutomatonLimits automaton_limits;
  automaton_limits.max_bytes = 16 << 20;
  automaton_limits.max_stacks = 256;
  GrammarAutomaton automaton(*grammar, Vocabulary(), automaton_limits);
  absl::StatusOr<StateId> state = automaton.Start();
  for (size_t i = 0; state.ok() && i <= output.size(); ++i) {
    if (!automaton.Mask(*state).ok()) break;
    (void)automaton.Accepting(*state);
    if (i == output.size() || *state == kDeadState) break;
    state = automaton.Advance(*state, output.substr(i, 1));
  }
  return 0;
}
