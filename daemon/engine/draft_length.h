// engine/draft_length.h — how many tokens to draft next, from how the last
// drafts fared.
//
// Checking a draft costs a row of compute in the verifying forward whether
// it stands or not, so a sequence whose drafts keep failing should draft less
// and then not at all for a while. After a step whose drafts all stood the
// length grows by two (up to the maximum); after one that kept some, it
// becomes one more than the number kept; after one that kept none, drafting
// pauses for a number of steps that doubles with each such step (up to 32)
// and starts again with one token.
//
// Where an extra row is not nearly free (quantized kernels on a CPU are
// compute-bound: tinyllama Q4_0 checks 4 rows in 2.3 times the time of one),
// the length is also capped by what pays: with a running estimate a of the
// chance that a draft stands, k drafts yield (1 - a^(k+1)) / (1 - a) tokens
// for 1 + row_cost * k the time of a plain step; the length is the k that
// yields most per unit of time, and when no k beats a plain step drafting
// pauses (as above), then probes with one draft to refresh the estimate.
#ifndef EDGELLM_ENGINE_DRAFT_LENGTH_H_
#define EDGELLM_ENGINE_DRAFT_LENGTH_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "daemon/engine/tokenizer.h"

namespace edgellm::engine {

class KvCache;
class LlamaModel;

class DraftLength {
 public:
  // `row_cost`: what one more row adds to a step, as a share of a one-row
  // step (MeasureRowCost); 0: rows are free, acceptance alone decides.
  explicit DraftLength(int32_t max_tokens, double row_cost = 0.0)
      : max_(max_tokens), length_(max_tokens), row_cost_(row_cost) {}

  // Tokens to draft this step (0: do not draft). Call once per step.
  int32_t Next();
  // What the step's check found; a step without drafts changes nothing.
  void Update(int32_t drafted, int32_t accepted);
  // A row cost learnt after construction (as by a RowCostProbe) for the steps from now on.
  void SetRowCost(double row_cost) { row_cost_ = row_cost; }

 private:
  int32_t max_;
  int32_t length_;
  int32_t pause_ = 0;    // steps left without drafting
  int32_t backoff_ = 1;  // the pause after the next step that keeps nothing
  double row_cost_;
  // Drafts checked and drafts that stood, decayed so recent steps count most;
  // the prior is one of two.
  double checked_ = 2.0, stood_ = 1.0;
  bool probe_ = false;  // the next step drafts one token whatever it costs
  // The length that yields most tokens per unit of time, or 0 when none beats a plain step.
  int32_t CostBestLength() const;
};

// What one more row adds to a forward of `model` at a decode position, as a
// share of a one-row forward, measured one timed forward at a time, so that a
// caller with other work (the scheduler, between requests) can run them in
// its idle moments: RowCostFrom the fastest of a few one-row and five-row
// forwards on a scratch cache, after a warm-up of each. Not thread-safe.
class RowCostProbe {
 public:
  explicit RowCostProbe(const LlamaModel& model) : model_(model) {}
  RowCostProbe(const RowCostProbe&) = delete;
  RowCostProbe& operator=(const RowCostProbe&) = delete;
  ~RowCostProbe();

  // Runs the next forward; true once every one has run (or the model could
  // not run one), and row_cost() is final.
  bool RunNext();
  bool done() const { return done_; }
  // 0 until done, and when the model cannot run the forwards.
  double row_cost() const { return row_cost_; }

 private:
  const LlamaModel& model_;
  std::unique_ptr<KvCache> cache_;
  std::vector<TokenId> tokens_;
  std::vector<float> logits_;
  int32_t forwards_run_ = 0;
  double fastest_one_ = 1e30, fastest_several_ = 1e30;
  double row_cost_ = 0.0;
  bool done_ = false;
};

// A RowCostProbe run to the end at once. 0 if the model cannot run it.
double MeasureRowCost(const LlamaModel& model);

// The row cost of a forward of `rows` rows taking `several_seconds` where
// one row takes `one_seconds`, clamped to [0, 2] (timing noise can make it
// negative); 0 for a time that is not positive.
double RowCostFrom(double one_seconds, double several_seconds, int32_t rows);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_DRAFT_LENGTH_H_
