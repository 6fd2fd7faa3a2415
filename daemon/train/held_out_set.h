// federated/aggregator/evaluator.h — the loss of an adapter version on a
// held-out JSONL set the aggregator holds, with the engine's own forward.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_EVALUATOR_H_
#define EDGELLM_FEDERATED_AGGREGATOR_EVALUATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"

namespace edgellm::federated {

class Evaluator {
 public:
  // Reads the JSONL at `path` ({"text"} or {"prompt","completion"} lines,
  // as devices train on) with `model`'s tokenizer. `model` must outlive it.
  static absl::StatusOr<std::unique_ptr<Evaluator>> Create(const engine::LlamaModel& model, const std::string& path,
                                                           int32_t max_length);
  // Mean cross-entropy per labelled token with `adapter` applied (nullptr: the base).
  absl::StatusOr<double> Loss(const engine::LoraAdapter* adapter) const;
  int64_t examples() const { return static_cast<int64_t>(examples_.size()); }

 private:
  struct Example {
    std::vector<engine::TokenId> tokens;
    std::vector<engine::TokenId> labels;  // -1: no loss at this position
  };
  Evaluator(const engine::LlamaModel& model, std::vector<Example> examples)
      : model_(model), examples_(std::move(examples)) {}

  const engine::LlamaModel& model_;
  std::vector<Example> examples_;
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_EVALUATOR_H_
