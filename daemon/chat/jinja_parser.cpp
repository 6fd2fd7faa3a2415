#include "daemon/chat/jinja_parser.h"

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>

#include "common/status_macros.h"
#include "common/str_cat.h"

namespace edgellm::chat::jinja {
namespace {

struct Token {
  enum class Kind { kText, kExprOpen, kStmtOpen, kClose, kName, kInt, kFloat, kString, kOperator, kEnd };
  Kind kind;
  std::string text;
  int line;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view StripRight(std::string_view s) {
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}
std::string_view StripLeft(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  return s;
}

class Lexer {
 public:
  Lexer(std::string_view source, const ParseOptions& options) : src_(source), options_(options) {}

  absl::StatusOr<std::vector<Token>> Run() {
    bool strip_next = false;
    while (pos_ < src_.size()) {
      size_t open = src_.find('{', pos_);
      while (open != std::string_view::npos && open + 1 < src_.size() && src_[open + 1] != '{' &&
             src_[open + 1] != '%' && src_[open + 1] != '#') {
        open = src_.find('{', open + 1);
      }
      if (open == std::string_view::npos || open + 1 >= src_.size()) open = src_.size();
      std::string_view text = src_.substr(pos_, open - pos_);
      if (strip_next) text = StripLeft(text);
      const bool strip_before = open + 2 < src_.size() && src_[open + 2] == '-';
      const bool keep_before = open + 2 < src_.size() && src_[open + 2] == '+';
      if (strip_before) {
        text = StripRight(text);
      } else if (options_.lstrip_blocks && !keep_before && open < src_.size() && src_[open + 1] != '{') {
        // Spaces and tabs alone between the line's start and the tag go.
        size_t start = text.size();
        while (start > 0 && (text[start - 1] == ' ' || text[start - 1] == '\t')) --start;
        const bool at_line_start = start > 0 ? text[start - 1] == '\n' : (pos_ == 0 || src_[pos_ - 1] == '\n');
        if (at_line_start) text = text.substr(0, start);
      }
      Emit(Token::Kind::kText, std::string(text));
      line_ += Lines(src_.substr(pos_, open - pos_));
      pos_ = open;
      if (pos_ >= src_.size()) break;
      const char kind = src_[pos_ + 1];
      pos_ += strip_before || keep_before ? 3 : 2;
      if (kind == '#') {
        const size_t close = src_.find("#}", pos_);
        if (close == std::string_view::npos) return Error("a comment is not closed");
        strip_next = close > pos_ && src_[close - 1] == '-';
        line_ += Lines(src_.substr(pos_, close - pos_));
        pos_ = close + 2;
        if (!strip_next) TrimBlock();
        continue;
      }
      Emit(kind == '{' ? Token::Kind::kExprOpen : Token::Kind::kStmtOpen, "");
      absl::StatusOr<bool> stripped = LexTag(kind == '{' ? '}' : '%');
      if (!stripped.ok()) return stripped.status();
      strip_next = *stripped;
      if (!strip_next && kind == '%') TrimBlock();
    }
    Emit(Token::Kind::kEnd, "");
    return std::move(tokens_);
  }

 private:
  // trim_blocks: the newline right after a block or comment tag goes.
  void TrimBlock() {
    if (!options_.trim_blocks) return;
    if (src_.substr(pos_, 2) == "\r\n") {
      pos_ += 2;
      ++line_;
    } else if (pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
      ++line_;
    }
  }

