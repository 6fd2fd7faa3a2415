#include "daemon/serve/inference_service.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_join.h"
#include "common/str_cat.h"
#include "daemon/engine/utf8.h"
#include "daemon/serve/generate_reactor.h"
#include "common/grpc_status.h"

namespace edgellm::serve {
namespace {

// A unary reactor that is finished at once with `status`.
grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// The client's deadline on the steady clock; max() when it has none.
Clock::time_point SteadyDeadline(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline >= std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
    return Clock::time_point::max();
  }
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(deadline - std::chrono::system_clock::now());
}

}  // namespace

InferenceService::InferenceService(const engine::LlamaModel& model, Scheduler& scheduler,
                                   InferenceServiceConfig config, ServeMetrics* metrics)
    : model_(model),
      scheduler_(scheduler),
      config_(std::move(config)),
      metrics_(metrics),
      sessions_(config_.sessions) {
  info_.set_name(config_.model_name);
  info_.set_architecture(model_.config().architecture);
  info_.set_parameters(model_.parameter_count());
  info_.set_quantization(std::string(model_.weight_type()));
  info_.set_context_length(static_cast<uint32_t>(model_.context_length()));
}

absl::Status InferenceService::CheckModel(const std::string& name) const {
  if (name.empty() || name == config_.model_name) return absl::OkStatus();
  return absl::InvalidArgumentError(
      edgellm::StrCat("unknown model '", name, "'; this daemon serves '", config_.model_name, "'"));
}

absl::StatusOr<GenerationRequest> InferenceService::ToGenerationRequest(const grpc::CallbackServerContext& context,
                                                                        const v1::GenerateRequest& request,
                                                                        const std::string& prompt) const {
  if (absl::Status s = CheckModel(request.model()); !s.ok()) return s;
  if (prompt.size() > config_.max_prompt_bytes) {
    return absl::InvalidArgumentError(edgellm::StrCat(request.session_id().empty() ? "the prompt" : "the conversation",
                                                      " has ", prompt.size(), " bytes; the limit is ",
                                                      config_.max_prompt_bytes));
  }
  if (request.max_tokens() == 0) return absl::InvalidArgumentError("max_tokens must be at least 1");
  if (request.max_tokens() >= static_cast<uint32_t>(model_.context_length())) {
    return absl::InvalidArgumentError(edgellm::StrCat("max_tokens ", request.max_tokens(),
                                                      " does not fit the context of ", model_.context_length()));
  }
  GenerationRequest out;
  engine::GenerateOptions& o = out.options;
  if (!request.adapter().empty()) {
    absl::MutexLock lock(&adapters_mu_);
    auto it = std::find_if(adapters_.begin(), adapters_.end(),
                           [&](const LoadedAdapter& a) { return a.served.name == request.adapter(); });
    if (it == adapters_.end()) {
      std::vector<std::string> names;
      for (const LoadedAdapter& a : adapters_) names.push_back(a.served.name);
      std::sort(names.begin(), names.end());
      return absl::InvalidArgumentError(edgellm::StrCat(
          "unknown adapter '", request.adapter().substr(0, 64), "'; loaded: ",
          names.empty() ? std::string("none") : absl::StrJoin(names, ", ")));
    }
    out.adapter = it->served.adapter;
    o.adapter = out.adapter.get();
    out.prefix_space = it->prefix_space;
  } else {
    absl::MutexLock lock(&adapters_mu_);
    if (version_adapter_.served.adapter) {
      out.adapter = version_adapter_.served.adapter;
      o.adapter = out.adapter.get();
      out.prefix_space = version_adapter_.prefix_space;
    }
  }
  o.max_tokens = static_cast<int32_t>(request.max_tokens());
  const v1::SamplingParams& p = request.sampling();
  if (p.has_temperature()) o.sampling.temperature = p.temperature();
  if (p.has_top_k()) o.sampling.top_k = static_cast<int32_t>(std::min<uint32_t>(p.top_k(), 1u << 30));
  if (p.has_top_p()) o.sampling.top_p = p.top_p();
  if (p.has_min_p()) o.sampling.min_p = p.min_p();
  if (p.has_repeat_penalty()) o.sampling.repeat_penalty = p.repeat_penalty();
  o.sampling.seed = p.has_seed() ? p.seed() : std::random_device{}();
  if (request.has_draft_tokens() && request.draft_tokens() > 64) {
    return absl::InvalidArgumentError(edgellm::StrCat("draft_tokens ", request.draft_tokens(), " is above 64"));
  }
  o.draft_tokens = request.has_draft_tokens() ? static_cast<int32_t>(request.draft_tokens()) : config_.draft_tokens;
  o.draft_row_cost = config_.draft_row_cost;
  if (request.stop_size() > 16) return absl::InvalidArgumentError("at most 16 stop strings");
  for (const std::string& stop : request.stop()) {
    if (stop.size() > 256) return absl::InvalidArgumentError("a stop string is longer than 256 bytes");
    o.stop.push_back(stop);
  }
  out.prompt_ids = model_.tokenizer().Encode(prompt, o.add_special, o.parse_special);
  out.deadline = SteadyDeadline(context);
  return out;
}

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::Generate(grpc::CallbackServerContext* context,
                                                                           const v1::GenerateRequest* request) {
  {
    absl::MutexLock lock(&streams_mu_);
    ++open_streams_;
  }
  auto* reactor = new GenerateReactor(
      scheduler_,
      [this](grpc::StatusCode code) {
        if (metrics_ != nullptr) metrics_->CountRequest(static_cast<absl::StatusCode>(code));
      },
      [this] {
        absl::MutexLock lock(&streams_mu_);
        --open_streams_;
      });
  const std::string& session = request->session_id();
  if (session.empty()) {
    absl::StatusOr<GenerationRequest> generation = ToGenerationRequest(*context, *request, request->prompt());
    if (!generation.ok()) {
      reactor->FinishWith(ToGrpcStatus(generation.status()));
    } else {
      reactor->Start(*std::move(generation));
    }
    return reactor;
  }
  absl::StatusOr<std::string> conversation = sessions_.BeginTurn(session);
  if (!conversation.ok()) {
    reactor->FinishWith(ToGrpcStatus(conversation.status()));
    return reactor;
  }
  *conversation += request->prompt();
  absl::StatusOr<GenerationRequest> generation = ToGenerationRequest(*context, *request, *conversation);
  if (!generation.ok()) {
    sessions_.EndTurn(session, std::nullopt);
    reactor->FinishWith(ToGrpcStatus(generation.status()));
    return reactor;
  }
  reactor->set_on_outcome([this, session, conversation = *std::move(conversation)](GenerateReactor::Outcome outcome) {
    // Only a turn that ran to its end joins the conversation.
    const bool complete = outcome.status.ok() && outcome.finish_reason != engine::FinishReason::kCancelled;
    sessions_.EndTurn(session, complete ? std::optional<std::string>(conversation + outcome.text) : std::nullopt);
  });
  reactor->Start(*std::move(generation));
  return reactor;
}

