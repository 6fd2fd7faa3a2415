#include "daemon/grammar/json_schema.h"

#include <gtest/gtest.h>

#include "daemon/grammar/grammar_automaton.h"

namespace edgellm::grammar {
namespace {

using Json = nlohmann::ordered_json;

class SchemaMatcher {
 public:
  explicit SchemaMatcher(const char* schema) {
    absl::StatusOr<std::string> gbnf = JsonSchemaToGbnf(Json::parse(schema));
    EXPECT_TRUE(gbnf.ok()) << gbnf.status();
    gbnf_ = gbnf.value_or("root ::= \"\"");
    std::vector<std::string> pieces;
    for (int b = 0; b < 256; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
    absl::StatusOr<std::shared_ptr<const ByteGrammar>> grammar = ByteGrammar::FromGbnf(gbnf_);
    EXPECT_TRUE(grammar.ok()) << grammar.status() << "\n" << gbnf_;
    automaton_ = std::make_unique<GrammarAutomaton>(*grammar, std::make_shared<TokenTrie>(pieces, std::vector<int32_t>{}));
  }
  bool Accepts(std::string_view text) {
    const StateId end = automaton_->Advance(*automaton_->Start(), text).value();
    return end != kDeadState && automaton_->Accepting(end);
  }
  const std::string& gbnf() const { return gbnf_; }

 private:
  std::string gbnf_;
  std::unique_ptr<GrammarAutomaton> automaton_;
};

std::string ErrorOf(const char* schema) {
  absl::StatusOr<std::string> gbnf = JsonSchemaToGbnf(Json::parse(schema));
  return gbnf.ok() ? "" : std::string(gbnf.status().message());
}

TEST(JsonSchema, ObjectsKeepDeclaredOrderRequiredAndOptionalProperties) {
  SchemaMatcher m(R"({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"},
                      "c": {"type": "boolean"}}, "required": ["b"]})");
  EXPECT_TRUE(m.Accepts(R"({"b":"x"})"));
  EXPECT_TRUE(m.Accepts(R"({"a": 1, "b": "x", "c": true})"));
  EXPECT_TRUE(m.Accepts(R"({ "a":-5,"b":"","c":false })"));
  EXPECT_FALSE(m.Accepts(R"({"a": 1})")) << "b is required";
  EXPECT_FALSE(m.Accepts(R"({"b": "x", "d": 1})")) << "no extra keys unless asked for";
  EXPECT_FALSE(m.Accepts(R"({"a": 1.5, "b": "x"})"));
  EXPECT_FALSE(m.Accepts(R"({"a":  1, "b": "x"})")) << "one space at most";
  EXPECT_FALSE(m.Accepts(R"({, "b": "x"})"));
}

TEST(JsonSchema, AdditionalPropertiesAreKeysOtherThanTheDeclaredOnes) {
  SchemaMatcher m(R"({"properties": {"id": {"type": "integer"}}, "additionalProperties": {"type": "number"}})");
  EXPECT_TRUE(m.Accepts(R"({"id": 1, "x": 2.5, "idx": 3})"));
  EXPECT_TRUE(m.Accepts(R"({"i": 2})"));
  EXPECT_TRUE(m.Accepts(R"({})"));
  EXPECT_FALSE(m.Accepts(R"({"id": 1, "id": 2})"));
  EXPECT_FALSE(m.Accepts(R"({"x": "text"})"));
}

