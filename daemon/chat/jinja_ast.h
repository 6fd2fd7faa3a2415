// chat/jinja_ast.h — a parsed Jinja template: expressions and statements,
// each with the line it starts on for error messages. Built by
// jinja_parser.cpp, walked by jinja_template.cpp.
#ifndef EDGELLM_CHAT_JINJA_AST_H_
#define EDGELLM_CHAT_JINJA_AST_H_

#include <memory>
#include <string>
#include <vector>

#include "daemon/chat/jinja_value.h"

namespace edgellm::chat::jinja {

struct Expr {
  enum class Kind {
    kLiteral,      // literal
    kName,         // name
    kList,         // args: the items; a tuple when name is "tuple"
    kDict,         // args: key, value, key, value, ...
    kAttribute,    // args[0].name
    kIndex,        // args[0][args[1]]
    kSlice,        // args[0][args[1]:args[2]:args[3]], a null arg where omitted
    kCall,         // args[0](args[1..] as positional, keyword_args by name)
    kFilter,       // args[0] | name(args[1..], keyword_args)
    kTest,         // args[0] is [not] name(args[1..]); negated
    kNot,          // not args[0]
    kNegate,       // -args[0]
    kBinary,       // args[0] op args[1]
    kConditional,  // args[1] if args[0] else args[2] (args[2] null: undefined)
  };
  Kind kind = Kind::kLiteral;
  int line = 0;
  Value literal;
  std::string name;  // a name, attribute, filter, test or binary operator
  bool negated = false;
  std::vector<std::unique_ptr<Expr>> args;
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> keyword_args;
};

struct Node {
  enum class Kind {
    kText,         // text
    kOutput,       // {{ expr }}
    kIf,           // conditions[i] guards bodies[i]; a last body without a condition is the else
    kFor,          // for targets in expr [if conditions[0]]: bodies[0], else bodies[1]
    kSet,          // set targets = expr; targets "ns.attr" set an attribute; without expr the body
    kMacro,        // macro name(targets, defaults by position in conditions): bodies[0]
    kFilterBlock,  // filter expr (a kFilter on a null operand): bodies[0]
    kBreak,
    kContinue,
  };
  Kind kind = Kind::kText;
  int line = 0;
  std::string text;
  std::unique_ptr<Expr> expr;
  std::vector<std::string> targets;
  std::vector<std::unique_ptr<Expr>> conditions;
  std::vector<std::vector<Node>> bodies;
};

}  // namespace edgellm::chat::jinja

#endif  // EDGELLM_CHAT_JINJA_AST_H_
