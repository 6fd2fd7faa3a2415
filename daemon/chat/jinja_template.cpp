#include "daemon/chat/jinja_template.h"

#include <cmath>

#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/chat/jinja_builtins.h"
#include "daemon/chat/jinja_parser.h"

namespace edgellm::chat::jinja {
namespace {

// Output beyond this is refused: a template that loops without end.
constexpr size_t kMaxOutputBytes = 16 << 20;
constexpr size_t kMaxListItems = 1'000'000;
constexpr int kMaxCallDepth = 64;
// Statements and loop turns one rendering may take: a template that would
// loop for hours is refused instead.
constexpr int64_t kMaxSteps = 1'000'000;

class Renderer {
 public:
  explicit Renderer(const Value& variables) {
    Value::Dict globals = BuiltinGlobals();
    Value root = Value::NewDict(std::move(globals));
    if (variables.is_dict()) {
      for (const auto& [key, value] : variables.dict()) root.Set(key, value);
    }
    scopes_.push_back(root);
    scopes_.push_back(Value::NewDict());  // the template's own assignments
  }

  absl::Status RenderBody(const std::vector<Node>& body, std::string* out) {
    for (const Node& node : body) {
      EDGELLM_RETURN_IF_ERROR(RenderNode(node, out));
      if (control_ != Control::kNone) return absl::OkStatus();
      if (out->size() > kMaxOutputBytes) return Error(node.line, "the output passed 16 MiB");
    }
    return absl::OkStatus();
  }

 private:
  enum class Control { kNone, kBreak, kContinue };

  static absl::Status Error(int line, std::string_view what) {
    return absl::InvalidArgumentError(edgellm::StrCat("line ", line, ": ", what));
  }
  // A builtin's error, with the line of the expression that called it.
  static absl::Status AtLine(int line, const absl::Status& s) {
    if (s.ok() || s.message().substr(0, 5) == "line ") return s;
    return absl::Status(s.code(), edgellm::StrCat("line ", line, ": ", s.message()));
  }

  Value Lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      if (const Value* v = it->Find(name)) return *v;
    }
    return Value();
  }

  absl::Status Assign(const std::string& target, const Value& value, int line) {
    const size_t dot = target.find('.');
    if (dot == std::string::npos) {
      scopes_.back().Set(target, value);
      return absl::OkStatus();
    }
    const Value object = Lookup(target.substr(0, dot));
    if (!object.is_dict()) return Error(line, edgellm::StrCat("cannot set an attribute of '", target.substr(0, dot), "'"));
    object.Set(target.substr(dot + 1), value);
    return absl::OkStatus();
  }

