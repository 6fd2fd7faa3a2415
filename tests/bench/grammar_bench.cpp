// edgellm-bench-grammar: what constrained decoding costs on one model.
//
// For each constraint (none; a JSON Schema of an object with 10 fields; a
// recursive JSON grammar, a list of at least 8 JSON values) it prints the grammar's compile
// time, decode tok/s with the grammar against free decoding of as many tokens
// at the same positions and sampling, both with a fresh automaton (cold: every
// state's mask found as the output reaches it) and with the automaton of an
// earlier request (warm: as the daemon's grammar cache serves an app that
// sends the same schema each time), and the automaton's states and memory.
// Figures are medians over --reps runs.
//
// Usage: edgellm-bench-grammar --model FILE [--threads N] [--reps N] [--max-tokens N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "daemon/engine/generator.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/token_trie_of.h"
#include "daemon/grammar/grammar_automaton.h"
#include "daemon/grammar/json_schema.h"

namespace edgellm::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

double Median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

const char* kTenFieldSchema = R"({"type": "object", "properties": {
  "id": {"type": "integer", "minimum": 1, "maximum": 99999},
  "name": {"type": "string", "maxLength": 24},
  "active": {"type": "boolean"},
  "score": {"type": "number", "minimum": 0, "maximum": 100},
  "kind": {"enum": ["sensor", "actuator", "gateway"]},
  "zone": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"},
  "installed": {"type": "string", "format": "date"},
  "serial": {"type": "string", "format": "uuid"},
  "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 4},
  "parent": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 0}]}},
  "required": ["id", "name", "active", "score", "kind", "zone", "installed", "serial", "tags", "parent"],
  "additionalProperties": false})";

struct Args {
  std::string model;
  int32_t threads = 0;
  int32_t reps = 5;
  int32_t max_tokens = 160;
};

