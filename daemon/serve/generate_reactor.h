// serve/generate_reactor.h — one streaming Generate call.
#ifndef EDGELLM_SERVE_GENERATE_REACTOR_H_
#define EDGELLM_SERVE_GENERATE_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"
#include "daemon/serve/scheduler.h"
#include "daemon/serve/structured_output.h"
#include "edgellm/v1/inference.grpc.pb.h"

namespace edgellm::serve {

// Streams a request's events to the client: one response per event, one write
// in flight at a time. It finishes the call only after the scheduler's last
// event, so the scheduler never calls into a reactor that is gone. A client
// that cancels or disconnects cancels the request; its slot is freed at the
// next step. Deletes itself in OnDone.
class GenerateReactor final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  // How the generation ended, with all the text it produced.
  struct Outcome {
    absl::Status status;
    engine::FinishReason finish_reason = engine::FinishReason::kCancelled;
    std::string text;  // with tools: the content, without the calls
    std::vector<chat::ToolCall> tool_calls;
  };
  // `on_finish` runs with the final status just before it is sent (so the
  // client never sees a status that is not yet counted); `on_done` runs once
  // the call is over, just before the reactor deletes itself.
  // `tokenizer` spells out the tokens of logprobs.
  GenerateReactor(Scheduler& scheduler, const engine::Tokenizer& tokenizer,
                  std::function<void(grpc::StatusCode)> on_finish, std::function<void()> on_done)
      : scheduler_(scheduler),
        tokenizer_(tokenizer),
        on_finish_(std::move(on_finish)),
        on_done_(std::move(on_done)) {}

  // Before Start: `on_outcome` runs once, when the generation has ended, was
  // refused, or its client cancelled (possibly on the scheduler thread: it
  // must not block).
  void set_on_outcome(std::function<void(Outcome)> on_outcome) {
    MutexLock lock(&mu_);
    on_outcome_ = std::move(on_outcome);
  }

  // Before Start: the reply may hold tool calls, taken out of its text and
  // sent in the last response's tool_calls.
  void set_tool_calls(ToolCallSetup setup) {
    MutexLock lock(&mu_);
    tool_calls_.emplace(std::move(setup));
  }

  // Submits the request; a refusal (full queue, bad request) finishes the call at once.
  void Start(GenerationRequest request);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override {
    on_done_();
    delete this;
  }
  // Finishes the call, reporting the status to `on_finish` first.
  void FinishWith(const grpc::Status& status) {
    on_finish_(status.error_code());
    Finish(status);
  }

 private:
  void OnEvent(GenerationEvent event);  // on the scheduler thread
  // Starts the next write, or the Finish once everything is written.
  void Pump();
  // What Pump does next, decided under mu_ and done after releasing it.
  struct Next {
    enum Action { kNone, kWrite, kFinish } action = kNone;
    grpc::Status status;
  };
  Next Decide() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Act(const Next& next);

  Scheduler& scheduler_;
  const engine::Tokenizer& tokenizer_;
  const std::function<void(grpc::StatusCode)> on_finish_;
  const std::function<void()> on_done_;
  std::function<void(Outcome)> TakeOnOutcome();  // the callback, once
  std::function<void(Outcome)> on_outcome_ ABSL_GUARDED_BY(mu_);
  Mutex mu_;
  std::string text_ ABSL_GUARDED_BY(mu_);  // everything generated so far (with tools: the content)
  std::optional<ToolCallReply> tool_calls_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;  // Start has returned from Submit: writes may begin
  std::optional<uint64_t> id_ ABSL_GUARDED_BY(mu_);
  bool cancel_when_submitted_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<v1::GenerateResponse> pending_ ABSL_GUARDED_BY(mu_);
  v1::GenerateResponse in_flight_;  // owned by the write in progress
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool client_gone_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> final_status_ ABSL_GUARDED_BY(mu_);
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;  // OnEvent is between its critical sections
};

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_GENERATE_REACTOR_H_
