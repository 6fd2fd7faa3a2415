#include "daemon/grammar/json_schema.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/grammar/gbnf_parser.h"

namespace edgellm::grammar {
namespace {

using Json = nlohmann::ordered_json;

// The primitives every grammar may use, defined once each as needed.
const std::map<std::string, std::string>& Primitives() {
  static const auto* primitives = new std::map<std::string, std::string>{
      {"ws", R"(" "?)"},
      {"json-char", R"([^"\\\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}))"},
      {"json-string", R"("\"" json-char* "\"")"},
      {"json-int", R"("-"? ("0" | [1-9] [0-9]{0,15}))"},
      {"json-fraction", R"("." [0-9]{1,16})"},
      {"json-number", R"(json-int json-fraction? ([eE] [-+]? [0-9]{1,3})?)"},
      {"json-boolean", R"("true" | "false")"},
      {"json-null", R"("null")"},
      {"json-value", "json-object | json-array | json-string | json-number | json-boolean | json-null"},
      {"json-object", R"("{" ws (json-string ":" ws json-value ("," ws json-string ":" ws json-value)*)? ws "}")"},
      {"json-array", R"("[" ws (json-value ("," ws json-value)*)? ws "]")"},
      {"date", R"([0-9]{4} "-" (("0" [13578] | "1" [02]) "-" ("0" [1-9] | [12] [0-9] | "3" [01]) | ("0" [469] | "11") "-" ("0" [1-9] | [12] [0-9] | "30") | "02-" ("0" [1-9] | "1" [0-9] | "2" [0-8])))"},
      {"time", R"(([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? ("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9]))"},
      {"date-time", R"(date "T" time)"},
      {"uuid", R"([0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12})"},
      {"ipv4-octet", R"("25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9]? [0-9])"},
      {"ipv4", R"(ipv4-octet "." ipv4-octet "." ipv4-octet "." ipv4-octet)"},
  };
  return *primitives;
}

// The primitives each one uses.
const std::map<std::string, std::vector<std::string>>& PrimitiveUses() {
  static const auto* uses = new std::map<std::string, std::vector<std::string>>{
      {"json-string", {"json-char"}},
      {"json-number", {"json-int", "json-fraction"}},
      {"json-value", {"json-object", "json-array", "json-string", "json-number", "json-boolean", "json-null"}},
      {"json-object", {"ws", "json-string", "json-value"}},
      {"json-array", {"ws", "json-value"}},
      {"date-time", {"date", "time"}},
      {"ipv4", {"ipv4-octet"}},
  };
  return *uses;
}

std::string Hex(uint32_t cp) {
  char buffer[16];
  if (cp < 0x80) {
    std::snprintf(buffer, sizeof(buffer), "\\x%02X", cp);
  } else if (cp <= 0xFFFF) {
    std::snprintf(buffer, sizeof(buffer), "\\u%04X", cp);
  } else {
    std::snprintf(buffer, sizeof(buffer), "\\U%08X", cp);
  }
  return buffer;
}

std::string ClassOf(const std::vector<CodepointRange>& ranges) {
  std::string out = "[";
  for (const CodepointRange& r : ranges) {
    out += Hex(r.first);
    if (r.last != r.first) {
      out += '-';
      out += Hex(r.last);
    }
  }
  return out + "]";
}

// The output of one character of a set inside a JSON string: itself, or its escape.
std::string JsonCharOf(const std::vector<CodepointRange>& chars) {
  std::vector<CodepointRange> plain;
  std::vector<std::string> alternatives;
  for (const CodepointRange& r : chars) {
    for (uint32_t special : {0x22u, 0x5Cu}) {
      if (r.first <= special && special <= r.last) alternatives.push_back(special == 0x22 ? R"("\\\"")" : R"("\\\\")");
    }
    for (uint32_t c = r.first; c <= std::min<uint32_t>(r.last, 0x1F); ++c) {
      static constexpr const char* kShort[] = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                               "b", "t", "n", nullptr, "f", "r"};
      if (c < 14 && kShort[c] != nullptr) {
        alternatives.push_back(edgellm::StrCat("\"\\\\", kShort[c], "\""));
      } else {
        char buffer[16];
        std::snprintf(buffer, sizeof(buffer), "\"\\\\u%04x\"", c);
        alternatives.push_back(buffer);
      }
    }
    // The set without '"', '\' and control characters.
    uint32_t from = std::max<uint32_t>(r.first, 0x20);
    for (uint32_t special : {0x22u, 0x5Cu}) {
      if (from <= special && special <= r.last) {
        if (from < special) plain.push_back({from, special - 1});
        from = special + 1;
      }
    }
    if (from <= r.last) plain.push_back({from, r.last});
  }
  if (!plain.empty()) alternatives.insert(alternatives.begin(), ClassOf(plain));
  if (alternatives.empty()) return "";
  if (alternatives.size() == 1) return alternatives.front();
  std::string out = "(";
  for (size_t i = 0; i < alternatives.size(); ++i) out += (i ? " | " : "") + alternatives[i];
  return out + ")";
}

std::vector<CodepointRange> Complement(const std::vector<CodepointRange>& ranges) {
  std::vector<CodepointRange> out;
  uint32_t next = 0;
  for (const CodepointRange& r : NormalizeRanges(ranges)) {
    if (r.first > next) out.push_back({next, r.first - 1});
    next = r.last + 1;
  }
  if (next <= kMaxCodepoint) out.push_back({next, kMaxCodepoint});
  return out;
}

// A regular expression (the subset JSON Schema patterns use) as the GBNF of
// the JSON string contents that match it whole.
class RegexConverter {
 public:
  RegexConverter(std::string_view pattern, std::string where) : p_(pattern), where_(std::move(where)) {}

  absl::StatusOr<std::string> Convert() {
    if (!p_.empty() && p_.front() == '^') p_.remove_prefix(1);
    if (!p_.empty() && p_.back() == '$' && (p_.size() < 2 || p_[p_.size() - 2] != '\\')) p_.remove_suffix(1);
    EDGELLM_ASSIGN_OR_RETURN(std::string out, Alternatives(0));
    if (pos_ < p_.size()) return Bad(edgellm::StrCat("unexpected '", p_.substr(pos_, 1), "'"));
    return out;
  }

