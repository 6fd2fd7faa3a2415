#include "daemon/serve/smoke_test.h"

#include <atomic>

#include "common/mutex.h"
#include "common/str_cat.h"

namespace edgellm::serve {

absl::Status SmokeTest(Scheduler& scheduler, const engine::LlamaModel& model,
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
  // smoke test of another version.
  static std::atomic<uint64_t> next_space{~uint64_t{0}};
  request.prefix_space = next_space.fetch_sub(1);
  request.deadline = Clock::now() + timeout;

  struct Outcome {
    Notification done;
    absl::Status status;
    int32_t tokens = 0;
  };
  auto outcome = std::make_shared<Outcome>();
  absl::StatusOr<uint64_t> id = scheduler.Submit(std::move(request), [outcome](GenerationEvent event) {
    if (!event.last) return;
    outcome->status = event.status;
    outcome->tokens = event.completion_tokens;
    outcome->done.Notify();
  });
  // Not admitted (a full queue, memory pressure, draining) says nothing of the version.
  if (!id.ok()) return absl::UnavailableError(StrCat("smoke test not admitted: ", id.status().message()));
  if (!outcome->done.WaitForNotificationWithTimeout(absl::FromChrono(timeout + std::chrono::seconds(5)))) {
    scheduler.Cancel(*id);
    return absl::FailedPreconditionError("smoke test: the generation did not finish in time");
  }
  if (absl::IsResourceExhausted(outcome->status) || absl::IsUnavailable(outcome->status)) {
    return absl::UnavailableError(StrCat("smoke test: the daemon refused it for now: ", outcome->status.message()));
  }
  if (!outcome->status.ok()) {
    return absl::FailedPreconditionError(StrCat("smoke test: the generation failed: ", outcome->status.message()));
  }
  if (outcome->tokens == 0) return absl::FailedPreconditionError("smoke test: the generation produced no tokens");
  return absl::OkStatus();
}

}  // namespace edgellm::serve