  static int Lines(std::string_view s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

  absl::Status Error(std::string_view what) const { return absl::InvalidArgumentError(edgellm::StrCat("line ", line_, ": ", what)); }

  void Emit(Token::Kind kind, std::string text) { tokens_.push_back({kind, std::move(text), line_}); }

  // Lexes a tag's inside up to its close ("}}" or "%}"); true when the close strips what follows.
  absl::StatusOr<bool> LexTag(char closer) {
    int depth = 0;  // brackets open inside the tag, so a dict's "}}" does not close it
    while (true) {
      while (pos_ < src_.size() && IsSpace(src_[pos_])) {
        if (src_[pos_] == '\n') ++line_;
        ++pos_;
      }
      if (pos_ >= src_.size()) return Error("a tag is not closed");
      const std::string_view rest = src_.substr(pos_);
      if (depth == 0) {
        if (rest.size() >= 3 && rest[0] == '-' && rest[1] == closer && rest[2] == '}') {
          pos_ += 3;
          Emit(Token::Kind::kClose, "");
          return true;
        }
        if (rest.size() >= 2 && rest[0] == closer && rest[1] == '}') {
          pos_ += 2;
          Emit(Token::Kind::kClose, "");
          return false;
        }
      }
      const char c = rest[0];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t n = 1;
        while (n < rest.size() && (std::isalnum(static_cast<unsigned char>(rest[n])) || rest[n] == '_')) ++n;
        Emit(Token::Kind::kName, std::string(rest.substr(0, n)));
        pos_ += n;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t n = 0;
        bool is_float = false;
        while (n < rest.size() && (std::isdigit(static_cast<unsigned char>(rest[n])) || rest[n] == '_')) ++n;
        if (n + 1 < rest.size() && rest[n] == '.' && std::isdigit(static_cast<unsigned char>(rest[n + 1]))) {
          is_float = true;
          ++n;
          while (n < rest.size() && std::isdigit(static_cast<unsigned char>(rest[n]))) ++n;
        }
        if (n < rest.size() && (rest[n] == 'e' || rest[n] == 'E')) {
          size_t m = n + 1;
          if (m < rest.size() && (rest[m] == '+' || rest[m] == '-')) ++m;
          if (m < rest.size() && std::isdigit(static_cast<unsigned char>(rest[m]))) {
            is_float = true;
            n = m;
            while (n < rest.size() && std::isdigit(static_cast<unsigned char>(rest[n]))) ++n;
          }
        }
        std::string digits(rest.substr(0, n));
        digits.erase(std::remove(digits.begin(), digits.end(), '_'), digits.end());
        Emit(is_float ? Token::Kind::kFloat : Token::Kind::kInt, digits);
        pos_ += n;
      } else if (c == '\'' || c == '"') {
        absl::StatusOr<std::string> s = LexString(c);
        if (!s.ok()) return s.status();
        Emit(Token::Kind::kString, *std::move(s));
      } else {
        static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
        size_t n = 0;
        for (std::string_view op : kTwo) {
          if (rest.substr(0, 2) == op) n = 2;
        }
        if (n == 0) {
          if (std::string_view("+-*/%~<>=()[]{},.:|").find(c) == std::string_view::npos) {
            return Error(edgellm::StrCat("unexpected character '", std::string(1, c), "'"));
          }
          n = 1;
          if (c == '(' || c == '[' || c == '{') ++depth;
          if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
        }
        Emit(Token::Kind::kOperator, std::string(rest.substr(0, n)));
        pos_ += n;
      }
    }
  }

  // A quoted string with Python's escapes.
  absl::StatusOr<std::string> LexString(char quote) {
    std::string out;
    ++pos_;
    while (pos_ < src_.size() && src_[pos_] != quote) {
      char c = src_[pos_++];
      if (c == '\n') ++line_;
      if (c != '\\' || pos_ >= src_.size()) {
        out += c;
        continue;
      }
      const char e = src_[pos_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '0': out += '\0'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': ++line_; break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (pos_ + digits > src_.size()) return Error("a truncated escape in a string");
          uint32_t code = 0;
          const auto [ptr, ec] = std::from_chars(src_.data() + pos_, src_.data() + pos_ + digits, code, 16);
          if (ec != std::errc() || ptr != src_.data() + pos_ + digits) return Error("a bad escape in a string");
          pos_ += digits;
          AppendUtf8(code, &out);
          break;
        }
        default:
          out += '\\';
          out += e;
      }
    }
    if (pos_ >= src_.size()) return Error("a string is not closed");
    ++pos_;
    return out;
  }