 private:
  absl::Status Bad(std::string_view problem) const {
    return absl::InvalidArgumentError(edgellm::StrCat(where_, ": pattern at offset ", pos_, ": ", problem));
  }

  absl::StatusOr<std::string> Alternatives(int depth) {
    if (depth > 64) return Bad("groups nest too deep");
    std::vector<std::string> alternatives;
    EDGELLM_ASSIGN_OR_RETURN(alternatives.emplace_back(), Sequence(depth));
    while (pos_ < p_.size() && p_[pos_] == '|') {
      ++pos_;
      EDGELLM_ASSIGN_OR_RETURN(alternatives.emplace_back(), Sequence(depth));
    }
    if (alternatives.size() == 1) return "(" + alternatives.front() + ")";
    std::string out = "(";
    for (size_t i = 0; i < alternatives.size(); ++i) out += (i ? " | " : "") + alternatives[i];
    return out + ")";
  }

  absl::StatusOr<std::string> Sequence(int depth) {
    std::string out;
    while (pos_ < p_.size() && p_[pos_] != '|' && p_[pos_] != ')') {
      EDGELLM_ASSIGN_OR_RETURN(std::string atom, Atom(depth));
      EDGELLM_ASSIGN_OR_RETURN(std::string quantifier, Quantifier());
      if (!out.empty()) out += " ";
      out += atom + quantifier;
    }
    return out.empty() ? "\"\"" : out;
  }

  absl::StatusOr<std::string> Quantifier() {
    if (pos_ >= p_.size()) return "";
    std::string q;
    const char c = p_[pos_];
    if (c == '*' || c == '+' || c == '?') {
      q = std::string(1, c);
      ++pos_;
    } else if (c == '{') {
      const size_t close = p_.find('}', pos_);
      if (close == std::string_view::npos) return Bad("'{' is not closed");
      const std::string_view inside = p_.substr(pos_ + 1, close - pos_ - 1);
      for (char d : inside) {
        if (!(d >= '0' && d <= '9') && d != ',') return Bad("a repetition must be {m}, {m,} or {m,n}");
      }
      q = std::string("{").append(inside).append("}");
      pos_ = close + 1;
    } else {
      return "";
    }
    // Lazy and greedy repetitions match the same whole strings.
    if (pos_ < p_.size() && p_[pos_] == '?') ++pos_;
    if (pos_ < p_.size() && (p_[pos_] == '+' || p_[pos_] == '*' || p_[pos_] == '{')) {
      return Bad("possessive and doubled quantifiers are not supported");
    }
    return q;
  }

  absl::StatusOr<uint32_t> Utf8() {
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(p_[i]); };
    const unsigned char lead = byte(pos_);
    const int n = lead < 0x80 ? 1 : (lead >> 5) == 6 ? 2 : (lead >> 4) == 14 ? 3 : (lead >> 3) == 30 ? 4 : 0;
    if (n == 0 || pos_ + n > p_.size()) return Bad("invalid UTF-8");
    uint32_t cp = n == 1 ? lead : lead & (0x7F >> n);
    for (int i = 1; i < n; ++i) cp = (cp << 6) | (byte(pos_ + i) & 0x3F);
    pos_ += n;
    return cp;
  }

  absl::StatusOr<uint32_t> HexDigits(int n) {
    if (pos_ + n > p_.size()) return Bad("the escape ends early");
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) {
      const char c = p_[pos_++];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return Bad("a hex digit is expected");
      v = v * 16 + static_cast<uint32_t>(d);
    }
    return v;
  }

  // An escape after '\': the set it stands for.
  absl::StatusOr<std::vector<CodepointRange>> Escape(bool in_class) {
    if (pos_ >= p_.size()) return Bad("the pattern ends with '\\'");
    const char c = p_[pos_++];
    static const std::vector<CodepointRange> kDigit = {{'0', '9'}};
    static const std::vector<CodepointRange> kWord = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
    static const std::vector<CodepointRange> kSpace = {{'\t', '\r'}, {' ', ' '}};
    switch (c) {
      case 'd': return kDigit;
      case 'D': return Complement(kDigit);
      case 'w': return kWord;
      case 'W': return Complement(kWord);
      case 's': return kSpace;
      case 'S': return Complement(kSpace);
      case 'n': return std::vector<CodepointRange>{{'\n', '\n'}};
      case 't': return std::vector<CodepointRange>{{'\t', '\t'}};
      case 'r': return std::vector<CodepointRange>{{'\r', '\r'}};
      case 'f': return std::vector<CodepointRange>{{'\f', '\f'}};
      case 'v': return std::vector<CodepointRange>{{'\v', '\v'}};
      case 'x': {
        EDGELLM_ASSIGN_OR_RETURN(uint32_t v, HexDigits(2));
        return std::vector<CodepointRange>{{v, v}};
      }
      case 'u': {
        EDGELLM_ASSIGN_OR_RETURN(uint32_t v, HexDigits(4));
        return std::vector<CodepointRange>{{v, v}};
      }
      default:
        if ((c >= '1' && c <= '9') || (!in_class && (c == 'b' || c == 'B'))) {
          return Bad(edgellm::StrCat("'\\", std::string(1, c), "' (backreferences and word boundaries) is not supported"));
        }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
          return Bad(edgellm::StrCat("the escape '\\", std::string(1, c), "' is not supported"));
        }
        return std::vector<CodepointRange>{{static_cast<uint32_t>(static_cast<unsigned char>(c)),
                                            static_cast<uint32_t>(static_cast<unsigned char>(c))}};
    }
  }

  absl::StatusOr<std::vector<CodepointRange>> Class() {
    ++pos_;  // '['
    bool negated = false;
    if (pos_ < p_.size() && p_[pos_] == '^') {
      negated = true;
      ++pos_;
    }
    std::vector<CodepointRange> ranges;
    bool first = true;
    while (true) {
      if (pos_ >= p_.size()) return Bad("'[' is not closed");
      if (p_[pos_] == ']' && !first) {
        ++pos_;
        break;
      }
      first = false;
      std::vector<CodepointRange> item;
      if (p_[pos_] == '\\') {
        ++pos_;
        EDGELLM_ASSIGN_OR_RETURN(item, Escape(true));
      } else {
        EDGELLM_ASSIGN_OR_RETURN(uint32_t cp, Utf8());
        item = {{cp, cp}};
      }
      if (item.size() == 1 && item[0].first == item[0].last && pos_ + 1 < p_.size() && p_[pos_] == '-' &&
          p_[pos_ + 1] != ']') {
        ++pos_;
        uint32_t last;
        if (p_[pos_] == '\\') {
          ++pos_;
          EDGELLM_ASSIGN_OR_RETURN(std::vector<CodepointRange> end, Escape(true));
          if (end.size() != 1 || end[0].first != end[0].last) return Bad("a range must end in one character");
          last = end[0].first;
        } else {
          EDGELLM_ASSIGN_OR_RETURN(last, Utf8());
        }
        if (last < item[0].first) return Bad("a range ends before it starts");
        item[0].last = last;
      }
      ranges.insert(ranges.end(), item.begin(), item.end());
    }
    ranges = NormalizeRanges(std::move(ranges));
    return negated ? Complement(ranges) : ranges;
  }

  absl::StatusOr<std::string> Atom(int depth) {
    const char c = p_[pos_];
    std::vector<CodepointRange> chars;
    if (c == '(') {
      ++pos_;
      if (pos_ < p_.size() && p_[pos_] == '?') {
        if (p_.substr(pos_, 2) == "?:") {
          pos_ += 2;
        } else if (p_.substr(pos_, 2) == "?<" && pos_ + 2 < p_.size() && p_[pos_ + 2] != '=' && p_[pos_ + 2] != '!') {
          const size_t close = p_.find('>', pos_);
          if (close == std::string_view::npos) return Bad("a group name is not closed with '>'");
          pos_ = close + 1;
        } else {
          return Bad("lookahead, lookbehind and inline flags are not supported");
        }
      }
      EDGELLM_ASSIGN_OR_RETURN(std::string inner, Alternatives(depth + 1));
      if (pos_ >= p_.size() || p_[pos_] != ')') return Bad("'(' is not closed");
      ++pos_;
      return inner;
    }
    if (c == '[') {
      EDGELLM_ASSIGN_OR_RETURN(chars, Class());
    } else if (c == '.') {
      ++pos_;
      chars = Complement({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}});
    } else if (c == '\\') {
      ++pos_;
      EDGELLM_ASSIGN_OR_RETURN(chars, Escape(false));
    } else if (c == '^' || c == '$') {
      return Bad("anchors are supported only at the start and end");
    } else if (c == '*' || c == '+' || c == '?' || c == '{') {
      return Bad(edgellm::StrCat("'", std::string(1, c), "' follows nothing to repeat"));
    } else {
      EDGELLM_ASSIGN_OR_RETURN(uint32_t cp, Utf8());
      chars = {{cp, cp}};
    }
    std::string out = JsonCharOf(chars);
    if (out.empty()) return Bad("a character class matches nothing");
    return out;
  }

  std::string_view p_;
  std::string where_;
  size_t pos_ = 0;
};

