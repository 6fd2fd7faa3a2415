// Constrained decoding end to end in the engine: a random-weight model, whose
// free output is noise, produces output the grammar accepts for every seed,
// temperature and sampler setting, with speculative drafts too.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "daemon/engine/generator.h"
#include "daemon/engine/token_trie_of.h"
#include "daemon/grammar/grammar_automaton.h"
#include "daemon/grammar/json_schema.h"
#include "tests/support/model_fixtures.h"

namespace edgellm::engine {
namespace {

using Json = nlohmann::ordered_json;

class ConstrainedGenerationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = edgellm::testing::LoadModel(edgellm::testing::SyntheticModel("test-qwen2", GgmlType::kF32));
    ASSERT_NE(model_, nullptr);
    trie_ = TokenTrieOf(model_->tokenizer());
  }

  std::shared_ptr<grammar::GrammarAutomaton> Automaton(const std::string& gbnf) {
    auto compiled = grammar::ByteGrammar::FromGbnf(gbnf);
    EXPECT_TRUE(compiled.ok()) << compiled.status();
    return std::make_shared<grammar::GrammarAutomaton>(*compiled, trie_);
  }

  std::unique_ptr<LlamaModel> model_;
  std::shared_ptr<const grammar::TokenTrie> trie_;
};

const char* kDeviceCommand = R"({"type": "object", "properties": {
    "action": {"enum": ["set_temp", "fan_on", "fan_off"]},
    "value": {"type": "integer", "minimum": 5, "maximum": 30},
    "zone": {"type": "string", "pattern": "^[A-Z][0-9]{2}$"},
    "note": {"type": "string", "maxLength": 12}},
  "required": ["action", "value"]})";

TEST_F(ConstrainedGenerationTest, EverySeedAndTemperatureGivesJsonTheSchemaAccepts) {
  auto automaton = Automaton(grammar::JsonSchemaToGbnf(Json::parse(kDeviceCommand)).value());
  int outputs = 0;
  for (float temperature : {0.0f, 0.7f, 1.5f}) {
    for (uint64_t seed = 1; seed <= 6; ++seed) {
      GenerateOptions options;
      options.max_tokens = 120;
      options.sampling.temperature = temperature;
      options.sampling.top_k = seed % 2 ? 0 : 40;
      options.sampling.top_p = seed % 3 ? 1.0f : 0.9f;
      options.sampling.min_p = 0.0f;
      options.sampling.repeat_penalty = seed % 2 ? 1.0f : 1.3f;
      options.sampling.seed = seed;
      options.grammar = automaton;
      auto result = Generate(*model_, "Set the living room to 21 degrees:", options);
      ASSERT_TRUE(result.ok()) << result.status();
      ASSERT_EQ(result->finish_reason, FinishReason::kStop) << result->text;
      const Json json = Json::parse(result->text, nullptr, false);
      ASSERT_FALSE(json.is_discarded()) << result->text;
      const std::string action = json.at("action");
      EXPECT_TRUE(action == "set_temp" || action == "fan_on" || action == "fan_off") << result->text;
      EXPECT_TRUE(json.at("value").is_number_integer());
      EXPECT_GE(json.at("value").get<int>(), 5);
      EXPECT_LE(json.at("value").get<int>(), 30);
      if (json.contains("zone")) {
        EXPECT_EQ(json["zone"].get<std::string>().size(), 3u) << result->text;
      }
      if (json.contains("note")) {
        EXPECT_LE(json["note"].get<std::string>().size(), 12u * 4) << result->text;
      }
      ++outputs;
    }
  }
  EXPECT_EQ(outputs, 18);
  // Free output of the same model is not JSON: the grammar did the work.
  GenerateOptions free;
  free.max_tokens = 30;
  free.sampling.seed = 1;
  auto noise = Generate(*model_, "Set the living room to 21 degrees:", free);
  ASSERT_TRUE(noise.ok());
  EXPECT_TRUE(Json::parse(noise->text, nullptr, false).is_discarded()) << noise->text;
}

TEST_F(ConstrainedGenerationTest, SpeculativeDraftsAreCheckedAgainstTheGrammar) {
  // A grammar the prompt's own text would satisfy, so prompt lookup proposes drafts.
  auto automaton = Automaton(R"(root ::= ("the cat sat on the mat" | " and ")+ ".")");
  for (int32_t draft_tokens : {0, 4}) {
    GenerateOptions options;
    options.max_tokens = 60;
    options.sampling.temperature = 0.0f;
    options.grammar = automaton;
    options.draft_tokens = draft_tokens;
    auto plain = Generate(*model_, "the cat sat on the mat and the cat sat on the mat", options);
    ASSERT_TRUE(plain.ok()) << plain.status();
    EXPECT_TRUE(automaton->Accepting(automaton->Advance(automaton->Start().value(), plain->text).value()) ||
                plain->finish_reason == FinishReason::kLength)
        << plain->text;
    if (draft_tokens == 0) continue;
    options.draft_tokens = 0;
    auto reference = Generate(*model_, "the cat sat on the mat and the cat sat on the mat", options);
    ASSERT_TRUE(reference.ok());
    EXPECT_EQ(plain->token_ids, reference->token_ids) << "greedy output is the same with drafts";
    EXPECT_GT(plain->drafted_tokens, 0);
  }
}

TEST_F(ConstrainedGenerationTest, TheGenerationEndsWhenTheGrammarIsComplete) {
  auto automaton = Automaton(R"(root ::= "yes" | "no")");
  GenerateOptions options;
  options.max_tokens = 50;
  options.ignore_eos = true;
  options.grammar = automaton;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    options.sampling.seed = seed;
    auto result = Generate(*model_, "Is it raining?", options);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_TRUE(result->text == "yes" || result->text == "no") << result->text;
    EXPECT_EQ(result->finish_reason, FinishReason::kStop);
  }
}

TEST_F(ConstrainedGenerationTest, AGrammarNoTokenCanContinueFailsClearly) {
  // A vocabulary seen without any token that holds '{': the grammar cannot be followed.
  std::vector<std::string> pieces;
  for (TokenId id = 0; id < model_->tokenizer().vocab_size(); ++id) {
    const std::string piece = model_->tokenizer().TokenToPiece(id);
    pieces.push_back(piece.find('{') == std::string::npos ? piece : "");
  }
  auto compiled = grammar::ByteGrammar::FromGbnf(R"(root ::= "{}")").value();
  GenerateOptions options;
  options.max_tokens = 5;
  options.grammar = std::make_shared<grammar::GrammarAutomaton>(
      compiled, std::make_shared<grammar::TokenTrie>(pieces, std::vector<int32_t>{}));
  auto result = Generate(*model_, "hi", options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(result.status().message(),
            "no token of the model's vocabulary can continue the output the grammar requires here");
}

}  // namespace
}  // namespace edgellm::engine
