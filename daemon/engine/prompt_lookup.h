// engine/prompt_lookup.h — draft tokens for speculative decoding, looked up
// in the sequence itself (prompt-lookup decoding).
//
// When a model edits or quotes its input — code, a document being revised, a
// form being filled — the next tokens often repeat tokens already in the
// context. The draft is what followed the most recent earlier occurrence of
// the sequence's last n tokens; the model then checks all of it in one
// forward. No draft model, no extra memory.
#ifndef EDGELLM_ENGINE_PROMPT_LOOKUP_H_
#define EDGELLM_ENGINE_PROMPT_LOOKUP_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "daemon/engine/tokenizer.h"

namespace edgellm::engine {

// Up to `max_tokens` tokens that followed the most recent earlier occurrence
// of the last n tokens of `history`, for n from `max_ngram` down to 1; empty
// when no suffix of the history occurred before.
std::vector<TokenId> PromptLookupDraft(absl::Span<const TokenId> history, int32_t max_tokens, int32_t max_ngram = 3);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_PROMPT_LOOKUP_H_
