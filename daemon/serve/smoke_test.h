// serve/smoke_test.h — does a model version work? A short greedy generation
// through the scheduler (the path real requests take), with the adapter given
// but not served: it must run to its end, with finite logits all the way
// (the scheduler fails a request whose logits are not), and produce tokens.
#ifndef EDGELLM_SERVE_SMOKE_TEST_H_
#define EDGELLM_SERVE_SMOKE_TEST_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/serve/scheduler.h"

namespace edgellm::serve {

// Blocks until the generation ends (at most `timeout`). FailedPrecondition
// saying what went wrong: the generation failed, produced nothing, or did
// not finish in time; Unavailable when the scheduler would not run it now
// (full, memory pressure, draining), which says nothing of the version.
absl::Status SmokeTest(Scheduler& scheduler, const engine::LlamaModel& model,
                       std::shared_ptr<const engine::LoraAdapter> adapter, const std::string& prompt,
                       int32_t max_tokens = 8, std::chrono::seconds timeout = std::chrono::seconds(60));

// The greedy completion of `prompt` by a version that is not served (the
// smoke test's generation), with the same errors but for producing nothing.
absl::StatusOr<std::string> GreedyCompletion(Scheduler& scheduler, const engine::LlamaModel& model,
                                             std::shared_ptr<const engine::LoraAdapter> adapter,
                                             const std::string& prompt, int32_t max_tokens,
                                             std::chrono::seconds timeout);

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_SMOKE_TEST_H_
