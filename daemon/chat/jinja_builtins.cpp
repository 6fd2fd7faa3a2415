#include "daemon/chat/jinja_builtins.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/str_cat.h"

namespace edgellm::chat::jinja {
namespace {

using Fn = Value::Function;

absl::Status Bad(std::string_view what) { return absl::InvalidArgumentError(std::string(what)); }

bool IsPySpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= '\x1c' && c <= '\x1f');
}

// str.strip / lstrip / rstrip: `chars` (none: whitespace).
std::string Strip(const std::string& s, const Value* chars, bool left, bool right) {
  const auto drop = [&](char c) {
    if (chars == nullptr || chars->is_none() || chars->is_undefined()) return IsPySpace(c);
    return chars->string_value().find(c) != std::string::npos;
  };
  size_t begin = 0, end = s.size();
  if (left) {
    while (begin < end && drop(s[begin])) ++begin;
  }
  if (right) {
    while (end > begin && drop(s[end - 1])) --end;
  }
  return s.substr(begin, end - begin);
}

// str.split(sep=None, maxsplit=-1).
Value Split(const std::string& s, const Value* sep, int64_t max_split) {
  Value::List parts;
  if (sep == nullptr || sep->is_none() || sep->is_undefined()) {
    size_t i = 0;
    while (true) {
      while (i < s.size() && IsPySpace(s[i])) ++i;
      if (i >= s.size()) break;
      if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) {
        size_t end = s.size();
        while (end > i && IsPySpace(s[end - 1])) --end;
        parts.push_back(Value::String(s.substr(i, end - i)));
        break;
      }
      size_t j = i;
      while (j < s.size() && !IsPySpace(s[j])) ++j;
      parts.push_back(Value::String(s.substr(i, j - i)));
      i = j;
    }
    return Value::NewList(std::move(parts));
  }
  const std::string& separator = sep->string_value();
  size_t start = 0;
  while (true) {
    const size_t at = separator.empty() ? std::string::npos : s.find(separator, start);
    if (at == std::string::npos || (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split)) {
      parts.push_back(Value::String(s.substr(start)));
      break;
    }
    parts.push_back(Value::String(s.substr(start, at - start)));
    start = at + separator.size();
  }
  return Value::NewList(std::move(parts));
}

std::string Replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  if (from.empty()) return s;
  std::string out;
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t at = s.find(from, start);
    if (at == std::string::npos) break;
    out += s.substr(start, at - start);
    out += to;
    start = at + from.size();
    ++done;
  }
  return out + s.substr(start);
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string Capitalize(const std::string& s) {
  std::string out = Lower(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}
std::string Title(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    const bool letter = std::isalpha(static_cast<unsigned char>(c)) != 0;
    c = static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
    start = !letter;
  }
  return out;
}