// Decimal digit strings of equal length, lo <= hi: GBNF for every number between.
std::string DigitRange(const std::string& lo, const std::string& hi) {
  if (lo.empty()) return "";
  if (lo == hi) return GbnfLiteral(lo);
  if (lo[0] == hi[0]) return GbnfLiteral(lo.substr(0, 1)) + " " + DigitRange(lo.substr(1), hi.substr(1));
  const size_t rest = lo.size() - 1;
  const auto digits = [](char a, char b) { return a == b ? GbnfLiteral(std::string(1, a)) : edgellm::StrCat("[", std::string(1, a), "-", std::string(1, b), "]"); };
  const auto any = [&](size_t n) { return n == 0 ? std::string() : edgellm::StrCat(" [0-9]{", n, "}"); };
  std::vector<std::string> alternatives;
  const std::string nines(rest, '9'), zeros(rest, '0');
  if (lo.substr(1) == zeros && hi.substr(1) == nines) return digits(lo[0], hi[0]) + any(rest);
  char from = lo[0], to = hi[0];
  if (lo.substr(1) != zeros) {
    alternatives.push_back(GbnfLiteral(lo.substr(0, 1)) + (rest ? " " + DigitRange(lo.substr(1), nines) : ""));
    ++from;
  }
  std::string last;
  if (hi.substr(1) != nines) {
    last = GbnfLiteral(hi.substr(0, 1)) + (rest ? " " + DigitRange(zeros, hi.substr(1)) : "");
    --to;
  }
  if (from <= to) alternatives.push_back(digits(from, to) + any(rest));
  if (!last.empty()) alternatives.push_back(last);
  std::string out = "(";
  for (size_t i = 0; i < alternatives.size(); ++i) out += (i ? " | " : "") + alternatives[i];
  return out + ")";
}

constexpr int kMaxDigits = 16;

// Every whole number from lo to hi (nullopt: no end), both >= 0, without leading zeros.
std::string NonNegativeRange(uint64_t lo, std::optional<uint64_t> hi) {
  const std::string lo_text = std::to_string(lo);
  const size_t last_length = hi ? std::to_string(*hi).size() : static_cast<size_t>(kMaxDigits);
  std::vector<std::string> alternatives;
  for (size_t length = lo_text.size(); length <= last_length; ++length) {
    const std::string from = length == lo_text.size() ? lo_text : std::string("1").append(length - 1, '0');
    const std::string to = hi && length == last_length ? std::to_string(*hi) : std::string(length, '9');
    alternatives.push_back(DigitRange(from, to));
  }
  if (alternatives.size() == 1) return alternatives.front();
  std::string out = "(";
  for (size_t i = 0; i < alternatives.size(); ++i) out += (i ? " | " : "") + alternatives[i];
  return out + ")";
}

// Whole numbers from lo to hi (nullopt: no bound); "" when there are none.
std::string IntegerRange(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  if (lo && hi && *lo > *hi) return "";
  std::vector<std::string> alternatives;
  // Negative numbers: "-" then their magnitudes.
  if (!lo || *lo < 0) {
    const int64_t top = hi ? std::min<int64_t>(*hi, -1) : -1;
    if (!lo || *lo <= top) {
      const uint64_t smallest = static_cast<uint64_t>(-top);
      std::optional<uint64_t> largest;
      if (lo) largest = static_cast<uint64_t>(-(*lo + 1)) + 1;
      alternatives.push_back("\"-\" " + NonNegativeRange(smallest, largest));
    }
  }
  if (!hi || *hi >= 0) {
    const uint64_t from = lo ? static_cast<uint64_t>(std::max<int64_t>(*lo, 0)) : 0;
    std::optional<uint64_t> to;
    if (hi) to = static_cast<uint64_t>(*hi);
    alternatives.push_back(NonNegativeRange(from, to));
  }
  if (alternatives.empty()) return "";
  if (alternatives.size() == 1) return alternatives.front();
  return "(" + alternatives[0] + " | " + alternatives[1] + ")";
}

