// train/held_out_set.h — the loss of a model version on held-out examples,
// with the engine's own forward: the aggregator's measure of each round's
// version, and a canary's of a release against the version it replaces.
#ifndef EDGELLM_TRAIN_HELD_OUT_SET_H_
#define EDGELLM_TRAIN_HELD_OUT_SET_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"

namespace edgellm::train {

struct HeldOutExample {
  std::vector<engine::TokenId> tokens;
  std::vector<engine::TokenId> labels;  // -1: no loss at this position
};

// Cross-entropy summed over an example's labelled tokens, and their count.
struct LossSum {
  double total = 0.0;
  int64_t tokens = 0;
  void Add(const LossSum& other) {
    total += other.total;
    tokens += other.tokens;
  }
};

class HeldOutSet {
 public:
  // Reads the JSONL at `path` ({"text"} or {"prompt","completion"} lines,
  // as devices train on) with `tokenizer`, each example cut at `max_length`
  // tokens. InvalidArgument when it holds no example.
  static absl::StatusOr<HeldOutSet> Load(const std::string& path, const engine::Tokenizer& tokenizer,
                                         int32_t max_length);
  const std::vector<HeldOutExample>& examples() const { return examples_; }

  // One forward of `example` with `adapter` applied (nullptr: the base).
  static absl::StatusOr<LossSum> ExampleLoss(const engine::LlamaModel& model, const HeldOutExample& example,
                                             const engine::LoraAdapter* adapter);
  // Mean cross-entropy per labelled token over every example.
  absl::StatusOr<double> MeanLoss(const engine::LlamaModel& model, const engine::LoraAdapter* adapter) const;

 private:
  explicit HeldOutSet(std::vector<HeldOutExample> examples) : examples_(std::move(examples)) {}
  std::vector<HeldOutExample> examples_;
};

}  // namespace edgellm::train

#endif  // EDGELLM_TRAIN_HELD_OUT_SET_H_
