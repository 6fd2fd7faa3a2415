#include "daemon/engine/split_regex.h"

#include <algorithm>

#include "absl/functional/function_ref.h"
#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/unicode_category.h"
#include "daemon/engine/utf8.h"

namespace edgellm::engine {
namespace {

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

constexpr uint32_t kMaxCodePoint = 0x10ffff;
// What llama.cpp matches non-ASCII white space as.
constexpr uint32_t kWhiteSpaceStandIn = 0x0b;
// The stand-ins of non-ASCII characters when a pattern uses categories.
constexpr uint32_t kOtherStandIn = 0xd0;
constexpr uint32_t kNumberStandIn = 0xd1;
constexpr uint32_t kLetterStandIn = 0xd2;
constexpr uint32_t kPunctuationStandIn = 0xd3;
constexpr uint32_t kMarkStandIn = 0xd4;
constexpr uint32_t kSymbolStandIn = 0xd5;

const Ranges kSpace = {{'\t', '\r'}, {' ', ' '}};
const Ranges kDigit = {{'0', '9'}};
const Ranges kWord = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};

Ranges Complement(Ranges ranges) {
  std::sort(ranges.begin(), ranges.end());
  Ranges out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : ranges) {
    if (lo > next) out.push_back({next, lo - 1});
    next = std::max(next, hi + 1);
  }
  if (next <= kMaxCodePoint) out.push_back({next, kMaxCodePoint});
  return out;
}

// \p{X} over the mapped text: the category's stand-in and its ASCII members
// (llama.cpp's table, which leaves '~' out of the symbols).
absl::StatusOr<Ranges> CategoryRanges(std::string_view name) {
  if (name == "N") return Ranges{{kNumberStandIn, kNumberStandIn}, {'0', '9'}};
  if (name == "L" || name == "Lu" || name == "Ll" || name == "Lt" || name == "Lm" || name == "Lo") {
    return Ranges{{kLetterStandIn, kLetterStandIn}, {'A', 'Z'}, {'a', 'z'}};
  }
  if (name == "P") {
    return Ranges{{kPunctuationStandIn, kPunctuationStandIn}, {'!', '#'}, {'%', '*'}, {',', '/'}, {':', ';'},
                  {'?', '@'}, {'[', ']'}, {'_', '_'}, {'{', '{'}, {'}', '}'}};
  }
  if (name == "M") return Ranges{{kMarkStandIn, kMarkStandIn}};
  if (name == "S") {
    return Ranges{{kSymbolStandIn, kSymbolStandIn}, {'$', '$'}, {'+', '+'}, {'<', '>'}, {'^', '^'}, {'`', '`'},
                  {'|', '|'}};
  }
  return absl::InvalidArgumentError(edgellm::StrCat("unsupported category \\p{", name, "}"));
}

}  // namespace

bool SplitRegex::CharSet::Contains(uint32_t c) const {
  bool in = false;
  for (const auto& [lo, hi] : ranges) {
    if (c >= lo && c <= hi) {
      in = true;
      break;
    }
  }
  return in != negated;
}

class SplitRegex::Parser {
 public:
  Parser(std::string_view pattern, SplitRegex* regex) : regex_(regex) {
    for (size_t pos = 0; pos < pattern.size();) chars_.push_back(Utf8Next(pattern, &pos));
  }

  absl::StatusOr<int> ParseAll() {
    EDGELLM_ASSIGN_OR_RETURN(int root, ParseAlternation());
    if (at_ < chars_.size()) return Error("unbalanced ')'");
    return root;
  }

