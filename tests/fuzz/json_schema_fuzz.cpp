// libFuzzer target: JSON Schemas from untrusted requests, turned into GBNF.
// Whatever the converter accepts must be a grammar the GBNF parser accepts
// too (the converter never writes a grammar it cannot run), and it must start;
// any refusal is fine, a crash, a hang or unbounded memory is not.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/grammar/gbnf_parser.h"
#include "daemon/grammar/json_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::ordered_json schema = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return 0;
  edgellm::grammar::JsonSchemaLimits limits;
  limits.max_grammar_bytes = 1 << 18;
  absl::StatusOr<std::string> gbnf = edgellm::grammar::JsonSchemaToGbnf(schema, limits);
  if (!gbnf.ok()) return 0;
  absl::StatusOr<edgellm::grammar::GrammarRules> rules = edgellm::grammar::ParseGbnf(*gbnf);
  if (!rules.ok() && rules.status().code() != absl::StatusCode::kResourceExhausted) {
    // The converter wrote a grammar the parser refuses: a converter bug.
    std::abort();
  }
  return 0;
}
