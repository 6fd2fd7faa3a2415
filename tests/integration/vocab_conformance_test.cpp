// Tokenizer conformance with llama.cpp: its own vocabulary test suites
// (../shared/vocab-tests: a vocabulary-only GGUF per tokenizer, the test
// strings, and the ids llama.cpp's test-tokenizer-0 gives them with no
// BOS/EOS added and special tokens not parsed), read as they are.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/tokenizer.h"
#include "tests/support/test_support.h"

namespace edgellm::engine {
namespace {

using edgellm::testing::SharedPath;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The strings of a .inp file: each ends at "\n__ggml_vocab_test__\n".
std::vector<std::string> ReadCases(const std::string& path) {
  const std::string text = ReadAll(path);
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> cases;
  size_t start = 0;
  for (size_t at = text.find(separator); at != std::string::npos; at = text.find(separator, start)) {
    cases.push_back(text.substr(start, at - start));
    start = at + separator.size();
  }
  return cases;
}

// The ids of a .out file, one line per case.
std::vector<std::vector<TokenId>> ReadExpected(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<TokenId>> expected;
  for (std::string line; std::getline(in, line);) {
    std::istringstream ids(line);
    std::vector<TokenId>& row = expected.emplace_back();
    for (TokenId id; ids >> id;) row.push_back(id);
  }
  return expected;
}

std::string Show(const std::vector<TokenId>& ids) {
  std::string s;
  for (TokenId id : ids) {
    s += ' ';
    s += std::to_string(id);
  }
  return s;
}

class VocabSuite : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabSuite, EveryCaseGivesLlamaCppsIds) {
  const std::string base = SharedPath("vocab-tests/ggml-vocab-" + GetParam() + ".gguf");
  EDGELLM_REQUIRE_SHARED_FILE(base);
  auto gguf = GgufReader::Open(base);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  auto tokenizer = Tokenizer::FromGguf(**gguf);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();

  const std::vector<std::string> cases = ReadCases(base + ".inp");
  const std::vector<std::vector<TokenId>> expected = ReadExpected(base + ".out");
  ASSERT_EQ(cases.size(), expected.size());
  ASSERT_GE(cases.size(), 40u);
  int passed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::vector<TokenId> ids = (*tokenizer)->Encode(cases[i], /*add_special=*/false, /*parse_special=*/false);
    if (ids == expected[i]) {
      ++passed;
      continue;
    }
    ADD_FAILURE() << GetParam() << " case " << i << " '" << cases[i] << "':\n  got     " << Show(ids)
                  << "\n  expected" << Show(expected[i]);
  }
  EXPECT_EQ(passed, static_cast<int>(cases.size()));
}

INSTANTIATE_TEST_SUITE_P(LlamaCpp, VocabSuite,
                         ::testing::Values("llama-spm", "phi-3", "llama-bpe", "qwen2", "gpt-2", "starcoder",
                                           "refact", "mpt", "falcon", "deepseek-llm", "deepseek-coder"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace edgellm::engine
