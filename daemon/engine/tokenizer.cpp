#include "daemon/engine/tokenizer.h"

#include <algorithm>
#include <list>
#include <optional>

#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/bpe_pretokenizer.h"
#include "daemon/engine/bpe_tokenizer.h"
#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/gguf_writer.h"
#include "daemon/engine/spm_tokenizer.h"

namespace edgellm::engine {
namespace {

absl::Status VocabError(std::string_view key, std::string_view what) {
  return absl::InvalidArgumentError(edgellm::StrCat("tokenizer: ", key, ": ", what));
}

absl::StatusOr<TokenId> ReadTokenId(const GgufReader& gguf, std::string_view key, size_t n_tokens) {
  EDGELLM_ASSIGN_OR_RETURN(int64_t id, gguf.GetInt(key, -1));
  if (id < -1 || id >= static_cast<int64_t>(n_tokens)) {
    return VocabError(key, edgellm::StrCat("token id ", id, " is outside the vocabulary of ", n_tokens));
  }
  return static_cast<TokenId>(id);
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "<0xAB>" -> 0xAB.
std::optional<uint8_t> ParseByteToken(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return std::nullopt;
  const int hi = HexDigit(t[3]);
  const int lo = HexDigit(t[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(hi * 16 + lo);
}

absl::StatusOr<bool> ReadFlag(const GgufReader& gguf, std::string_view key, bool fallback) {
  EDGELLM_ASSIGN_OR_RETURN(int64_t v, gguf.GetInt(key, fallback ? 1 : 0));
  return v != 0;
}

}  // namespace

absl::StatusOr<Vocab> Vocab::FromGguf(const GgufReader& gguf) {
  Vocab v;
  EDGELLM_ASSIGN_OR_RETURN(v.model, gguf.GetString("tokenizer.ggml.model"));
  if (v.model != "llama" && v.model != "gpt2") {
    return VocabError("tokenizer.ggml.model", edgellm::StrCat("unsupported tokenizer '", v.model,
                                                          "' (llama and gpt2 are supported)"));
  }
  const GgufValue* tokens = gguf.Find("tokenizer.ggml.tokens");
  if (tokens == nullptr) return VocabError("tokenizer.ggml.tokens", "missing");
  EDGELLM_ASSIGN_OR_RETURN(v.tokens, tokens->AsStringArray());
  const size_t n = v.tokens.size();
  if (n == 0 || n > (1u << 24)) return VocabError("tokenizer.ggml.tokens", edgellm::StrCat("bad size ", n));

  if (const GgufValue* scores = gguf.Find("tokenizer.ggml.scores"); scores != nullptr) {
    EDGELLM_ASSIGN_OR_RETURN(v.scores, scores->AsFloatArray());
    if (v.scores.size() != n) {
      return VocabError("tokenizer.ggml.scores", edgellm::StrCat(v.scores.size(), " scores for ", n, " tokens"));
    }
  }
  v.kinds.assign(n, TokenKind::kNormal);
  if (const GgufValue* types = gguf.Find("tokenizer.ggml.token_type"); types != nullptr) {
    EDGELLM_ASSIGN_OR_RETURN(std::vector<int64_t> raw, types->AsIntArray());
    if (raw.size() != n) {
      return VocabError("tokenizer.ggml.token_type", edgellm::StrCat(raw.size(), " types for ", n, " tokens"));
    }
    for (size_t i = 0; i < n; ++i) {
      if (raw[i] < 1 || raw[i] > 6) {
        return VocabError("tokenizer.ggml.token_type", edgellm::StrCat("token ", i, " has type ", raw[i]));
      }
      v.kinds[i] = static_cast<TokenKind>(raw[i]);
    }
  }
  if (const GgufValue* merges = gguf.Find("tokenizer.ggml.merges"); merges != nullptr) {
    EDGELLM_ASSIGN_OR_RETURN(v.merges, merges->AsStringArray());
    if (v.merges.size() > (1u << 24)) {
      return VocabError("tokenizer.ggml.merges", edgellm::StrCat("bad size ", v.merges.size()));
    }
  }
  if (v.model == "gpt2" && v.merges.empty()) {
    return VocabError("tokenizer.ggml.merges", "missing (a gpt2 tokenizer needs its merges)");
  }
  if (const GgufValue* pre = gguf.Find("tokenizer.ggml.pre"); pre != nullptr) {
    EDGELLM_ASSIGN_OR_RETURN(v.pre, pre->AsString());
  }

  const bool is_llama = v.model == "llama";
  EDGELLM_ASSIGN_OR_RETURN(v.bos_id, ReadTokenId(gguf, "tokenizer.ggml.bos_token_id", n));
  EDGELLM_ASSIGN_OR_RETURN(v.eos_id, ReadTokenId(gguf, "tokenizer.ggml.eos_token_id", n));
  EDGELLM_ASSIGN_OR_RETURN(v.unk_id, ReadTokenId(gguf, "tokenizer.ggml.unknown_token_id", n));
  EDGELLM_ASSIGN_OR_RETURN(v.eot_id, ReadTokenId(gguf, "tokenizer.ggml.eot_token_id", n));
  // The llama defaults (BOS 1, EOS 2, UNK 0) apply when a llama file omits them.
  if (is_llama) {
    if (v.bos_id < 0 && n > 1) v.bos_id = 1;
    if (v.eos_id < 0 && n > 2) v.eos_id = 2;
    if (v.unk_id < 0) v.unk_id = 0;
  }
  const bool bos_by_default = is_llama || (v.model == "gpt2" && PreTokenizer::AddsBosByDefault(v.pre));
  EDGELLM_ASSIGN_OR_RETURN(v.add_bos, ReadFlag(gguf, "tokenizer.ggml.add_bos_token", bos_by_default));
  EDGELLM_ASSIGN_OR_RETURN(v.add_eos, ReadFlag(gguf, "tokenizer.ggml.add_eos_token", false));
  EDGELLM_ASSIGN_OR_RETURN(v.add_space_prefix, ReadFlag(gguf, "tokenizer.ggml.add_space_prefix", is_llama));
  if (v.add_bos && v.bos_id < 0) return VocabError("tokenizer.ggml.add_bos_token", "set, but no BOS token");
  return v;
}

void Vocab::WriteTo(GgufWriter& w) const {
  w.Set("tokenizer.ggml.model", GgufValue::String(model));
  if (!pre.empty()) w.Set("tokenizer.ggml.pre", GgufValue::String(pre));
  w.Set("tokenizer.ggml.tokens", GgufValue::StringArray(tokens));
  if (!scores.empty()) w.Set("tokenizer.ggml.scores", GgufValue::Float32Array(scores));
  std::vector<int32_t> types(kinds.size());
  for (size_t i = 0; i < kinds.size(); ++i) types[i] = static_cast<int32_t>(kinds[i]);
  w.Set("tokenizer.ggml.token_type", GgufValue::Int32Array(types));
  if (!merges.empty()) w.Set("tokenizer.ggml.merges", GgufValue::StringArray(merges));
  const std::pair<const char*, TokenId> ids[] = {{"tokenizer.ggml.bos_token_id", bos_id},
                                                 {"tokenizer.ggml.eos_token_id", eos_id},
                                                 {"tokenizer.ggml.unknown_token_id", unk_id},
                                                 {"tokenizer.ggml.eot_token_id", eot_id}};
  for (const auto& [key, id] : ids) {
    if (id >= 0) w.Set(key, GgufValue::Uint32(static_cast<uint32_t>(id)));
  }
  w.Set("tokenizer.ggml.add_bos_token", GgufValue::Bool(add_bos));
  w.Set("tokenizer.ggml.add_eos_token", GgufValue::Bool(add_eos));
  w.Set("tokenizer.ggml.add_space_prefix", GgufValue::Bool(add_space_prefix));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufReader& gguf) {
  EDGELLM_ASSIGN_OR_RETURN(Vocab vocab, Vocab::FromGguf(gguf));
  return FromVocab(std::move(vocab));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromVocab(Vocab vocab) {
  if (vocab.kinds.size() != vocab.tokens.size()) vocab.kinds.assign(vocab.tokens.size(), TokenKind::kNormal);
  if (vocab.model == "llama") return SpmTokenizer::Create(std::move(vocab));
  if (vocab.model == "gpt2") return BpeTokenizer::Create(std::move(vocab));
  return absl::InvalidArgumentError(edgellm::StrCat("tokenizer: unsupported model '", vocab.model, "'"));
}

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
  for (size_t i = 0; i < vocab_.tokens.size(); ++i) {
    const TokenKind k = vocab_.kinds[i];
    if ((k == TokenKind::kControl || k == TokenKind::kUserDefined || k == TokenKind::kUnknown) &&
        !vocab_.tokens[i].empty()) {
      special_ids_.push_back(static_cast<TokenId>(i));
    }
  }
  std::stable_sort(special_ids_.begin(), special_ids_.end(), [this](TokenId a, TokenId b) {
    return vocab_.tokens[a].size() > vocab_.tokens[b].size();
  });
}

TokenId Tokenizer::Lookup(std::string_view text) const {
  return token_ids_.Find(text);
}

bool Tokenizer::IsEndOfGeneration(TokenId id) const {
  return id >= 0 && (id == vocab_.eos_id || id == vocab_.eot_id);
}

std::vector<TokenId> Tokenizer::Encode(std::string_view text, bool add_special, bool parse_special) const {
  // A fragment is either a special token or a span of plain text.
  struct Fragment {
    TokenId token;  // -1 for text
    std::string_view text;
  };
  std::list<Fragment> fragments;
  if (!text.empty()) fragments.push_back({-1, text});
  for (TokenId special : special_ids_) {
    // User-defined tokens are split out of plain text too (llama.cpp and
    // Hugging Face both do so); control and unknown tokens only on request.
    if (!parse_special && vocab_.kinds[special] != TokenKind::kUserDefined) continue;
    const std::string& needle = vocab_.tokens[special];
    for (auto it = fragments.begin(); it != fragments.end(); ++it) {
      if (it->token >= 0) continue;
      const size_t at = it->text.find(needle);
      if (at == std::string_view::npos) continue;
      const std::string_view before = it->text.substr(0, at);
      const std::string_view after = it->text.substr(at + needle.size());
      if (!before.empty()) fragments.insert(it, {-1, before});
      it->token = special;
      it->text = {};
      // Keep scanning the remainder with the same special token.
      if (!after.empty()) fragments.insert(std::next(it), {-1, after});
    }
  }

  std::vector<TokenId> out;
  if (add_special && vocab_.add_bos && vocab_.bos_id >= 0) out.push_back(vocab_.bos_id);
  bool after_special = true;
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
    } else {
      EncodeText(f.text, after_special, &out);
      after_special = false;
    }
  }
  if (add_special && vocab_.add_eos && vocab_.eos_id >= 0) out.push_back(vocab_.eos_id);
  return out;
}

std::string Tokenizer::TokenToPiece(TokenId id) const {
  if (id < 0 || id >= vocab_size()) return "";
  switch (vocab_.kinds[id]) {
    case TokenKind::kControl:
    case TokenKind::kUnused:
      return "";
    case TokenKind::kUnknown:
      return "\xe2\x96\x85";  // U+2585, as llama.cpp renders an unknown token
    case TokenKind::kByte: {
      const std::optional<uint8_t> byte = ParseByteToken(vocab_.tokens[id]);
      return byte ? std::string(1, static_cast<char>(*byte)) : vocab_.tokens[id];
    }
    case TokenKind::kUserDefined:
      return vocab_.tokens[id];
    case TokenKind::kNormal:
      break;
  }
  return NormalPiece(id);
}

std::string Tokenizer::Decode(absl::Span<const TokenId> ids) const {
  std::string out;
  for (TokenId id : ids) out += TokenToPiece(id);
  return out;
}

}  // namespace edgellm::engine