std::string Join(const std::vector<std::string>& alternatives) {
  if (alternatives.size() == 1) return alternatives.front();
  std::string out = "(";
  for (size_t i = 0; i < alternatives.size(); ++i) out += (i ? " | " : "") + alternatives[i];
  return out + ")";
}

std::string RuleName(std::string_view hint) {
  std::string name;
  for (char c : hint) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      name += c;
    } else if (!name.empty() && name.back() != '-') {
      name += '-';
    }
    if (name.size() >= 40) break;
  }
  while (!name.empty() && name.back() == '-') name.pop_back();
  return name.empty() ? "schema" : name;
}

class SchemaConverter {
 public:
  SchemaConverter(const Json& root, const JsonSchemaLimits& limits, std::string_view name)
      : root_(root), limits_(limits), name_(name) {}

  absl::StatusOr<std::string> Convert() {
    EDGELLM_ASSIGN_OR_RETURN(std::string body, Visit(root_, "#", 0));
    std::string out = name_ + " ::= " + body + "\n";
    for (const auto& [name, rule] : rules_) out += name + " ::= " + rule + "\n";
    std::set<std::string> done;
    std::vector<std::string> todo(used_.begin(), used_.end());
    while (!todo.empty()) {
      const std::string name = todo.back();
      todo.pop_back();
      if (!done.insert(name).second) continue;
      out += name + " ::= " + Primitives().at(name) + "\n";
      if (auto it = PrimitiveUses().find(name); it != PrimitiveUses().end()) {
        todo.insert(todo.end(), it->second.begin(), it->second.end());
      }
    }
    if (out.size() > limits_.max_grammar_bytes) {
      return absl::ResourceExhaustedError(edgellm::StrCat("the schema's grammar would have ", out.size(),
                                                          " bytes; at most ", limits_.max_grammar_bytes));
    }
    return out;
  }

 private:
  absl::Status Bad(const std::string& where, std::string_view problem) const {
    return absl::InvalidArgumentError(edgellm::StrCat("json_schema ", where, ": ", problem));
  }

  std::string Use(const std::string& primitive) {
    used_.insert(primitive);
    return primitive;
  }

