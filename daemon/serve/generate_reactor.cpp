#include "daemon/serve/generate_reactor.h"

#include "common/grpc_status.h"
#include "daemon/engine/utf8.h"

namespace edgellm::serve {
namespace {

v1::FinishReason ToProto(engine::FinishReason reason) {
  switch (reason) {
    case engine::FinishReason::kStop: return v1::FINISH_REASON_STOP;
    case engine::FinishReason::kLength: return v1::FINISH_REASON_LENGTH;
    case engine::FinishReason::kCancelled: return v1::FINISH_REASON_CANCELLED;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

void SetLogprob(const engine::Tokenizer& tokenizer, const engine::TokenLogprob& from, v1::TokenLogprob* to) {
  to->set_token_id(static_cast<uint32_t>(from.id));
  to->set_logprob(from.logprob);
  to->set_piece(tokenizer.TokenToPiece(from.id));
}

}  // namespace

void GenerateReactor::Start(GenerationRequest request) {
  absl::StatusOr<uint64_t> id = scheduler_.Submit(std::move(request), [this](GenerationEvent e) { OnEvent(std::move(e)); });
  if (!id.ok()) {
    if (std::function<void(Outcome)> on_outcome = TakeOnOutcome()) {
      on_outcome({id.status(), engine::FinishReason::kCancelled, "", {}});
    }
    FinishWith(ToGrpcStatus(id.status()));
    return;
  }
  bool cancel = false;
  {
    MutexLock lock(&mu_);
    id_ = *id;
    cancel = cancel_when_submitted_;
  }
  if (cancel) scheduler_.Cancel(*id);
  // Events may have arrived while submitting. Deciding in the same critical
  // section that lets writes begin: once it is left, another thread may
  // finish the call and the reactor may be gone.
  Next next;
  {
    MutexLock lock(&mu_);
    started_ = true;
    next = Decide();
  }
  Act(next);
}

void GenerateReactor::OnEvent(GenerationEvent event) {
  std::optional<Outcome> outcome;
  std::function<void(Outcome)> on_outcome;
  {
    MutexLock lock(&mu_);
    // The call cannot finish until this event is delivered (see Decide).
    delivering_ = true;
    std::vector<chat::ToolCall> calls;
    if (tool_calls_) {
      event.text = tool_calls_->Push(event.text);
      if (event.last) {
        ToolCallReply::Final final_calls = tool_calls_->Finish();
        event.text += final_calls.content;
        calls = std::move(final_calls.calls);
      }
    }
    text_ += event.text;
    if (event.last) {
      final_status_ = ToGrpcStatus(event.status);
      on_outcome = std::move(on_outcome_);
      on_outcome_ = nullptr;
      if (on_outcome) outcome = Outcome{event.status, event.finish_reason, std::move(text_), calls};
    }
    const bool failed = event.last && !event.status.ok();
    if (!client_gone_ && !failed) {
      v1::GenerateResponse& response = pending_.emplace_back();
      // Protobuf strings must be valid UTF-8; the exact bytes travel in token_ids.
      response.set_text(engine::ToValidUtf8(event.text));
      for (engine::TokenId id : event.token_ids) response.add_token_ids(static_cast<uint32_t>(id));
      for (const engine::TokenLogprobs& l : event.logprobs) {
        v1::TokenLogprobs* out = response.add_logprobs();
        SetLogprob(tokenizer_, l.chosen, out->mutable_token());
        for (const engine::TokenLogprob& alternative : l.top) SetLogprob(tokenizer_, alternative, out->add_top());
      }
      if (event.last) {
        response.set_finish_reason(calls.empty() ? ToProto(event.finish_reason) : v1::FINISH_REASON_TOOL_CALLS);
        for (const chat::ToolCall& call : calls) {
          v1::ToolCall* out = response.add_tool_calls();
          out->set_id(call.id);
          out->set_name(call.name);
          out->set_arguments(engine::ToValidUtf8(call.arguments));
        }
        response.mutable_usage()->set_prompt_tokens(static_cast<uint32_t>(event.prompt_tokens));
        response.mutable_usage()->set_completion_tokens(static_cast<uint32_t>(event.completion_tokens));
        response.mutable_usage()->set_draft_tokens(static_cast<uint32_t>(event.draft_tokens));
        response.mutable_usage()->set_accepted_tokens(static_cast<uint32_t>(event.accepted_tokens));
        response.mutable_timings()->set_time_to_first_token_seconds(event.time_to_first_token_s);
        response.mutable_timings()->set_decode_tokens_per_second(event.decode_tokens_per_s);
        response.mutable_timings()->set_total_seconds(event.total_s);
      }
    }
  }
  if (outcome) on_outcome(*std::move(outcome));
  // The scheduler's thread is unknown to gRPC, which may delete the reactor
  // as soon as it finishes: decide in the critical section that ends the
  // delivery, and touch nothing after acting.
  Next next;
  {
    MutexLock lock(&mu_);
    delivering_ = false;
    next = Decide();
  }
  Act(next);
}

void GenerateReactor::OnWriteDone(bool ok) {
  std::optional<uint64_t> cancel;
  {
    MutexLock lock(&mu_);
    writing_ = false;
    if (!ok && !client_gone_) {
      client_gone_ = true;
      pending_.clear();
      cancel = id_;
    }
  }
  if (cancel) scheduler_.Cancel(*cancel);
  Pump();
}

void GenerateReactor::OnCancel() {
  std::optional<uint64_t> cancel;
  // A cancelled turn ends for its session now, not at the scheduler's next
  // step: the client's next turn must not find the session busy.
  std::function<void(Outcome)> on_outcome;
  {
    MutexLock lock(&mu_);
    client_gone_ = true;
    pending_.clear();
    cancel = id_;
    if (!id_) cancel_when_submitted_ = true;
    on_outcome = std::move(on_outcome_);
    on_outcome_ = nullptr;
  }
  if (on_outcome) on_outcome({absl::CancelledError("the client cancelled"), engine::FinishReason::kCancelled, "", {}});
  if (cancel) scheduler_.Cancel(*cancel);
  Pump();
}

void GenerateReactor::Pump() {
  Next next;
  {
    MutexLock lock(&mu_);
    next = Decide();
  }
  Act(next);
}

std::function<void(GenerateReactor::Outcome)> GenerateReactor::TakeOnOutcome() {
  MutexLock lock(&mu_);
  std::function<void(Outcome)> on_outcome = std::move(on_outcome_);
  on_outcome_ = nullptr;
  return on_outcome;
}

GenerateReactor::Next GenerateReactor::Decide() {
  Next next;
  // Until Start is done, or while an event is being delivered, a Finish
  // could delete the reactor under them.
  if (!started_ || writing_ || finishing_) return next;
  if (!pending_.empty()) {
    in_flight_ = std::move(pending_.front());
    pending_.pop_front();
    writing_ = true;
    next.action = Next::kWrite;
  } else if (final_status_ && !delivering_) {
    finishing_ = true;
    // A client that went away sees CANCELLED whatever the scheduler said.
    next.status = client_gone_ && final_status_->ok() ? grpc::Status::CANCELLED : *final_status_;
    next.action = Next::kFinish;
  }
  return next;
}

void GenerateReactor::Act(const Next& next) {
  // Outside the lock: a reaction may run inline, and after Finish the reactor may be gone.
  if (next.action == Next::kWrite) StartWrite(&in_flight_);
  if (next.action == Next::kFinish) FinishWith(next.status);
}

}  // namespace edgellm::serve