  static void AppendUtf8(uint32_t code, std::string* out) {
    if (code < 0x80) {
      *out += static_cast<char>(code);
    } else if (code < 0x800) {
      *out += static_cast<char>(0xc0 | (code >> 6));
      *out += static_cast<char>(0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      *out += static_cast<char>(0xe0 | (code >> 12));
      *out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (code & 0x3f));
    } else {
      *out += static_cast<char>(0xf0 | (code >> 18));
      *out += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
      *out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (code & 0x3f));
    }
  }

  std::string_view src_;
  ParseOptions options_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  absl::StatusOr<std::vector<Node>> Run() {
    std::string end;
    absl::StatusOr<std::vector<Node>> body = ParseBody({}, &end);
    if (!body.ok()) return body.status();
    return body;
  }

 private:
  using ExprPtr = std::unique_ptr<Expr>;

  const Token& Peek(size_t ahead = 0) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  const Token& Next() { return tokens_[std::min(pos_++, tokens_.size() - 1)]; }
  bool IsOp(std::string_view op, size_t ahead = 0) const {
    return Peek(ahead).kind == Token::Kind::kOperator && Peek(ahead).text == op;
  }
  bool IsName(std::string_view name, size_t ahead = 0) const {
    return Peek(ahead).kind == Token::Kind::kName && Peek(ahead).text == name;
  }
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(edgellm::StrCat("line ", Peek().line, ": ", what));
  }
  absl::Status Expect(std::string_view op) {
    if (!IsOp(op)) return Error(edgellm::StrCat("expected '", op, "', found '", Peek().text, "'"));
    ++pos_;
    return absl::OkStatus();
  }
  absl::Status ExpectClose() {
    if (Peek().kind != Token::Kind::kClose) return Error(edgellm::StrCat("expected the end of the tag, found '", Peek().text, "'"));
    ++pos_;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ExpectName() {
    if (Peek().kind != Token::Kind::kName) return Error(edgellm::StrCat("expected a name, found '", Peek().text, "'"));
    return Next().text;
  }

  // Statements up to one of `ends` (a statement tag naming it, consumed
  // with its name, left in *end); the whole template when `ends` is empty.
  absl::StatusOr<std::vector<Node>> ParseBody(const std::set<std::string>& ends, std::string* end) {
    std::vector<Node> body;
    while (true) {
      const Token& t = Peek();
      if (t.kind == Token::Kind::kEnd) {
        if (!ends.empty()) return Error(edgellm::StrCat("the template ends inside a block (expected ", *ends.begin(), ")"));
        return body;
      }
      if (t.kind == Token::Kind::kText) {
        Node node;
        node.kind = Node::Kind::kText;
        node.line = t.line;
        node.text = Next().text;
        if (!node.text.empty()) body.push_back(std::move(node));
        continue;
      }
      if (t.kind == Token::Kind::kExprOpen) {
        ++pos_;
        Node node;
        node.kind = Node::Kind::kOutput;
        node.line = t.line;
        absl::StatusOr<ExprPtr> e = ParseExpression();
        if (!e.ok()) return e.status();
        node.expr = *std::move(e);
        EDGELLM_RETURN_IF_ERROR(ExpectClose());
        body.push_back(std::move(node));
        continue;
      }
      if (t.kind != Token::Kind::kStmtOpen) return Error(edgellm::StrCat("unexpected '", t.text, "'"));
      ++pos_;
      absl::StatusOr<std::string> keyword = ExpectName();
      if (!keyword.ok()) return keyword.status();
      if (ends.count(*keyword) > 0) {
        *end = *keyword;
        return body;
      }
      absl::StatusOr<Node> node = ParseStatement(*keyword, t.line);
      if (!node.ok()) return node.status();
      body.push_back(*std::move(node));
    }
  }

  // Ends the tag just parsed and appends the block that follows it, up to
  // the first of `ends` (which goes to *end), to node.bodies.
  absl::Status ParseBlockInto(Node& node, const std::set<std::string>& ends, std::string* end) {
    EDGELLM_RETURN_IF_ERROR(ExpectClose());
    EDGELLM_ASSIGN_OR_RETURN(std::vector<Node> body, ParseBody(ends, end));
    node.bodies.push_back(std::move(body));
    return absl::OkStatus();
  }

  absl::StatusOr<Node> ParseStatement(const std::string& keyword, int line) {
    const DepthGuard guard(&block_depth_);
    if (guard.too_deep()) return Error("blocks nest too deep");
    Node node;
    node.line = line;
    std::string end;
    if (keyword == "if") {
      node.kind = Node::Kind::kIf;
      do {
        EDGELLM_ASSIGN_OR_RETURN(ExprPtr condition, ParseExpression());
        node.conditions.push_back(std::move(condition));
        EDGELLM_RETURN_IF_ERROR(ParseBlockInto(node, {"elif", "else", "endif"}, &end));
      } while (end == "elif");
      if (end == "else") EDGELLM_RETURN_IF_ERROR(ParseBlockInto(node, {"endif"}, &end));
    } else if (keyword == "for") {
      node.kind = Node::Kind::kFor;
      do {
        EDGELLM_ASSIGN_OR_RETURN(std::string target, ExpectName());
        node.targets.push_back(std::move(target));
      } while (IsOp(",") && (++pos_, true));
      if (!IsName("in")) return Error("expected 'in' in a for loop");
      ++pos_;
      EDGELLM_ASSIGN_OR_RETURN(node.expr, ParseOr());
      if (IsName("if")) {
        ++pos_;
        EDGELLM_ASSIGN_OR_RETURN(ExprPtr filter, ParseOr());
        node.conditions.push_back(std::move(filter));
      }
      if (IsName("recursive")) return Error("recursive loops are not supported");
      EDGELLM_RETURN_IF_ERROR(ParseBlockInto(node, {"else", "endfor"}, &end));
      if (end == "else") EDGELLM_RETURN_IF_ERROR(ParseBlockInto(node, {"endfor"}, &end));
    } else if (keyword == "set") {
      node.kind = Node::Kind::kSet;
      do {
        EDGELLM_ASSIGN_OR_RETURN(std::string name, ExpectName());
        if (IsOp(".")) {
          ++pos_;
          EDGELLM_ASSIGN_OR_RETURN(std::string attribute, ExpectName());
          name += "." + attribute;
        }
        node.targets.push_back(std::move(name));
      } while (IsOp(",") && (++pos_, true));
      if (IsOp("=")) {
        ++pos_;
        EDGELLM_ASSIGN_OR_RETURN(node.expr, ParseTupleOrExpression());
      } else {
        if (node.targets.size() != 1) return Error("a block set assigns one name");
        EDGELLM_RETURN_IF_ERROR(ParseBlockInto(node, {"endset"}, &end));
      }
    } else if (keyword == "macro") {
      node.kind = Node::Kind::kMacro;
      EDGELLM_ASSIGN_OR_RETURN(node.text, ExpectName());
      EDGELLM_RETURN_IF_ERROR(Expect("("));
      while (!IsOp(")")) {
        EDGELLM_ASSIGN_OR_RETURN(std::string param, ExpectName());
        node.targets.push_back(std::move(param));
        ExprPtr default_value;
        if (IsOp("=")) {
          ++pos_;
          EDGELLM_ASSIGN_OR_RETURN(default_value, ParseExpression());
        }
        node.conditions.push_back(std::move(default_value));
        if (!IsOp(",")) break;
        ++pos_;
      }
      EDGELLM_RETURN_IF_ERROR(Expect(")"));
      EDGELLM_RETURN_IF_ERROR(ParseBlockInto(node, {"endmacro"}, &end));
    } else if (keyword == "filter") {
      node.kind = Node::Kind::kFilterBlock;
      EDGELLM_ASSIGN_OR_RETURN(node.expr, ParseFilter(nullptr));
      EDGELLM_RETURN_IF_ERROR(ParseBlockInto(node, {"endfilter"}, &end));
    } else if (keyword == "break" || keyword == "continue") {
      node.kind = keyword == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
    } else {
      return Error(edgellm::StrCat("the statement '", keyword, "' is not supported"));
    }
    // The end tag's own close (or the statement's, for one without a block).
    EDGELLM_RETURN_IF_ERROR(ExpectClose());
    return node;
  }

  // Expressions separated by commas (a trailing one allowed) up to `close`,
  // which is left for the caller.
  absl::Status ParseItems(std::string_view close, std::vector<ExprPtr>* items) {
    while (!IsOp(close)) {
      EDGELLM_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression());
      items->push_back(std::move(item));
      if (!IsOp(",")) break;
      ++pos_;
    }
    return absl::OkStatus();
  }

