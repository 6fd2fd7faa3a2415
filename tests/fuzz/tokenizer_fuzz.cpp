// libFuzzer target: arbitrary bytes through both tokenizers. Byte-level BPE
// must give back exactly the input; SentencePiece exactly the input after its
// leading space (unless the input holds the U+2581 space mark itself). Every
// kind of pre-tokenizer must split the input into pieces that make it up.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include <vector>

#include "daemon/engine/bpe_pretokenizer.h"
#include "daemon/engine/synthetic_vocab.h"
#include "daemon/engine/tokenizer.h"

namespace {

std::unique_ptr<edgellm::engine::Tokenizer> Build(bool bpe) {
  auto vocab = bpe ? edgellm::engine::MakeBpeVocab(2000, 1) : edgellm::engine::MakeSpmVocab(2000, 1);
  if (!vocab.ok()) std::abort();
  auto tokenizer = edgellm::engine::Tokenizer::FromVocab(*vocab);
  if (!tokenizer.ok()) std::abort();
  return std::move(*tokenizer);
}

// One of each distinct list of patterns.
std::vector<std::unique_ptr<edgellm::engine::PreTokenizer>> PreTokenizers() {
  std::vector<std::unique_ptr<edgellm::engine::PreTokenizer>> all;
  for (const char* name : {"llama-bpe", "qwen2", "gpt-2", "smollm", "falcon", "deepseek-llm", "deepseek-coder",
                           "default"}) {
    auto pre = edgellm::engine::PreTokenizer::ForName(name);
    if (!pre.ok()) std::abort();
    all.push_back(std::move(*pre));
  }
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto spm = Build(false);
  static const auto bpe = Build(true);
  const std::string text(reinterpret_cast<const char*>(data), size);

  if (bpe->Decode(bpe->Encode(text, false, false)) != text) std::abort();
  const std::string spm_text = spm->Decode(spm->Encode(text, false, false));
  if (text.find("\xe2\x96\x81") == std::string::npos && !text.empty() && spm_text != " " + text) std::abort();
  static const auto pre_tokenizers = PreTokenizers();
  for (const auto& pre : pre_tokenizers) {
    std::string joined;
    for (std::string_view piece : pre->Split(text)) {
      if (piece.empty()) std::abort();
      joined.append(piece);
    }
    if (joined != text) std::abort();
  }
  // Parsing special tokens must never crash either.
  (void)spm->Encode(text, true, true);
  (void)bpe->Encode(text, true, true);
  return 0;
}
