#include "tools/output_constraint.h"

#include <nlohmann/json.hpp>

#include "common/read_file.h"
#include "common/status_macros.h"
#include "daemon/engine/token_trie_of.h"
#include "daemon/grammar/json_schema.h"

namespace edgellm::tools {

void AddOutputConstraintOptions(CLI::App& cmd, OutputConstraintFiles& files) {
  cmd.add_option("--grammar", files.grammar, "A GBNF grammar file (llama.cpp's form): the output always follows it");
  cmd.add_option("--json-schema", files.json_schema,
                 "A JSON Schema file: the output is always JSON that the schema accepts");
}

absl::StatusOr<OutputConstraint> ReadOutputConstraint(const OutputConstraintFiles& files) {
  if (!files.grammar.empty() && !files.json_schema.empty()) {
    return absl::InvalidArgumentError("--grammar and --json-schema exclude each other");
  }
  OutputConstraint constraint;
  if (!files.grammar.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(constraint.grammar, ReadFileToString(files.grammar, "grammar file"));
  }
  if (!files.json_schema.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(constraint.json_schema, ReadFileToString(files.json_schema, "JSON Schema file"));
  }
  return constraint;
}

absl::StatusOr<std::shared_ptr<grammar::GrammarAutomaton>> CompileOutputConstraint(
    const OutputConstraint& constraint, const engine::LlamaModel& model) {
  std::string gbnf = constraint.grammar;
  if (!constraint.json_schema.empty()) {
    nlohmann::ordered_json schema = nlohmann::ordered_json::parse(constraint.json_schema, nullptr, false);
    if (schema.is_discarded()) return absl::InvalidArgumentError("the --json-schema file is not JSON");
    EDGELLM_ASSIGN_OR_RETURN(gbnf, grammar::JsonSchemaToGbnf(schema));
  }
  if (gbnf.empty()) return nullptr;
  EDGELLM_ASSIGN_OR_RETURN(std::shared_ptr<const grammar::ByteGrammar> compiled, grammar::ByteGrammar::FromGbnf(gbnf));
  return std::make_shared<grammar::GrammarAutomaton>(std::move(compiled), engine::TokenTrieOf(model.tokenizer()));
}

}  // namespace edgellm::tools
