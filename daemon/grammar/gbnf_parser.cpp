#include "daemon/grammar/gbnf_parser.h"

#include <algorithm>
#include <map>
#include <optional>

#include "common/status_macros.h"
#include "common/str_cat.h"

namespace edgellm::grammar {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

class Parser {
 public:
  Parser(std::string_view text, const GbnfLimits& limits) : text_(text), limits_(limits) {}

  absl::StatusOr<GrammarRules> Parse() {
    SkipSpace(/*newlines=*/true);
    while (pos_ < text_.size()) {
      const size_t start = pos_;
      const std::string name = ReadName();
      if (name.empty()) return Error(start, "a rule name is expected here");
      SkipSpace(false);
      if (text_.substr(pos_, 3) != "::=") return Error(pos_, edgellm::StrCat("'::=' is expected after rule '", name, "'"));
      pos_ += 3;
      SkipSpace(true);
      const int32_t index = RuleIndex(name, start);
      if (defined_[index]) {
        return Error(start, edgellm::StrCat("rule '", name, "' is defined twice (first at ",
                                            Where(definition_pos_[index]), ")"));
      }
      defined_[index] = true;
      definition_pos_[index] = start;
      EDGELLM_ASSIGN_OR_RETURN(rules_.rules[index].alternatives, ReadAlternatives(name, 0));
      if (pos_ < text_.size() && text_[pos_] != '\n' && text_[pos_] != '\r') {
        return Error(pos_, edgellm::StrCat("unexpected '", text_.substr(pos_, 1), "' in rule '", name, "'"));
      }
      SkipSpace(true);
    }
    EDGELLM_RETURN_IF_ERROR(Check());
    SetPositions();
    return std::move(rules_);
  }

 private:
  absl::Status Error(size_t at, std::string_view message) const {
    return absl::InvalidArgumentError(edgellm::StrCat("grammar ", Where(at), ": ", message));
  }

  // "line L column C" of a byte offset.
  std::string Where(size_t at) const {
    const auto [line, column] = LineColumn(at);
    return edgellm::StrCat("line ", line, " column ", column);
  }

  std::pair<uint32_t, uint32_t> LineColumn(size_t at) const {
    uint32_t line = 1, column = 1;
    for (size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return {line, column};
  }

  // Each rule's line and column, in one pass over the text.
  void SetPositions() {
    std::vector<size_t> order(rules_.rules.size());
    for (size_t r = 0; r < order.size(); ++r) order[r] = r;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return definition_pos_[a] < definition_pos_[b]; });
    uint32_t line = 1, column = 1;
    size_t at = 0;
    for (size_t r : order) {
      for (; at < definition_pos_[r] && at < text_.size(); ++at) {
        if (text_[at] == '\n') {
          ++line;
          column = 1;
        } else {
          ++column;
        }
      }
      rules_.rules[r].line = line;
      rules_.rules[r].column = column;
    }
  }