  static ExprPtr Make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // `a, b` without brackets as a list (the right side of a set).
  absl::StatusOr<ExprPtr> ParseTupleOrExpression() {
    const int line = Peek().line;
    absl::StatusOr<ExprPtr> first = ParseExpression();
    if (!first.ok() || !IsOp(",")) return first;
    ExprPtr tuple = Make(Expr::Kind::kList, line);
    tuple->name = "tuple";
    tuple->args.push_back(*std::move(first));
    while (IsOp(",")) {
      ++pos_;
      absl::StatusOr<ExprPtr> item = ParseExpression();
      if (!item.ok()) return item.status();
      tuple->args.push_back(*std::move(item));
    }
    return tuple;
  }

  absl::StatusOr<ExprPtr> ParseExpression() {
    const DepthGuard guard(&depth_);
    if (guard.too_deep()) return Error("an expression nests too deep");
    const int line = Peek().line;
    absl::StatusOr<ExprPtr> value = ParseOr();
    if (!value.ok() || !IsName("if")) return value;
    ++pos_;
    absl::StatusOr<ExprPtr> condition = ParseOr();
    if (!condition.ok()) return condition.status();
    ExprPtr e = Make(Expr::Kind::kConditional, line);
    e->args.push_back(*std::move(condition));
    e->args.push_back(*std::move(value));
    if (IsName("else")) {
      ++pos_;
      absl::StatusOr<ExprPtr> otherwise = ParseExpression();
      if (!otherwise.ok()) return otherwise.status();
      e->args.push_back(*std::move(otherwise));
    } else {
      e->args.push_back(nullptr);
    }
    return e;
  }