int64_t CodePoints(const std::string& s) {
  int64_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

absl::StatusOr<std::string> StringArg(const CallArgs& args, std::string_view name, size_t index, std::string fallback) {
  const Value* v = args.Get(name, index);
  if (v == nullptr || v->is_undefined()) return fallback;
  if (!v->is_string()) return Bad(edgellm::StrCat("argument '", name, "' must be a string"));
  return v->string_value();
}
int64_t IntArg(const CallArgs& args, std::string_view name, size_t index, int64_t fallback) {
  const Value* v = args.Get(name, index);
  return v == nullptr || !v->is_number() ? fallback : v->int_value();
}
bool BoolArg(const CallArgs& args, std::string_view name, size_t index, bool fallback) {
  const Value* v = args.Get(name, index);
  return v == nullptr || v->is_undefined() ? fallback : v->Truthy();
}

// item.attribute, with dots for nested keys (as Jinja's attribute arguments).
Value AttributeOf(const Value& item, const std::string& path) {
  Value current = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const Value* next = current.Find(key);
    if (next == nullptr) return Value();
    current = *next;
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

// The arguments after the first `skip` positional ones.
CallArgs Rest(const CallArgs& args, size_t skip) {
  CallArgs rest;
  for (size_t i = skip; i < args.positional.size(); ++i) rest.positional.push_back(args.positional[i]);
  rest.keyword = args.keyword;
  return rest;
}

// select / reject / selectattr / rejectattr.
absl::StatusOr<Value> SelectItems(const Value& operand, const CallArgs& args, bool keep, bool by_attribute) {
  if (!operand.Truthy()) return Value::Generator({});  // Jinja walks nothing for None
  absl::StatusOr<Value::List> items = operand.Items();
  if (!items.ok()) return items.status();
  size_t first_test_arg = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty() || !args.positional[0].is_string()) return Bad("selectattr needs an attribute name");
    attribute = args.positional[0].string_value();
    first_test_arg = 1;
  }
  Value::List kept;
  for (const Value& item : *items) {
    const Value subject = by_attribute ? AttributeOf(item, attribute) : item;
    bool passes;
    if (args.positional.size() <= first_test_arg) {
      passes = subject.Truthy();
    } else {
      if (!args.positional[first_test_arg].is_string()) return Bad("the test must be named by a string");
      absl::StatusOr<bool> result =
          ApplyTest(args.positional[first_test_arg].string_value(), subject, Rest(args, first_test_arg + 1));
      if (!result.ok()) return result.status();
      passes = *result;
    }
    if (passes == keep) kept.push_back(item);
  }
  return Value::Generator(std::move(kept));
}

// Jinja's indent: every line but the first (and blank ones unless `blank`) prefixed.
std::string Indent(const std::string& s, const std::string& prefix, bool first, bool blank) {
  std::vector<std::string> lines;
  const std::string text = s + "\n";
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find_first_of("\r\n", start);
    lines.push_back(text.substr(start, end - start));
    start = end + ((text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n') ? 2 : 1);
  }
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += "\n";
      if (blank || !lines[i].empty()) out += prefix;
    }
    out += lines[i];
  }
  return first ? prefix + out : out;
}

absl::StatusOr<Value> ToInt(const Value& v, int64_t fallback) {
  if (v.is_number()) return Value::Int(v.kind() == Value::Kind::kFloat ? static_cast<int64_t>(v.number()) : v.int_value());
  if (v.is_string()) {
    try {
      size_t used = 0;
      const std::string s = Strip(v.string_value(), nullptr, true, true);
      const double d = std::stod(s, &used);
      if (used == s.size()) return Value::Int(static_cast<int64_t>(d));
    } catch (...) {
    }
  }
  return Value::Int(fallback);
}

}  // namespace