  // Spaces, tabs and comments; newlines too when `newlines`.
  void SkipSpace(bool newlines) {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  std::string ReadName() {
    const size_t start = pos_;
    while (pos_ < text_.size() && IsNameChar(text_[pos_])) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  int32_t RuleIndex(const std::string& name, size_t used_at) {
    auto [it, added] = index_.emplace(name, static_cast<int32_t>(rules_.rules.size()));
    if (added) {
      rules_.rules.push_back({name, {}, 0, 0});
      defined_.push_back(false);
      definition_pos_.push_back(used_at);
    }
    return it->second;
  }

  int32_t NewRule(const std::string& parent, size_t at, std::vector<std::vector<Symbol>> alternatives) {
    const std::string name = edgellm::StrCat(parent, "_", ++generated_);
    const int32_t index = RuleIndex(name, at);
    defined_[index] = true;
    rules_.rules[index].alternatives = std::move(alternatives);
    return index;
  }

  absl::Status CountSymbols(size_t n, size_t at) {
    symbols_ += n;
    if (symbols_ > limits_.max_symbols) {
      return absl::ResourceExhaustedError(edgellm::StrCat("grammar ", Where(at), ": the grammar expands to more than ",
                                                          limits_.max_symbols, " symbols"));
    }
    return absl::OkStatus();
  }

  // One UTF-8 character of the source.
  absl::StatusOr<uint32_t> ReadUtf8() {
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(text_[i]); };
    const unsigned char lead = byte(pos_);
    int length = lead < 0x80 ? 1 : (lead >> 5) == 6 ? 2 : (lead >> 4) == 14 ? 3 : (lead >> 3) == 30 ? 4 : 0;
    if (length == 0 || pos_ + length > text_.size()) return Error(pos_, "invalid UTF-8");
    uint32_t cp = length == 1 ? lead : lead & (0x7F >> length);
    for (int i = 1; i < length; ++i) {
      if ((byte(pos_ + i) & 0xC0) != 0x80) return Error(pos_, "invalid UTF-8");
      cp = (cp << 6) | (byte(pos_ + i) & 0x3F);
    }
    pos_ += length;
    return cp;
  }

  absl::StatusOr<uint32_t> ReadHex(int digits) {
    uint32_t value = 0;
    for (int i = 0; i < digits; ++i) {
      if (pos_ >= text_.size()) return Error(pos_, "the escape ends early");
      const char c = text_[pos_++];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return Error(pos_ - 1, edgellm::StrCat("'", std::string(1, c), "' is not a hex digit"));
      value = value * 16 + static_cast<uint32_t>(d);
    }
    if (value > kMaxCodepoint) return Error(pos_, "the escape is beyond U+10FFFF");
    return value;
  }

  // A character of a literal or a class, escapes decoded.
  absl::StatusOr<uint32_t> ReadChar() {
    if (pos_ >= text_.size()) return Error(pos_, "the text ends inside a literal or class");
    if (text_[pos_] != '\\') return ReadUtf8();
    const size_t at = pos_;
    if (++pos_ >= text_.size()) return Error(at, "the text ends inside an escape");
    const char c = text_[pos_++];
    switch (c) {
      case 'x': return ReadHex(2);
      case 'u': return ReadHex(4);
      case 'U': return ReadHex(8);
      case 't': return '\t';
      case 'r': return '\r';
      case 'n': return '\n';
      case '\\': case '"': case '[': case ']': case '-': case '^': case '/': return static_cast<uint32_t>(c);
      default: return Error(at, edgellm::StrCat("unknown escape '\\", std::string(1, c), "'"));
    }
  }

  absl::StatusOr<std::vector<CodepointRange>> ReadClass() {
    const size_t start = pos_++;  // '['
    bool negated = false;
    if (pos_ < text_.size() && text_[pos_] == '^') {
      negated = true;
      ++pos_;
    }
    std::vector<CodepointRange> ranges;
    while (true) {
      if (pos_ >= text_.size()) return Error(start, "the character class is not closed with ']'");
      if (text_[pos_] == ']') {
        ++pos_;
        break;
      }
      EDGELLM_ASSIGN_OR_RETURN(uint32_t first, ReadChar());
      uint32_t last = first;
      if (pos_ + 1 < text_.size() && text_[pos_] == '-' && text_[pos_ + 1] != ']') {
        ++pos_;
        const size_t at = pos_;
        EDGELLM_ASSIGN_OR_RETURN(last, ReadChar());
        if (last < first) return Error(at, "the range's end comes before its start");
      }
      ranges.push_back({first, last});
    }
    ranges = NormalizeRanges(std::move(ranges));
    if (!negated) return ranges;
    std::vector<CodepointRange> complement;
    uint32_t next = 0;
    for (const CodepointRange& r : ranges) {
      if (r.first > next) complement.push_back({next, r.first - 1});
      next = r.last + 1;
    }
    if (next <= kMaxCodepoint) complement.push_back({next, kMaxCodepoint});
    return complement;
  }

  absl::StatusOr<uint32_t> ReadCount() {
    const size_t start = pos_;
    uint64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      value = value * 10 + static_cast<uint64_t>(text_[pos_++] - '0');
      if (value > limits_.max_repetition) {
        return absl::ResourceExhaustedError(edgellm::StrCat("grammar ", Where(start), ": a repetition count above ",
                                                            limits_.max_repetition));
      }
    }
    if (pos_ == start) return Error(start, "a number is expected in the repetition");
    return static_cast<uint32_t>(value);
  }

