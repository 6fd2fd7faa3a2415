// engine/tokenizer.h — text <-> token ids from a GGUF file's tokenizer metadata.
//
// Two families share this interface: the llama SentencePiece model
// (`tokenizer.ggml.model = "llama"`: score-ordered merges, byte fallback, a
// leading space unless the file says none) and gpt2-style byte-level BPE
// (`"gpt2"`: the file's regex pre-tokenizer, bytes mapped to printable code
// points, ranked merges). Both split out special tokens first, as llama.cpp
// does: user-defined ones always, control and unknown ones when asked to, so
// "<s>" in text becomes the BOS token only then.
// Tokenizers are immutable after construction and safe to share between threads.
#ifndef EDGELLM_ENGINE_TOKENIZER_H_
#define EDGELLM_ENGINE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "daemon/engine/text_index.h"

namespace edgellm::engine {

class GgufReader;
class GgufWriter;

using TokenId = int32_t;

// `tokenizer.ggml.token_type` values.
enum class TokenKind : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Everything a tokenizer reads from the file.
struct Vocab {
  std::string model;  // "llama" or "gpt2"
  std::string pre;    // gpt2 pre-tokenizer name ("llama-bpe", "qwen2", ...; see bpe_pretokenizer.h)
  std::vector<std::string> tokens;
  std::vector<float> scores;        // llama only; empty otherwise
  std::vector<TokenKind> kinds;     // all kNormal when the file has no types
  std::vector<std::string> merges;  // gpt2 only: "left right", best first
  TokenId bos_id = -1;
  TokenId eos_id = -1;
  TokenId unk_id = -1;
  TokenId eot_id = -1;  // end of turn, for chat models; -1 if none
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;

  // Reads the vocabulary from `tokenizer.ggml.*`; InvalidArgument naming the
  // key for anything missing, inconsistent or out of range.
  static absl::StatusOr<Vocab> FromGguf(const GgufReader& gguf);
  // Sets the `tokenizer.ggml.*` keys that FromGguf reads.
  void WriteTo(GgufWriter& writer) const;
};

class Tokenizer {
 public:
  // The tokenizer for the model in `gguf`; InvalidArgument for an unsupported
  // tokenizer model or a malformed vocabulary.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const GgufReader& gguf);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromVocab(Vocab vocab);
  virtual ~Tokenizer() = default;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text`. `add_special` adds BOS/EOS where the model asks for
  // them; `parse_special` turns the text of control tokens into those tokens
  // (otherwise "<s>" is plain text; user-defined tokens are matched either way). Never fails: bytes the vocabulary lacks
  // fall back to byte tokens (or UNK).
  std::vector<TokenId> Encode(std::string_view text, bool add_special = true,
                              bool parse_special = true) const;

  // The bytes token `id` contributes to generated text: "" for control tokens,
  // the raw byte for byte tokens. An id out of range gives "".
  std::string TokenToPiece(TokenId id) const;
  // Concatenated pieces.
  std::string Decode(absl::Span<const TokenId> ids) const;

  const Vocab& vocab() const { return vocab_; }
  int32_t vocab_size() const { return static_cast<int32_t>(vocab_.tokens.size()); }
  TokenId bos_id() const { return vocab_.bos_id; }
  TokenId eos_id() const { return vocab_.eos_id; }
  // True for tokens that end a generation (EOS, and control tokens like <|im_end|>
  // that the file marks with `tokenizer.ggml.eot_token_id`).
  bool IsEndOfGeneration(TokenId id) const;
  // -1 if `text` is not a token.
  TokenId Lookup(std::string_view text) const;

 protected:
  explicit Tokenizer(Vocab vocab);
  // Appends the ids of a fragment of plain text (no special tokens in it).
  // `after_special` is true when it starts the text or follows a special token.
  virtual void EncodeText(std::string_view text, bool after_special, std::vector<TokenId>* out) const = 0;
  // Piece of a normal or user-defined token.
  virtual std::string NormalPiece(TokenId id) const = 0;

  Vocab vocab_;
  TextIndex token_ids_{&vocab_.tokens};
  std::vector<TokenId> special_ids_;  // longest text first
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_TOKENIZER_H_
