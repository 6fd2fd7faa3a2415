#include "daemon/serve/release_evaluation.h"

#include <algorithm>

#include "common/mutex.h"
#include "common/str_cat.h"
#include "daemon/serve/smoke_test.h"

namespace edgellm::serve {
namespace {

// Tokens a prompt's completion needs to show `expected`: a token carries at
// least one byte, so its bytes, capped.
int32_t TokensFor(const ExactMatchPrompt& p) {
  if (p.max_tokens > 0) return p.max_tokens;
  return std::clamp<int32_t>(static_cast<int32_t>(p.expected.size()), 1, 64);
}

// One example's loss, as a scheduler task run between two steps.
absl::StatusOr<train::LossSum> ExampleLoss(Scheduler& scheduler, const engine::LlamaModel& model,
                                           std::shared_ptr<const engine::LoraAdapter> adapter,
                                           const train::HeldOutExample& example,
                                           Clock::time_point deadline) {
  struct Outcome {
    Notification done;
    absl::StatusOr<train::LossSum> loss;
  };
  // Shared with the task, which may run (or be called with Unavailable) after a timeout here.
  auto outcome = std::make_shared<Outcome>();
  auto owned = std::make_shared<const train::HeldOutExample>(example);
  absl::Status queued = scheduler.SubmitTask([&model, adapter, owned, outcome](absl::Status runnable) {
    outcome->loss = runnable.ok() ? train::HeldOutSet::ExampleLoss(model, *owned, adapter.get())
                                  : absl::StatusOr<train::LossSum>(runnable);
    outcome->done.Notify();
  });
  if (!queued.ok()) return absl::UnavailableError(StrCat("held-out loss not admitted: ", queued.message()));
  if (!outcome->done.WaitForNotificationWithTimeout(absl::FromChrono(deadline - Clock::now()))) {
    return absl::DeadlineExceededError("the held-out loss did not finish in time");
  }
  return outcome->loss;
}

}  // namespace

absl::StatusOr<VersionScores> ScoreVersion(Scheduler& scheduler, const engine::LlamaModel& model,
                                           std::shared_ptr<const engine::LoraAdapter> adapter,
                                           const std::vector<train::HeldOutExample>& examples,
                                           const std::vector<ExactMatchPrompt>& prompts,
                                           std::chrono::seconds timeout) {
  VersionScores scores;
  const Clock::time_point deadline = Clock::now() + timeout;
  for (const train::HeldOutExample& example : examples) {
    absl::StatusOr<train::LossSum> loss = ExampleLoss(scheduler, model, adapter, example, deadline);
    if (!loss.ok()) return loss.status();
    scores.loss.Add(*loss);
    ++scores.examples;
  }
  for (const ExactMatchPrompt& p : prompts) {
    absl::StatusOr<std::string> completion = GreedyCompletion(scheduler, model, adapter, p.prompt, TokensFor(p), timeout);
    if (!completion.ok()) return completion.status();
    if (completion->starts_with(p.expected)) ++scores.exact_matches;
  }
  return scores;
}

}  // namespace edgellm::serve