 private:
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(edgellm::StrCat("regex: at character ", at_, ": ", what));
  }
  bool Done() const { return at_ >= chars_.size(); }
  uint32_t Peek() const { return chars_[at_]; }
  bool Accept(uint32_t c) {
    if (Done() || Peek() != c) return false;
    ++at_;
    return true;
  }
  int Add(Node node) {
    regex_->nodes_.push_back(std::move(node));
    return static_cast<int>(regex_->nodes_.size()) - 1;
  }

  absl::StatusOr<int> ParseAlternation() {
    Node alternation(Kind::kAlternation);
    EDGELLM_ASSIGN_OR_RETURN(int first, ParseSequence());
    alternation.children.push_back(first);
    while (Accept('|')) {
      EDGELLM_ASSIGN_OR_RETURN(int next, ParseSequence());
      alternation.children.push_back(next);
    }
    if (alternation.children.size() == 1) return first;
    return Add(std::move(alternation));
  }

  absl::StatusOr<int> ParseSequence() {
    Node sequence(Kind::kSequence);
    while (!Done() && Peek() != '|' && Peek() != ')') {
      EDGELLM_ASSIGN_OR_RETURN(int atom, ParseAtom());
      EDGELLM_ASSIGN_OR_RETURN(atom, ParseQuantifier(atom));
      sequence.children.push_back(atom);
    }
    return Add(std::move(sequence));
  }

  absl::StatusOr<int> ParseQuantifier(int atom) {
    if (Done()) return atom;
    int min = 0, max = -1;
    if (Accept('?')) {
      max = 1;
    } else if (Accept('*')) {
    } else if (Accept('+')) {
      min = 1;
    } else if (Accept('{')) {
      EDGELLM_ASSIGN_OR_RETURN(min, ParseCount());
      max = min;
      if (Accept(',')) {
        max = -1;
        if (!Done() && Peek() != '}') {
          EDGELLM_ASSIGN_OR_RETURN(max, ParseCount());
        }
      }
      if (!Accept('}')) return Error("expected '}' closing a repetition");
      if (max >= 0 && max < min) return Error("repetition {n,m} with m < n");
    } else {
      return atom;
    }
    if (!Done() && (Peek() == '?' || Peek() == '+')) return Error("lazy and possessive repetitions are not supported");
    const Kind kind = regex_->nodes_[atom].kind;
    if (kind == Kind::kBegin || kind == Kind::kEnd || kind == Kind::kLookahead ||
        kind == Kind::kNegativeLookahead) {
      return Error("an assertion cannot repeat");
    }
    Node repeat(Kind::kRepeat);
    repeat.children = {atom};
    repeat.min = min;
    repeat.max = max;
    return Add(std::move(repeat));
  }

  absl::StatusOr<int> ParseCount() {
    int n = 0;
    bool any = false;
    while (!Done() && Peek() >= '0' && Peek() <= '9') {
      n = n * 10 + static_cast<int>(Peek() - '0');
      if (n > 10000) return Error("repetition count too large");
      ++at_;
      any = true;
    }
    if (!any) return Error("expected a repetition count");
    return n;
  }

  absl::StatusOr<int> ParseAtom() {
    const uint32_t c = chars_[at_++];
    switch (c) {
      case '(': {
        Kind kind = Kind::kSequence;
        if (Accept('?')) {
          if (Accept(':')) {
          } else if (Accept('!')) {
            kind = Kind::kNegativeLookahead;
          } else if (Accept('=')) {
            kind = Kind::kLookahead;
          } else {
            return Error("unsupported group (only (?:, (?= and (?! are)");
          }
        }
        EDGELLM_ASSIGN_OR_RETURN(int inner, ParseAlternation());
        if (!Accept(')')) return Error("missing ')'");
        if (kind == Kind::kSequence) return inner;
        Node assertion(kind);
        assertion.children = {inner};
        return Add(std::move(assertion));
      }
      case '[':
        return ParseClass();
      case '^':
        return Add(Node(Kind::kBegin));
      case '$':
        return Add(Node(Kind::kEnd));
      case '.': {
        Node any(Kind::kSet);
        any.set.ranges = {{'\n', '\n'}, {'\r', '\r'}};
        any.set.negated = true;
        return Add(std::move(any));
      }
      case '\\': {
        Node node(Kind::kSet);
        EDGELLM_ASSIGN_OR_RETURN(node.set, ParseEscape());
        return Add(std::move(node));
      }
      case '*':
      case '+':
      case '?':
      case '{':
        return Error("nothing to repeat");
      default: {
        Node literal(Kind::kSet);
        literal.set.ranges = {{c, c}};
        return Add(std::move(literal));
      }
    }
  }

  // After a backslash: the set it stands for.
  absl::StatusOr<CharSet> ParseEscape() {
    if (Done()) return Error("pattern ends in '\\'");
    const uint32_t c = chars_[at_++];
    CharSet set;
    switch (c) {
      case 's':
        set.ranges = kSpace;
        break;
      case 'S':
        set.ranges = kSpace;
        set.negated = true;
        break;
      case 'd':
        set.ranges = kDigit;
        break;
      case 'D':
        set.ranges = kDigit;
        set.negated = true;
        break;
      case 'w':
        set.ranges = kWord;
        break;
      case 'W':
        set.ranges = kWord;
        set.negated = true;
        break;
      case 'p': {
        if (!Accept('{')) return Error("expected '{' after \\p");
        std::string name;
        while (!Done() && Peek() != '}') AppendUtf8(chars_[at_++], &name);
        if (!Accept('}')) return Error("missing '}' after \\p{");
        auto ranges = CategoryRanges(name);
        if (!ranges.ok()) return Error(std::string(ranges.status().message()));
        set.ranges = *std::move(ranges);
        regex_->uses_categories_ = true;
        break;
      }
      case 'r':
        set.ranges = {{'\r', '\r'}};
        break;
      case 'n':
        set.ranges = {{'\n', '\n'}};
        break;
      case 't':
        set.ranges = {{'\t', '\t'}};
        break;
      case 'f':
        set.ranges = {{'\f', '\f'}};
        break;
      case 'v':
        set.ranges = {{'\v', '\v'}};
        break;
      case 'x': {
        uint32_t value = 0;
        for (int i = 0; i < 2; ++i) {
          if (Done()) return Error("\\x needs two hex digits");
          const uint32_t h = chars_[at_++];
          const int digit = h >= '0' && h <= '9'   ? static_cast<int>(h - '0')
                            : h >= 'a' && h <= 'f' ? static_cast<int>(h - 'a' + 10)
                            : h >= 'A' && h <= 'F' ? static_cast<int>(h - 'A' + 10)
                                                   : -1;
          if (digit < 0) return Error("\\x needs two hex digits");
          value = value * 16 + static_cast<uint32_t>(digit);
        }
        set.ranges = {{value, value}};
        break;
      }
      default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
          return Error("unsupported escape");
        }
        set.ranges = {{c, c}};  // escaped punctuation stands for itself
    }
    return set;
  }

  absl::StatusOr<int> ParseClass() {
    Node node(Kind::kSet);
    node.set.negated = Accept('^');
    Ranges& ranges = node.set.ranges;
    bool first = true;
    while (true) {
      if (Done()) return Error("missing ']'");
      if (Peek() == ']' && !first) {
        ++at_;
        break;
      }
      first = false;
      uint32_t lo;
      if (Accept('\\')) {
        EDGELLM_ASSIGN_OR_RETURN(CharSet escaped, ParseEscape());
        const bool single = !escaped.negated && escaped.ranges.size() == 1 &&
                            escaped.ranges[0].first == escaped.ranges[0].second;
        if (!single) {  // a class such as \s or \p{L}: no range may start from it
          const Ranges add = escaped.negated ? Complement(escaped.ranges) : escaped.ranges;
          ranges.insert(ranges.end(), add.begin(), add.end());
          continue;
        }
        lo = escaped.ranges[0].first;
      } else {
        lo = chars_[at_++];
      }
      uint32_t hi = lo;
      if (at_ + 1 < chars_.size() && Peek() == '-' && chars_[at_ + 1] != ']') {
        ++at_;
        if (Accept('\\')) {
          EDGELLM_ASSIGN_OR_RETURN(CharSet escaped, ParseEscape());
          if (escaped.negated || escaped.ranges.size() != 1 || escaped.ranges[0].first != escaped.ranges[0].second) {
            return Error("a range cannot end in a class");
          }
          hi = escaped.ranges[0].first;
        } else {
          hi = chars_[at_++];
        }
        if (hi < lo) return Error("range out of order");
      }
      ranges.push_back({lo, hi});
    }
    return Add(std::move(node));
  }

  SplitRegex* regex_;
  std::vector<uint32_t> chars_;
  size_t at_ = 0;
};

