#include "daemon/engine/synthetic_vocab.h"

#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <unordered_set>

#include "common/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/engine/bpe_tokenizer.h"
#include "daemon/engine/utf8.h"

namespace edgellm::engine {
namespace {

constexpr int32_t kMinVocab = 300;
constexpr size_t kMaxRandomPieceBytes = 16;

constexpr char kCorpus[] =
    "Once upon a time there was a small robot that lived on a farm at the edge of a quiet town. "
    "Every morning the robot checked the weather, read the sensors in the fields and told the farmer "
    "what it had learned. The farmer liked the robot because it never needed the internet to think. "
    "It kept its own notes, and each night it got a little better at guessing when the rain would come. "
    "One day a storm cut the power lines. The town went dark, but the robot kept working on its battery. "
    "It counted the sheep, it watched the river and it warned the children to stay away from the water. "
    "When the lights came back, the people asked how it knew so much. The robot said that it had listened, "
    "watched and practiced, one small step at a time, and that it would share what it learned, but never "
    "the secrets of the people it helped. Then the robot went back to the barn and waited for the sun. "
    "The next week a new version of its brain arrived from the city. The robot checked the signature, "
    "tried the new brain on a few questions, and only then switched over. If the new brain had been wrong, "
    "it would have gone back to the old one at once. That is why the farmer trusted it with everything.";

std::vector<std::string> CorpusWords() { return absl::StrSplit(kCorpus, ' ', absl::SkipEmpty()); }

// Learns up to `max_merges` byte-pair merges over the corpus words (each word
// as a list of symbols). Ties go to the lexicographically smallest pair.
std::vector<std::pair<std::string, std::string>> LearnMerges(std::vector<std::vector<std::string>> words,
                                                             size_t max_merges) {
  std::vector<std::pair<std::string, std::string>> merges;
  while (merges.size() < max_merges) {
    std::map<std::pair<std::string, std::string>, int> counts;
    for (const auto& w : words) {
      for (size_t i = 1; i < w.size(); ++i) ++counts[{w[i - 1], w[i]}];
    }
    if (counts.empty()) break;
    auto best = counts.begin();
    for (auto it = counts.begin(); it != counts.end(); ++it) {
      if (it->second > best->second) best = it;
    }
    const auto pair = best->first;
    merges.push_back(pair);
    for (auto& w : words) {
      std::vector<std::string> merged;
      for (size_t i = 0; i < w.size(); ++i) {
        if (i + 1 < w.size() && w[i] == pair.first && w[i + 1] == pair.second) {
          merged.push_back(pair.first + pair.second);
          ++i;
        } else {
          merged.push_back(w[i]);
        }
      }
      w = std::move(merged);
    }
  }
  return merges;
}

std::vector<std::string> SplitChars(std::string_view text) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = Utf8SequenceLength(text, pos);
    out.emplace_back(text.substr(pos, n));
    pos += n;
  }
  return out;
}

// Adds merged pieces of random token pairs from `pool` until `tokens` has
// `size` entries; calls `on_merge(left, right)` for each.
template <typename OnMerge>
void GrowRandomly(std::vector<std::string>& tokens, std::vector<std::string> pool, int32_t size, uint64_t seed,
                  OnMerge on_merge) {
  std::unordered_set<std::string> present(tokens.begin(), tokens.end());
  std::mt19937_64 rng(seed);
  while (static_cast<int32_t>(tokens.size()) < size) {
    const std::string& a = pool[rng() % pool.size()];
    const std::string& b = pool[rng() % pool.size()];
    std::string merged = a + b;
    if (merged.size() > kMaxRandomPieceBytes || !present.insert(merged).second) continue;
    on_merge(a, b);
    tokens.push_back(merged);
    pool.push_back(std::move(merged));
  }
}

absl::Status CheckSize(int32_t size) {
  if (size < kMinVocab) {
    return absl::InvalidArgumentError(edgellm::StrCat("vocabulary size ", size, " is below ", kMinVocab));
  }
  return absl::OkStatus();
}

}  // namespace