absl::StatusOr<Value> ApplyFilter(std::string_view name, const Value& operand, const CallArgs& args) {
  if (name == "trim") {
    if (operand.is_undefined()) return Value::String("");
    return Value::String(Strip(operand.Str(), args.Get("chars", 0), true, true));
  }
  if (name == "safe" || name == "e" || name == "escape" || name == "forceescape") {
    if (name != "safe") return Bad("autoescaping filters are not supported (chat templates render text)");
    return operand;
  }
  if (name == "string") return Value::String(operand.Str());
  if (name == "upper") return Value::String(Upper(operand.Str()));
  if (name == "lower") return Value::String(Lower(operand.Str()));
  if (name == "capitalize") return Value::String(Capitalize(operand.Str()));
  if (name == "title") return Value::String(Title(operand.Str()));
  if (name == "length" || name == "count") {
    switch (operand.kind()) {
      case Value::Kind::kString:
        return Value::Int(CodePoints(operand.string_value()));
      case Value::Kind::kList:
        if (operand.is_generator()) return Bad("object of type 'generator' has no len()");
        return Value::Int(static_cast<int64_t>(operand.list().size()));
      case Value::Kind::kDict:
        return Value::Int(static_cast<int64_t>(operand.dict().size()));
      case Value::Kind::kUndefined:
        return Value::Int(0);
      default:
        return Bad(edgellm::StrCat("object of type '", operand.Repr(), "' has no len()"));
    }
  }
  if (name == "list") {
    absl::StatusOr<Value::List> items = operand.Items();
    if (!items.ok()) return items.status();
    return Value::NewList(*std::move(items));
  }
  if (name == "first" || name == "last") {
    absl::StatusOr<Value::List> items = operand.Items();
    if (!items.ok()) return items.status();
    if (items->empty()) return Value();
    return name == "first" ? items->front() : items->back();
  }
  if (name == "reverse") {
    if (operand.is_string()) {
      absl::StatusOr<Value::List> chars = operand.Items();
      std::string out;
      for (auto it = chars->rbegin(); it != chars->rend(); ++it) out += it->string_value();
      return Value::String(out);
    }
    absl::StatusOr<Value::List> items = operand.Items();
    if (!items.ok()) return items.status();
    return Value::NewList(Value::List(items->rbegin(), items->rend()));
  }
  if (name == "join") {
    absl::StatusOr<Value::List> items = operand.Items();
    if (!items.ok()) return items.status();
    absl::StatusOr<std::string> separator = StringArg(args, "d", 0, "");
    if (!separator.ok()) return separator.status();
    const Value* attribute = args.Get("attribute", 1);
    std::string out;
    for (size_t i = 0; i < items->size(); ++i) {
      if (i > 0) out += *separator;
      const Value& item = (*items)[i];
      out += attribute != nullptr && attribute->is_string() ? AttributeOf(item, attribute->string_value()).Str() : item.Str();
    }
    return Value::String(out);
  }
  if (name == "default" || name == "d") {
    const Value* fallback = args.Get("default_value", 0);
    const bool boolean = BoolArg(args, "boolean", 1, false);
    if (operand.is_undefined() || (boolean && !operand.Truthy())) {
      return fallback != nullptr ? *fallback : Value::String("");
    }
    return operand;
  }
  if (name == "tojson") {
    std::optional<int> indent;
    if (const Value* v = args.Get("indent", 0); v != nullptr && v->is_number()) {
      // As Python's json.dumps: a negative indent breaks lines without spaces.
      // A wide one would multiply the output by its width: bounded.
      const int64_t width = std::max<int64_t>(0, v->int_value());
      if (width > 64) return Bad(edgellm::StrCat("tojson: indent ", width, " is more than 64"));
      indent = static_cast<int>(width);
    }
    absl::StatusOr<std::string> json = operand.ToJson(indent, BoolArg(args, "sort_keys", 100, false));
    if (!json.ok()) return json.status();
    return Value::String(*std::move(json));
  }
  if (name == "items") {
    if (operand.is_undefined()) return Value::NewList();
    if (!operand.is_dict()) return Bad("items needs a mapping");
    Value::List pairs;
    for (const auto& [key, value] : operand.dict()) pairs.push_back(Value::Tuple({Value::String(key), value}));
    return Value::NewList(std::move(pairs));
  }
  if (name == "int") return ToInt(operand, IntArg(args, "default", 0, 0));
  if (name == "float") {
    if (operand.is_number()) return Value::Float(operand.number());
    try {
      return Value::Float(std::stod(operand.Str()));
    } catch (...) {
      const Value* fallback = args.Get("default", 0);
      return Value::Float(fallback != nullptr && fallback->is_number() ? fallback->number() : 0.0);
    }
  }
  if (name == "abs") {
    if (operand.kind() == Value::Kind::kFloat) return Value::Float(std::fabs(operand.number()));
    if (operand.is_number()) return Value::Int(std::llabs(operand.int_value()));
    return Bad("abs needs a number");
  }
  if (name == "round") {
    if (!operand.is_number()) return Bad("round needs a number");
    const int64_t precision = IntArg(args, "precision", 0, 0);
    const double scale = std::pow(10.0, static_cast<double>(precision));
    return Value::Float(std::round(operand.number() * scale) / scale);
  }
  if (name == "replace") {
    absl::StatusOr<std::string> from = StringArg(args, "old", 0, "");
    absl::StatusOr<std::string> to = StringArg(args, "new", 1, "");
    if (!from.ok()) return from.status();
    if (!to.ok()) return to.status();
    return Value::String(Replace(operand.Str(), *from, *to, IntArg(args, "count", 2, -1)));
  }
  if (name == "indent") {
    const Value* width = args.Get("width", 0);
    const std::string prefix = width != nullptr && width->is_string()
                                   ? width->string_value()
                                   : std::string(static_cast<size_t>(width != nullptr && width->is_number() ? width->int_value() : 4), ' ');
    return Value::String(Indent(operand.Str(), prefix, BoolArg(args, "first", 1, false), BoolArg(args, "blank", 2, false)));
  }
  if (name == "select" || name == "reject") return SelectItems(operand, args, name == "select", false);
  if (name == "selectattr" || name == "rejectattr") return SelectItems(operand, args, name == "selectattr", true);
  if (name == "map") {
    if (!operand.Truthy()) return Value::Generator({});
    absl::StatusOr<Value::List> items = operand.Items();
    if (!items.ok()) return items.status();
    Value::List mapped;
    if (const Value* attribute = args.Get("attribute", 100); attribute != nullptr) {
      const Value* fallback = args.Get("default", 100);
      for (const Value& item : *items) {
        Value v = AttributeOf(item, attribute->Str());
        mapped.push_back(v.is_undefined() && fallback != nullptr ? *fallback : v);
      }
      return Value::Generator(std::move(mapped));
    }
    if (args.positional.empty() || !args.positional[0].is_string()) return Bad("map needs a filter name or attribute=");
    for (const Value& item : *items) {
      absl::StatusOr<Value> v = ApplyFilter(args.positional[0].string_value(), item, Rest(args, 1));
      if (!v.ok()) return v.status();
      mapped.push_back(*std::move(v));
    }
    return Value::Generator(std::move(mapped));
  }
  return Bad(edgellm::StrCat("the filter '", name, "' is not supported"));
}