  absl::Status RenderNode(const Node& node, std::string* out) {
    if (++steps_ > kMaxSteps) return Error(node.line, "the template runs too long");
    switch (node.kind) {
      case Node::Kind::kText:
        *out += node.text;
        return absl::OkStatus();
      case Node::Kind::kOutput: {
        absl::StatusOr<Value> v = Eval(*node.expr);
        if (!v.ok()) return v.status();
        *out += v->Str();
        return absl::OkStatus();
      }
      case Node::Kind::kIf:
        for (size_t i = 0; i < node.bodies.size(); ++i) {
          if (i < node.conditions.size()) {
            absl::StatusOr<Value> cond = Eval(*node.conditions[i]);
            if (!cond.ok()) return cond.status();
            if (!cond->Truthy()) continue;
          }
          return RenderBody(node.bodies[i], out);
        }
        return absl::OkStatus();
      case Node::Kind::kFor:
        return RenderFor(node, out);
      case Node::Kind::kSet: {
        Value value;
        if (node.expr != nullptr) {
          absl::StatusOr<Value> v = Eval(*node.expr);
          if (!v.ok()) return v.status();
          value = *std::move(v);
        } else {
          std::string captured;
          EDGELLM_RETURN_IF_ERROR(RenderBody(node.bodies[0], &captured));
          value = Value::String(std::move(captured));
        }
        if (node.targets.size() == 1) return Assign(node.targets[0], value, node.line);
        absl::StatusOr<Value::List> items = value.Items();
        if (!items.ok() || items->size() != node.targets.size()) {
          return Error(node.line, edgellm::StrCat("cannot unpack into ", node.targets.size(), " names"));
        }
        for (size_t i = 0; i < node.targets.size(); ++i) {
          EDGELLM_RETURN_IF_ERROR(Assign(node.targets[i], (*items)[i], node.line));
        }
        return absl::OkStatus();
      }
      case Node::Kind::kMacro:
        scopes_.back().Set(node.text, MakeMacro(node));
        return absl::OkStatus();
      case Node::Kind::kFilterBlock: {
        std::string captured;
        EDGELLM_RETURN_IF_ERROR(RenderBody(node.bodies[0], &captured));
        absl::StatusOr<Value> filtered = ApplyFilterExpr(*node.expr, Value::String(std::move(captured)));
        if (!filtered.ok()) return filtered.status();
        *out += filtered->Str();
        return absl::OkStatus();
      }
      case Node::Kind::kBreak:
      case Node::Kind::kContinue:
        if (loop_depth_ == 0) return Error(node.line, "break or continue outside a loop");
        control_ = node.kind == Node::Kind::kBreak ? Control::kBreak : Control::kContinue;
        return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  absl::Status RenderFor(const Node& node, std::string* out) {
    absl::StatusOr<Value> iterable = Eval(*node.expr);
    if (!iterable.ok()) return iterable.status();
    absl::StatusOr<Value::List> all = iterable->Items();
    if (!all.ok()) return AtLine(node.line, all.status());
    scopes_.push_back(Value::NewDict());
    const auto bind = [&](const Value& item) -> absl::Status {
      if (node.targets.size() == 1) {
        scopes_.back().Set(node.targets[0], item);
        return absl::OkStatus();
      }
      absl::StatusOr<Value::List> parts = item.Items();
      if (!parts.ok() || parts->size() != node.targets.size()) {
        return Error(node.line, edgellm::StrCat("cannot unpack into ", node.targets.size(), " names"));
      }
      for (size_t i = 0; i < node.targets.size(); ++i) scopes_.back().Set(node.targets[i], (*parts)[i]);
      return absl::OkStatus();
    };
    Value::List items;
    if (node.conditions.empty()) {
      items = *std::move(all);
    } else {
      for (const Value& item : *all) {
        EDGELLM_RETURN_IF_ERROR(bind(item));
        absl::StatusOr<Value> keep = Eval(*node.conditions[0]);
        if (!keep.ok()) return keep.status();
        if (keep->Truthy()) items.push_back(item);
      }
    }
    ++loop_depth_;
    const int64_t n = static_cast<int64_t>(items.size());
    absl::Status status;
    for (int64_t i = 0; i < n && status.ok(); ++i) {
      if (++steps_ > kMaxSteps) {
        status = Error(node.line, "the template runs too long");
        break;
      }
      if (status = bind(items[static_cast<size_t>(i)]); !status.ok()) break;
      Value loop = Value::NewDict({{"index", Value::Int(i + 1)},
                                   {"index0", Value::Int(i)},
                                   {"revindex", Value::Int(n - i)},
                                   {"revindex0", Value::Int(n - i - 1)},
                                   {"first", Value::Bool(i == 0)},
                                   {"last", Value::Bool(i == n - 1)},
                                   {"length", Value::Int(n)},
                                   {"depth", Value::Int(1)},
                                   {"depth0", Value::Int(0)}});
      if (i > 0) loop.Set("previtem", items[static_cast<size_t>(i - 1)]);
      if (i + 1 < n) loop.Set("nextitem", items[static_cast<size_t>(i + 1)]);
      loop.Set("cycle", Value::NewFunction([i](const CallArgs& args) -> absl::StatusOr<Value> {
        if (args.positional.empty()) return absl::InvalidArgumentError("loop.cycle needs values");
        return args.positional[static_cast<size_t>(i) % args.positional.size()];
      }));
      scopes_.back().Set("loop", loop);
      status = RenderBody(node.bodies[0], out);
      if (control_ == Control::kBreak) {
        control_ = Control::kNone;
        break;
      }
      control_ = Control::kNone;
    }
    --loop_depth_;
    scopes_.pop_back();
    if (!status.ok()) return status;
    if (n == 0 && node.bodies.size() > 1) return RenderBody(node.bodies[1], out);
    return absl::OkStatus();
  }

  Value MakeMacro(const Node& node) {
    return Value::NewFunction([this, &node](const CallArgs& args) -> absl::StatusOr<Value> {
      if (call_depth_ >= kMaxCallDepth) return Error(node.line, edgellm::StrCat("macro '", node.text, "' nests too deep"));
      Value frame = Value::NewDict();
      for (size_t i = 0; i < node.targets.size(); ++i) {
        if (const Value* given = args.Get(node.targets[i], i)) {
          frame.Set(node.targets[i], *given);
        } else if (node.conditions[i] != nullptr) {
          absl::StatusOr<Value> fallback = Eval(*node.conditions[i]);
          if (!fallback.ok()) return fallback.status();
          frame.Set(node.targets[i], *fallback);
        } else {
          frame.Set(node.targets[i], Value());
        }
      }
      std::vector<Value> saved = {frame};
      std::swap(saved, scopes_);
      scopes_.insert(scopes_.begin(), saved.begin(), saved.begin() + 2);  // globals and the template's names
      const int saved_loops = loop_depth_;
      loop_depth_ = 0;
      ++call_depth_;
      std::string out;
      absl::Status s = RenderBody(node.bodies[0], &out);
      --call_depth_;
      loop_depth_ = saved_loops;
      scopes_ = std::move(saved);
      if (!s.ok()) return s;
      return Value::String(std::move(out));
    });
  }

  absl::StatusOr<CallArgs> EvalArgs(const Expr& e, size_t first) {
    CallArgs args;
    for (size_t i = first; i < e.args.size(); ++i) {
      absl::StatusOr<Value> v = Eval(*e.args[i]);
      if (!v.ok()) return v.status();
      args.positional.push_back(*std::move(v));
    }
    for (const auto& [name, expr] : e.keyword_args) {
      absl::StatusOr<Value> v = Eval(*expr);
      if (!v.ok()) return v.status();
      args.keyword.emplace_back(name, *std::move(v));
    }
    return args;
  }

  absl::StatusOr<Value> ApplyFilterExpr(const Expr& e, const Value& operand) {
    absl::StatusOr<CallArgs> args = EvalArgs(e, 1);
    if (!args.ok()) return args.status();
    absl::StatusOr<Value> v = ApplyFilter(e.name, operand, *args);
    if (!v.ok()) return AtLine(e.line, v.status());
    return v;
  }

  // obj.name: a method, then a key (Python's getattr, then getitem).
  absl::StatusOr<Value> GetAttribute(const Value& object, const std::string& name, int line) {
    if (object.is_undefined()) return Error(line, edgellm::StrCat("'", name, "' of an undefined value"));
    if (std::optional<Value> method = Method(object, name)) return *method;
    if (const Value* v = object.Find(name)) return *v;
    if (object.is_list() && !name.empty() && std::isdigit(static_cast<unsigned char>(name[0]))) {
      return Index(object, Value::Int(std::stoll(name)), line);
    }
    return Value();
  }

  absl::StatusOr<Value> Index(const Value& object, const Value& key, int line) {
    if (object.is_undefined()) return Error(line, "a subscript of an undefined value");
    if (object.is_dict()) {
      const Value* v = object.Find(key.Str());
      return v != nullptr ? *v : Value();
    }
    if ((object.is_list() || object.is_string()) && key.is_number()) {
      absl::StatusOr<Value::List> items = object.Items();
      if (!items.ok()) return items.status();
      int64_t i = key.int_value();
      if (i < 0) i += static_cast<int64_t>(items->size());
      if (i < 0 || i >= static_cast<int64_t>(items->size())) return Value();
      return (*items)[static_cast<size_t>(i)];
    }
    if (key.is_string()) return GetAttribute(object, key.string_value(), line);
    return Value();
  }

  absl::StatusOr<Value> Slice(const Expr& e) {
    absl::StatusOr<Value> object = Eval(*e.args[0]);
    if (!object.ok()) return object;
    if (!object->is_list() && !object->is_string()) return Error(e.line, "only lists and strings can be sliced");
    absl::StatusOr<Value::List> items = object->Items();
    const int64_t n = static_cast<int64_t>(items->size());
    int64_t bounds[3] = {0, 0, 1};
    bool given[3] = {false, false, false};
    for (int k = 0; k < 3; ++k) {
      if (e.args[static_cast<size_t>(k) + 1] == nullptr) continue;
      absl::StatusOr<Value> v = Eval(*e.args[static_cast<size_t>(k) + 1]);
      if (!v.ok()) return v;
      if (v->is_none()) continue;
      if (!v->is_number()) return Error(e.line, "slice bounds must be integers");
      bounds[k] = v->int_value();
      given[k] = true;
    }
    const int64_t step = bounds[2];
    if (step == 0) return Error(e.line, "a slice step of 0");
    const auto clamp = [&](int64_t i, int64_t low, int64_t high) {
      if (i < 0) i += n;
      return std::clamp<int64_t>(i, low, high);
    };
    int64_t start = given[0] ? clamp(bounds[0], step > 0 ? 0 : -1, step > 0 ? n : n - 1) : (step > 0 ? 0 : n - 1);
    int64_t stop = given[1] ? clamp(bounds[1], step > 0 ? 0 : -1, step > 0 ? n : n - 1) : (step > 0 ? n : -1);
    Value::List picked;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) picked.push_back((*items)[static_cast<size_t>(i)]);
    if (object->is_string()) {
      std::string s;
      for (const Value& c : picked) s += c.string_value();
      return Value::String(std::move(s));
    }
    return Value::NewList(std::move(picked));
  }

  // Every value an expression makes passes here: a string or list that
  // outgrows what a prompt can be (`set s = s ~ s` in a loop doubles it) is
  // refused before the next doubling.
  absl::StatusOr<Value> Eval(const Expr& e) {
    absl::StatusOr<Value> v = EvalUnbounded(e);
    if (v.ok() && ((v->is_string() && v->string_value().size() > kMaxOutputBytes) ||
                   (v->is_list() && v->list().size() > kMaxListItems))) {
      return Error(e.line, "a value passed 16 MiB or 1,000,000 items");
    }
    return v;
  }

  absl::StatusOr<Value> EvalUnbounded(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.literal;
      case Expr::Kind::kName:
        return Lookup(e.name);
      case Expr::Kind::kList: {
        Value::List items;
        for (const auto& arg : e.args) {
          absl::StatusOr<Value> v = Eval(*arg);
          if (!v.ok()) return v;
          items.push_back(*std::move(v));
        }
        return e.name == "tuple" ? Value::Tuple(std::move(items)) : Value::NewList(std::move(items));
      }
      case Expr::Kind::kDict: {
        Value dict = Value::NewDict();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          absl::StatusOr<Value> key = Eval(*e.args[i]);
          if (!key.ok()) return key;
          absl::StatusOr<Value> value = Eval(*e.args[i + 1]);
          if (!value.ok()) return value;
          dict.Set(key->Str(), *std::move(value));
        }
        return dict;
      }
      case Expr::Kind::kAttribute: {
        absl::StatusOr<Value> object = Eval(*e.args[0]);
        if (!object.ok()) return object;
        return GetAttribute(*object, e.name, e.line);
      }
      case Expr::Kind::kIndex: {
        absl::StatusOr<Value> object = Eval(*e.args[0]);
        if (!object.ok()) return object;
        absl::StatusOr<Value> key = Eval(*e.args[1]);
        if (!key.ok()) return key;
        return Index(*object, *key, e.line);
      }
      case Expr::Kind::kSlice:
        return Slice(e);
      case Expr::Kind::kCall: {
        absl::StatusOr<Value> callee = Eval(*e.args[0]);
        if (!callee.ok()) return callee;
        if (!callee->is_function()) {
          const std::string what = e.args[0]->kind == Expr::Kind::kName ? e.args[0]->name : e.args[0]->kind == Expr::Kind::kAttribute ? e.args[0]->name : "value";
          return Error(e.line, edgellm::StrCat("'", what, "' is not a function"));
        }
        absl::StatusOr<CallArgs> args = EvalArgs(e, 1);
        if (!args.ok()) return args.status();
        absl::StatusOr<Value> result = callee->function()(*args);
        if (!result.ok()) return AtLine(e.line, result.status());
        return result;
      }
      case Expr::Kind::kFilter: {
        absl::StatusOr<Value> operand = Eval(*e.args[0]);
        if (!operand.ok()) return operand;
        return ApplyFilterExpr(e, *operand);
      }
      case Expr::Kind::kTest: {
        absl::StatusOr<Value> operand = Eval(*e.args[0]);
        if (!operand.ok()) return operand;
        absl::StatusOr<CallArgs> args = EvalArgs(e, 1);
        if (!args.ok()) return args.status();
        absl::StatusOr<bool> result = ApplyTest(e.name, *operand, *args);
        if (!result.ok()) return AtLine(e.line, result.status());
        return Value::Bool(*result != e.negated);
      }
      case Expr::Kind::kNot: {
        absl::StatusOr<Value> operand = Eval(*e.args[0]);
        if (!operand.ok()) return operand;
        return Value::Bool(!operand->Truthy());
      }
      case Expr::Kind::kNegate: {
        absl::StatusOr<Value> operand = Eval(*e.args[0]);
        if (!operand.ok()) return operand;
        if (operand->kind() == Value::Kind::kFloat) return Value::Float(-operand->number());
        if (operand->is_number()) return Value::Int(-operand->int_value());
        return Error(e.line, "bad operand for unary -");
      }
      case Expr::Kind::kConditional: {
        absl::StatusOr<Value> cond = Eval(*e.args[0]);
        if (!cond.ok()) return cond;
        if (cond->Truthy()) return Eval(*e.args[1]);
        return e.args[2] != nullptr ? Eval(*e.args[2]) : absl::StatusOr<Value>(Value());
      }
      case Expr::Kind::kBinary:
        return EvalBinary(e);
    }
    return Value();
  }

  absl::StatusOr<Value> EvalBinary(const Expr& e) {
    absl::StatusOr<Value> left = Eval(*e.args[0]);
    if (!left.ok()) return left;
    if (e.name == "and") return left->Truthy() ? Eval(*e.args[1]) : left;
    if (e.name == "or") return left->Truthy() ? left : Eval(*e.args[1]);
    absl::StatusOr<Value> right = Eval(*e.args[1]);
    if (!right.ok()) return right;
    const Value& a = *left;
    const Value& b = *right;
    const std::string& op = e.name;
    if (op == "~") return Value::String(a.Str() + b.Str());
    if (op == "==") return Value::Bool(a.Equals(b));
    if (op == "!=") return Value::Bool(!a.Equals(b));
    if (op == "in" || op == "not in") {
      CallArgs args;
      args.positional.push_back(b);
      absl::StatusOr<bool> contained = ApplyTest("in", a, args);
      if (!contained.ok()) return AtLine(e.line, contained.status());
      return Value::Bool(*contained == (op == "in"));
    }
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      CallArgs args;
      args.positional.push_back(b);
      absl::StatusOr<bool> result = ApplyTest(op, a, args);
      if (!result.ok()) return AtLine(e.line, result.status());
      return Value::Bool(*result);
    }
    const auto type_error = [&] {
      return Error(e.line, edgellm::StrCat("unsupported operand types for ", op, ": ", a.Repr(), " and ", b.Repr()));
    };
    if (op == "+") {
      if (a.is_string() && b.is_string()) return Value::String(a.string_value() + b.string_value());
      if (a.is_list() && b.is_list()) {
        Value::List joined = a.list();
        joined.insert(joined.end(), b.list().begin(), b.list().end());
        return Value::NewList(std::move(joined));
      }
    }
    if (op == "*" && (a.is_string() || a.is_list()) && b.kind() == Value::Kind::kInt) {
      const size_t unit = a.is_string() ? a.string_value().size() : a.list().size();
      if (b.int_value() > 0 && unit > 0 && static_cast<uint64_t>(b.int_value()) > kMaxOutputBytes / unit) {
        return Error(e.line, "a repetition passed 16 MiB");
      }
      if (a.is_string()) {
        std::string out;
        for (int64_t i = 0; i < b.int_value(); ++i) out += a.string_value();
        return Value::String(out);
      }
      Value::List out;
      for (int64_t i = 0; i < b.int_value(); ++i) out.insert(out.end(), a.list().begin(), a.list().end());
      return Value::NewList(std::move(out));
    }
    if (!a.is_number() || !b.is_number()) return type_error();
    const bool floats = a.kind() == Value::Kind::kFloat || b.kind() == Value::Kind::kFloat;
    const double x = a.number(), y = b.number();
    const int64_t i = a.int_value(), j = b.int_value();
    int64_t exact = 0;
    if (op == "+") {
      if (floats) return Value::Float(x + y);
      if (__builtin_add_overflow(i, j, &exact)) return Error(e.line, "integer overflow in +");
      return Value::Int(exact);
    }
    if (op == "-") {
      if (floats) return Value::Float(x - y);
      if (__builtin_sub_overflow(i, j, &exact)) return Error(e.line, "integer overflow in -");
      return Value::Int(exact);
    }
    if (op == "*") {
      if (floats) return Value::Float(x * y);
      if (__builtin_mul_overflow(i, j, &exact)) return Error(e.line, "integer overflow in *");
      return Value::Int(exact);
    }
    if (op == "/") {
      if (y == 0) return Error(e.line, "division by zero");
      return Value::Float(x / y);
    }
    if (op == "//" || op == "%") {
      if (y == 0) return Error(e.line, "division by zero");
      if (floats) {
        const double q = std::floor(x / y);
        return op == "//" ? Value::Float(q) : Value::Float(x - q * y);
      }
      if (i == INT64_MIN && j == -1) return Error(e.line, "integer overflow in " + op);
      int64_t q = i / j;
      if ((i % j != 0) && ((i < 0) != (j < 0))) --q;
      return op == "//" ? Value::Int(q) : Value::Int(i - q * j);
    }
    if (op == "**") {
      if (!floats && j >= 0) {
        int64_t r = 1;
        for (int64_t k = 0; k < j && k < 64; ++k) {
          if (__builtin_mul_overflow(r, i, &r)) return Error(e.line, "integer overflow in **");
        }
        return Value::Int(r);
      }
      return Value::Float(std::pow(x, y));
    }
    return type_error();
  }

  std::vector<Value> scopes_;
  Control control_ = Control::kNone;
  int loop_depth_ = 0;
  int call_depth_ = 0;
  int64_t steps_ = 0;
};

}  // namespace

absl::StatusOr<Template> Template::Parse(std::string_view source, const ParseOptions& options) {
  absl::StatusOr<std::vector<Node>> nodes = ParseTemplate(source, options);
  if (!nodes.ok()) return nodes.status();
  return Template(*std::move(nodes));
}

absl::StatusOr<std::string> Template::Render(const Value& variables) const {
  Renderer renderer(variables);
  std::string out;
  EDGELLM_RETURN_IF_ERROR(renderer.RenderBody(*nodes_, &out));
  return out;
}

}  // namespace edgellm::chat::jinja
