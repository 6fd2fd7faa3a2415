#include "daemon/engine/bpe_tokenizer.h"

#include <array>

#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/bpe_pretokenizer.h"
#include "daemon/engine/symbol_merge.h"
#include "daemon/engine/utf8.h"

namespace edgellm::engine {
namespace {

// Printable bytes keep their own code point; the other 68 get 256, 257, ...
struct Gpt2ByteTable {
  std::array<uint32_t, 256> to_code_point{};
  Gpt2ByteTable() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
      to_code_point[b] = printable ? static_cast<uint32_t>(b) : next++;
    }
  }
};

const Gpt2ByteTable& ByteTable() {
  static const Gpt2ByteTable table;
  return table;
}

}  // namespace

uint32_t Gpt2ByteToCodePoint(uint8_t byte) { return ByteTable().to_code_point[byte]; }

int Gpt2CodePointToByte(uint32_t cp) {
  if (cp < 256 && ByteTable().to_code_point[cp] == cp) return static_cast<int>(cp);
  if (cp >= 256 && cp < 256 + 68) {
    for (int b = 0; b < 256; ++b) {
      if (ByteTable().to_code_point[b] == cp) return b;
    }
  }
  return -1;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> BpeTokenizer::Create(Vocab vocab) {
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<PreTokenizer> pre, PreTokenizer::ForName(vocab.pre));
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer(std::move(vocab), std::move(pre)));
  for (size_t i = 0; i < t->vocab_.merges.size(); ++i) {
    const std::string& m = t->vocab_.merges[i];
    const size_t space = m.find(' ', 1);
    if (space == std::string::npos || space + 1 >= m.size()) {
      return absl::InvalidArgumentError(edgellm::StrCat("tokenizer.ggml.merges: merge ", i, " '", m,
                                                     "' is not 'left right'"));
    }
  }
  t->merge_ranks_ = TextIndex(&t->vocab_.merges);
  return std::unique_ptr<Tokenizer>(std::move(t));
}

int BpeTokenizer::MergeRank(std::string_view left, std::string_view right) const {
  return merge_ranks_.Find(edgellm::StrCat(left, " ", right));
}

// Byte-level BPE adds no space prefix, whatever the file says (as llama.cpp).
void BpeTokenizer::EncodeText(std::string_view text, bool /*after_special*/, std::vector<TokenId>* out) const {
  std::string mapped;
  for (std::string_view word : pre_->Split(text)) {
    mapped.clear();
    for (char c : word) AppendUtf8(Gpt2ByteToCodePoint(static_cast<uint8_t>(c)), &mapped);
    EncodeWord(mapped, out);
  }
}

void BpeTokenizer::EncodeWord(const std::string& word, std::vector<TokenId>* out) const {
  if (pre_->ignore_merges()) {
    if (TokenId id = Lookup(word); id >= 0) {
      out->push_back(id);
      return;
    }
  }
  const MergePriority by_rank = [this](std::string_view left, std::string_view right,
                                      std::string_view) -> std::optional<double> {
    const int rank = MergeRank(left, right);
    if (rank < 0) return std::nullopt;
    return -static_cast<double>(rank);
  };
  for (std::string_view p : MergeSymbols(word, by_rank)) {
    if (TokenId id = Lookup(p); id >= 0) {
      out->push_back(id);
      continue;
    }
    // Not a token: the tokens of its single bytes, where there are any.
    for (char c : p) {
      if (TokenId id = Lookup(std::string_view(&c, 1)); id >= 0) out->push_back(id);
    }
  }
}

std::string BpeTokenizer::NormalPiece(TokenId id) const {
  const std::string& token = vocab_.tokens[id];
  std::string out;
  for (size_t pos = 0; pos < token.size();) {
    const size_t start = pos;
    const int byte = Gpt2CodePointToByte(Utf8Next(token, &pos));
    if (byte >= 0) {
      out.push_back(static_cast<char>(byte));
    } else {
      out.append(token, start, pos - start);
    }
  }
  return out;
}

}  // namespace edgellm::engine
