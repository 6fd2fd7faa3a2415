// grammar/json_schema.h — a JSON Schema as a GBNF grammar whose every output
// is a compact JSON text the schema accepts.
//
// Keywords: type (one or a list), properties, required, additionalProperties,
// items, prefixItems, minItems/maxItems, enum, const, anyOf/oneOf (as
// alternatives: oneOf's "only one" is not enforced), allOf (of object
// schemas: their properties merged), $ref to "#", "#/$defs/..." or
// "#/definitions/..." (recursion allowed when it has a base case),
// minLength/maxLength, pattern (a regular-expression subset: literals,
// escapes, classes, ., groups, |, * + ? {m,n}; anchors ^ and $), format
// (date, time, date-time, uuid, ipv4), integer minimum/maximum and their
// exclusive forms, number ranges with whole-number bounds. Anything else that
// constrains output (multipleOf, uniqueItems, patternProperties, a format not
// listed, lookarounds and backreferences in a pattern, ...) is refused with
// the JSON pointer of the schema where it is; annotations (title,
// description, examples, default, $schema, $id, $comment, ...) are ignored.
//
// Whitespace: at most one space after ':' and ',' and inside brackets, so a
// model cannot pad its output without end. Numbers have at most 16 integer
// and 16 fraction digits.
#ifndef EDGELLM_GRAMMAR_JSON_SCHEMA_H_
#define EDGELLM_GRAMMAR_JSON_SCHEMA_H_

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace edgellm::grammar {

struct JsonSchemaLimits {
  size_t max_grammar_bytes = 1 << 20;  // the grammar made
  size_t max_enum_values = 1024;       // of one enum
  int max_depth = 64;                  // schemas nested in schemas
  size_t max_pattern_bytes = 1024;
};

// GBNF for `schema` whose top rule is `rule_name` (the rules made for it
// start with "rule_name-"; the shared primitives, json-*, are the same text in
// every grammar, so grammars of several schemas join line by line);
// InvalidArgument naming the JSON pointer of the problem, ResourceExhausted
// beyond `limits`.
absl::StatusOr<std::string> JsonSchemaToGbnf(const nlohmann::ordered_json& schema,
                                             const JsonSchemaLimits& limits = {},
                                             std::string_view rule_name = "root");

// The grammar of any JSON object (response_format {"type": "json_object"}).
std::string JsonObjectGbnf();

// `text` as a GBNF literal, quotes included.
std::string GbnfLiteral(std::string_view text);

}  // namespace edgellm::grammar

#endif  // EDGELLM_GRAMMAR_JSON_SCHEMA_H_