  // Replaces the symbols of `sequence` from `start` on with their repetition.
  absl::Status Repeat(const std::string& rule, size_t at, std::vector<Symbol>& sequence, size_t start, uint32_t min,
                      std::optional<uint32_t> max) {
    const std::vector<Symbol> item(sequence.begin() + static_cast<ptrdiff_t>(start), sequence.end());
    sequence.resize(start);
    EDGELLM_RETURN_IF_ERROR(CountSymbols(item.size() * (min + (max ? *max - min : 1)) + 2, at));
    for (uint32_t i = 0; i < min; ++i) sequence.insert(sequence.end(), item.begin(), item.end());
    if (!max) {
      // R ::= item R | ""
      const int32_t r = NewRule(rule, at, {});
      std::vector<Symbol> again = item;
      again.push_back({{}, r});
      rules_.rules[r].alternatives = {std::move(again), {}};
      sequence.push_back({{}, r});
      return absl::OkStatus();
    }
    // Up to max - min more: O1 ::= item | "", Ok ::= item O(k-1) | "".
    int32_t inner = -1;
    for (uint32_t k = 0; k < *max - min; ++k) {
      std::vector<Symbol> more = item;
      if (inner >= 0) more.push_back({{}, inner});
      inner = NewRule(rule, at, {std::move(more), {}});
    }
    if (inner >= 0) sequence.push_back({{}, inner});
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::vector<Symbol>>> ReadAlternatives(const std::string& rule, uint32_t depth) {
    if (depth > limits_.max_nesting) {
      return absl::ResourceExhaustedError(edgellm::StrCat("grammar ", Where(pos_), ": parentheses nest deeper than ",
                                                          limits_.max_nesting));
    }
    std::vector<std::vector<Symbol>> alternatives;
    EDGELLM_ASSIGN_OR_RETURN(alternatives.emplace_back(), ReadSequence(rule, depth));
    while (true) {
      // At the top level, a line that starts with '|' goes on with the rule.
      const size_t end_of_sequence = pos_;
      if (depth == 0) SkipSpace(true);
      if (pos_ >= text_.size() || text_[pos_] != '|') {
        pos_ = end_of_sequence;
        break;
      }
      ++pos_;
      SkipSpace(true);
      EDGELLM_ASSIGN_OR_RETURN(alternatives.emplace_back(), ReadSequence(rule, depth));
    }
    return alternatives;
  }

  absl::StatusOr<std::vector<Symbol>> ReadSequence(const std::string& rule, uint32_t depth) {
    const bool nested = depth > 0;
    std::vector<Symbol> sequence;
    size_t last_start = 0;  // where the last element (which a repetition applies to) begins
    bool have_element = false;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      const size_t at = pos_;
      if (c == '"') {
        ++pos_;
        last_start = sequence.size();
        while (true) {
          if (pos_ >= text_.size()) return Error(at, "the literal is not closed with '\"'");
          if (text_[pos_] == '"') {
            ++pos_;
            break;
          }
          EDGELLM_ASSIGN_OR_RETURN(uint32_t cp, ReadChar());
          sequence.push_back({{{cp, cp}}, -1});
          EDGELLM_RETURN_IF_ERROR(CountSymbols(1, at));
        }
        have_element = true;
      } else if (c == '[') {
        last_start = sequence.size();
        EDGELLM_ASSIGN_OR_RETURN(std::vector<CodepointRange> chars, ReadClass());
        sequence.push_back({std::move(chars), -1});
        EDGELLM_RETURN_IF_ERROR(CountSymbols(1, at));
        have_element = true;
      } else if (c == '.') {
        ++pos_;
        last_start = sequence.size();
        sequence.push_back({{{0, kMaxCodepoint}}, -1});
        EDGELLM_RETURN_IF_ERROR(CountSymbols(1, at));
        have_element = true;
      } else if (IsNameChar(c)) {
        const std::string name = ReadName();
        last_start = sequence.size();
        sequence.push_back({{}, RuleIndex(name, at)});
        EDGELLM_RETURN_IF_ERROR(CountSymbols(1, at));
        have_element = true;
      } else if (c == '(') {
        ++pos_;
        SkipSpace(true);
        EDGELLM_ASSIGN_OR_RETURN(std::vector<std::vector<Symbol>> group, ReadAlternatives(rule, depth + 1));
        if (pos_ >= text_.size() || text_[pos_] != ')') return Error(at, "the group is not closed with ')'");
        ++pos_;
        last_start = sequence.size();
        sequence.push_back({{}, NewRule(rule, at, std::move(group))});
        EDGELLM_RETURN_IF_ERROR(CountSymbols(1, at));
        have_element = true;
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (!have_element) return Error(at, edgellm::StrCat("'", std::string(1, c), "' follows nothing to repeat"));
        ++pos_;
        uint32_t min = c == '+' ? 1 : 0;
        std::optional<uint32_t> max;
        if (c == '?') max = 1;
        if (c == '{') {
          SkipSpace(true);
          if (pos_ < text_.size() && text_[pos_] != ',') {
            EDGELLM_ASSIGN_OR_RETURN(min, ReadCount());
            max = min;
          }
          SkipSpace(true);
          if (pos_ < text_.size() && text_[pos_] == ',') {
            ++pos_;
            SkipSpace(true);
            max.reset();
            if (pos_ < text_.size() && text_[pos_] != '}') {
              EDGELLM_ASSIGN_OR_RETURN(uint32_t m, ReadCount());
              max = m;
            }
          }
          SkipSpace(true);
          if (pos_ >= text_.size() || text_[pos_] != '}') return Error(at, "the repetition is not closed with '}'");
          ++pos_;
          if (max && *max < min) return Error(at, "the repetition's maximum is below its minimum");
        }
        EDGELLM_RETURN_IF_ERROR(Repeat(rule, at, sequence, last_start, min, max));
        have_element = false;  // x** is refused, as llama.cpp does
      } else {
        break;
      }
      SkipSpace(nested);
    }
    return sequence;
  }

