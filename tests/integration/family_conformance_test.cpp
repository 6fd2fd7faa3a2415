// Every architecture and weight type against llama.cpp: synthetic models
// (random weights at each family's layout, a real vocabulary from
// ../shared/vocab-tests) whose greedy output llama.cpp computed, checked in at
// tests/conformance/llama-cpp-greedy.json with the command that made it
// (tests/conformance/make-llama-cpp-references.sh). The file names each
// model's shape, weight type, seed and vocabulary, so the test writes the very
// same file and compares the prompt's ids and 64 greedy tokens, token for token.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon/engine/llama_model.h"
#include "daemon/engine/synthetic_model.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/test_support.h"

namespace edgellm::engine {
namespace {

using edgellm::testing::SharedPath;

const nlohmann::json& References() {
  static const nlohmann::json references = [] {
    std::ifstream in(std::string(EDGELLM_SOURCE_DIR) + "/tests/conformance/llama-cpp-greedy.json");
    return nlohmann::json::parse(in);
  }();
  return references;
}

std::vector<std::string> ModelNames() {
  std::vector<std::string> names;
  for (const nlohmann::json& m : References()["models"]) {
    names.push_back(m["shape"].get<std::string>() + "_" + m["type"].get<std::string>());
  }
  return names;
}

const nlohmann::json& ModelNamed(const std::string& name) {
  for (const nlohmann::json& m : References()["models"]) {
    if (m["shape"].get<std::string>() + "_" + m["type"].get<std::string>() == name) return m;
  }
  static const nlohmann::json none;
  return none;
}

std::string Show(const std::vector<TokenId>& ids) {
  std::string s;
  for (TokenId id : ids) s += " " + std::to_string(id);
  return s;
}

// The largest logit's id.
TokenId Greedy(const std::vector<float>& logits) {
  return static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// How far behind edgellm's top logit llama.cpp's token may be, as a fraction
// of the row's range, for the two to count as tied. With float weights only
// float rounding tells the two apart. With quantized weights llama.cpp rounds
// every activation row to what the type's dot product takes (Q8_0, Q8_1 for
// Q4_1 and Q5_1, Q8_K — one scale per 256 values — for the K-quants and
// IQ4_XS, BF16 for BF16); edgellm's kernels round to 8 bits per 32 values, and
// a prefill of more than 32 rows multiplies float activations by dequantized
// tiles. Near-ties may then fall either way.
float TieFraction(GgmlType type) {
  return type == GgmlType::kF32 || type == GgmlType::kF16 ? 1e-4f : 1e-2f;
}

// Whether `reference` trails the row's top logit by no more than a tie.
bool NearTie(const std::vector<float>& row, TokenId top, TokenId reference, GgmlType type) {
  const auto [low, high] = std::minmax_element(row.begin(), row.end());
  return row[top] - row[reference] <= TieFraction(type) * (*high - *low);
}

class FamilyConformance : public ::testing::TestWithParam<std::string> {};

// For every prompt, two checks against llama.cpp's greedy continuation:
// - teacher-forced: the prompt and llama.cpp's 64 tokens in one forward; at
//   every position edgellm's top token is llama.cpp's, or (for a type whose
//   activations llama.cpp rounds differently) ahead of it by less than a
//   sliver of the logits' spread — never a clear disagreement;
// - free-running, at F32, F16 and Q8_0: edgellm's own greedy decode,
//   one token per forward as a server runs, gives the same 64 tokens, or the
//   same up to a near-tie.
TEST_P(FamilyConformance, GreedyOutputIsLlamaCpps) {
  const nlohmann::json& reference = ModelNamed(GetParam());
  const std::string vocab = SharedPath("vocab-tests/" + reference["vocab"].get<std::string>());
  EDGELLM_REQUIRE_SHARED_FILE(vocab);
  std::optional<ModelShape> shape = FindShape(reference["shape"].get<std::string>());
  ASSERT_TRUE(shape.has_value());
  std::optional<GgmlType> type = GgmlTypeFromName(reference["type"].get<std::string>());
  ASSERT_TRUE(type.has_value());
  const std::string path = (edgellm::testing::TestDir() / "model.gguf").string();
  ASSERT_TRUE(WriteSyntheticModel({*shape, *type, reference["seed"].get<uint64_t>(), vocab}, path).ok());
  std::unique_ptr<LlamaModel> model = edgellm::testing::LoadModel(path);
  ASSERT_NE(model, nullptr);
  const int64_t vocab_size = model->config().n_vocab;

  int positions = 0, agreed = 0;
  for (const nlohmann::json& p : reference["prompts"]) {
    const std::string text = p["text"].get<std::string>();
    const std::vector<TokenId> prompt = p["prompt"].get<std::vector<TokenId>>();
    const std::vector<TokenId> expected = p["greedy"].get<std::vector<TokenId>>();
    ASSERT_GE(expected.size(), 64u);
    EXPECT_EQ(Show(model->tokenizer().Encode(text, /*add_special=*/true, /*parse_special=*/false)), Show(prompt))
        << "the prompt's ids: " << text;

    std::vector<TokenId> forced = prompt;
    forced.insert(forced.end(), expected.begin(), expected.end() - 1);
    std::vector<float> all;
    ASSERT_TRUE(model->ForwardNoCache(forced, &all).ok());
    for (size_t i = 0; i < expected.size(); ++i) {
      const std::vector<float> row(all.begin() + static_cast<int64_t>(prompt.size() - 1 + i) * vocab_size,
                                   all.begin() + static_cast<int64_t>(prompt.size() + i) * vocab_size);
      const TokenId ours = Greedy(row);
      ++positions;
      if (ours == expected[i]) {
        ++agreed;
        continue;
      }
      EXPECT_TRUE(NearTie(row, ours, expected[i], *type))
          << GetParam() << " '" << text << "' token " << i << ": edgellm's top token " << ours
          << " is ahead of llama.cpp's " << expected[i] << " by " << row[ours] - row[expected[i]];
    }

    if (*type != GgmlType::kF32 && *type != GgmlType::kF16 && *type != GgmlType::kQ8_0) continue;
    std::unique_ptr<KvCache> cache = edgellm::testing::NewCache(*model);
    std::vector<float> logits;
    std::vector<TokenId> got;
    ASSERT_TRUE(model->Forward(prompt, cache.get(), false, &logits).ok());
    // Up to the end, or to a near-tie that went the other way: after it the
    // two continue different texts, which the teacher-forced check covers.
    while (got.size() < expected.size()) {
      const TokenId token = Greedy(logits);
      got.push_back(token);
      if (token != expected[got.size() - 1]) {
        EXPECT_TRUE(NearTie(logits, token, expected[got.size() - 1], *type))
            << GetParam() << " '" << text << "': decoding differs at token " << got.size() - 1
            << "\n  got     " << Show(got) << "\n  expected" << Show(expected);
        break;
      }
      ASSERT_TRUE(model->Forward({&token, 1}, cache.get(), false, &logits).ok());
    }
  }
  std::cout << GetParam() << ": edgellm's top token is llama.cpp's at " << agreed << " of " << positions
            << " positions\n";
  EXPECT_GE(agreed, positions * 9 / 10);
}

INSTANTIATE_TEST_SUITE_P(LlamaCpp, FamilyConformance, ::testing::ValuesIn(ModelNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-' || c == '.') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace edgellm::engine
