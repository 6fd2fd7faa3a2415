// chat/jinja_parser.h — Jinja source to statements: whitespace control
// (`{{-`, `-%}`), comments, and the statements and expressions chat
// templates use. What it does not support is refused naming the line and
// the construct.
#ifndef EDGELLM_CHAT_JINJA_PARSER_H_
#define EDGELLM_CHAT_JINJA_PARSER_H_

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/chat/jinja_ast.h"

namespace edgellm::chat::jinja {

// Jinja's Environment(trim_blocks=..., lstrip_blocks=...): transformers
// renders chat templates with both on, plain Jinja2 with both off.
struct ParseOptions {
  bool trim_blocks = false;    // drop the newline right after a block or comment tag
  bool lstrip_blocks = false;  // drop spaces and tabs between a line's start and a block or comment tag
};

absl::StatusOr<std::vector<Node>> ParseTemplate(std::string_view source, const ParseOptions& options = {});

}  // namespace edgellm::chat::jinja

#endif  // EDGELLM_CHAT_JINJA_PARSER_H_
