#include "daemon/serve/smoke_test.h"

#include <atomic>

#include "common/mutex.h"
#include "common/str_cat.h"

namespace edgellm::serve {
namespace {

struct Completion {
  std::string text;
  int32_t tokens = 0;
};

absl::StatusOr<Completion> Complete(Scheduler& scheduler, const engine::LlamaModel& model,
                                    std::shared_ptr<const engine::LoraAdapter> adapter, const std::string& prompt,
                                    int32_t max_tokens, std::chrono::seconds timeout) {
  GenerationRequest request;
  request.prompt_ids = model.tokenizer().Encode(prompt);
  request.options.max_tokens = max_tokens;
  request.options.sampling.temperature = 0.0f;
  request.options.adapter = adapter.get();
  request.adapter = std::move(adapter);
  // A prefix space of its own, new each time (served adapters count up from
  // 1): its KV blocks are never shared with served requests, nor with the
  // test of another version.
  static std::atomic<uint64_t> next_space{~uint64_t{0}};
  request.prefix_space = next_space.fetch_sub(1);
  request.deadline = Clock::now() + timeout;
  request.counted = false;

  struct Outcome {
    Notification done;
    absl::Status status;
    Completion completion;  // the sink's until `done`
  };
  auto outcome = std::make_shared<Outcome>();
  absl::StatusOr<uint64_t> id = scheduler.Submit(std::move(request), [outcome](GenerationEvent event) {
    outcome->completion.text += event.text;
    if (!event.last) return;
    outcome->status = event.status;
    outcome->completion.tokens = event.completion_tokens;
    outcome->done.Notify();
  });
  // Not admitted (a full queue, memory pressure, draining) says nothing of the version.
  if (!id.ok()) return absl::UnavailableError(StrCat("not admitted: ", id.status().message()));
  if (!outcome->done.WaitForNotificationWithTimeout(absl::FromChrono(timeout + std::chrono::seconds(5)))) {
    scheduler.Cancel(*id);
    return absl::FailedPreconditionError("the generation did not finish in time");
  }
  if (absl::IsResourceExhausted(outcome->status) || absl::IsUnavailable(outcome->status)) {
    return absl::UnavailableError(StrCat("the daemon refused it for now: ", outcome->status.message()));
  }
  if (!outcome->status.ok()) {
    return absl::FailedPreconditionError(StrCat("the generation failed: ", outcome->status.message()));
  }
  return outcome->completion;
}

// `status` with `prefix` before its message, its code kept.
absl::Status Prefixed(const absl::Status& status, std::string_view prefix) {
  return absl::Status(status.code(), StrCat(prefix, status.message()));
}

}  // namespace

absl::Status SmokeTest(Scheduler& scheduler, const engine::LlamaModel& model,
                       std::shared_ptr<const engine::LoraAdapter> adapter, const std::string& prompt,
                       int32_t max_tokens, std::chrono::seconds timeout) {
  absl::StatusOr<Completion> completion = Complete(scheduler, model, std::move(adapter), prompt, max_tokens, timeout);
  if (!completion.ok()) return Prefixed(completion.status(), "smoke test: ");
  if (completion->tokens == 0) return absl::FailedPreconditionError("smoke test: the generation produced no tokens");
  return absl::OkStatus();
}

absl::StatusOr<std::string> GreedyCompletion(Scheduler& scheduler, const engine::LlamaModel& model,
                                             std::shared_ptr<const engine::LoraAdapter> adapter,
                                             const std::string& prompt, int32_t max_tokens,
                                             std::chrono::seconds timeout) {
  absl::StatusOr<Completion> completion = Complete(scheduler, model, std::move(adapter), prompt, max_tokens, timeout);
  if (!completion.ok()) return Prefixed(completion.status(), "greedy completion: ");
  return std::move(completion->text);
}

}  // namespace edgellm::serve