  // Which rules derive some finite text (or, with `empty_only`, the empty text).
  std::vector<bool> Derivable(bool empty_only) const {
    const std::vector<Rule>& rules = rules_.rules;
    std::vector<bool> derivable(rules.size(), false);
    // For each alternative, the symbols not yet known to derive; and for each
    // rule, the alternatives that refer to it (once per reference).
    std::vector<std::pair<int32_t, size_t>> alternatives;  // (rule, index)
    std::vector<size_t> missing;
    std::vector<std::vector<size_t>> users(rules.size());
    std::vector<int32_t> ready;
    for (size_t r = 0; r < rules.size(); ++r) {
      for (size_t a = 0; a < rules[r].alternatives.size(); ++a) {
        const size_t id = alternatives.size();
        alternatives.emplace_back(static_cast<int32_t>(r), a);
        size_t count = 0;
        bool impossible = false;
        for (const Symbol& s : rules[r].alternatives[a]) {
          if (s.rule >= 0) {
            ++count;
            users[s.rule].push_back(id);
          } else if (empty_only || s.chars.empty()) {
            impossible = true;
          }
        }
        missing.push_back(impossible ? SIZE_MAX : count);
        if (count == 0 && !impossible && !derivable[r]) {
          derivable[r] = true;
          ready.push_back(static_cast<int32_t>(r));
        }
      }
    }
    while (!ready.empty()) {
      const int32_t r = ready.back();
      ready.pop_back();
      for (size_t id : users[r]) {
        if (missing[id] == SIZE_MAX || --missing[id] != 0) continue;
        const int32_t owner = alternatives[id].first;
        if (!derivable[owner]) {
          derivable[owner] = true;
          ready.push_back(owner);
        }
      }
    }
    return derivable;
  }