// Backtracking over one segment [begin, end) of the mapped text. Each match
// step passes the position it reached to a continuation, which says whether
// the rest of the pattern matched from there.
class SplitRegex::Matcher {
 public:
  using Next = absl::FunctionRef<bool(size_t)>;

  Matcher(const SplitRegex& regex, absl::Span<const uint32_t> chars, size_t begin, size_t end)
      : nodes_(regex.nodes_), chars_(chars), begin_(begin), end_(end) {}

  bool Match(int index, size_t pos, Next next) const {
    const Node& node = nodes_[index];
    switch (node.kind) {
      case Kind::kSet:
        return pos < end_ && node.set.Contains(chars_[pos]) && next(pos + 1);
      case Kind::kBegin:
        return pos == begin_ && next(pos);
      case Kind::kEnd:
        return pos == end_ && next(pos);
      case Kind::kSequence:
        return MatchSequence(node, 0, pos, next);
      case Kind::kAlternation:
        for (int child : node.children) {
          if (Match(child, pos, next)) return true;
        }
        return false;
      case Kind::kLookahead:
      case Kind::kNegativeLookahead: {
        const bool found = Match(node.children[0], pos, [](size_t) { return true; });
        return found == (node.kind == Kind::kLookahead) && next(pos);
      }
      case Kind::kRepeat:
        return MatchRepeat(node, 0, pos, next);
    }
    return false;
  }