  absl::Status Grow(size_t bytes) {
    size_ += bytes;
    if (size_ > limits_.max_grammar_bytes) {
      return absl::ResourceExhaustedError(
          edgellm::StrCat("the schema's grammar grows beyond ", limits_.max_grammar_bytes, " bytes"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> AddRule(const std::string& hint, std::string body) {
    EDGELLM_RETURN_IF_ERROR(Grow(body.size() + hint.size()));
    const std::string base = name_ + "-" + RuleName(hint);
    std::string name = base;
    for (int& n = suffixes_[base]; rules_.count(name) > 0;) name = edgellm::StrCat(base, "-", ++n);
    rules_[name] = std::move(body);
    return name;
  }

  // The schema a "#..." reference points at.
  absl::StatusOr<const Json*> Resolve(const std::string& ref, const std::string& where) const {
    if (ref == "#") return &root_;
    if (ref.rfind("#/", 0) != 0) {
      return Bad(where, edgellm::StrCat("$ref '", ref.substr(0, 128), "' is not within this schema (only '#...' refs are)"));
    }
    try {
      const Json::json_pointer pointer(ref.substr(1));
      if (root_.contains(pointer)) return &root_.at(pointer);
    } catch (const Json::exception&) {
      return Bad(where, edgellm::StrCat("$ref '", ref.substr(0, 128), "' is not a valid JSON pointer"));
    }
    return Bad(where, edgellm::StrCat("$ref '", ref.substr(0, 128), "' points at nothing"));
  }

  absl::StatusOr<std::string> Ref(const std::string& ref, const std::string& where, int depth) {
    if (auto it = refs_.find(ref); it != refs_.end()) return it->second;
    EDGELLM_ASSIGN_OR_RETURN(const Json* target, Resolve(ref, where));
    // Named before its body is made, so a recursive schema refers to itself.
    EDGELLM_ASSIGN_OR_RETURN(std::string name, AddRule(ref.substr(ref.rfind('/') + 1), "\"\""));
    refs_[ref] = name;
    EDGELLM_ASSIGN_OR_RETURN(std::string body, Visit(*target, ref, depth + 1));
    EDGELLM_RETURN_IF_ERROR(Grow(body.size()));
    rules_[name] = std::move(body);
    return name;
  }

  absl::StatusOr<std::string> Visit(const Json& schema, const std::string& where, int depth) {
    if (depth > limits_.max_depth) {
      return absl::ResourceExhaustedError(
          edgellm::StrCat("json_schema ", where, ": schemas nest deeper than ", limits_.max_depth));
    }
    if (schema.is_boolean()) {
      if (schema.get<bool>()) return Use("json-value");
      return Bad(where, "the schema 'false' accepts no value");
    }
    if (!schema.is_object()) return Bad(where, "a schema must be an object or a boolean");
    static const char* kUnsupported[] = {"multipleOf", "uniqueItems", "patternProperties", "propertyNames",
                                         "dependentRequired", "dependentSchemas", "dependencies", "if", "then",
                                         "else", "not", "contains", "minContains", "maxContains", "minProperties",
                                         "maxProperties", "unevaluatedProperties", "unevaluatedItems",
                                         "$dynamicRef", "$recursiveRef"};
    for (const char* keyword : kUnsupported) {
      if (schema.contains(keyword)) return Bad(where, edgellm::StrCat("'", keyword, "' is not supported"));
    }
    if (auto ref = schema.find("$ref"); ref != schema.end()) {
      if (!ref->is_string()) return Bad(where, "$ref must be a string");
      return Ref(ref->get<std::string>(), where + "/$ref", depth);
    }
    if (auto c = schema.find("const"); c != schema.end()) {
      std::string literal = GbnfLiteral(c->dump());
      EDGELLM_RETURN_IF_ERROR(Grow(literal.size()));
      return literal;
    }
    if (auto e = schema.find("enum"); e != schema.end()) {
      if (!e->is_array() || e->empty()) return Bad(where + "/enum", "must be a non-empty list");
      if (e->size() > limits_.max_enum_values) {
        return absl::ResourceExhaustedError(edgellm::StrCat("json_schema ", where, "/enum: ", e->size(),
                                                            " values; at most ", limits_.max_enum_values));
      }
      std::vector<std::string> alternatives;
      for (const Json& value : *e) {
        alternatives.push_back(GbnfLiteral(value.dump()));
        EDGELLM_RETURN_IF_ERROR(Grow(alternatives.back().size()));
      }
      return Join(alternatives);
    }
    for (const char* keyword : {"anyOf", "oneOf"}) {
      if (auto any = schema.find(keyword); any != schema.end()) {
        if (!any->is_array() || any->empty()) return Bad(where + "/" + keyword, "must be a non-empty list");
        if (std::string_view(keyword) == "oneOf" && !Exclusive(*any)) {
          return Bad(where + "/oneOf",
                     "its alternatives may overlap, so an output could match more than one: oneOf is enforced when "
                     "they differ in type or in a required const property (use anyOf otherwise)");
        }
        std::vector<std::string> alternatives;
        for (size_t i = 0; i < any->size(); ++i) {
          EDGELLM_ASSIGN_OR_RETURN(alternatives.emplace_back(),
                                   Visit((*any)[i], edgellm::StrCat(where, "/", keyword, "/", i), depth + 1));
        }
        return Join(alternatives);
      }
    }
    if (auto all = schema.find("allOf"); all != schema.end()) return AllOf(schema, *all, where, depth);
    if (auto type = schema.find("type"); type != schema.end()) {
      if (type->is_array()) {
        if (type->empty()) return Bad(where + "/type", "must not be an empty list");
        std::vector<std::string> alternatives;
        for (const Json& t : *type) {
          if (!t.is_string()) return Bad(where + "/type", "must hold type names");
          EDGELLM_ASSIGN_OR_RETURN(alternatives.emplace_back(), OfType(t.get<std::string>(), schema, where, depth));
        }
        return Join(alternatives);
      }
      if (!type->is_string()) return Bad(where + "/type", "must be a type name or a list of them");
      return OfType(type->get<std::string>(), schema, where, depth);
    }
    // No type: the keywords say which one.
    for (const char* keyword : {"properties", "additionalProperties", "required"}) {
      if (schema.contains(keyword)) return OfType("object", schema, where, depth);
    }
    for (const char* keyword : {"items", "prefixItems", "minItems", "maxItems"}) {
      if (schema.contains(keyword)) return OfType("array", schema, where, depth);
    }
    for (const char* keyword : {"minLength", "maxLength", "pattern", "format"}) {
      if (schema.contains(keyword)) return OfType("string", schema, where, depth);
    }
    for (const char* keyword : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
      if (schema.contains(keyword)) return OfType("number", schema, where, depth);
    }
    return Use("json-value");
  }

  // The schema itself, or the one its $ref points at; null when it cannot be resolved.
  const Json* Resolved(const Json& schema) const {
    const Json* at = &schema;
    for (int hops = 0; at->is_object() && at->contains("$ref") && hops < 16; ++hops) {
      const Json& ref = (*at)["$ref"];
      if (!ref.is_string()) return nullptr;
      absl::StatusOr<const Json*> target = Resolve(ref.get<std::string>(), "#");
      if (!target.ok()) return nullptr;
      at = *target;
    }
    return at;
  }

  // The JSON types a schema's values may have; empty when it does not say.
  std::set<std::string> TypesOf(const Json& schema) const {
    const Json* s = Resolved(schema);
    if (s == nullptr || !s->is_object()) return {};
    const auto type_of = [](const Json& v) -> std::string {
      if (v.is_number_integer()) return "integer";
      if (v.is_number()) return "number";
      if (v.is_boolean()) return "boolean";
      if (v.is_null()) return "null";
      return v.is_string() ? "string" : v.is_array() ? "array" : "object";
    };
    std::set<std::string> types;
    if (auto c = s->find("const"); c != s->end()) return {type_of(*c)};
    if (auto e = s->find("enum"); e != s->end() && e->is_array()) {
      for (const Json& v : *e) types.insert(type_of(v));
      return types;
    }
    if (auto t = s->find("type"); t != s->end()) {
      if (t->is_string()) return {t->get<std::string>()};
      if (t->is_array()) {
        for (const Json& name : *t) {
          if (name.is_string()) types.insert(name.get<std::string>());
        }
      }
    }
    return types;
  }

  // Whether no value can match two of `alternatives`: their types are
  // disjoint (an integer is a number), or all are objects with one required
  // property whose const values differ.
  bool Exclusive(const Json& alternatives) const {
    std::set<std::string> seen;
    bool typed = true;
    for (const Json& alternative : alternatives) {
      std::set<std::string> types = TypesOf(alternative);
      if (types.count("integer") || types.count("number")) types.insert({"integer", "number"});
      if (types.empty()) typed = false;
      for (const std::string& t : types) {
        if (!seen.insert(t).second) typed = false;
      }
    }
    if (typed) return true;
    // A discriminating property: required everywhere, a distinct const in each.
    const Json* first = Resolved(alternatives[0]);
    if (first == nullptr || !first->is_object() || !first->contains("properties")) return false;
    for (const auto& [name, unused] : (*first)["properties"].items()) {
      std::set<std::string> values;
      bool discriminates = true;
      for (const Json& alternative : alternatives) {
        const Json* a = Resolved(alternative);
        const bool required = a != nullptr && a->is_object() && a->contains("required") && (*a)["required"].is_array() &&
                              std::find((*a)["required"].begin(), (*a)["required"].end(), Json(name)) != (*a)["required"].end();
        const Json* property = required && (*a)["properties"].contains(name) ? &(*a)["properties"][name] : nullptr;
        if (property == nullptr || !property->is_object() || !property->contains("const") ||
            !values.insert((*property)["const"].dump()).second) {
          discriminates = false;
          break;
        }
      }
      if (discriminates) return true;
    }
    return false;
  }

  absl::StatusOr<std::string> AllOf(const Json& schema, const Json& all, const std::string& where, int depth) {
    if (!all.is_array() || all.empty()) return Bad(where + "/allOf", "must be a non-empty list");
    Json merged = schema;
    merged.erase("allOf");
    for (size_t i = 0; i < all.size(); ++i) {
      const Json* part = &all[i];
      for (int hops = 0; part->is_object() && part->contains("$ref"); ++hops) {
        const Json& ref = (*part)["$ref"];
        if (hops > 16 || !ref.is_string()) return Bad(where + "/allOf", "$ref must be a string, in a chain of at most 16");
        EDGELLM_ASSIGN_OR_RETURN(part, Resolve(ref.get<std::string>(), where + "/allOf"));
      }
      if (!part->is_object()) return Bad(edgellm::StrCat(where, "/allOf/", i), "must be an object schema");
      for (const auto& [key, value] : part->items()) {
        if (key == "properties") {
          for (const auto& [name, property] : value.items()) merged["properties"][name] = property;
        } else if (key == "required") {
          for (const Json& name : value) merged["required"].push_back(name);
        } else if (key == "additionalProperties" && merged.contains(key)) {
          if (value == false) merged[key] = false;
        } else if (key == "type" && merged.contains("type") && merged["type"] != value) {
          return Bad(edgellm::StrCat(where, "/allOf/", i), "types that differ cannot be combined");
        } else if (key != "title" && key != "description") {
          if (merged.contains(key) && merged[key] != value && key != "type") {
            return Bad(edgellm::StrCat(where, "/allOf/", i), edgellm::StrCat("'", key, "' is combined only when equal"));
          }
          merged[key] = value;
        }
      }
    }
    return Visit(merged, where, depth + 1);
  }

  absl::StatusOr<std::string> OfType(const std::string& type, const Json& schema, const std::string& where,
                                     int depth) {
    if (type == "object") return Object(schema, where, depth);
    if (type == "array") return Array(schema, where, depth);
    if (type == "string") return String(schema, where);
    if (type == "integer" || type == "number") return Number(schema, where, type == "integer");
    if (type == "boolean") return Use("json-boolean");
    if (type == "null") return Use("json-null");
    return Bad(where + "/type", edgellm::StrCat("'", type.substr(0, 32), "' is not a JSON Schema type"));
  }

  // A JSON string that is none of `names` (a key beside the declared properties).
  absl::StatusOr<std::string> KeyOtherThan(const std::vector<std::string>& names, const std::string& where) {
    // A trie of the names' JSON-escaped contents, one rule per node.
    struct TrieNode {
      std::map<unsigned char, size_t> next;
      bool end = false;
    };
    std::vector<TrieNode> trie(1);
    for (const std::string& name : names) {
      const std::string escaped = Json(name).dump();
      size_t n = 0;
      for (size_t i = 1; i + 1 < escaped.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(escaped[i]);
        auto it = trie[n].next.find(c);
        if (it == trie[n].next.end()) {
          trie.push_back({});
          it = trie[n].next.emplace(c, trie.size() - 1).first;
        }
        n = it->second;
      }
      trie[n].end = true;
    }
    Use("json-char");
    const std::string rest = "json-char* \"\\\"\"";
    std::vector<std::string> names_of(trie.size());
    for (size_t n = trie.size(); n-- > 0;) {
      std::vector<std::string> alternatives;
      if (!trie[n].end) alternatives.push_back("\"\\\"\"");
      // A character that leaves the trie: any but the next ones (bytes of a
      // multi-byte character leave it at their first byte's character).
      std::vector<CodepointRange> excluded = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}};
      for (const auto& [c, child] : trie[n].next) {
        if (c < 0x80) excluded.push_back({c, c});
      }
      const std::vector<CodepointRange> leave = Complement(excluded);
      if (!leave.empty()) alternatives.push_back(ClassOf(leave) + " " + rest);
      if (trie[n].next.count('\\') == 0) {
        alternatives.push_back(R"("\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) )" + rest);
      }
      for (const auto& [c, child] : trie[n].next) {
        alternatives.push_back(GbnfLiteral(std::string(1, static_cast<char>(c))) + " " + names_of[child]);
      }
      EDGELLM_ASSIGN_OR_RETURN(names_of[n], AddRule(where + "-key", Join(alternatives)));
    }
    return "\"\\\"\" " + names_of[0];
  }

  absl::StatusOr<std::string> Object(const Json& schema, const std::string& where, int depth) {
    std::vector<std::pair<std::string, const Json*>> properties;
    static const Json kAny = true;
    if (auto p = schema.find("properties"); p != schema.end()) {
      if (!p->is_object()) return Bad(where + "/properties", "must be an object");
      for (const auto& [name, property] : p->items()) properties.emplace_back(name, &property);
    }
    std::set<std::string> required;
    if (auto r = schema.find("required"); r != schema.end()) {
      if (!r->is_array()) return Bad(where + "/required", "must be a list of names");
      for (const Json& name : *r) {
        if (!name.is_string()) return Bad(where + "/required", "must be a list of names");
        required.insert(name.get<std::string>());
      }
    }
    for (const std::string& name : required) {
      const bool declared = std::any_of(properties.begin(), properties.end(), [&](const auto& p) { return p.first == name; });
      if (!declared) properties.emplace_back(name, &kAny);
    }
    // Extra keys: only when the schema asks for them (or declares no property).
    std::optional<std::string> extra_value;
    auto additional = schema.find("additionalProperties");
    if (additional == schema.end()) {
      if (properties.empty()) extra_value = Use("json-value");
    } else if (*additional != false) {
      EDGELLM_ASSIGN_OR_RETURN(extra_value, Visit(*additional, where + "/additionalProperties", depth + 1));
    }
    Use("ws");
    std::optional<std::string> extra_pair;
    if (extra_value) {
      std::vector<std::string> names;
      for (const auto& p : properties) names.push_back(p.first);
      std::string key;
      if (names.empty()) {
        key = Use("json-string");
      } else {
        EDGELLM_ASSIGN_OR_RETURN(key, KeyOtherThan(names, RuleName(where)));
      }
      EDGELLM_ASSIGN_OR_RETURN(extra_pair, AddRule(where + "-extra", key + " \":\" ws " + *extra_value));
    }
    std::vector<std::string> pairs;
    for (const auto& [name, property] : properties) {
      EDGELLM_ASSIGN_OR_RETURN(std::string value, Visit(*property, where + "/properties/" + name, depth + 1));
      EDGELLM_ASSIGN_OR_RETURN(pairs.emplace_back(),
                               AddRule(where + "-" + name, GbnfLiteral(Json(name).dump()) + " \":\" ws " + value));
    }
    // after[i]: properties i.. once something is written (each with its comma).
    const size_t n = properties.size();
    std::vector<std::string> after(n + 1);
    after[n] = extra_pair ? "(\",\" ws " + *extra_pair + ")*" : "";
    for (size_t i = n; i-- > 0;) {
      const std::string item = "\",\" ws " + pairs[i];
      const std::string self = required.count(properties[i].first) ? item : "(" + item + ")?";
      EDGELLM_ASSIGN_OR_RETURN(after[i], AddRule(where + "-after", after[i + 1].empty() ? self : self + " " + after[i + 1]));
    }
    // The first property written: any up to the first required one.
    std::vector<std::string> first;
    bool all_optional = true;
    for (size_t i = 0; i < n; ++i) {
      first.push_back(pairs[i] + " " + after[i + 1]);
      if (required.count(properties[i].first)) {
        all_optional = false;
        break;
      }
    }
    if (all_optional && extra_pair) first.push_back(*extra_pair + " " + after[n]);
    std::string body = "\"{\" ws ";
    if (!first.empty()) body += all_optional ? "(" + Join(first) + ")? " : Join(first) + " ";
    body += "ws \"}\"";
    return AddRule(where + "-object", body);
  }

  // A count's bounds (minItems/maxItems, minLength/maxLength): 0 and none when absent.
  absl::StatusOr<std::pair<uint64_t, std::optional<uint64_t>>> Counts(const Json& schema, const char* min_key,
                                                                     const char* max_key, const std::string& where) {
    std::pair<uint64_t, std::optional<uint64_t>> out{0, std::nullopt};
    for (const char* keyword : {min_key, max_key}) {
      auto v = schema.find(keyword);
      if (v == schema.end()) continue;
      if (!v->is_number_integer() || v->get<int64_t>() < 0 || v->get<int64_t>() > 10000) {
        return Bad(where + "/" + keyword, "must be a whole number up to 10000");
      }
      (keyword == min_key ? out.first : out.second.emplace()) = v->get<uint64_t>();
    }
    if (out.second && *out.second < out.first) return Bad(where, edgellm::StrCat(max_key, " is below ", min_key));
    return out;
  }

  absl::StatusOr<std::string> Array(const Json& schema, const std::string& where, int depth) {
    EDGELLM_ASSIGN_OR_RETURN(const auto counts, Counts(schema, "minItems", "maxItems", where));
    const uint64_t min = counts.first;
    std::optional<uint64_t> max = counts.second;
    std::vector<std::string> prefix;
    if (auto p = schema.find("prefixItems"); p != schema.end()) {
      if (!p->is_array()) return Bad(where + "/prefixItems", "must be a list of schemas");
      for (size_t i = 0; i < p->size(); ++i) {
        EDGELLM_ASSIGN_OR_RETURN(prefix.emplace_back(),
                                 Visit((*p)[i], edgellm::StrCat(where, "/prefixItems/", i), depth + 1));
      }
    }
    std::optional<std::string> item = Use("json-value");
    if (auto items = schema.find("items"); items != schema.end()) {
      if (*items == false) {
        item.reset();
      } else {
        EDGELLM_ASSIGN_OR_RETURN(item, Visit(*items, where + "/items", depth + 1));
      }
    }
    const uint64_t k = prefix.size();
    if (!item) {
      if (min > k) return Bad(where, "minItems asks for more items than prefixItems allows");
      max = max ? std::min(*max, k) : k;
    }
    Use("ws");
    // tail(i): items i.. after i items, each with its comma.
    const auto tail_from = [&](uint64_t i) -> std::string {
      std::string out;
      std::string closing;
      for (uint64_t j = i; j < k && (!max || j < *max); ++j) {
        const std::string next = "\",\" ws " + prefix[j];
        if (j < min) {
          out += next + " ";
        } else {
          out += "(" + next + " ";
          closing += ")?";
        }
      }
      if (item && (!max || *max > k)) {
        const uint64_t done = std::max(i, k);
        const uint64_t least = min > done ? min - done : 0;
        out += "(\",\" ws " + *item + "){" + std::to_string(least) + "," + (max ? std::to_string(*max - done) : "") + "} ";
      }
      return out + closing;
    };
    std::string body = "\"[\" ws ";
    if (!max || *max > 0) {
      const std::string head = k > 0 ? prefix[0] : *item;
      const std::string items = head + " " + tail_from(1);
      body += min > 0 ? items : "(" + items + ")? ";
    }
    body += "ws \"]\"";
    return AddRule(where + "-array", body);
  }

  absl::StatusOr<std::string> String(const Json& schema, const std::string& where) {
    if (auto pattern = schema.find("pattern"); pattern != schema.end()) {
      if (!pattern->is_string()) return Bad(where + "/pattern", "must be a string");
      if (schema.contains("minLength") || schema.contains("maxLength") || schema.contains("format")) {
        return Bad(where, "pattern together with minLength, maxLength or format is not supported");
      }
      const std::string text = pattern->get<std::string>();
      if (text.size() > limits_.max_pattern_bytes) {
        return absl::ResourceExhaustedError(edgellm::StrCat("json_schema ", where, "/pattern: ", text.size(),
                                                            " bytes; at most ", limits_.max_pattern_bytes));
      }
      EDGELLM_ASSIGN_OR_RETURN(std::string body, RegexConverter(text, "json_schema " + where + "/pattern").Convert());
      return AddRule(where + "-pattern", "\"\\\"\" " + body + " \"\\\"\"");
    }
    if (auto format = schema.find("format"); format != schema.end()) {
      if (!format->is_string()) return Bad(where + "/format", "must be a string");
      const std::string name = format->get<std::string>();
      if (name != "date" && name != "time" && name != "date-time" && name != "uuid" && name != "ipv4") {
        return Bad(where + "/format", edgellm::StrCat("'", name.substr(0, 32),
                                                      "' is not supported (date, time, date-time, uuid, ipv4 are)"));
      }
      if (schema.contains("minLength") || schema.contains("maxLength")) {
        return Bad(where, "format together with minLength or maxLength is not supported");
      }
      return "\"\\\"\" " + Use(name) + " \"\\\"\"";
    }
    EDGELLM_ASSIGN_OR_RETURN(const auto counts, Counts(schema, "minLength", "maxLength", where));
    const uint64_t min = counts.first;
    const std::optional<uint64_t> max = counts.second;
    if (min == 0 && !max) return Use("json-string");
    Use("json-char");
    return edgellm::StrCat("\"\\\"\" json-char{", min, ",", max ? std::to_string(*max) : "", "} \"\\\"\"");
  }

  // A bound: its value and whether it is exclusive; nullopt when absent.
  absl::StatusOr<std::optional<std::pair<double, bool>>> Bound(const Json& schema, const char* inclusive,
                                                               const char* exclusive, const std::string& where) {
    std::optional<std::pair<double, bool>> bound;
    if (auto v = schema.find(inclusive); v != schema.end()) {
      if (!v->is_number()) return Bad(where + "/" + inclusive, "must be a number");
      bound = {{v->get<double>(), false}};
    }
    if (auto v = schema.find(exclusive); v != schema.end()) {
      if (v->is_boolean()) {  // draft 4: a flag on the inclusive bound
        if (bound && v->get<bool>()) bound->second = true;
      } else if (v->is_number()) {
        const double x = v->get<double>();
        const bool tighter = !bound || (std::string_view(inclusive) == "minimum" ? x >= bound->first : x <= bound->first);
        if (tighter) bound = {{x, true}};
      } else {
        return Bad(where + "/" + exclusive, "must be a number");
      }
    }
    if (bound && !(std::abs(bound->first) < 1e15)) return Bad(where, "a bound beyond 1e15 is not supported");
    return bound;
  }

  absl::StatusOr<std::string> Number(const Json& schema, const std::string& where, bool integer) {
    EDGELLM_ASSIGN_OR_RETURN(auto low, Bound(schema, "minimum", "exclusiveMinimum", where));
    EDGELLM_ASSIGN_OR_RETURN(auto high, Bound(schema, "maximum", "exclusiveMaximum", where));
    if (!low && !high) return Use(integer ? "json-int" : "json-number");
    if (!integer) {
      for (const auto& b : {low, high}) {
        if (b && b->first != std::floor(b->first)) {
          return Bad(where, "a number's bounds must be whole numbers (use type integer, or scale the value)");
        }
      }
    }
    // The whole numbers in range.
    std::optional<int64_t> lo, hi;
    if (low) lo = static_cast<int64_t>(low->second ? std::floor(low->first) + 1 : std::ceil(low->first));
    if (high) hi = static_cast<int64_t>(high->second ? std::ceil(high->first) - 1 : std::floor(high->first));
    std::vector<std::string> alternatives;
    if (std::string whole = IntegerRange(lo, hi); !whole.empty()) alternatives.push_back(whole);
    if (!integer) {
      // Fractions k.f of k >= 0 stay in range for k in [max(a, 0), b - 1];
      // -k.f of k >= 1 for k in [max(1, -b), -a - 1]; -0.f when a <= -1 and b >= 0.
      const std::optional<int64_t> a = low ? std::optional<int64_t>(static_cast<int64_t>(low->first)) : std::nullopt;
      const std::optional<int64_t> b = high ? std::optional<int64_t>(static_cast<int64_t>(high->first)) : std::nullopt;
      Use("json-fraction");
      std::optional<int64_t> pos_hi;
      if (b) pos_hi = *b - 1;
      const int64_t pos_lo = a ? std::max<int64_t>(*a, 0) : 0;
      if (std::string s = IntegerRange(pos_lo, pos_hi); !s.empty()) alternatives.push_back(s + " json-fraction");
      std::optional<int64_t> neg_hi;
      if (a) neg_hi = -*a - 1;
      const int64_t neg_lo = b ? std::max<int64_t>(1, -*b) : 1;
      if (std::string s = IntegerRange(neg_lo, neg_hi); !s.empty()) alternatives.push_back("\"-\" " + s + " json-fraction");
      if ((!a || *a <= -1) && (!b || *b >= 0)) alternatives.push_back("\"-0\" json-fraction");
    }
    if (alternatives.empty()) return Bad(where, "the bounds leave no value");
    return AddRule(where + (integer ? "-integer" : "-number"), Join(alternatives));
  }

  const Json& root_;
  const JsonSchemaLimits& limits_;
  const std::string name_;  // of the top rule, and the start of every rule made for this schema
  std::map<std::string, std::string> rules_;
  std::map<std::string, std::string> refs_;
  std::set<std::string> used_;
  std::map<std::string, int> suffixes_;  // the last number given to each rule name
  size_t size_ = 0;
};

}  // namespace