  // Undefined and left-recursive rules, and a root that can never finish.
  absl::Status Check() {
    const std::vector<Rule>& rules = rules_.rules;
    for (size_t r = 0; r < rules.size(); ++r) {
      if (!defined_[r]) {
        return Error(definition_pos_[r], edgellm::StrCat("rule '", rules[r].name, "' is used but never defined"));
      }
    }
    auto root = index_.find("root");
    if (root == index_.end()) return absl::InvalidArgumentError("grammar: there is no rule 'root'");
    rules_.root = root->second;
    // Rules that can finish (derive some text), and rules that can match "":
    // each found by a worklist over the alternatives, linear in the grammar.
    const std::vector<bool> finishes = Derivable(/*empty_only=*/false);
    const std::vector<bool> empty = Derivable(/*empty_only=*/true);
    if (!finishes[rules_.root]) {
      // Name the last-defined rule reachable from the root that can never
      // finish: the root itself only when nothing under it is to blame.
      std::vector<bool> seen(rules.size(), false);
      std::vector<int32_t> todo = {rules_.root};
      seen[rules_.root] = true;
      int32_t culprit = rules_.root;
      while (!todo.empty()) {
        const int32_t r = todo.back();
        todo.pop_back();
        if (!finishes[r] && definition_pos_[r] > definition_pos_[culprit]) culprit = r;
        for (const auto& alternative : rules[r].alternatives) {
          for (const Symbol& s : alternative) {
            if (s.rule >= 0 && !seen[s.rule]) {
              seen[s.rule] = true;
              todo.push_back(s.rule);
            }
          }
        }
      }
      return Error(definition_pos_[culprit], edgellm::StrCat("rule '", rules[culprit].name,
                                                             "' can never finish, so the grammar accepts nothing"));
    }
    // Left recursion: a rule reached again before any character is read.
    // Depth-first over "may begin with" edges, with an explicit stack: a
    // chain of a million rules must not exhaust the thread's stack.
    std::vector<std::vector<int32_t>> begins_with(rules.size());
    for (size_t r = 0; r < rules.size(); ++r) {
      for (const auto& alternative : rules[r].alternatives) {
        for (const Symbol& s : alternative) {
          if (s.rule < 0) break;
          begins_with[r].push_back(s.rule);
          if (!empty[s.rule]) break;
        }
      }
    }
    std::vector<int> mark(rules.size(), 0);  // 0 new, 1 on the path, 2 done
    for (size_t start = 0; start < rules.size(); ++start) {
      if (mark[start] != 0) continue;
      std::vector<std::pair<int32_t, size_t>> path = {{static_cast<int32_t>(start), 0}};
      mark[start] = 1;
      while (!path.empty()) {
        auto& [r, next] = path.back();
        if (next == begins_with[r].size()) {
          mark[r] = 2;
          path.pop_back();
          continue;
        }
        const int32_t to = begins_with[r][next++];
        if (mark[to] == 1) {
          std::string cycle;
          bool on = false;
          for (const auto& [p, unused] : path) {
            on = on || p == to;
            if (on) cycle += rules[p].name + " -> ";
          }
          return Error(definition_pos_[to],
                       edgellm::StrCat("rule '", rules[to].name, "' is left-recursive: ", cycle, rules[to].name));
        }
        if (mark[to] == 0) {
          mark[to] = 1;
          path.push_back({to, 0});
        }
      }
    }
    return absl::OkStatus();
  }

  std::string_view text_;
  const GbnfLimits& limits_;
  size_t pos_ = 0;
  size_t symbols_ = 0;
  int generated_ = 0;
  GrammarRules rules_;
  std::map<std::string, int32_t> index_;
  std::vector<bool> defined_;
  std::vector<size_t> definition_pos_;
};

}  // namespace

std::vector<CodepointRange> NormalizeRanges(std::vector<CodepointRange> ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const CodepointRange& a, const CodepointRange& b) {
    return a.first < b.first || (a.first == b.first && a.last < b.last);
  });
  std::vector<CodepointRange> merged;
  for (const CodepointRange& r : ranges) {
    if (!merged.empty() && r.first <= merged.back().last + 1) {
      merged.back().last = std::max(merged.back().last, r.last);
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

absl::StatusOr<GrammarRules> ParseGbnf(std::string_view text, const GbnfLimits& limits) {
  if (text.size() > limits.max_text_bytes) {
    return absl::ResourceExhaustedError(
        edgellm::StrCat("the grammar has ", text.size(), " bytes; at most ", limits.max_text_bytes, " are accepted"));
  }
  return Parser(text, limits).Parse();
}

}  // namespace edgellm::grammar