int Run(const Args& args) {
  engine::ModelOptions options;
  options.threads = args.threads;
  auto loaded = engine::LlamaModel::Load(args.model, options);
  if (!loaded.ok()) {
    std::cerr << "edgellm-bench-grammar: " << loaded.status().message() << "\n";
    return 1;
  }
  const engine::LlamaModel& model = **loaded;
  const int threads = args.threads > 0 ? args.threads : static_cast<int>(std::thread::hardware_concurrency());
  const std::string prefix = "bench_grammar model=" + std::filesystem::path(args.model).filename().string() +
                             " type=" + std::string(model.weight_type()) + " threads=" + std::to_string(threads);
  const auto print = [&](const std::string& constraint, const char* metric, double value, const char* unit) {
    std::printf("%s constraint=%s metric=%s value=%.6g unit=%s\n", prefix.c_str(), constraint.c_str(), metric, value,
                unit);
    std::fflush(stdout);
  };
  const Clock::time_point trie_start = Clock::now();
  const std::shared_ptr<const grammar::TokenTrie> trie = engine::TokenTrieOf(model.tokenizer());
  print("none", "token_trie_ms", Seconds(trie_start) * 1e3, "ms");
  print("none", "token_trie_nodes", static_cast<double>(trie->nodes().size()), "nodes");

  const std::vector<std::pair<std::string, std::string>> constraints = {
      {"schema-10-fields", grammar::JsonSchemaToGbnf(nlohmann::ordered_json::parse(kTenFieldSchema)).value()},
      // Any JSON values (objects, arrays, strings, numbers, nested without
      // end), at least eight of them, so the output is long whatever the model.
      {"json-recursive", "root ::= \"[\" ws json-value (\",\" ws json-value){7,} ws \"]\"\n" +
                             grammar::JsonObjectGbnf().substr(grammar::JsonObjectGbnf().find('\n') + 1)},
  };
  // One mask where nearly every token is allowed (inside a JSON string: the
  // whole trie is walked), the first time and once the state is known.
  {
    auto string_grammar = grammar::ByteGrammar::FromGbnf(R"(root ::= "\"" [^"\\]* "\"")").value();
    grammar::GrammarAutomaton automaton(string_grammar, trie);
    const grammar::StateId inside = automaton.Advance(automaton.Start().value(), "\"").value();
    Clock::time_point start = Clock::now();
    (void)automaton.Mask(inside);
    print("none", "string_mask_first_ms", Seconds(start) * 1e3, "ms");
    start = Clock::now();
    constexpr int kLookups = 100000;
    for (int i = 0; i < kLookups; ++i) (void)automaton.Mask(inside);
    print("none", "string_mask_again_us", Seconds(start) * 1e6 / kLookups, "us");
  }
  const std::string prompt = "Describe the device as JSON:";
  for (const auto& [name, gbnf] : constraints) {
    // Compile time: schema to GBNF (for the schema), parse, compile, first state.
    std::vector<double> compile_ms;
    for (int32_t rep = 0; rep < args.reps; ++rep) {
      const Clock::time_point start = Clock::now();
      if (name == "schema-10-fields") (void)grammar::JsonSchemaToGbnf(nlohmann::ordered_json::parse(kTenFieldSchema));
      auto compiled = grammar::ByteGrammar::FromGbnf(gbnf);
      grammar::GrammarAutomaton automaton(*compiled, trie);
      (void)automaton.Start();
      compile_ms.push_back(Seconds(start) * 1e3);
    }
    print(name, "compile_ms", Median(compile_ms), "ms");

    std::vector<double> cold, warm, free, tokens;
    std::shared_ptr<grammar::GrammarAutomaton> kept;
    size_t states = 0, memory = 0;
    for (int32_t rep = 0; rep <= args.reps; ++rep) {
      engine::GenerateOptions constrained;
      constrained.max_tokens = args.max_tokens;
      constrained.sampling.temperature = 0.8f;
      constrained.sampling.seed = static_cast<uint64_t>(rep + 1);
      auto fresh = std::make_shared<grammar::GrammarAutomaton>(grammar::ByteGrammar::FromGbnf(gbnf).value(), trie);
      constrained.grammar = fresh;
      auto cold_run = engine::Generate(model, prompt, constrained);
      // The same request again on the automaton an earlier request filled.
      if (kept == nullptr) kept = fresh;
      constrained.grammar = kept;
      auto warm_run = engine::Generate(model, prompt, constrained);
      if (!cold_run.ok() || !warm_run.ok()) {
        std::cerr << "edgellm-bench-grammar: " << (cold_run.ok() ? warm_run.status() : cold_run.status()) << "\n";
        return 1;
      }
      // Free decoding of as many tokens, from the same prompt and sampling.
      engine::GenerateOptions unconstrained = constrained;
      unconstrained.grammar = nullptr;
      unconstrained.ignore_eos = true;
      unconstrained.max_tokens = static_cast<int32_t>(warm_run->token_ids.size());
      auto free_run = engine::Generate(model, prompt, unconstrained);
      if (!free_run.ok()) {
        std::cerr << "edgellm-bench-grammar: " << free_run.status() << "\n";
        return 1;
      }
      if (rep == 0) continue;  // warm-up
      cold.push_back(cold_run->decode_tokens_per_second());
      warm.push_back(warm_run->decode_tokens_per_second());
      free.push_back(free_run->decode_tokens_per_second());
      tokens.push_back(static_cast<double>(warm_run->token_ids.size()));
      states = kept->state_count();
      memory = kept->memory_bytes();
    }
    print(name, "tokens", Median(tokens), "tokens");
    print(name, "free_decode_tok_s", Median(free), "tok/s");
    print(name, "cold_decode_tok_s", Median(cold), "tok/s");
    print(name, "warm_decode_tok_s", Median(warm), "tok/s");
    print(name, "warm_vs_free", Median(warm) / Median(free), "ratio");
    print(name, "cold_vs_free", Median(cold) / Median(free), "ratio");
    print(name, "automaton_states", static_cast<double>(states), "states");
    print(name, "automaton_mib", static_cast<double>(memory) / (1 << 20), "MiB");
  }
  return 0;
}

}  // namespace
}  // namespace edgellm::bench

int main(int argc, char** argv) {
  edgellm::bench::Args args;
  CLI::App app("What constrained decoding costs: compile time, decode tok/s with and without a grammar, mask memory");
  app.add_option("-m,--model", args.model, "GGUF model file")->required();
  app.add_option("-t,--threads", args.threads, "Compute threads (default: one per core)");
  app.add_option("--reps", args.reps, "Measured repetitions (after one warm-up)")->capture_default_str();
  app.add_option("--max-tokens", args.max_tokens, "Tokens per generation at most")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return edgellm::bench::Run(args);
}
