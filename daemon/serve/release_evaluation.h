// serve/release_evaluation.h — how well a model version does on a release's
// evaluation, measured on the device with the compute that serves: the loss
// on held-out examples (one forward each, run by the scheduler between two
// steps, so streams in flight wait at most one example) and greedy
// completions of prompts through the path real requests take.
#ifndef EDGELLM_SERVE_RELEASE_EVALUATION_H_
#define EDGELLM_SERVE_RELEASE_EVALUATION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/serve/scheduler.h"
#include "daemon/train/held_out_set.h"

namespace edgellm::serve {

struct ExactMatchPrompt {
  std::string prompt;
  std::string expected;  // the greedy completion must begin with this
  int32_t max_tokens = 0;
};

struct VersionScores {
  train::LossSum loss;  // over every held-out example
  int64_t examples = 0;  // held-out examples scored
  int32_t exact_matches = 0;
};

// Scores the version `adapter` makes of `model` (nullptr: the bare base).
// Unavailable when the scheduler would not run the work now (full, memory
// pressure, draining), which says nothing of the version; DeadlineExceeded
// past `timeout`.
absl::StatusOr<VersionScores> ScoreVersion(Scheduler& scheduler, const engine::LlamaModel& model,
                                           std::shared_ptr<const engine::LoraAdapter> adapter,
                                           const std::vector<train::HeldOutExample>& examples,
                                           const std::vector<ExactMatchPrompt>& prompts,
                                           std::chrono::seconds timeout = std::chrono::seconds(600));

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_RELEASE_EVALUATION_H_
