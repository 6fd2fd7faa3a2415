// serve/scheduler.h — continuous batching over one model.
//
// One thread, the scheduler loop, owns the model's compute and every KV cache.
// Each step runs all active sequences in one batched forward: a decode token
// for each running sequence (with its speculative drafts, when it asked for
// them: by prompt lookup, or by a draft model) and a chunk of the prompt for
// each one still prefilling, so a long
// prompt never stalls the streams already running. New
// requests join between steps; the queue in front is bounded and refuses at
// once when full. Sequences hold KV blocks from one pool under a byte budget:
// a request is admitted only when the blocks it may need, and those the
// running ones may still need, fit — so no sequence ever runs out mid-way.
// A new request starts from the pool's blocks of the longest prefix of its
// prompt that any earlier sequence computed, and computes only the rest.
// Under memory pressure it sheds load: fewer slots and shorter contexts, then
// refusal. Callers (gRPC reactors) only Submit and Cancel; results come back
// as events on the scheduler thread. Knows nothing of gRPC.
#ifndef EDGELLM_SERVE_SCHEDULER_H_
#define EDGELLM_SERVE_SCHEDULER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "daemon/engine/draft_length.h"
#include "daemon/engine/generation_state.h"
#include "daemon/engine/kv_block_pool.h"
#include "daemon/engine/llama_model.h"
#include "daemon/ops/memory_guard.h"
#include "daemon/serve/serve_metrics.h"

namespace edgellm::serve {

using Clock = std::chrono::steady_clock;

struct SchedulerConfig {
  int32_t max_active = 8;       // sequences in one batched step
  int32_t max_waiting = 32;     // queued requests beyond the active ones; more are refused
  int32_t prefill_chunk = 128;  // prompt tokens per sequence per step
  // Speculative drafts come from this model (same vocabulary, checked by the
  // caller with ModelDrafter::Create; it must outlive the scheduler), each
  // sequence with its own drafter and KV cache outside the pool; nullptr:
  // from prompt lookup.
  const engine::LlamaModel* draft_model = nullptr;
  // Measure what one more row costs a decode step (engine::RowCostProbe) in
  // the loop's idle moments, one forward at a time, so that a request
  // arriving meanwhile waits at most one forward and start-up does not wait
  // at all. Every sequence admitted after the measurement drafts by it
  // (GenerateOptions::draft_row_cost is replaced); before, rows count as free.
  bool measure_row_cost = false;
  // Told true when a request arrives and false when none is left to serve
  // (on the caller's and the loop's thread, under the scheduler's lock: it
  // must return at once). On-device training pauses on it.
  std::function<void(bool busy)> on_busy_change = nullptr;
};

// One message to a request's owner. Every accepted request receives events
// with text in order, then exactly one with `last` set.
struct GenerationEvent {
  std::string text;
  std::vector<engine::TokenId> token_ids;
  // One per token id, when the request asked for options.top_logprobs >= 0.
  std::vector<engine::TokenLogprobs> logprobs;
  bool last = false;
  // The fields below are set on the last event only.
  absl::Status status;  // OK, or why the request failed
  engine::FinishReason finish_reason = engine::FinishReason::kLength;
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  int32_t draft_tokens = 0;     // speculative drafts checked
  int32_t accepted_tokens = 0;  // of those, the ones that stood
  double time_to_first_token_s = 0.0;  // from Submit to the first token
  double decode_tokens_per_s = 0.0;
  double total_s = 0.0;
};

// Called on the scheduler thread, in order (after Stop, on the stopping
// thread); must return quickly and not block.
using EventSink = std::function<void(GenerationEvent)>;

struct GenerationRequest {
  std::vector<engine::TokenId> prompt_ids;
  engine::GenerateOptions options;
  // Owns options.adapter, if any, for as long as the request runs.
  std::shared_ptr<const engine::LoraAdapter> adapter;
  // Requests share prompt KV blocks only within one prefix space: 0 for the
  // base model, one of its own for each adapter (whose keys and values differ).
  uint64_t prefix_space = 0;
  Clock::time_point deadline = Clock::time_point::max();
  // False for the daemon's own generations (smoke tests, release
  // evaluations): they stay out of the serving metrics, by which a canary's
  // live figures are judged.
  bool counted = true;
};

// Work that needs the model's compute but is not a generation (embeddings):
// called once, with OK on the scheduler thread between two steps, or with
// Unavailable (on the stopping thread) when it will never run. Must not block
// for long: every running stream waits for it.
using LoopTask = std::function<void(absl::Status)>;

// Thread-safe: Submit, Cancel, Drain and Alive may be called from any thread.
class Scheduler {
 public:
  // `model` (and `metrics`, which may be null) must outlive the scheduler;
  // every sequence's KV cache comes from `pool`, which only the scheduler's
  // thread may use from Start() on.
  Scheduler(const engine::LlamaModel& model, std::shared_ptr<engine::KvBlockPool> pool, SchedulerConfig config,
            ServeMetrics* metrics = nullptr);
  ~Scheduler();  // Stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void Start();