Vocab SpmBaseVocab() {
  Vocab v;
  v.model = "llama";
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.kinds = {TokenKind::kUnknown, TokenKind::kControl, TokenKind::kControl};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    v.tokens.push_back(name);
    v.kinds.push_back(TokenKind::kByte);
  }
  v.scores.assign(v.tokens.size(), 0.0f);
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  v.add_bos = true;
  v.add_space_prefix = true;
  return v;
}

absl::StatusOr<Vocab> MakeSpmVocab(int32_t size, uint64_t seed) {
  if (absl::Status s = CheckSize(size); !s.ok()) return s;
  Vocab v = SpmBaseVocab();
  auto add_piece = [&](std::string piece) {
    v.scores.push_back(-static_cast<float>(v.tokens.size()));
    v.tokens.push_back(std::move(piece));
    v.kinds.push_back(TokenKind::kNormal);
  };

  const std::string mark = "\xe2\x96\x81";
  std::vector<std::vector<std::string>> words;
  std::set<std::string> chars;
  for (const std::string& w : CorpusWords()) {
    words.push_back(SplitChars(edgellm::StrCat(mark, w)));
    chars.insert(words.back().begin(), words.back().end());
  }
  std::vector<std::string> pool;
  for (const std::string& c : chars) {
    if (static_cast<int32_t>(v.tokens.size()) >= size) break;
    add_piece(c);
    pool.push_back(c);
  }
  std::unordered_set<std::string> present(v.tokens.begin(), v.tokens.end());
  for (const auto& [a, b] : LearnMerges(std::move(words), static_cast<size_t>(size) - v.tokens.size())) {
    if (static_cast<int32_t>(v.tokens.size()) >= size) break;
    if (!present.insert(a + b).second) continue;  // two merges can spell the same piece
    add_piece(a + b);
    pool.push_back(a + b);
  }
  const size_t learned = v.tokens.size();
  GrowRandomly(v.tokens, pool, size, seed, [](const std::string&, const std::string&) {});
  for (size_t i = learned; i < v.tokens.size(); ++i) {
    v.scores.push_back(-static_cast<float>(i));
    v.kinds.push_back(TokenKind::kNormal);
  }
  return v;
}

absl::StatusOr<Vocab> MakeBpeVocab(int32_t size, uint64_t seed) {
  if (absl::Status s = CheckSize(size); !s.ok()) return s;
  Vocab v;
  v.model = "gpt2";
  v.pre = "smollm";  // as SmolLM, whose shape smol-135m mirrors: digits split apart
  v.tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  v.kinds.assign(3, TokenKind::kControl);
  std::vector<std::string> pool;
  for (int b = 0; b < 256; ++b) {
    std::string symbol;
    AppendUtf8(Gpt2ByteToCodePoint(static_cast<uint8_t>(b)), &symbol);
    v.tokens.push_back(symbol);
    pool.push_back(symbol);
  }
  // Words as the pre-tokenizer would see them: a leading space joins the word.
  std::vector<std::vector<std::string>> words;
  bool first = true;
  for (const std::string& w : CorpusWords()) {
    std::string mapped;
    for (char c : first ? w : " " + w) {
      AppendUtf8(Gpt2ByteToCodePoint(static_cast<uint8_t>(c)), &mapped);
    }
    words.push_back(SplitChars(mapped));
    first = false;
  }
  std::unordered_set<std::string> present(v.tokens.begin(), v.tokens.end());
  for (const auto& [a, b] : LearnMerges(std::move(words), static_cast<size_t>(size) - v.tokens.size())) {
    if (static_cast<int32_t>(v.tokens.size()) >= size) break;
    v.merges.push_back(edgellm::StrCat(a, " ", b));
    if (!present.insert(a + b).second) continue;  // two merges can spell the same token
    v.tokens.push_back(a + b);
    pool.push_back(a + b);
  }
  GrowRandomly(v.tokens, pool, size, seed,
               [&](const std::string& a, const std::string& b) { v.merges.push_back(edgellm::StrCat(a, " ", b)); });
  v.kinds.resize(v.tokens.size(), TokenKind::kNormal);
  v.bos_id = 0;
  v.eos_id = 0;
  v.eot_id = 2;
  v.add_bos = false;
  return v;
}

}  // namespace edgellm::engine