  absl::StatusOr<ExprPtr> Binary(std::string op, ExprPtr left, ExprPtr right, int line) {
    ExprPtr e = Make(Expr::Kind::kBinary, line);
    e->name = std::move(op);
    e->args.push_back(std::move(left));
    e->args.push_back(std::move(right));
    return e;
  }

  // The operator at the cursor if it is one of `ops` (symbols or keywords), consumed.
  std::optional<std::string> TakeOperator(std::initializer_list<std::string_view> ops) {
    for (std::string_view op : ops) {
      if (op == "not in") {
        if (IsName("not") && IsName("in", 1)) {
          pos_ += 2;
          return std::string(op);
        }
      } else if (IsOp(op) || IsName(op)) {
        ++pos_;
        return std::string(op);
      }
    }
    return std::nullopt;
  }

  // One precedence level of left-associative binary operators over the next level.
  absl::StatusOr<ExprPtr> ParseLevel(absl::StatusOr<ExprPtr> (Parser::*next)(),
                                     std::initializer_list<std::string_view> ops) {
    absl::StatusOr<ExprPtr> left = (this->*next)();
    while (left.ok()) {
      const int line = Peek().line;
      const std::optional<std::string> op = TakeOperator(ops);
      if (!op) break;
      absl::StatusOr<ExprPtr> right = (this->*next)();
      if (!right.ok()) return right.status();
      left = Binary(*op, *std::move(left), *std::move(right), line);
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseOr() { return ParseLevel(&Parser::ParseAnd, {"or"}); }
  absl::StatusOr<ExprPtr> ParseAnd() { return ParseLevel(&Parser::ParseNot, {"and"}); }
  absl::StatusOr<ExprPtr> ParseNot() {
    const DepthGuard guard(&depth_);
    if (guard.too_deep()) return Error("an expression nests too deep");
    if (IsName("not")) {
      const int line = Next().line;
      absl::StatusOr<ExprPtr> operand = ParseNot();
      if (!operand.ok()) return operand.status();
      ExprPtr e = Make(Expr::Kind::kNot, line);
      e->args.push_back(*std::move(operand));
      return e;
    }
    return ParseCompare();
  }

  absl::StatusOr<ExprPtr> ParseCompare() {
    return ParseLevel(&Parser::ParseMath1, {"==", "!=", "<=", ">=", "<", ">", "in", "not in"});
  }
  absl::StatusOr<ExprPtr> ParseMath1() { return ParseLevel(&Parser::ParseConcat, {"+", "-"}); }
  absl::StatusOr<ExprPtr> ParseConcat() { return ParseLevel(&Parser::ParseMath2, {"~"}); }
  absl::StatusOr<ExprPtr> ParseMath2() { return ParseLevel(&Parser::ParsePow, {"*", "/", "//", "%"}); }
  absl::StatusOr<ExprPtr> ParsePow() { return ParseLevel(&Parser::ParseOperand, {"**"}); }
  absl::StatusOr<ExprPtr> ParseOperand() { return ParseUnary(true); }

  absl::StatusOr<ExprPtr> ParseUnary(bool with_filters) {
    const DepthGuard guard(&depth_);
    if (guard.too_deep()) return Error("an expression nests too deep");
    absl::StatusOr<ExprPtr> node;
    if (IsOp("-") || IsOp("+")) {
      const Token& op = Next();
      absl::StatusOr<ExprPtr> operand = ParseUnary(false);
      if (!operand.ok()) return operand.status();
      if (op.text == "+") {
        node = *std::move(operand);
      } else {
        ExprPtr e = Make(Expr::Kind::kNegate, op.line);
        e->args.push_back(*std::move(operand));
        node = std::move(e);
      }
    } else {
      node = ParsePrimary();
      if (node.ok()) node = ParsePostfix(*std::move(node));
    }
    if (!node.ok() || !with_filters) return node;
    return ParseFiltersAndTests(*std::move(node));
  }

  absl::StatusOr<ExprPtr> ParsePrimary() {
    const Token& t = Peek();
    switch (t.kind) {
      case Token::Kind::kName: {
        ++pos_;
        if (t.text == "true" || t.text == "True") return Literal(Value::Bool(true), t.line);
        if (t.text == "false" || t.text == "False") return Literal(Value::Bool(false), t.line);
        if (t.text == "none" || t.text == "None") return Literal(Value::None(), t.line);
        ExprPtr e = Make(Expr::Kind::kName, t.line);
        e->name = t.text;
        return e;
      }
      case Token::Kind::kString: {
        std::string s = Next().text;
        while (Peek().kind == Token::Kind::kString) s += Next().text;  // adjacent literals join
        return Literal(Value::String(std::move(s)), t.line);
      }
      case Token::Kind::kInt: {
        ++pos_;
        int64_t v = 0;
        const auto [ptr, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
        if (ec != std::errc()) return Error(edgellm::StrCat("the integer ", t.text, " is out of range"));
        return Literal(Value::Int(v), t.line);
      }
      case Token::Kind::kFloat: {
        ++pos_;
        return Literal(Value::Float(std::strtod(t.text.c_str(), nullptr)), t.line);  // 1e999 is inf, as in Python
      }
      case Token::Kind::kOperator:
        if (t.text == "(") {
          ++pos_;
          if (IsOp(")")) {
            ++pos_;
            ExprPtr empty = Make(Expr::Kind::kList, t.line);
            empty->name = "tuple";
            return empty;
          }
          absl::StatusOr<ExprPtr> inner = ParseExpression();
          if (!inner.ok()) return inner.status();
          if (IsOp(",")) {
            ++pos_;
            ExprPtr tuple = Make(Expr::Kind::kList, t.line);
            tuple->name = "tuple";
            tuple->args.push_back(*std::move(inner));
            EDGELLM_RETURN_IF_ERROR(ParseItems(")", &tuple->args));
            inner = std::move(tuple);
          }
          EDGELLM_RETURN_IF_ERROR(Expect(")"));
          return inner;
        }
        if (t.text == "[") {
          ++pos_;
          ExprPtr list = Make(Expr::Kind::kList, t.line);
          EDGELLM_RETURN_IF_ERROR(ParseItems("]", &list->args));
          EDGELLM_RETURN_IF_ERROR(Expect("]"));
          return list;
        }
        if (t.text == "{") {
          ++pos_;
          ExprPtr dict = Make(Expr::Kind::kDict, t.line);
          while (!IsOp("}")) {
            absl::StatusOr<ExprPtr> key = ParseExpression();
            if (!key.ok()) return key.status();
            EDGELLM_RETURN_IF_ERROR(Expect(":"));
            absl::StatusOr<ExprPtr> value = ParseExpression();
            if (!value.ok()) return value.status();
            dict->args.push_back(*std::move(key));
            dict->args.push_back(*std::move(value));
            if (!IsOp(",")) break;
            ++pos_;
          }
          EDGELLM_RETURN_IF_ERROR(Expect("}"));
          return dict;
        }
        break;
      default:
        break;
    }
    return Error(edgellm::StrCat("unexpected '", t.text.empty() ? "end of tag" : t.text, "'"));
  }

  static ExprPtr Literal(Value v, int line) {
    ExprPtr e = Make(Expr::Kind::kLiteral, line);
    e->literal = std::move(v);
    return e;
  }

  // Arguments of a call, filter or test, after its "(": positional then keyword.
  absl::Status ParseCallArgs(Expr* e) {
    while (!IsOp(")")) {
      if (Peek().kind == Token::Kind::kName && IsOp("=", 1)) {
        std::string name = Next().text;
        ++pos_;
        absl::StatusOr<ExprPtr> value = ParseExpression();
        if (!value.ok()) return value.status();
        e->keyword_args.emplace_back(std::move(name), *std::move(value));
      } else {
        if (!e->keyword_args.empty()) return Error("a positional argument follows a keyword argument");
        absl::StatusOr<ExprPtr> value = ParseExpression();
        if (!value.ok()) return value.status();
        e->args.push_back(*std::move(value));
      }
      if (!IsOp(",")) break;
      ++pos_;
    }
    return Expect(")");
  }

  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr node) {
    while (true) {
      if (IsOp(".")) {
        const int line = Next().line;
        absl::StatusOr<std::string> name = ExpectName();
        if (!name.ok()) {
          if (Peek().kind != Token::Kind::kInt) return name.status();
          name = Next().text;  // foo.0
        }
        ExprPtr e = Make(Expr::Kind::kAttribute, line);
        e->name = *name;
        e->args.push_back(std::move(node));
        node = std::move(e);
      } else if (IsOp("[")) {
        const int line = Next().line;
        std::array<ExprPtr, 3> parts;
        int part = 0;
        bool slice = false;
        while (!IsOp("]")) {
          if (IsOp(":")) {
            ++pos_;
            slice = true;
            if (++part > 2) return Error("a slice has at most three parts");
            continue;
          }
          absl::StatusOr<ExprPtr> value = ParseExpression();
          if (!value.ok()) return value.status();
          parts[static_cast<size_t>(part)] = *std::move(value);
        }
        ++pos_;
        ExprPtr e = Make(slice ? Expr::Kind::kSlice : Expr::Kind::kIndex, line);
        e->args.push_back(std::move(node));
        if (slice) {
          for (ExprPtr& p : parts) e->args.push_back(std::move(p));
        } else {
          if (parts[0] == nullptr) return Error("an empty subscript");
          e->args.push_back(std::move(parts[0]));
        }
        node = std::move(e);
      } else if (IsOp("(")) {
        const int line = Next().line;
        ExprPtr e = Make(Expr::Kind::kCall, line);
        e->args.push_back(std::move(node));
        EDGELLM_RETURN_IF_ERROR(ParseCallArgs(e.get()));
        node = std::move(e);
      } else {
        return node;
      }
    }
  }

  // `| name` or `| name(args)` after "|" (or after "filter" in a filter block).
  absl::StatusOr<ExprPtr> ParseFilter(ExprPtr operand) {
    const int line = Peek().line;
    absl::StatusOr<std::string> name = ExpectName();
    if (!name.ok()) return name.status();
    std::string full = *name;
    while (IsOp(".")) {
      ++pos_;
      absl::StatusOr<std::string> part = ExpectName();
      if (!part.ok()) return part.status();
      full += "." + *part;
    }
    ExprPtr e = Make(Expr::Kind::kFilter, line);
    e->name = full;
    e->args.push_back(std::move(operand));
    if (IsOp("(")) {
      ++pos_;
      EDGELLM_RETURN_IF_ERROR(ParseCallArgs(e.get()));
    }
    return e;
  }

  absl::StatusOr<ExprPtr> ParseFiltersAndTests(ExprPtr node) {
    while (true) {
      if (IsOp("|")) {
        ++pos_;
        absl::StatusOr<ExprPtr> filtered = ParseFilter(std::move(node));
        if (!filtered.ok()) return filtered.status();
        node = *std::move(filtered);
      } else if (IsName("is")) {
        const int line = Next().line;
        ExprPtr e = Make(Expr::Kind::kTest, line);
        if (IsName("not")) {
          ++pos_;
          e->negated = true;
        }
        absl::StatusOr<std::string> name = ExpectName();
        if (!name.ok()) {
          // `is none` and `is true` lex as names; `is ==` style tests are not supported.
          return name.status();
        }
        e->name = *name;
        e->args.push_back(std::move(node));
        if (IsOp("(")) {
          ++pos_;
          EDGELLM_RETURN_IF_ERROR(ParseCallArgs(e.get()));
        } else if (StartsTestArgument()) {
          absl::StatusOr<ExprPtr> argument = ParseUnary(false);
          if (!argument.ok()) return argument.status();
          e->args.push_back(*std::move(argument));
        }
        node = std::move(e);
      } else if (IsOp("(")) {
        const int line = Next().line;
        ExprPtr e = Make(Expr::Kind::kCall, line);
        e->args.push_back(std::move(node));
        EDGELLM_RETURN_IF_ERROR(ParseCallArgs(e.get()));
        node = std::move(e);
      } else {
        return node;
      }
    }
  }

  // Whether a test's single argument follows without brackets (`is divisibleby 3`).
  bool StartsTestArgument() const {
    const Token& t = Peek();
    static const std::set<std::string> kStops = {"else", "or", "and", "is", "in", "if", "not", "for"};
    switch (t.kind) {
      case Token::Kind::kName:
        return kStops.count(t.text) == 0;
      case Token::Kind::kString:
      case Token::Kind::kInt:
      case Token::Kind::kFloat:
        return true;
      case Token::Kind::kOperator:
        return t.text == "[" || t.text == "{" || t.text == "-";
      default:
        return false;
    }
  }

  // Nesting deeper than this is refused: the parser recurses once per level.
  static constexpr int kMaxDepth = 64;
  class DepthGuard {
   public:
    explicit DepthGuard(int* depth) : depth_(depth) { ++*depth_; }
    ~DepthGuard() { --*depth_; }
    bool too_deep() const { return *depth_ > kMaxDepth; }

   private:
    int* depth_;
  };

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;        // expressions
  int block_depth_ = 0;  // statements with bodies
};

}  // namespace

absl::StatusOr<std::vector<Node>> ParseTemplate(std::string_view source, const ParseOptions& options) {
  // Jinja drops one newline at the very end of a template (keep_trailing_newline off).
  if (!source.empty() && source.back() == '\n') {
    source.remove_suffix(1);
    if (!source.empty() && source.back() == '\r') source.remove_suffix(1);
  }
  absl::StatusOr<std::vector<Token>> tokens = Lexer(source, options).Run();
  if (!tokens.ok()) return tokens.status();
  return Parser(*std::move(tokens)).Run();
}

}  // namespace edgellm::chat::jinja