TEST(JsonSchema, ArraysWithPrefixItemsAndCounts) {
  SchemaMatcher m(R"({"type": "array", "prefixItems": [{"const": "x"}, {"type": "integer"}],
                      "items": {"type": "boolean"}, "minItems": 1, "maxItems": 4})");
  EXPECT_TRUE(m.Accepts(R"(["x"])"));
  EXPECT_TRUE(m.Accepts(R"(["x", 3, true, false])"));
  EXPECT_FALSE(m.Accepts(R"([])"));
  EXPECT_FALSE(m.Accepts(R"(["x", 3, true, false, true])"));
  EXPECT_FALSE(m.Accepts(R"(["y"])"));
  SchemaMatcher counted(R"({"type": "array", "items": {"enum": [1, "two", null]}, "minItems": 2, "maxItems": 3})");
  EXPECT_TRUE(counted.Accepts(R"([1, "two"])"));
  EXPECT_TRUE(counted.Accepts(R"([null,null,1])"));
  EXPECT_FALSE(counted.Accepts(R"([1])"));
  EXPECT_FALSE(counted.Accepts(R"([1,1,1,1])"));
  EXPECT_FALSE(counted.Accepts(R"([3, 1])"));
}

TEST(JsonSchema, StringsLengthsFormatsAndPatterns) {
  SchemaMatcher length(R"({"type": "string", "minLength": 2, "maxLength": 3})");
  EXPECT_TRUE(length.Accepts(R"("ab")"));
  EXPECT_TRUE(length.Accepts(R"("a\"b")"));
  EXPECT_TRUE(length.Accepts(R"("éé")"));
  EXPECT_FALSE(length.Accepts(R"("a")"));
  EXPECT_FALSE(length.Accepts(R"("abcd")"));
  SchemaMatcher date(R"({"type": "string", "format": "date-time"})");
  EXPECT_TRUE(date.Accepts(R"("2026-12-04T19:47:00Z")"));
  EXPECT_TRUE(date.Accepts(R"("2024-02-28T00:00:00.5+05:30")"));
  EXPECT_FALSE(date.Accepts(R"("2026-02-30T00:00:00Z")"));
  EXPECT_FALSE(date.Accepts(R"("2026-12-04 19:47:00Z")"));
  SchemaMatcher uuid(R"({"format": "uuid"})");
  EXPECT_TRUE(uuid.Accepts(R"("123e4567-e89b-12d3-a456-426614174000")"));
  EXPECT_FALSE(uuid.Accepts(R"("123e4567-e89b-12d3-a456-42661417400")"));
  SchemaMatcher pattern(R"({"type": "string", "pattern": "^(\\+\\d{1,3} )?[A-Z][a-z]*(-[A-Z][a-z]*)*\"\\.$"})");
  EXPECT_TRUE(pattern.Accepts(R"("+44 Jean-Luc\".")"));
  EXPECT_TRUE(pattern.Accepts(R"("Ada\".")"));
  EXPECT_FALSE(pattern.Accepts(R"("ada\".")"));
  EXPECT_FALSE(pattern.Accepts(R"("Ada".")")) << "a quote inside a JSON string is escaped";
  SchemaMatcher classes(R"({"pattern": "^[^a-c\\s]{2}\\w?$"})");
  EXPECT_TRUE(classes.Accepts(R"("dé_")"));
  EXPECT_TRUE(classes.Accepts(R"("\\\"")")) << "'\\' and '\"' are in the class, escaped";
  EXPECT_FALSE(classes.Accepts(R"("d\n")"));
  EXPECT_FALSE(classes.Accepts(R"("ab")"));
}

TEST(JsonSchema, IntegerAndNumberRanges) {
  SchemaMatcher i(R"({"type": "integer", "minimum": -12, "exclusiveMaximum": 105})");
  for (int v = -30; v <= 130; ++v) {
    EXPECT_EQ(i.Accepts(std::to_string(v)), v >= -12 && v < 105) << v;
  }
  EXPECT_FALSE(i.Accepts("007"));
  EXPECT_FALSE(i.Accepts("-0"));
  SchemaMatcher open(R"({"type": "integer", "minimum": 250})");
  EXPECT_TRUE(open.Accepts("250"));
  EXPECT_TRUE(open.Accepts("1000000"));
  EXPECT_FALSE(open.Accepts("249"));
  EXPECT_FALSE(open.Accepts("-300"));
  SchemaMatcher n(R"({"type": "number", "minimum": -2, "maximum": 3})");
  for (const char* ok : {"-2", "-1.99", "-0.5", "0", "0.25", "2.999", "3"}) EXPECT_TRUE(n.Accepts(ok)) << ok;
  for (const char* bad : {"-2.5", "3.5", "3.01", "4", "-3", "1e2"}) EXPECT_FALSE(n.Accepts(bad)) << bad;
}

TEST(JsonSchema, RefsDefsAnyOfAllOfAndRecursion) {
  SchemaMatcher tree(R"({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
                         "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
                         "required": ["v"]}}, "$ref": "#/$defs/node"})");
  EXPECT_TRUE(tree.Accepts(R"({"v": 1, "kids": [{"v": 2}, {"v": 3, "kids": []}]})"));
  EXPECT_FALSE(tree.Accepts(R"({"v": 1, "kids": [{"kids": []}]})"));
  SchemaMatcher any(R"({"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 1}]})");
  EXPECT_TRUE(any.Accepts("null"));
  EXPECT_TRUE(any.Accepts(R"("a")"));
  EXPECT_FALSE(any.Accepts(R"("ab")"));
  SchemaMatcher all(R"({"allOf": [{"properties": {"a": {"const": 1}}, "required": ["a"]},
                                  {"properties": {"b": {"const": 2}}, "required": ["b"]}]})");
  EXPECT_TRUE(all.Accepts(R"({"a": 1, "b": 2})"));
  EXPECT_FALSE(all.Accepts(R"({"a": 1})"));
  SchemaMatcher types(R"({"type": ["integer", "null"]})");
  EXPECT_TRUE(types.Accepts("null"));
  EXPECT_TRUE(types.Accepts("-4"));
  EXPECT_FALSE(types.Accepts("true"));
}

