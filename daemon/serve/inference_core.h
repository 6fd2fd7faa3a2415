// serve/inference_core.h — what every front end of the daemon shares: the
// checks that turn a request (from gRPC or the OpenAI-style HTTP API) into a
// generation for the scheduler, the model's chat template, the loaded
// adapters and installed version, the sessions, embeddings, and the count of
// open streams that draining waits for. Knows nothing of gRPC or HTTP.
#ifndef EDGELLM_SERVE_INFERENCE_CORE_H_
#define EDGELLM_SERVE_INFERENCE_CORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "daemon/chat/chat_formatter.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/serve/completion_params.h"
#include "daemon/serve/grammar_cache.h"
#include "daemon/serve/scheduler.h"
#include "daemon/serve/serve_metrics.h"
#include "daemon/serve/session_store.h"
#include "nlohmann/json.hpp"

namespace edgellm::serve {

// A LoRA adapter the daemon serves, chosen by a request's adapter name.
struct ServedAdapter {
  std::string name;
  std::shared_ptr<const engine::LoraAdapter> adapter;
};

struct InferenceCoreConfig {
  std::string model_name;               // what clients name; "" also selects it
  uint64_t max_prompt_bytes = 1 << 20;  // longer prompts, texts or conversations are refused
  SessionStoreConfig sessions;
  int32_t draft_tokens = 0;  // speculative drafts per step for requests that do not say; 0: off
  // The model's chat template (or its override); none: chat requests are refused.
  std::optional<chat::ChatFormatter> chat;
  int32_t max_embedding_inputs = 64;  // inputs of one embeddings request
  // Fair share: one caller (a client certificate, an API key, or every
  // uncertified local client together) may have at most this share of the
  // scheduler's places (active + waiting) in flight; 1: no limit.
  double max_caller_share = 1.0;
  GrammarCacheConfig grammars;  // limits of the grammars requests send
};

// What ListModels and GET /v1/models say about the model.
struct ModelDescription {
  std::string name;
  std::string architecture;
  uint64_t parameters = 0;
  std::string quantization;
  int32_t context_length = 0;
  int32_t embedding_length = 0;
  std::string version;
  std::vector<std::string> adapters;  // sorted
  bool has_chat_template = false;
};

struct EmbedResult {
  std::vector<std::vector<float>> embeddings;  // one per input, unit length
  int32_t prompt_tokens = 0;
};

// Thread-safe.
class InferenceCore {
 public:
  // `model`, `scheduler` (and `metrics`, which may be null) must outlive the core.
  InferenceCore(const engine::LlamaModel& model, Scheduler& scheduler, InferenceCoreConfig config,
                ServeMetrics* metrics = nullptr);

  const engine::LlamaModel& model() const { return model_; }
  Scheduler& scheduler() const { return scheduler_; }
  ServeMetrics* metrics() const { return metrics_; }
  SessionStore& sessions() { return sessions_; }
  const InferenceCoreConfig& config() const { return config_; }

  // OK for "" and the served model's name; InvalidArgument naming both otherwise.
  absl::Status CheckModel(const std::string& name) const;
  // InvalidArgument naming the field for a setting out of range, an unknown
  // model or adapter. `prompt` is the whole text to complete
  // (a session's conversation included); `what` names it in errors.
  absl::StatusOr<GenerationRequest> Prepare(const CompletionParams& params, const std::string& prompt,
                                            Clock::time_point deadline, std::string_view what = "the prompt") const;

  bool has_chat_template() const { return config_.chat.has_value(); }
  // How the model writes tool calls (generic without a chat template).
  chat::ToolCallFormat tool_call_format() const {
    return config_.chat ? config_.chat->tool_call_format() : chat::ToolCallFormat::kGeneric;
  }
  // The prompt for a conversation (see ChatFormatter::Render); FailedPrecondition
  // when the model has no chat template.
  absl::StatusOr<std::string> RenderChat(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                         bool add_generation_prompt = true) const;

  // Embeds `inputs` (each tokenized as a prompt) on the scheduler's thread and
  // calls `done` once with the result, possibly before returning. Errors
  // (InvalidArgument, ResourceExhausted, Unavailable) go to `done`.
  void Embed(const std::string& model, std::vector<std::string> inputs,
             std::function<void(absl::StatusOr<EmbedResult>)> done) const;

  ModelDescription Describe() const;

  // Serves `adapter` from now on, replacing one of the same name; requests
  // in flight keep the one they started with.
  void AddAdapter(ServedAdapter adapter);
  // Serves `version` of the model from now on: requests that name no adapter
  // run with `adapter` (nullptr: the bare base model). Requests in flight
  // finish on the version they started with.
  void SetModelVersion(std::string version, std::shared_ptr<const engine::LoraAdapter> adapter);

  // Streams (of any front end) open now: draining waits for them to end.
  // ResourceExhausted (nothing counted) when `caller` already holds its
  // share; every stream opened must be closed with the same caller.
  absl::Status StreamOpened(const std::string& caller);
  void StreamClosed(const std::string& caller);
  // Blocks until no stream is open, or `deadline`; true if none is.
  bool WaitForStreams(Clock::time_point deadline);

 private:
  struct LoadedAdapter {
    ServedAdapter served;
    uint64_t prefix_space;  // never reused, so a replaced adapter's KV blocks are never shared
  };

  const engine::LlamaModel& model_;
  Scheduler& scheduler_;
  const InferenceCoreConfig config_;
  ServeMetrics* const metrics_;
  SessionStore sessions_;
  mutable GrammarCache grammars_;
  mutable Mutex adapters_mu_;
  std::vector<LoadedAdapter> adapters_ ABSL_GUARDED_BY(adapters_mu_);
  uint64_t next_prefix_space_ ABSL_GUARDED_BY(adapters_mu_) = 1;
  std::string version_ ABSL_GUARDED_BY(adapters_mu_) = "local";
  LoadedAdapter version_adapter_ ABSL_GUARDED_BY(adapters_mu_){{"", nullptr}, 0};
  Mutex streams_mu_;
  int open_streams_ ABSL_GUARDED_BY(streams_mu_) = 0;
  std::map<std::string, int> streams_by_caller_ ABSL_GUARDED_BY(streams_mu_);
};

// The chat template the daemon uses for `model`: `override_source` when not
// empty, else the file's tokenizer.chat_template; nullopt when neither
// exists. InvalidArgument when the template does not parse.
absl::StatusOr<std::optional<chat::ChatFormatter>> LoadChatTemplate(const engine::LlamaModel& model,
                                                                    const std::string& override_source);

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_INFERENCE_CORE_H_
