// chat/jinja_template.h — a Jinja template, parsed once and rendered with a
// dict of variables the way Python's Jinja2 renders it (trim_blocks and
// lstrip_blocks off, loop controls on, no autoescaping): the subset chat
// templates use — if/elif/else, for with loop.* and else, set (names,
// namespace attributes, blocks), macros, filter blocks, break/continue;
// Python's operators, literals, filters, tests and string/list/dict methods.
// What it does not support is refused at parse or render time naming the line.
#ifndef EDGELLM_CHAT_JINJA_TEMPLATE_H_
#define EDGELLM_CHAT_JINJA_TEMPLATE_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/chat/jinja_ast.h"
#include "daemon/chat/jinja_parser.h"
#include "daemon/chat/jinja_value.h"

namespace edgellm::chat::jinja {

class Template {
 public:
  static absl::StatusOr<Template> Parse(std::string_view source, const ParseOptions& options = {});

  // Renders with the entries of `variables` (a dict) as global names, beside
  // range, namespace, dict and raise_exception.
  absl::StatusOr<std::string> Render(const Value& variables) const;

 private:
  explicit Template(std::vector<Node> nodes) : nodes_(std::make_shared<std::vector<Node>>(std::move(nodes))) {}
  std::shared_ptr<const std::vector<Node>> nodes_;
};

}  // namespace edgellm::chat::jinja

#endif  // EDGELLM_CHAT_JINJA_TEMPLATE_H_
