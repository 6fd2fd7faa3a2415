#include "daemon/grammar/grammar_automaton.h"

#include <gtest/gtest.h>

#include <random>

#include "daemon/grammar/gbnf_parser.h"

namespace edgellm::grammar {
namespace {

std::shared_ptr<const TokenTrie> Bytes() {
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
  return std::make_shared<TokenTrie>(pieces, std::vector<int32_t>{});
}

// Whether the grammar accepts `text` whole.
bool Accepts(std::string_view gbnf, std::string_view text) {
  auto grammar = ByteGrammar::FromGbnf(gbnf);
  EXPECT_TRUE(grammar.ok()) << grammar.status();
  if (!grammar.ok()) return false;
  GrammarAutomaton automaton(*grammar, Bytes());
  const StateId end = automaton.Advance(*automaton.Start(), text).value();
  return end != kDeadState && automaton.Accepting(end);
}

std::string ErrorOf(std::string_view gbnf) {
  absl::StatusOr<GrammarRules> rules = ParseGbnf(gbnf);
  return rules.ok() ? "" : std::string(rules.status().message());
}

TEST(Gbnf, LiteralsClassesGroupsAndRepetitions) {
  const char* g = R"(root ::= "{" pair ("," pair)* "}"
pair ::= [a-z]+ ":" ( [0-9]{1,3} | "null" )  # a comment
)";
  EXPECT_TRUE(Accepts(g, "{a:1}"));
  EXPECT_TRUE(Accepts(g, "{ab:123,c:null}"));
  EXPECT_FALSE(Accepts(g, "{ab:1234}"));
  EXPECT_FALSE(Accepts(g, "{:1}"));
  EXPECT_FALSE(Accepts(g, "{a:1"));
  EXPECT_TRUE(Accepts("root ::= \"x\"{2,} \"y\"?", "xxxy"));
  EXPECT_FALSE(Accepts("root ::= \"x\"{2,} \"y\"?", "xy"));
  EXPECT_TRUE(Accepts("root ::= (\"ab\"){,2}", ""));
  EXPECT_TRUE(Accepts("root ::= (\"ab\"){,2}", "abab"));
  EXPECT_FALSE(Accepts("root ::= (\"ab\"){,2}", "ababab"));
  EXPECT_TRUE(Accepts("root ::= \"a\"\n  | \"b\"", "b"));
  EXPECT_TRUE(Accepts("root ::= (\n \"a\"\n \"b\" )", "ab"));
}

TEST(Gbnf, CharacterClassesWorkOnUtf8WhateverTheBytesSplit) {
  EXPECT_TRUE(Accepts("root ::= [^a]", "é"));
  EXPECT_TRUE(Accepts("root ::= [^a]", "\xF0\x9F\x98\x80"));  // U+1F600
  EXPECT_FALSE(Accepts("root ::= [^a]", "a"));
  EXPECT_FALSE(Accepts("root ::= [^a]", "\xC3"));          // half a character
  EXPECT_FALSE(Accepts("root ::= [^a]", "\xED\xA0\x80"));  // a surrogate is not UTF-8
  EXPECT_TRUE(Accepts("root ::= [α-ω]+ \"✓\"", "λμ✓"));
  EXPECT_FALSE(Accepts("root ::= [α-ω]+", "Ω"));
  EXPECT_TRUE(Accepts("root ::= \"\\u00e9\\x41\\n\"", "éA\n"));
  EXPECT_TRUE(Accepts("root ::= .", "\n"));
  // Every code point of a range, at every boundary of UTF-8's lengths.
  for (uint32_t cp : {0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    std::string utf8;
    if (cp < 0x80) {
      utf8 = std::string(1, static_cast<char>(cp));
    } else if (cp < 0x800) {
      utf8 = {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
    } else if (cp < 0x10000) {
      utf8 = {static_cast<char>(0xE0 | (cp >> 12)), static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
              static_cast<char>(0x80 | (cp & 0x3F))};
    } else {
      utf8 = {static_cast<char>(0xF0 | (cp >> 18)), static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
              static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
    }
    EXPECT_TRUE(Accepts("root ::= [\\x7F-\\U0010FFFF]", utf8)) << std::hex << cp;
    EXPECT_FALSE(Accepts("root ::= [\\x00-\\x7E]", utf8.size() > 1 ? utf8 : "\x7F")) << std::hex << cp;
  }
}

TEST(Gbnf, RefusalsNameTheRuleAndWhereItIs) {
  EXPECT_EQ(ErrorOf("root ::= item\n"), "grammar line 1 column 10: rule 'item' is used but never defined");
  EXPECT_EQ(ErrorOf("root ::= a\na ::= a \"x\" | \"y\"\n"),
            "grammar line 2 column 1: rule 'a' is left-recursive: a -> a");
  EXPECT_EQ(ErrorOf("root ::= \"{\" x\nx ::= \"a\" x\n"),
            "grammar line 2 column 1: rule 'x' can never finish, so the grammar accepts nothing");
  EXPECT_EQ(ErrorOf("start ::= \"a\""), "grammar: there is no rule 'root'");
  EXPECT_EQ(ErrorOf("root ::= \"a\"\nroot ::= \"b\""), "grammar line 2 column 1: rule 'root' is defined twice (first at line 1 column 1)");
  EXPECT_EQ(ErrorOf("root ::= [z-a]"), "grammar line 1 column 13: the range's end comes before its start");
  EXPECT_EQ(ErrorOf("root ::= \"abc"), "grammar line 1 column 10: the literal is not closed with '\"'");
  EXPECT_EQ(ErrorOf("root ::= * \"a\""), "grammar line 1 column 10: '*' follows nothing to repeat");
  EXPECT_EQ(ErrorOf("root ::= [^\\x00-\\U0010FFFF]"),
            "grammar line 1 column 1: rule 'root' can never finish, so the grammar accepts nothing");
}

TEST(Gbnf, LimitsRefuseHugeGrammarsQuickly) {
  GbnfLimits limits;
  EXPECT_EQ(ParseGbnf(std::string(limits.max_text_bytes + 1, ' '), limits).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ParseGbnf("root ::= \"a\"{0,100000}").status().code(), absl::StatusCode::kResourceExhausted);
  const absl::Status deep = ParseGbnf("root ::= " + std::string(1000, '(') + "\"a\"" + std::string(1000, ')')).status();
  EXPECT_EQ(deep.code(), absl::StatusCode::kResourceExhausted) << deep;
  // A long chain of rules is no trouble for the checks.
  std::string chain = "root ::= r0\n";
  for (int i = 0; i < 50000; ++i) chain += "r" + std::to_string(i) + " ::= r" + std::to_string(i + 1) + "\n";
  chain += "r50000 ::= \"end\"\n";
  EXPECT_TRUE(Accepts(chain, "end"));
}

TEST(GrammarAutomaton, ARepetitionAsLongAsYouLikeKeepsOneState) {
  auto grammar = ByteGrammar::FromGbnf("root ::= \"\\\"\" [^\"]* \"\\\"\"").value();
  GrammarAutomaton automaton(grammar, Bytes());
  const StateId inside = automaton.Advance(*automaton.Start(), "\"").value();
  EXPECT_EQ(automaton.Advance(inside, std::string(10000, 'x')).value(), inside);
  EXPECT_TRUE(automaton.Complete(automaton.Advance(inside, "abc\"").value()));
  EXPECT_LT(automaton.state_count(), 6u);
}

TEST(GrammarAutomaton, AnAmbiguousGrammarIsRefusedNotExplored) {
  std::string g = "root ::= ";
  for (int i = 0; i < 13; ++i) g += "(\"a\" | \"a\" \"a\")? ";
  auto grammar = ByteGrammar::FromGbnf(g + "\"b\"").value();
  AutomatonLimits limits;
  limits.max_stacks = 64;
  GrammarAutomaton automaton(grammar, Bytes(), limits);
  absl::StatusOr<StateId> state = automaton.Advance(*automaton.Start(), "aaaaaa");
  EXPECT_EQ(state.status().code(), absl::StatusCode::kResourceExhausted);
}

// The trie walk allows exactly the tokens whose bytes the grammar takes.
TEST(GrammarAutomaton, MasksEqualTokenByTokenChecks) {
  std::mt19937 rng(7);
  const std::string alphabet = "{}[]\":, ab01\xC3\xA9";
  std::vector<std::string> pieces = {""};  // token 0: a control token
  for (int i = 0; i < 3000; ++i) {
    std::string piece;
    const int length = 1 + static_cast<int>(rng() % 6);
    for (int j = 0; j < length; ++j) piece += alphabet[rng() % alphabet.size()];
    pieces.push_back(piece);
  }
  auto trie = std::make_shared<TokenTrie>(pieces, std::vector<int32_t>{0});
  auto grammar = ByteGrammar::FromGbnf(R"(root ::= value
value ::= "{" (pair ("," " "? pair)*)? "}" | "[" (value ("," " "? value)*)? "]" | str | [01]+
pair ::= str ":" " "? value
str ::= "\"" [^"]* "\"")").value();
  GrammarAutomaton automaton(grammar, trie);
  StateId state = *automaton.Start();
  const std::string output = R"({"a": [0, {"é": "1 b"}], "b":"x"})";
  int checked = 0;
  for (size_t at = 0; at <= output.size(); ++at) {
    absl::Span<const uint64_t> mask = automaton.Mask(state).value();
    for (int32_t token = 0; token < trie->vocab_size(); ++token) {
      const bool allowed = (mask[token >> 6] >> (token & 63)) & 1;
      bool expected;
      if (token == 0) {
        expected = automaton.Accepting(state);
      } else {
        expected = automaton.AdvanceToken(state, token).value() != kDeadState;
      }
      ASSERT_EQ(allowed, expected) << "token '" << pieces[token] << "' after '" << output.substr(0, at) << "'";
      ++checked;
    }
    if (at < output.size()) state = automaton.Advance(state, output.substr(at, 1)).value();
    ASSERT_NE(state, kDeadState) << output.substr(0, at + 1);
  }
  EXPECT_TRUE(automaton.Complete(state));
  EXPECT_GT(checked, 90000);
}

}  // namespace
}  // namespace edgellm::grammar