absl::StatusOr<bool> ApplyTest(std::string_view name, const Value& operand, const CallArgs& args) {
  const Value* other = args.Get("value", 0);
  const auto compare = [&](auto op) -> absl::StatusOr<bool> {
    if (other == nullptr) return Bad(edgellm::StrCat("the test '", name, "' needs a value"));
    if (operand.is_number() && other->is_number()) return op(operand.number(), other->number());
    if (operand.is_string() && other->is_string()) return op(operand.string_value(), other->string_value());
    return Bad(edgellm::StrCat("the test '", name, "' cannot compare ", operand.Repr(), " and ", other->Repr()));
  };
  if (name == "defined") return !operand.is_undefined();
  if (name == "undefined") return operand.is_undefined();
  if (name == "none") return operand.is_none();
  if (name == "boolean") return operand.kind() == Value::Kind::kBool;
  if (name == "true") return operand.kind() == Value::Kind::kBool && operand.bool_value();
  if (name == "false") return operand.kind() == Value::Kind::kBool && !operand.bool_value();
  if (name == "integer") return operand.kind() == Value::Kind::kInt;
  if (name == "float") return operand.kind() == Value::Kind::kFloat;
  if (name == "number") return operand.is_number();
  if (name == "string") return operand.is_string();
  if (name == "mapping") return operand.is_dict();
  if (name == "iterable") return operand.is_list() || operand.is_dict() || operand.is_string() || operand.is_undefined();
  if (name == "sequence") return operand.is_list() || operand.is_dict() || operand.is_string();
  if (name == "callable") return operand.is_function();
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") {
    if (other == nullptr) return Bad(edgellm::StrCat("the test '", name, "' needs a value"));
    return operand.Equals(*other);
  }
  if (name == "ne" || name == "!=") {
    if (other == nullptr) return Bad("the test 'ne' needs a value");
    return !operand.Equals(*other);
  }
  if (name == "lt" || name == "lessthan" || name == "<") return compare([](auto a, auto b) { return a < b; });
  if (name == "le" || name == "<=") return compare([](auto a, auto b) { return a <= b; });
  if (name == "gt" || name == "greaterthan" || name == ">") return compare([](auto a, auto b) { return a > b; });
  if (name == "ge" || name == ">=") return compare([](auto a, auto b) { return a >= b; });
  if (name == "in") {
    if (other == nullptr) return Bad("the test 'in' needs a container");
    if (other->is_string()) return other->string_value().find(operand.Str()) != std::string::npos;
    absl::StatusOr<Value::List> items = other->Items();
    if (!items.ok()) return items.status();
    for (const Value& item : *items) {
      if (item.Equals(operand)) return true;
    }
    return false;
  }
  if (name == "odd" || name == "even") {
    if (!operand.is_number()) return Bad(edgellm::StrCat("the test '", name, "' needs a number"));
    return (operand.int_value() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    if (!operand.is_number() || other == nullptr || !other->is_number() || other->int_value() == 0) {
      return Bad("divisibleby needs two numbers, the second not 0");
    }
    return operand.int_value() % other->int_value() == 0;
  }
  if (name == "lower") return operand.is_string() && Lower(operand.string_value()) == operand.string_value();
  if (name == "upper") return operand.is_string() && Upper(operand.string_value()) == operand.string_value();
  return Bad(edgellm::StrCat("the test '", name, "' is not supported"));
}

