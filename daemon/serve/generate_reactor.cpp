#include "daemon/serve/generate_reactor.h"

#include "daemon/engine/utf8.h"
#include "common/grpc_status.h"

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

}  // namespace

void GenerateReactor::Start(GenerationRequest request) {
  absl::StatusOr<uint64_t> id = scheduler_.Submit(std::move(request), [this](GenerationEvent e) { OnEvent(std::move(e)); });
  if (!id.ok()) {
    if (on_outcome_) on_outcome_({id.status(), engine::FinishReason::kCancelled, ""});
    FinishWith(ToGrpcStatus(id.status()));
    return;
  }
  bool cancel = false;
  {
    absl::MutexLock lock(&mu_);
    id_ = *id;
    cancel = cancel_when_submitted_;
    started_ = true;
  }
  if (cancel) scheduler_.Cancel(*id);
  // Events may have arrived while submitting; nothing touches `this` after this call.
  Pump();
}

void GenerateReactor::OnEvent(GenerationEvent event) {
  std::optional<Outcome> outcome;
  {
    absl::MutexLock lock(&mu_);
    text_ += event.text;
    if (event.last) {
      final_status_ = ToGrpcStatus(event.status);
      if (on_outcome_) outcome = Outcome{event.status, event.finish_reason, std::move(text_)};
    }
    const bool failed = event.last && !event.status.ok();
    if (!client_gone_ && !failed) {
      v1::GenerateResponse& response = pending_.emplace_back();
      // Protobuf strings must be valid UTF-8; the exact bytes travel in token_ids.
      response.set_text(engine::ToValidUtf8(event.text));
      for (engine::TokenId id : event.token_ids) response.add_token_ids(static_cast<uint32_t>(id));
      if (event.last) {
        response.set_finish_reason(ToProto(event.finish_reason));
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
  if (outcome) on_outcome_(*std::move(outcome));
  Pump();
}

void GenerateReactor::OnWriteDone(bool ok) {
  std::optional<uint64_t> cancel;
  {
    absl::MutexLock lock(&mu_);
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
  {
    absl::MutexLock lock(&mu_);
    client_gone_ = true;
    pending_.clear();
    cancel = id_;
    if (!id_) cancel_when_submitted_ = true;
  }
  if (cancel) scheduler_.Cancel(*cancel);
  Pump();
}

void GenerateReactor::Pump() {
  enum class Action { kNone, kWrite, kFinish } action = Action::kNone;
  grpc::Status status;
  {
    absl::MutexLock lock(&mu_);
    // Until Start is done, a Finish could delete the reactor under it.
    if (!started_ || writing_ || finishing_) return;
    if (!pending_.empty()) {
      in_flight_ = std::move(pending_.front());
      pending_.pop_front();
      writing_ = true;
      action = Action::kWrite;
    } else if (final_status_) {
      finishing_ = true;
      // A client that went away sees CANCELLED whatever the scheduler said.
      status = client_gone_ && final_status_->ok() ? grpc::Status::CANCELLED : *final_status_;
      action = Action::kFinish;
    }
  }
  // Outside the lock: a reaction may run inline, and after Finish the reactor may be gone.
  if (action == Action::kWrite) StartWrite(&in_flight_);
  if (action == Action::kFinish) FinishWith(status);
}

}  // namespace edgellm::serve