std::string GbnfLiteral(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      char buffer[8];
      std::snprintf(buffer, sizeof(buffer), "\\x%02X", c);
      out += buffer;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string JsonObjectGbnf() {
  std::string out = "root ::= json-object\n";
  for (const char* name : {"ws", "json-char", "json-string", "json-int", "json-fraction", "json-number",
                           "json-boolean", "json-null", "json-value", "json-object", "json-array"}) {
    out += edgellm::StrCat(name, " ::= ", Primitives().at(name), "\n");
  }
  return out;
}

absl::StatusOr<std::string> JsonSchemaToGbnf(const nlohmann::ordered_json& schema, const JsonSchemaLimits& limits,
                                             std::string_view rule_name) {
  EDGELLM_ASSIGN_OR_RETURN(std::string gbnf, SchemaConverter(schema, limits, rule_name).Convert());
  // A schema whose recursion has no way out gives a grammar that accepts nothing.
  const std::string checked = rule_name == "root" ? gbnf : edgellm::StrCat(gbnf, "root ::= ", rule_name, "\n");
  if (absl::StatusOr<GrammarRules> rules = ParseGbnf(checked); !rules.ok()) {
    if (rules.status().code() != absl::StatusCode::kInvalidArgument) return rules.status();
    return absl::InvalidArgumentError(edgellm::StrCat(
        "json_schema: no finite JSON value satisfies the schema (a $ref cycle without a base case?): ",
        rules.status().message()));
  }
  return gbnf;
}

}  // namespace edgellm::grammar
