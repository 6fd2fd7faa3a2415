// chat/jinja_builtins.h — Jinja's filters, tests, global functions and the
// string, list and dict methods templates call, with Python's results.
#ifndef EDGELLM_CHAT_JINJA_BUILTINS_H_
#define EDGELLM_CHAT_JINJA_BUILTINS_H_

#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "daemon/chat/jinja_value.h"

namespace edgellm::chat::jinja {

// `operand | name(args)`; InvalidArgument naming an unknown filter.
absl::StatusOr<Value> ApplyFilter(std::string_view name, const Value& operand, const CallArgs& args);
// `operand is name(args)`; InvalidArgument naming an unknown test.
absl::StatusOr<bool> ApplyTest(std::string_view name, const Value& operand, const CallArgs& args);
// `object.name` when it is a method of a string, list or dict, bound to the object.
std::optional<Value> Method(const Value& object, std::string_view name);
// range, namespace, dict and raise_exception, by name.
Value::Dict BuiltinGlobals();

}  // namespace edgellm::chat::jinja

#endif  // EDGELLM_CHAT_JINJA_BUILTINS_H_
