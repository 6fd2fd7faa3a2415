#include "daemon/engine/spm_tokenizer.h"

#include <cstdio>

#include "absl/strings/str_replace.h"
#include "daemon/engine/symbol_merge.h"

namespace edgellm::engine {
namespace {

constexpr char kSpaceMark[] = "\xe2\x96\x81";  // U+2581

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> SpmTokenizer::Create(Vocab vocab) {
  if (vocab.scores.size() != vocab.tokens.size()) {
    return absl::InvalidArgumentError("tokenizer: the llama tokenizer needs one score per token");
  }
  return std::unique_ptr<Tokenizer>(new SpmTokenizer(std::move(vocab)));
}

SpmTokenizer::SpmTokenizer(Vocab vocab) : Tokenizer(std::move(vocab)) {
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    TokenId id = Lookup(name);
    if (id < 0) id = Lookup(std::string(1, static_cast<char>(b)));
    byte_tokens_[b] = id;
  }
}

void SpmTokenizer::AppendSymbol(std::string_view symbol, std::vector<TokenId>* out) const {
  if (TokenId id = Lookup(symbol); id >= 0) {
    out->push_back(id);
    return;
  }
  for (char c : symbol) {
    const TokenId id = byte_tokens_[static_cast<uint8_t>(c)];
    if (id >= 0) {
      out->push_back(id);
    } else if (vocab_.unk_id >= 0) {
      out->push_back(vocab_.unk_id);
    }
  }
}

void SpmTokenizer::EncodeText(std::string_view raw, bool after_special, std::vector<TokenId>* out) const {
  std::string text;
  if (vocab_.add_space_prefix && after_special) text = " ";
  text.append(raw);
  text = absl::StrReplaceAll(text, {{" ", kSpaceMark}});
  if (text.empty()) return;

  const MergePriority by_score = [this](std::string_view, std::string_view,
                                       std::string_view merged) -> std::optional<double> {
    const TokenId id = Lookup(merged);
    if (id < 0) return std::nullopt;
    return vocab_.scores[id];
  };
  for (std::string_view piece : MergeSymbols(text, by_score)) AppendSymbol(piece, out);
}

std::string SpmTokenizer::NormalPiece(TokenId id) const {
  return absl::StrReplaceAll(vocab_.tokens[id], {{kSpaceMark, " "}});
}

}  // namespace edgellm::engine
