#include "daemon/serve/inference_service.h"

#include "common/grpc_status.h"
#include "common/json_depth.h"
#include "common/str_cat.h"
#include "daemon/engine/utf8.h"
#include "daemon/serve/generate_reactor.h"
#include "daemon/serve/structured_output.h"

namespace edgellm::serve {
namespace {

using Json = nlohmann::ordered_json;

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

template <typename Request>
CompletionParams ToParams(const Request& request) {
  CompletionParams p;
  p.model = request.model();
  p.adapter = request.adapter();
  const v1::SamplingParams& s = request.sampling();
  if (s.has_temperature()) p.temperature = s.temperature();
  if (s.has_top_k()) p.top_k = s.top_k();
  if (s.has_top_p()) p.top_p = s.top_p();
  if (s.has_min_p()) p.min_p = s.min_p();
  if (s.has_repeat_penalty()) p.repeat_penalty = s.repeat_penalty();
  if (s.has_seed()) p.seed = s.seed();
  p.stop.assign(request.stop().begin(), request.stop().end());
  if (request.has_draft_tokens()) p.draft_tokens = request.draft_tokens();
  if (request.has_top_logprobs()) p.top_logprobs = static_cast<int32_t>(std::min<uint32_t>(request.top_logprobs(), 1000));
  return p;
}

// The grammar or JSON Schema a Generate or Chat request constrains its output with.
template <typename Request>
absl::StatusOr<OutputForm> FormOf(const Request& request) {
  OutputForm form;
  if (request.constraint_case() == Request::kGrammar) form.grammar = request.grammar();
  if (request.constraint_case() == Request::kJsonSchema) {
    if (JsonDepth(request.json_schema()) > kMaxJsonDepth) {
      return absl::InvalidArgumentError(edgellm::StrCat("json_schema nests deeper than ", kMaxJsonDepth, " levels"));
    }
    Json schema = Json::parse(request.json_schema(), nullptr, /*allow_exceptions=*/false);
    if (schema.is_discarded() || !(schema.is_object() || schema.is_boolean())) {
      return absl::InvalidArgumentError("json_schema is not a JSON Schema (a JSON object)");
    }
    form.json_schema = std::move(schema);
  }
  return form;
}

Json ToJson(const v1::ChatMessage& message) {
  Json out = {{"role", message.role()}, {"content", message.content()}};
  if (!message.name().empty()) out["name"] = message.name();
  if (!message.tool_call_id().empty()) out["tool_call_id"] = message.tool_call_id();
  if (message.tool_calls_size() > 0) {
    Json calls = Json::array();
    for (const v1::ToolCall& call : message.tool_calls()) {
      calls.push_back({{"id", call.id()},
                       {"type", "function"},
                       {"function", {{"name", call.name()}, {"arguments", call.arguments()}}}});
    }
    out["tool_calls"] = std::move(calls);
    if (message.content().empty()) out["content"] = nullptr;
  }
  return out;
}

}  // namespace

namespace {

// A streaming call answered with an error before anything was streamed.
class RefusedStream final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  explicit RefusedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::RefuseStream(const absl::Status& status) {
  if (core_.metrics() != nullptr) core_.metrics()->CountRequest(status.code());
  return new RefusedStream(ToGrpcStatus(status));
}

GenerateReactor* InferenceService::NewReactor(const Serving& serving, const std::string& caller, bool* admitted) {
  const absl::Status admission = core_.StreamOpened(caller);
  *admitted = admission.ok();
  // The call holds the model it runs on until it is over.
  auto* reactor = new GenerateReactor(
      serving.model->scheduler(), serving.model->model().tokenizer(),
      [this](grpc::StatusCode code) {
        if (core_.metrics() != nullptr) core_.metrics()->CountRequest(static_cast<absl::StatusCode>(code));
      },
      [this, caller, counted = *admitted, model = serving.model] {
        if (counted) core_.StreamClosed(caller);
      });
  if (!admission.ok()) reactor->FinishWith(ToGrpcStatus(admission));
  return reactor;
}

std::string InferenceService::CallerOf(const grpc::CallbackServerContext& context) const {
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  const std::vector<grpc::string_ref> names =
      auth ? auth->FindPropertyValues("x509_common_name") : std::vector<grpc::string_ref>();
  if (!names.empty()) return "cert:" + std::string(names.front().data(), names.front().size());
  if (local_peers_ != nullptr) {
    std::string user = local_peers_->CallerOf(context.peer());
    if (!user.empty()) return user;
  }
  return "local";
}

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::Generate(grpc::CallbackServerContext* context,
                                                                           const v1::GenerateRequest* request) {
  const std::string caller = CallerOf(*context);
  const absl::StatusOr<Serving> acquired = core_.Acquire();
  if (!acquired.ok()) return RefuseStream(acquired.status());
  const Serving& serving = *acquired;
  bool admitted = false;
  GenerateReactor* reactor = NewReactor(serving, caller, &admitted);
  if (!admitted) return reactor;
  CompletionParams params = ToParams(*request);
  params.max_tokens = request->max_tokens();
  absl::StatusOr<OutputForm> form = FormOf(*request);
  absl::Status formed = form.status();
  if (formed.ok()) formed = ApplyOutputForm(*form, InferenceCore::ToolCallFormatOf(serving), params).status();
  if (!formed.ok()) {
    reactor->FinishWith(ToGrpcStatus(formed));
    return reactor;
  }
  const std::string& session = request->session_id();
  if (session.empty()) {
    absl::StatusOr<GenerationRequest> generation = core_.Prepare(serving, params, request->prompt(), SteadyDeadline(*context));
    if (!generation.ok()) {
      reactor->FinishWith(ToGrpcStatus(generation.status()));
    } else {
      reactor->Start(*std::move(generation));
    }
    return reactor;
  }
  absl::StatusOr<std::string> conversation = core_.sessions().BeginTurn(caller, session);
  if (!conversation.ok()) {
    reactor->FinishWith(ToGrpcStatus(conversation.status()));
    return reactor;
  }
  *conversation += request->prompt();
  absl::StatusOr<GenerationRequest> generation =
      core_.Prepare(serving, params, *conversation, SteadyDeadline(*context), "the conversation");
  if (!generation.ok()) {
    core_.sessions().EndTurn(session, std::nullopt);
    reactor->FinishWith(ToGrpcStatus(generation.status()));
    return reactor;
  }
  reactor->set_on_outcome([this, session, conversation = *std::move(conversation)](GenerateReactor::Outcome outcome) {
    // Only a turn that ran to its end joins the conversation.
    const bool complete = outcome.status.ok() && outcome.finish_reason != engine::FinishReason::kCancelled;
    core_.sessions().EndTurn(session, complete ? std::optional<std::string>(conversation + outcome.text) : std::nullopt);
  });
  reactor->Start(*std::move(generation));
  return reactor;
}

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::Chat(grpc::CallbackServerContext* context,
                                                                       const v1::ChatRequest* request) {
  const std::string caller = CallerOf(*context);
  const absl::StatusOr<Serving> acquired = core_.Acquire();
  if (!acquired.ok()) return RefuseStream(acquired.status());
  const Serving& serving = *acquired;
  bool admitted = false;
  GenerateReactor* reactor = NewReactor(serving, caller, &admitted);
  if (!admitted) return reactor;
  CompletionParams params = ToParams(*request);
  if (request->max_tokens() > 0) params.max_tokens = request->max_tokens();
  absl::StatusOr<OutputForm> form = FormOf(*request);
  std::optional<ToolCallSetup> tool_calls;
  const auto shape = [&]() -> absl::Status {
    if (!form.ok()) return form.status();
    if (!request->tools_json().empty()) {
      if (JsonDepth(request->tools_json()) > kMaxJsonDepth) {
        return absl::InvalidArgumentError(edgellm::StrCat("tools_json nests deeper than ", kMaxJsonDepth, " levels"));
      }
      form->tools = Json::parse(request->tools_json(), nullptr, /*allow_exceptions=*/false);
      if (!form->tools.is_array()) return absl::InvalidArgumentError("tools_json is not a JSON list");
    }
    if (!request->tool_choice().empty()) {
      Json choice = request->tool_choice();
      if (choice != "auto" && choice != "none" && choice != "required") {
        choice = {{"type", "function"}, {"function", {{"name", request->tool_choice()}}}};
      }
      absl::StatusOr<chat::ToolChoice> parsed = chat::ParseToolChoice(choice, form->tools);
      if (!parsed.ok()) return parsed.status();
      form->tool_choice = *parsed;
    }
    form->parallel_tool_calls = request->parallel_tool_calls();
    absl::StatusOr<std::optional<ToolCallSetup>> setup = ApplyOutputForm(*form, InferenceCore::ToolCallFormatOf(serving), params);
    if (!setup.ok()) return setup.status();
    tool_calls = *std::move(setup);
    return absl::OkStatus();
  };
  if (absl::Status shaped = shape(); !shaped.ok()) {
    reactor->FinishWith(ToGrpcStatus(shaped));
    return reactor;
  }
  const Json tools = form->tool_choice.mode == chat::ToolChoice::Mode::kNone ? Json(nullptr) : form->tools;
  if (tool_calls) reactor->set_tool_calls(*std::move(tool_calls));
  const std::string& session = request->session_id();
  // A session keeps its messages as JSON text in the session store.
  Json messages = Json::array();
  if (!session.empty()) {
    absl::StatusOr<std::string> stored = core_.sessions().BeginTurn(caller, session);
    if (!stored.ok()) {
      reactor->FinishWith(ToGrpcStatus(stored.status()));
      return reactor;
    }
    if (!stored->empty()) {
      messages = Json::parse(*stored, nullptr, /*allow_exceptions=*/false);
      if (!messages.is_array()) {
        core_.sessions().EndTurn(session, std::nullopt);
        reactor->FinishWith(ToGrpcStatus(absl::FailedPreconditionError(
            edgellm::StrCat("session '", session, "' holds a Generate conversation, not chat messages"))));
        return reactor;
      }
    }
  }
  for (const v1::ChatMessage& message : request->messages()) messages.push_back(ToJson(message));
  absl::StatusOr<std::string> prompt = core_.RenderChat(serving, messages, tools);
  absl::StatusOr<GenerationRequest> generation =
      prompt.ok() ? core_.Prepare(serving, params, *prompt, SteadyDeadline(*context), "the conversation")
                  : absl::StatusOr<GenerationRequest>(prompt.status());
  if (!generation.ok()) {
    if (!session.empty()) core_.sessions().EndTurn(session, std::nullopt);
    reactor->FinishWith(ToGrpcStatus(generation.status()));
    return reactor;
  }
  if (!session.empty()) {
    reactor->set_on_outcome([this, session, messages = std::move(messages)](GenerateReactor::Outcome outcome) mutable {
      const bool complete = outcome.status.ok() && outcome.finish_reason != engine::FinishReason::kCancelled;
      if (!complete) return core_.sessions().EndTurn(session, std::nullopt);
      Json reply = {{"role", "assistant"}, {"content", engine::ToValidUtf8(outcome.text)}};
      if (!outcome.tool_calls.empty()) {
        Json calls = Json::array();
        for (const chat::ToolCall& call : outcome.tool_calls) {
          calls.push_back({{"id", call.id},
                           {"type", "function"},
                           {"function", {{"name", call.name}, {"arguments", engine::ToValidUtf8(call.arguments)}}}});
        }
        reply["tool_calls"] = std::move(calls);
        if (outcome.text.empty()) reply["content"] = nullptr;
      }
      messages.push_back(std::move(reply));
      core_.sessions().EndTurn(session, messages.dump());
    });
  }
  reactor->Start(*std::move(generation));
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::Embed(grpc::CallbackServerContext* context,
                                                  const v1::EmbedRequest* request, v1::EmbedResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::vector<std::string> inputs(request->inputs().begin(), request->inputs().end());
  core_.Embed(request->model(), std::move(inputs), [this, reactor, response](absl::StatusOr<EmbedResult> result) {
    if (result.ok()) {
      for (const std::vector<float>& embedding : result->embeddings) {
        response->add_embeddings()->mutable_values()->Add(embedding.begin(), embedding.end());
      }
      response->set_prompt_tokens(static_cast<uint32_t>(result->prompt_tokens));
    }
    if (core_.metrics() != nullptr) core_.metrics()->CountRequest(result.status().code());
    reactor->Finish(ToGrpcStatus(result.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const v1::TokenizeRequest* request,
                                                     v1::TokenizeResponse* response) {
  if (absl::Status s = core_.CheckModel(request->model()); !s.ok()) return Reply(context, s);
  const uint64_t limit = core_.config().max_prompt_bytes;
  if (request->text().size() > limit) {
    return Reply(context, absl::InvalidArgumentError(
                              edgellm::StrCat("the text has ", request->text().size(), " bytes; the limit is ", limit)));
  }
  const bool add_special = !request->has_add_special() || request->add_special();
  const bool parse_special = !request->has_parse_special() || request->parse_special();
  const absl::StatusOr<Serving> serving = core_.Acquire();
  if (!serving.ok()) return Reply(context, serving.status());
  for (engine::TokenId id : serving->model->model().tokenizer().Encode(request->text(), add_special, parse_special)) {
    response->add_token_ids(static_cast<uint32_t>(id));
  }
  return Reply(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::Detokenize(grpc::CallbackServerContext* context,
                                                       const v1::DetokenizeRequest* request,
                                                       v1::DetokenizeResponse* response) {
  if (absl::Status s = core_.CheckModel(request->model()); !s.ok()) return Reply(context, s);
  const absl::StatusOr<Serving> serving = core_.Acquire();
  if (!serving.ok()) return Reply(context, serving.status());
  const engine::Tokenizer& tokenizer = serving->model->model().tokenizer();
  std::vector<engine::TokenId> ids;
  for (uint32_t id : request->token_ids()) {
    if (id >= static_cast<uint32_t>(tokenizer.vocab_size())) {
      return Reply(context, absl::InvalidArgumentError(edgellm::StrCat("token id ", id, " is outside the vocabulary of ",
                                                                       tokenizer.vocab_size())));
    }
    ids.push_back(static_cast<engine::TokenId>(id));
  }
  response->set_text(engine::ToValidUtf8(tokenizer.Decode(ids)));
  return Reply(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ListModels(grpc::CallbackServerContext* context,
                                                       const v1::ListModelsRequest*, v1::ListModelsResponse* response) {
  const ModelDescription d = core_.Describe();
  v1::ModelInfo* info = response->add_models();
  info->set_name(d.name);
  info->set_architecture(d.architecture);
  info->set_parameters(d.parameters);
  info->set_quantization(d.quantization);
  info->set_context_length(static_cast<uint32_t>(d.context_length));
  info->set_version(d.version);
  for (const std::string& name : d.adapters) info->add_adapters(name);
  info->set_has_chat_template(d.has_chat_template);
  info->set_embedding_length(static_cast<uint32_t>(d.embedding_length));
  return Reply(context, absl::OkStatus());
}

}  // namespace edgellm::serve
