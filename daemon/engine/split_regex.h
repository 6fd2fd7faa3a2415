// engine/split_regex.h — the regular expressions that byte-level BPE
// pre-tokenizers split text with, matched the way llama.cpp matches them.
//
// llama.cpp runs these patterns through ECMAScript std::regex after mapping
// the text: every non-ASCII white-space character becomes U+000B, and when the
// pattern names a Unicode category (\p{L}, \p{N}, \p{P}, \p{M}, \p{S}) every
// other non-ASCII character becomes one stand-in per category, while \p{X}
// matches that stand-in and the ASCII characters of the category. This
// module matches the same way, so its splits are llama.cpp's, byte for byte.
//
// The subset: alternation, (?:...) and (...) groups (nothing is captured),
// (?!...) and (?=...), greedy ?, *, +, {n}, {n,}, {n,m}, classes with ranges
// and negation, \s \S \d \D \w \W \p{L|N|P|M|S|Lu|Ll|Lt|Lm|Lo}, \r \n \t \f \v
// \xHH, escaped punctuation, ^ and $ (at the ends of the segment matched).
// Matching is ECMAScript's: leftmost start, alternatives in order, greedy
// with backtracking. Immutable after Compile; safe to share between threads.
#ifndef EDGELLM_ENGINE_SPLIT_REGEX_H_
#define EDGELLM_ENGINE_SPLIT_REGEX_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace edgellm::engine {

class SplitRegex {
 public:
  // InvalidArgument naming the position and construct that is malformed or
  // outside the subset.
  static absl::StatusOr<SplitRegex> Compile(std::string_view pattern);

  // The value code point `cp` is matched as (see above): its own, U+000B for
  // white space, or its category's stand-in when the pattern uses categories.
  uint32_t MatchValue(uint32_t cp) const;
  // Whether the pattern names a category: patterns alike in this map every
  // code point to the same value.
  bool uses_categories() const { return uses_categories_; }

  // Splits `chars` (MatchValue of each code point), already cut into
  // consecutive segments of `lengths` code points, into the matches of each
  // segment and the unmatched runs between them; appends the new lengths to
  // `out`. Every segment is matched on its own, as if it were the whole text.
  void Split(absl::Span<const uint32_t> chars, absl::Span<const size_t> lengths, std::vector<size_t>* out) const;

 private:
  struct CharSet {
    std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive
    bool negated = false;
    bool Contains(uint32_t c) const;
  };
  enum class Kind { kSet, kSequence, kAlternation, kRepeat, kLookahead, kNegativeLookahead, kBegin, kEnd };
  struct Node {
    explicit Node(Kind k) : kind(k) {}
    Kind kind;
    CharSet set;                // kSet
    std::vector<int> children;  // kSequence, kAlternation; one for kRepeat and the lookaheads
    int min = 0, max = -1;      // kRepeat; max -1: unbounded
  };
  class Parser;
  class Matcher;

  SplitRegex() = default;

  std::vector<Node> nodes_;
  // The top-level alternatives, in order (one when the pattern has no '|').
  std::vector<int> alternatives_;
  // Per alternative, the set node of an unbounded repeat it starts with
  // (\s+..., \s*...), or -1. When such an alternative fails at a start
  // inside a run of its set, it fails at every later start in that run, so
  // Split skips them: without this, \s+$ over a long run of spaces that does
  // not end the text would take time quadratic in the run.
  std::vector<int> leading_runs_;
  bool uses_categories_ = false;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_SPLIT_REGEX_H_