std::optional<Value> Method(const Value& object, std::string_view name) {
  const std::string method(name);
  if (object.is_string()) {
    const std::string s = object.string_value();
    static const char* const kNames[] = {"strip", "lstrip", "rstrip", "split", "upper", "lower", "title",
                                         "capitalize", "startswith", "endswith", "replace", "find", "join", "count"};
    if (std::find(std::begin(kNames), std::end(kNames), name) == std::end(kNames)) return std::nullopt;
    return Value::NewFunction([s, method](const CallArgs& args) -> absl::StatusOr<Value> {
      if (method == "strip" || method == "lstrip" || method == "rstrip") {
        return Value::String(Strip(s, args.Get("chars", 0), method != "rstrip", method != "lstrip"));
      }
      if (method == "split") return Split(s, args.Get("sep", 0), IntArg(args, "maxsplit", 1, -1));
      if (method == "upper") return Value::String(Upper(s));
      if (method == "lower") return Value::String(Lower(s));
      if (method == "title") return Value::String(Title(s));
      if (method == "capitalize") return Value::String(Capitalize(s));
      if (method == "startswith" || method == "endswith") {
        const Value* affix = args.Get("prefix", 0);
        if (affix == nullptr) return Bad(edgellm::StrCat(method, " needs an argument"));
        std::vector<std::string> candidates;
        if (affix->is_list()) {
          for (const Value& v : affix->list()) candidates.push_back(v.Str());
        } else {
          candidates.push_back(affix->Str());
        }
        for (const std::string& c : candidates) {
          if (c.size() <= s.size() &&
              (method == "startswith" ? s.compare(0, c.size(), c) == 0 : s.compare(s.size() - c.size(), c.size(), c) == 0)) {
            return Value::Bool(true);
          }
        }
        return Value::Bool(false);
      }
      if (method == "replace") {
        const Value* from = args.Get("old", 0);
        const Value* to = args.Get("new", 1);
        if (from == nullptr || to == nullptr) return Bad("replace needs two arguments");
        return Value::String(Replace(s, from->Str(), to->Str(), IntArg(args, "count", 2, -1)));
      }
      if (method == "find") {
        const Value* needle = args.Get("sub", 0);
        if (needle == nullptr) return Bad("find needs an argument");
        const size_t at = s.find(needle->Str());
        return Value::Int(at == std::string::npos ? -1 : static_cast<int64_t>(at));
      }
      if (method == "count") {
        const Value* needle = args.Get("sub", 0);
        if (needle == nullptr || needle->Str().empty()) return Bad("count needs a non-empty argument");
        int64_t n = 0;
        for (size_t at = s.find(needle->Str()); at != std::string::npos; at = s.find(needle->Str(), at + needle->Str().size())) ++n;
        return Value::Int(n);
      }
      // join
      const Value* items = args.Get("iterable", 0);
      if (items == nullptr) return Bad("join needs an argument");
      absl::StatusOr<Value::List> list = items->Items();
      if (!list.ok()) return list.status();
      std::string out;
      for (size_t i = 0; i < list->size(); ++i) {
        if (i > 0) out += s;
        out += (*list)[i].Str();
      }
      return Value::String(out);
    });
  }
  if (object.is_list()) {
    if (name != "append" && name != "pop" && name != "index") return std::nullopt;
    return Value::NewFunction([object, method](const CallArgs& args) -> absl::StatusOr<Value> {
      Value::List& list = object.list();
      if (method == "append") {
        if (args.positional.size() != 1) return Bad("append takes one argument");
        list.push_back(args.positional[0]);
        return Value::None();
      }
      if (method == "pop") {
        if (list.empty()) return Bad("pop from an empty list");
        int64_t at = IntArg(args, "index", 0, -1);
        if (at < 0) at += static_cast<int64_t>(list.size());
        if (at < 0 || at >= static_cast<int64_t>(list.size())) return Bad("pop index out of range");
        Value v = list[static_cast<size_t>(at)];
        list.erase(list.begin() + at);
        return v;
      }
      const Value* needle = args.Get("value", 0);
      for (size_t i = 0; needle != nullptr && i < list.size(); ++i) {
        if (list[i].Equals(*needle)) return Value::Int(static_cast<int64_t>(i));
      }
      return Bad("index: the value is not in the list");
    });
  }
  if (object.is_dict()) {
    if (name != "items" && name != "keys" && name != "values" && name != "get") return std::nullopt;
    return Value::NewFunction([object, method](const CallArgs& args) -> absl::StatusOr<Value> {
      if (method == "get") {
        const Value* key = args.Get("key", 0);
        if (key == nullptr) return Bad("get needs a key");
        const Value* found = object.Find(key->Str());
        if (found != nullptr) return *found;
        const Value* fallback = args.Get("default", 1);
        return fallback != nullptr ? *fallback : Value::None();
      }
      Value::List out;
      for (const auto& [key, value] : object.dict()) {
        if (method == "items") out.push_back(Value::Tuple({Value::String(key), value}));
        if (method == "keys") out.push_back(Value::String(key));
        if (method == "values") out.push_back(value);
      }
      return Value::NewList(std::move(out));
    });
  }
  return std::nullopt;
}