TEST(JsonSchema, OneOfIsEnforcedOnlyWhereItsAlternativesCannotOverlap) {
  SchemaMatcher typed(R"({"oneOf": [{"type": "string", "maxLength": 3}, {"type": "integer"}, {"const": null}]})");
  EXPECT_TRUE(typed.Accepts(R"("abc")"));
  EXPECT_TRUE(typed.Accepts("12"));
  EXPECT_TRUE(typed.Accepts("null"));
  SchemaMatcher tagged(R"({"$defs": {"on": {"type": "object", "properties": {"kind": {"const": "on"}}, "required": ["kind"]}},
      "oneOf": [{"$ref": "#/$defs/on"},
                {"type": "object", "properties": {"kind": {"const": "set"}, "to": {"type": "integer"}},
                 "required": ["kind", "to"]}]})");
  EXPECT_TRUE(tagged.Accepts(R"({"kind": "on"})"));
  EXPECT_TRUE(tagged.Accepts(R"({"kind": "set", "to": 3})"));
  EXPECT_FALSE(tagged.Accepts(R"({"kind": "off"})"));
  EXPECT_EQ(ErrorOf(R"({"oneOf": [{"type": "integer"}, {"minimum": 2}]})"),
            "json_schema #/oneOf: its alternatives may overlap, so an output could match more than one: oneOf is "
            "enforced when they differ in type or in a required const property (use anyOf otherwise)");
  EXPECT_NE(ErrorOf(R"({"oneOf": [{"type": "integer"}, {"type": "number"}]})"), "");
}

