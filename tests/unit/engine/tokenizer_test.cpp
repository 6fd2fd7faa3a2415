#include "daemon/engine/tokenizer.h"

#include <gtest/gtest.h>

#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/gguf_writer.h"
#include "daemon/engine/synthetic_vocab.h"

namespace edgellm::engine {
namespace {

absl::StatusOr<Vocab> ThroughGguf(const GgufWriter& w) {
  auto bytes = w.Serialize();
  if (!bytes.ok()) return bytes.status();
  auto reader = GgufReader::FromBytes(*bytes);
  if (!reader.ok()) return reader.status();
  return Vocab::FromGguf(**reader);
}

TEST(Vocab, RoundTripsThroughGguf) {
  for (bool bpe : {false, true}) {
    const Vocab v = *(bpe ? MakeBpeVocab(400, 2) : MakeSpmVocab(400, 2));
    GgufWriter w;
    v.WriteTo(w);
    auto back = ThroughGguf(w);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->model, v.model);
    EXPECT_EQ(back->pre, v.pre);
    EXPECT_EQ(back->tokens, v.tokens);
    EXPECT_EQ(back->scores, v.scores);
    EXPECT_EQ(back->kinds, v.kinds);
    EXPECT_EQ(back->merges, v.merges);
    EXPECT_EQ(back->bos_id, v.bos_id);
    EXPECT_EQ(back->eos_id, v.eos_id);
    EXPECT_EQ(back->eot_id, v.eot_id);
    EXPECT_EQ(back->add_bos, v.add_bos);
    EXPECT_EQ(back->add_space_prefix, v.add_space_prefix);
  }
}

void ExpectVocabError(const std::function<void(GgufWriter&)>& spoil, const std::string& message_part) {
  GgufWriter w;
  SpmBaseVocab().WriteTo(w);
  spoil(w);
  const absl::Status s = ThroughGguf(w).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find(message_part), absl::string_view::npos) << s;
}

TEST(Vocab, MalformedVocabulariesNameTheKey) {
  ExpectVocabError([](GgufWriter& w) { w.Set("tokenizer.ggml.model", GgufValue::String("t5")); }, "'t5'");
  ExpectVocabError([](GgufWriter& w) { w.Set("tokenizer.ggml.scores", GgufValue::Float32Array(std::vector<float>{1})); },
                   "1 scores for 259 tokens");
  ExpectVocabError([](GgufWriter& w) { w.Set("tokenizer.ggml.bos_token_id", GgufValue::Uint32(259)); },
                   "tokenizer.ggml.bos_token_id");
  ExpectVocabError([](GgufWriter& w) { w.Set("tokenizer.ggml.tokens", GgufValue::Uint32(3)); },
                   "expected an array of strings");
  ExpectVocabError(
      [](GgufWriter& w) { w.Set("tokenizer.ggml.token_type", GgufValue::Int32Array(std::vector<int32_t>(259, 9))); },
      "token 0 has type 9");
  // A byte-level BPE vocabulary cannot tokenize without its merges.
  ExpectVocabError([](GgufWriter& w) { w.Set("tokenizer.ggml.model", GgufValue::String("gpt2")); },
                   "tokenizer.ggml.merges: missing");
}

}  // namespace
}  // namespace edgellm::engine