  // Queues a request and returns its id. InvalidArgument for a bad request
  // (checked here, before queueing; a prompt must leave room in
  // context_limit()), ResourceExhausted when the queue is full or memory is
  // short, Unavailable once draining has begun. Does not block on the model.
  absl::StatusOr<uint64_t> Submit(GenerationRequest request, EventSink sink);

  // Queues `task` to run between the next two steps. ResourceExhausted when
  // the queue is full or memory is critically short, Unavailable once
  // draining has begun.
  absl::Status SubmitTask(LoopTask task);

  // Ends request `id` at the next step with finish reason kCancelled; its slot
  // and KV cache are freed then. No effect on a finished or unknown id.
  void Cancel(uint64_t id);

  // Refuses new requests from now on, then blocks until every accepted one has
  // finished or `deadline` passes; the rest end with Unavailable. Returns the
  // number of requests that were cut off.
  int Drain(Clock::time_point deadline);

  // Ends every request with Unavailable and joins the loop. Idempotent.
  void Stop();

  // Sheds load while memory is short. Low: half the slots, half the context
  // for new requests, and the pool drops its cached blocks; critical: new
  // requests are refused as well. Running requests always finish.
  void SetMemoryPressure(ops::MemoryPressure pressure);

  // Positions one request may use: the model's context, or fewer if the KV
  // budget holds fewer.
  int32_t context_limit() const { return context_limit_; }
  const SchedulerConfig& config() const { return config_; }

  // What one more row costs a decode step, once measure_row_cost has measured it.
  std::optional<double> row_cost() const;

  // True while the loop is idle or its current step began less than
  // `max_step` ago: what the supervisor's watchdog should hear.
  bool Alive(Clock::duration max_step) const;

 private:
  struct Sequence;
  struct Dropped {
    std::unique_ptr<Sequence> sequence;
    absl::Status status;  // why it ends: cancelled, deadline, shutdown
  };
  void Loop();
  // Waits for work, takes out requests that must end (into `dropped`),
  // admits waiting ones into `active`, and hands over the queued tasks. False
  // once the loop must stop.
  bool TakeWork(std::vector<std::unique_ptr<Sequence>>& active, std::vector<Dropped>& dropped,
                std::deque<LoopTask>& tasks);
  void Step(std::vector<std::unique_ptr<Sequence>>& active);
  // Sets seq.draft to up to `count` drafts for this step, from the draft
  // model or by prompt lookup. A drafter that fails turns drafting off for
  // the sequence (logged); the request itself goes on.
  void ProposeDrafts(Sequence& seq, int32_t count);
  // Gives `seq` a KV cache, starting from the longest known prefix of its
  // prompt, if the blocks it may need fit beside those `active` may still
  // need. False (and no cache) when they do not.
  bool AttachCache(Sequence& seq, const std::vector<std::unique_ptr<Sequence>>& active);
  // Runs the row-cost probe's next forward; logs the cost when it is known.
  void ProbeRowCost();
  void PublishGauges(const std::vector<std::unique_ptr<Sequence>>& active, size_t waiting);
  void PublishKvUsage();
  // Sends the last event: any final text and tokens, the outcome and the figures.
  void Finish(Sequence& seq, absl::Status status, engine::FinishReason reason,
              engine::GenerationState::Step last_step = {});

  const engine::LlamaModel& model_;
  const std::shared_ptr<engine::KvBlockPool> pool_;  // the loop thread's
  const SchedulerConfig config_;
  ServeMetrics* const metrics_;
  const int32_t context_limit_;
  std::thread thread_;
  std::unique_ptr<engine::RowCostProbe> row_cost_probe_;  // the loop thread's; null once done
  std::atomic<double> measured_row_cost_{-1.0};          // negative until measured
  // The loop thread's logits of a step, kept: a fresh vector each step was
  // megabytes allocated and zeroed before the forward wrote over them.
  std::vector<float> step_logits_;

  mutable Mutex mu_;
  std::deque<std::unique_ptr<Sequence>> waiting_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> cancel_requests_ ABSL_GUARDED_BY(mu_);
  std::deque<LoopTask> tasks_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  int32_t running_ ABSL_GUARDED_BY(mu_) = 0;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool cut_off_ ABSL_GUARDED_BY(mu_) = false;  // Drain's deadline passed: end everything
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  ops::MemoryPressure pressure_ ABSL_GUARDED_BY(mu_) = ops::MemoryPressure::kNone;
  bool probing_ ABSL_GUARDED_BY(mu_) = false;  // the row-cost probe has forwards to run
  bool trim_pool_ ABSL_GUARDED_BY(mu_) = false;  // give unused KV memory back at the next step
  // When the running step began; zero while the loop is between steps.
  std::atomic<int64_t> step_started_ns_{0};
};

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_SCHEDULER_H_