TEST(JsonSchema, RefusalsSayWhereAndWhy) {
  EXPECT_EQ(ErrorOf(R"({"properties": {"n": {"type": "number", "multipleOf": 3}}})"),
            "json_schema #/properties/n: 'multipleOf' is not supported");
  EXPECT_EQ(ErrorOf(R"({"$ref": "http://example.com/s.json"})"),
            "json_schema #/$ref: $ref 'http://example.com/s.json' is not within this schema (only '#...' refs are)");
  EXPECT_EQ(ErrorOf(R"j({"type": "string", "pattern": "(a)\\1"})j"),
            "json_schema #/pattern: pattern at offset 5: '\\1' (backreferences and word boundaries) is not supported");
  EXPECT_EQ(ErrorOf(R"j({"type": "string", "pattern": "a(?=b)"})j"),
            "json_schema #/pattern: pattern at offset 2: lookahead, lookbehind and inline flags are not supported");
  EXPECT_EQ(ErrorOf(R"({"type": "string", "format": "email"})"),
            "json_schema #/format: 'email' is not supported (date, time, date-time, uuid, ipv4 are)");
  EXPECT_EQ(ErrorOf(R"({"type": "number", "minimum": 0.5})"),
            "json_schema #: a number's bounds must be whole numbers (use type integer, or scale the value)");
  // Recursion without a base case.
  EXPECT_NE(ErrorOf(R"({"type": "object", "properties": {"next": {"$ref": "#"}}, "required": ["next"]})")
                .find("no finite JSON value satisfies the schema"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"$ref": "#"})").find("no finite JSON value"), std::string::npos);
  EXPECT_EQ(ErrorOf("false"), "json_schema #: the schema 'false' accepts no value");
}

TEST(JsonSchema, HugeEnumsAndDeepSchemasAreRefusedQuickly) {
  Json big = {{"enum", Json::array()}};
  for (int i = 0; i < 5000; ++i) big["enum"].push_back(i);
  EXPECT_EQ(JsonSchemaToGbnf(big).status().code(), absl::StatusCode::kResourceExhausted);
  Json deep = {{"type", "integer"}};
  for (int i = 0; i < 100; ++i) deep = {{"type", "array"}, {"items", deep}};
  EXPECT_EQ(JsonSchemaToGbnf(deep).status().code(), absl::StatusCode::kResourceExhausted);
  Json wide = {{"type", "object"}, {"properties", Json::object()}};
  for (int i = 0; i < 20000; ++i) {
    wide["properties"][std::string(60, 'k') + std::to_string(i)] = {{"type", "string"}, {"maxLength", 5}};
  }
  const absl::Status too_wide = JsonSchemaToGbnf(wide).status();
  EXPECT_EQ(too_wide.code(), absl::StatusCode::kResourceExhausted) << too_wide;
}

TEST(JsonSchema, APathologicalPatternIsBoundedNotBacktracked) {
  // Nested quantifiers that make backtracking engines take exponential time:
  // here a grammar whose ambiguity the automaton bounds (4,096 ways at most).
  absl::StatusOr<std::string> gbnf =
      JsonSchemaToGbnf(Json::parse(R"({"type": "string", "pattern": "^((a{1,50}){1,50}){1,50}b$"})"));
  ASSERT_TRUE(gbnf.ok()) << gbnf.status();
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
  GrammarAutomaton automaton(ByteGrammar::FromGbnf(*gbnf).value(),
                             std::make_shared<TokenTrie>(pieces, std::vector<int32_t>{}));
  absl::StatusOr<StateId> state = automaton.Advance(automaton.Start().value(), "\"" + std::string(60, 'a'));
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(state.status().message().find("too ambiguous"), std::string::npos);
}

TEST(JsonSchema, JsonObjectGrammarTakesAnyObject) {
  auto grammar = ByteGrammar::FromGbnf(JsonObjectGbnf());
  ASSERT_TRUE(grammar.ok()) << grammar.status();
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
  GrammarAutomaton a(*grammar, std::make_shared<TokenTrie>(pieces, std::vector<int32_t>{}));
  const auto accepts = [&](std::string_view t) {
    const StateId s = a.Advance(*a.Start(), t).value();
    return s != kDeadState && a.Accepting(s);
  };
  EXPECT_TRUE(accepts(R"({"a": [1, 2.5e-3, {"b": null}], "c": "\u00e9\n"})"));
  EXPECT_FALSE(accepts(R"([1])"));
  EXPECT_FALSE(accepts(R"({"a": 01})"));
}

}  // namespace
}  // namespace edgellm::grammar