 private:
  bool MatchSequence(const Node& sequence, size_t i, size_t pos, Next next) const {
    if (i == sequence.children.size()) return next(pos);
    return Match(sequence.children[i], pos, [&](size_t p) { return MatchSequence(sequence, i + 1, p, next); });
  }

  bool MatchRepeat(const Node& repeat, int count, size_t pos, Next next) const {
    const Node& body = nodes_[repeat.children[0]];
    if (body.kind == Kind::kSet) {
      // A run of one class: take the longest, then give back one at a time,
      // without recursing once per character.
      size_t run = 0;
      while (pos + run < end_ && (repeat.max < 0 || run < static_cast<size_t>(repeat.max)) &&
             body.set.Contains(chars_[pos + run])) {
        ++run;
      }
      for (size_t taken = run + 1; taken-- > static_cast<size_t>(repeat.min);) {
        if (next(pos + taken)) return true;
      }
      return false;
    }
    if (repeat.max < 0 || count < repeat.max) {
      const bool more = Match(repeat.children[0], pos, [&](size_t p) {
        return p != pos && MatchRepeat(repeat, count + 1, p, next);  // an empty pass would loop forever
      });
      if (more) return true;
    }
    return count >= repeat.min && next(pos);
  }

  const std::vector<Node>& nodes_;
  absl::Span<const uint32_t> chars_;
  size_t begin_, end_;
};

absl::StatusOr<SplitRegex> SplitRegex::Compile(std::string_view pattern) {
  SplitRegex regex;
  Parser parser(pattern, &regex);
  EDGELLM_ASSIGN_OR_RETURN(const int root, parser.ParseAll());
  const Node& top = regex.nodes_[root];
  regex.alternatives_ = top.kind == Kind::kAlternation ? top.children : std::vector<int>{root};
  for (int alternative : regex.alternatives_) {
    const Node* first = &regex.nodes_[alternative];
    if (first->kind == Kind::kSequence) first = first->children.empty() ? nullptr : &regex.nodes_[first->children[0]];
    const bool leads_with_run = first != nullptr && first->kind == Kind::kRepeat && first->max < 0 &&
                                regex.nodes_[first->children[0]].kind == Kind::kSet;
    regex.leading_runs_.push_back(leads_with_run ? first->children[0] : -1);
  }
  return regex;
}

uint32_t SplitRegex::MatchValue(uint32_t cp) const {
  if (cp < 0x80) return cp;
  if (IsUnicodeWhiteSpace(cp)) return kWhiteSpaceStandIn;
  if (!uses_categories_) return cp;
  switch (CategoryOf(cp)) {
    case UnicodeCategory::kNumber:
      return kNumberStandIn;
    case UnicodeCategory::kLetter:
      return kLetterStandIn;
    case UnicodeCategory::kPunctuation:
      return kPunctuationStandIn;
    case UnicodeCategory::kMark:
      return kMarkStandIn;
    case UnicodeCategory::kSymbol:
      return kSymbolStandIn;
    default:
      return kOtherStandIn;
  }
}

void SplitRegex::Split(absl::Span<const uint32_t> chars, absl::Span<const size_t> lengths,
                       std::vector<size_t>* out) const {
  // Starts before which each alternative is known to fail (see leading_runs_).
  std::vector<size_t> fails_before(alternatives_.size());
  size_t begin = 0;
  for (size_t length : lengths) {
    const size_t end = begin + length;
    const Matcher matcher(*this, chars, begin, end);
    std::fill(fails_before.begin(), fails_before.end(), begin);
    size_t done = begin;  // everything before is emitted
    for (size_t start = begin; start < end; ++start) {
      size_t match_end = start;
      bool matched = false;
      for (size_t a = 0; a < alternatives_.size() && !matched; ++a) {
        if (start < fails_before[a]) continue;
        matched = matcher.Match(alternatives_[a], start, [&](size_t p) {
          match_end = p;
          return true;
        });
        const int run = leading_runs_[a];
        if (!matched && run >= 0 && nodes_[run].set.Contains(chars[start])) {
          // What follows the run never depends on where the match started, and
          // a later start inside the run tries only ends this one tried.
          size_t run_end = start;
          while (run_end < end && nodes_[run].set.Contains(chars[run_end])) ++run_end;
          fails_before[a] = run_end;
        }
      }
      if (!matched || match_end == start) continue;  // no pattern here matches empty text
      if (start > done) out->push_back(start - done);
      out->push_back(match_end - start);
      done = match_end;
      start = match_end - 1;
    }
    if (end > done) out->push_back(end - done);
    begin = end;
  }
}

}  // namespace edgellm::engine
