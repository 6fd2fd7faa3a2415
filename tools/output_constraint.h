// tools/output_constraint.h — --grammar and --json-schema, which `generate`
// and `chat` both take: reading the files, and compiling the constraint for a
// model loaded in this process (a daemon compiles its own).
#ifndef EDGELLM_TOOLS_OUTPUT_CONSTRAINT_H_
#define EDGELLM_TOOLS_OUTPUT_CONSTRAINT_H_

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/engine/llama_model.h"
#include "daemon/grammar/grammar_automaton.h"

namespace edgellm::tools {

// The form the output must take: one of a GBNF grammar or a JSON Schema
// (JSON text), or neither.
struct OutputConstraint {
  std::string grammar;
  std::string json_schema;
};

// The files the options name.
struct OutputConstraintFiles {
  std::string grammar;
  std::string json_schema;
};

// --grammar FILE and --json-schema FILE.
void AddOutputConstraintOptions(CLI::App& cmd, OutputConstraintFiles& files);

// The files' texts. InvalidArgument when both are given, NotFound for an
// unreadable file.
absl::StatusOr<OutputConstraint> ReadOutputConstraint(const OutputConstraintFiles& files);

// The constraint as the engine enforces it over `model`'s vocabulary; null
// when there is none. InvalidArgument names what is wrong with the grammar or
// schema.
absl::StatusOr<std::shared_ptr<grammar::GrammarAutomaton>> CompileOutputConstraint(
    const OutputConstraint& constraint, const engine::LlamaModel& model);

}  // namespace edgellm::tools

#endif  // EDGELLM_TOOLS_OUTPUT_CONSTRAINT_H_
