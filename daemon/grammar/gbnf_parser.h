// grammar/gbnf_parser.h — GBNF, the grammar language of llama.cpp, read into
// rules over Unicode code points.
//
//   root  ::= "{" ws pair ("," ws pair)* "}"    # a rule: alternatives of sequences
//   pair  ::= [a-z]+ ws ":" ws ( [0-9]{1,3} | "null" )
//   ws    ::= [ \t\n]*
//
// Literals ("..." with \n \r \t \\ \" \xHH \uHHHH \UHHHHHHHH escapes and
// UTF-8 text), character classes ([a-z], [^"\\], negation and ranges), `.`
// (any character), rule references, groups, and the repetitions * + ? {m}
// {m,} {m,n} {,n}. Comments run from # to the end of the line; a rule ends at
// a newline outside parentheses. `root` is where output starts.
//
// Groups and repetitions become rules of their own (right-recursive, so a
// long repetition never deepens a matcher's stack). The result is checked:
// every referenced rule is defined, no rule is left-recursive, and the root
// can finish; each refusal names the rule and where it is.
#ifndef EDGELLM_GRAMMAR_GBNF_PARSER_H_
#define EDGELLM_GRAMMAR_GBNF_PARSER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace edgellm::grammar {

inline constexpr uint32_t kMaxCodepoint = 0x10FFFF;

struct CodepointRange {
  uint32_t first;
  uint32_t last;  // inclusive
  bool operator==(const CodepointRange&) const = default;
};

// One element of a sequence: a set of characters, or a reference to a rule.
struct Symbol {
  std::vector<CodepointRange> chars;  // sorted and disjoint; used when rule < 0
  int32_t rule = -1;
};

struct Rule {
  std::string name;
  std::vector<std::vector<Symbol>> alternatives;  // an empty sequence matches ""
  uint32_t line = 0, column = 0;  // where it is defined (or first used, for rules made from groups)
};

struct GrammarRules {
  std::vector<Rule> rules;
  int32_t root = 0;
};

// What one grammar may cost before it is refused (documented in README.md).
struct GbnfLimits {
  size_t max_text_bytes = 1 << 20;    // the grammar's source
  size_t max_symbols = 1 << 19;       // after groups and repetitions are expanded
  uint32_t max_repetition = 10000;    // m and n of {m,n}
  uint32_t max_nesting = 256;         // parentheses inside parentheses
};

// InvalidArgument naming the rule and line:column for a syntax error, an
// undefined or left-recursive rule, or a root that can never finish;
// ResourceExhausted beyond `limits`.
absl::StatusOr<GrammarRules> ParseGbnf(std::string_view text, const GbnfLimits& limits = {});

// Sorted, disjoint and merged: the canonical form of a character set.
std::vector<CodepointRange> NormalizeRanges(std::vector<CodepointRange> ranges);

}  // namespace edgellm::grammar

#endif  // EDGELLM_GRAMMAR_GBNF_PARSER_H_