bool InferenceService::WaitForStreams(Clock::time_point deadline) {
  absl::MutexLock lock(&streams_mu_);
  auto none_open = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(streams_mu_) { return open_streams_ == 0; };
  return streams_mu_.AwaitWithTimeout(absl::Condition(&none_open), absl::FromChrono(deadline - Clock::now()));
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const v1::TokenizeRequest* request,
                                                     v1::TokenizeResponse* response) {
  if (absl::Status s = CheckModel(request->model()); !s.ok()) return Reply(context, s);
  if (request->text().size() > config_.max_prompt_bytes) {
    return Reply(context, absl::InvalidArgumentError(edgellm::StrCat(
                              "the text has ", request->text().size(), " bytes; the limit is ", config_.max_prompt_bytes)));
  }
  const bool add_special = !request->has_add_special() || request->add_special();
  const bool parse_special = !request->has_parse_special() || request->parse_special();
  for (engine::TokenId id : model_.tokenizer().Encode(request->text(), add_special, parse_special)) {
    response->add_token_ids(static_cast<uint32_t>(id));
  }
  return Reply(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::Detokenize(grpc::CallbackServerContext* context,
                                                       const v1::DetokenizeRequest* request,
                                                       v1::DetokenizeResponse* response) {
  if (absl::Status s = CheckModel(request->model()); !s.ok()) return Reply(context, s);
  std::vector<engine::TokenId> ids;
  for (uint32_t id : request->token_ids()) {
    if (id >= static_cast<uint32_t>(model_.tokenizer().vocab_size())) {
      return Reply(context, absl::InvalidArgumentError(edgellm::StrCat("token id ", id, " is outside the vocabulary of ",
                                                                       model_.tokenizer().vocab_size())));
    }
    ids.push_back(static_cast<engine::TokenId>(id));
  }
  response->set_text(engine::ToValidUtf8(model_.tokenizer().Decode(ids)));
  return Reply(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ListModels(grpc::CallbackServerContext* context,
                                                       const v1::ListModelsRequest*, v1::ListModelsResponse* response) {
  v1::ModelInfo* info = response->add_models();
  *info = info_;
  std::vector<std::string> names;
  {
    absl::MutexLock lock(&adapters_mu_);
    for (const LoadedAdapter& a : adapters_) names.push_back(a.served.name);
    info->set_version(version_);
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) info->add_adapters(name);
  return Reply(context, absl::OkStatus());
}

void InferenceService::AddAdapter(ServedAdapter adapter) {
  absl::MutexLock lock(&adapters_mu_);
  LoadedAdapter loaded{std::move(adapter), next_prefix_space_++};
  auto it = std::find_if(adapters_.begin(), adapters_.end(),
                         [&](const LoadedAdapter& a) { return a.served.name == loaded.served.name; });
  if (it != adapters_.end()) {
    *it = std::move(loaded);
  } else {
    adapters_.push_back(std::move(loaded));
  }
}

void InferenceService::SetModelVersion(std::string version, std::shared_ptr<const engine::LoraAdapter> adapter) {
  absl::MutexLock lock(&adapters_mu_);
  version_ = std::move(version);
  const uint64_t prefix_space = adapter ? next_prefix_space_++ : 0;
  version_adapter_ = {{"", std::move(adapter)}, prefix_space};
}

}  // namespace edgellm::serve
