// chat/jinja_value.h — the values a Jinja template computes with, with
// Python's meaning: None, bools, ints, floats, strings, lists, dicts (in
// insertion order, string keys), callables, and Undefined for a name or key
// that does not exist. Lists and dicts are shared by reference, as in Python,
// so a namespace() set from a loop is seen after it.
#ifndef EDGELLM_CHAT_JINJA_VALUE_H_
#define EDGELLM_CHAT_JINJA_VALUE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace edgellm::chat::jinja {

class Value;

// The arguments of a call: positional, then keyword.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // Keyword `name`, else positional `index`, else nullptr.
  const Value* Get(std::string_view name, size_t index) const;
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunction };
  using List = std::vector<Value>;
  using Dict = std::vector<std::pair<std::string, Value>>;
  using Function = std::function<absl::StatusOr<Value>(const CallArgs&)>;

  Value() = default;  // Undefined
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double d);
  static Value String(std::string s);
  static Value NewList(List items = {});
  // What map, select and their kin return: a list to iterate, which like
  // Python's generator has no length and is no JSON (`| list` makes it a list).
  static Value Generator(List items);
  // A tuple: a list that prints as (a, b) and never equals a list.
  static Value Tuple(List items);
  static Value NewDict(Dict items = {});
  static Value NewFunction(Function fn);
  // A JSON document as values (objects keep their order).
  static Value FromJson(const nlohmann::ordered_json& json);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_function() const { return kind_ == Kind::kFunction; }
  bool is_generator() const { return generator_; }
  bool is_tuple() const { return tuple_; }

  bool bool_value() const { return bool_; }
  int64_t int_value() const { return kind_ == Kind::kBool ? (bool_ ? 1 : 0) : int_; }
  double number() const { return kind_ == Kind::kFloat ? float_ : static_cast<double>(int_value()); }
  const std::string& string_value() const { return string_; }
  List& list() const { return *list_; }
  Dict& dict() const { return *dict_; }
  const Function& function() const { return *function_; }

  // The entry `key` of a dict; nullptr if there is none (or this is no dict).
  const Value* Find(std::string_view key) const;
  // Sets `key` in a dict, keeping its place if it exists.
  void Set(const std::string& key, Value value) const;

  // Python's bool(), str() and repr().
  bool Truthy() const;
  std::string Str() const;
  std::string Repr() const;
  // json.dumps(value, ensure_ascii=False, indent=indent, separators=..., sort_keys=...)
  // as transformers' tojson calls it; InvalidArgument for what JSON cannot hold.
  absl::StatusOr<std::string> ToJson(std::optional<int> indent, bool sort_keys = false) const;

  // Python's ==.
  bool Equals(const Value& other) const;
  // The sequence a for loop or a filter walks: a list's items, a dict's
  // keys, a string's characters (code points); InvalidArgument otherwise.
  absl::StatusOr<List> Items() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool generator_ = false;
  bool tuple_ = false;
  bool bool_ = false;
  int64_t int_ = 0;
  double float_ = 0.0;
  std::string string_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<Function> function_;
};

// Python's repr() of a float: the shortest digits that read back the same,
// in positional notation from 1e-4 up to 1e16, exponent notation outside.
std::string PythonFloatRepr(double d);

}  // namespace edgellm::chat::jinja

#endif  // EDGELLM_CHAT_JINJA_VALUE_H_
