// engine/generation_state.h — the per-sequence decisions of a generation:
// sample the next token, stop on EOS, a stop string, max_tokens or a full
// context, and release text only when it is safe to show. The caller owns the
// model calls, so the same logic serves the one-sequence Generate loop and a
// server's batched scheduler.
#ifndef EDGELLM_ENGINE_GENERATION_STATE_H_
#define EDGELLM_ENGINE_GENERATION_STATE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "daemon/engine/sampler.h"
#include "daemon/grammar/grammar_automaton.h"
#include "daemon/engine/text_streamer.h"
#include "daemon/engine/token_logprobs.h"
#include "daemon/engine/tokenizer.h"

namespace edgellm::engine {

class LlamaModel;
class LoraAdapter;

struct GenerateOptions {
  int32_t max_tokens = 128;
  SamplingParams sampling;
  std::vector<std::string> stop;  // generation ends before the first of these
  bool add_special = true;        // BOS (and EOS) as the model asks
  bool parse_special = true;      // "<s>" in the prompt is the BOS token
  bool ignore_eos = false;        // keep going past EOS (benchmarks)
  // Speculative decoding: up to this many tokens drafted per step (by the
  // draft model, or by prompt lookup without one) and checked in one forward;
  // 0 turns it off. The output's distribution is unchanged (greedy: the
  // output itself).
  int32_t draft_tokens = 0;
  // What one more row adds to a step of the model, as a share of a one-row
  // step (MeasureRowCost in draft_length.h): drafting then stops where it
  // would cost more time than it saves. 0: drafts are judged by acceptance alone.
  double draft_row_cost = 0.0;
  // The draft model (same vocabulary, not owned); prompt lookup when null.
  const LlamaModel* draft_model = nullptr;
  // A LoRA adapter made for the model, applied unmerged (not owned); nullptr: none.
  const LoraAdapter* adapter = nullptr;
  // Per-token log-probabilities (token_logprobs.h) with this many of the
  // likeliest alternatives; -1: none computed.
  int32_t top_logprobs = -1;
  // The output follows this grammar: tokens it refuses are masked before
  // sampling, the end comes only where it may, and generation stops once it
  // is complete. Built for the model's vocabulary (TokenTrieOf); shared by
  // the requests of one grammar. Null: free text.
  std::shared_ptr<grammar::GrammarAutomaton> grammar;
  // With a grammar: the output is free until this text appears in it, and
  // follows the grammar from the text's start on (a tool call after prose).
  // "": the grammar holds from the first token.
  std::string grammar_trigger;
};

enum class FinishReason { kStop, kLength, kCancelled };
std::string_view FinishReasonName(FinishReason reason);

// InvalidArgument naming the problem: bad sampling options, max_tokens not
// positive, an empty prompt, or a prompt that leaves no room in the context.
absl::Status ValidateGeneration(absl::Span<const TokenId> prompt_ids, const GenerateOptions& options,
                                int32_t context_length);

// Not thread-safe: one per sequence, used by one thread at a time.
class GenerationState {
 public:
  // `tokenizer` must outlive the state. Call ValidateGeneration first.
  GenerationState(const Tokenizer& tokenizer, std::vector<TokenId> prompt_ids, const GenerateOptions& options,
                  int32_t context_length);

  struct Step {
    TokenId token = -1;           // the last token sampled; -1 when the step ended on EOS
    std::vector<TokenId> tokens;  // every token this step added (more than one when drafts stood)
    std::string text;             // text that became safe to show
    bool finished = false;
    FinishReason finish_reason = FinishReason::kLength;
    int32_t accepted_drafts = 0;  // drafts that stood (AdvanceSpeculative)
    std::vector<TokenLogprobs> logprobs;  // one per entry of `tokens`, when options.top_logprobs >= 0
    // Not OK when the generation cannot go on (a grammar that outgrew its
    // limits, or that no token can continue); `finished` is then set too.
    absl::Status status;
  };
  // Samples from the logits that follow the sequence's last token. Unless the
  // step finished, the caller runs `token` through the model next.
  Step Advance(absl::Span<const float> logits);

  // A speculative step: the model ran the last token and then `drafts`, and
  // `logits` holds a row after each (drafts.size() + 1 rows). Samples row
  // after row with the draft rule while each sample equals its draft. Of the
  // drafts the model ran, the first accepted_drafts stand; the caller drops
  // the rest from the KV cache and runs `token` next, as after Advance.
  Step AdvanceSpeculative(absl::Span<const float> logits, absl::Span<const DraftToken> drafts);

  const std::vector<TokenId>& prompt_ids() const { return prompt_ids_; }
  const std::vector<TokenId>& generated() const { return generated_; }
  const std::string& text() const { return text_; }  // all text released so far
  // Prompt and generated tokens: the sequence as the model has seen it.
  const std::vector<TokenId>& history() const { return history_; }

  // How many of `drafts`, in order, the grammar lets stand (all of them
  // without a grammar in force): drafts beyond are not worth checking.
  size_t GrammarAllowedDrafts(absl::Span<const TokenId> drafts);

 private:
  Step AdvanceOne(absl::Span<const float> logits, const DraftToken* draft);
  bool grammar_active() const { return grammar_state_ > grammar::kDeadState; }
  // Follows the output with the grammar after `piece` was added to it.
  absl::Status FollowGrammar(TokenId token, const std::string& piece);

  const Tokenizer& tokenizer_;
  GenerateOptions options_;
  int32_t context_length_;
  std::vector<TokenId> prompt_ids_;
  std::vector<TokenId> history_;  // prompt and generated, for the repetition penalty
  std::vector<TokenId> generated_;
  std::string text_;
  Sampler sampler_;
  TextStreamer streamer_;
  // The grammar's state while it is in force; -1 before (or without) it.
  grammar::StateId grammar_state_ = -1;
  bool awaiting_trigger_ = false;
  std::string since_trigger_search_;  // output bytes that may hold the start of the trigger
  absl::Status grammar_error_;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_GENERATION_STATE_H_