Value::Dict BuiltinGlobals() {
  Value::Dict globals;
  globals.emplace_back("range", Value::NewFunction([](const CallArgs& args) -> absl::StatusOr<Value> {
    int64_t start = 0, stop = 0, step = 1;
    if (args.positional.size() == 1) {
      stop = args.positional[0].int_value();
    } else if (args.positional.size() >= 2) {
      start = args.positional[0].int_value();
      stop = args.positional[1].int_value();
      if (args.positional.size() >= 3) step = args.positional[2].int_value();
    }
    if (step == 0) return Bad("range: the step is 0");
    if ((stop - start) / step > 100000) return Bad("range: more than 100000 items");
    Value::List items;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) items.push_back(Value::Int(i));
    return Value::NewList(std::move(items));
  }));
  const auto from_keywords = [](const CallArgs& args) -> absl::StatusOr<Value> {
    Value::Dict items;
    for (const auto& [key, value] : args.keyword) items.emplace_back(key, value);
    return Value::NewDict(std::move(items));
  };
  globals.emplace_back("namespace", Value::NewFunction(from_keywords));
  globals.emplace_back("dict", Value::NewFunction(from_keywords));
  globals.emplace_back("raise_exception", Value::NewFunction([](const CallArgs& args) -> absl::StatusOr<Value> {
    return absl::InvalidArgumentError(
        edgellm::StrCat("the template raised: ", args.positional.empty() ? "" : args.positional[0].Str()));
  }));
  return globals;
}

}  // namespace edgellm::chat::jinja
