// serve/inference_core.h — what every front end of the daemon shares: the
// checks that turn a request (from gRPC or the OpenAI-style HTTP API) into a
// generation for the scheduler, the served base model (swapped whole by a
// base-model release) and the version on it, the loaded adapters, the
// sessions, embeddings, and the count of open streams that draining waits
// for. Knows nothing of gRPC or HTTP.
#ifndef EDGELLM_SERVE_INFERENCE_CORE_H_
#define EDGELLM_SERVE_INFERENCE_CORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "daemon/chat/chat_formatter.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/serve/completion_params.h"
#include "daemon/serve/grammar_cache.h"
#include "daemon/serve/scheduler.h"
#include "daemon/serve/serve_metrics.h"
#include "daemon/serve/served_model.h"
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
  int32_t max_embedding_inputs = 64;  // inputs of one embeddings request
  // Fair share: one caller (a client certificate, an API key, or every
  // uncertified local client together) may have at most this share of the
  // scheduler's places (active + waiting) in flight; 1: no limit.
  double max_caller_share = 1.0;
};

// What one request runs on, taken once when it arrives: the base model and
// the version served on it. Holding it keeps that model loaded.
struct Serving {
  std::shared_ptr<ServedModel> model;  // nullptr while the base model is swapped by draining
  std::string version;
  std::shared_ptr<const engine::LoraAdapter> adapter;  // nullptr: the bare base model
  uint64_t prefix_space = 0;                           // of `adapter`
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
  // Serves `model` ("local" as its version). `metrics`, which may be null,
  // must outlive the core.
  InferenceCore(std::shared_ptr<ServedModel> model, InferenceCoreConfig config, ServeMetrics* metrics = nullptr);
  // Stops every model's scheduler (Stop).
  ~InferenceCore();

  // What a request arriving now runs on; Unavailable, saying why, while the
  // daemon swaps its base model by draining (Unload).
  absl::StatusOr<Serving> Acquire() const;
  // The same, its model nullptr while none is served.
  Serving Current() const;
  ServeMetrics* metrics() const { return metrics_; }
  SessionStore& sessions() { return sessions_; }
  const InferenceCoreConfig& config() const { return config_; }

  // OK for "" and the served model's name; InvalidArgument naming both otherwise.
  absl::Status CheckModel(const std::string& name) const;
  // InvalidArgument naming the field for a setting out of range, an unknown
  // model or adapter. `prompt` is the whole text to complete
  // (a session's conversation included); `what` names it in errors.
  // The request runs on `serving` (from Current()).
  absl::StatusOr<GenerationRequest> Prepare(const Serving& serving, const CompletionParams& params,
                                            const std::string& prompt, Clock::time_point deadline,
                                            std::string_view what = "the prompt") const;

  bool has_chat_template() const {
    const Serving serving = Current();
    return serving.model && serving.model->chat().has_value();
  }
  // How the model writes tool calls (generic without a chat template).
  static chat::ToolCallFormat ToolCallFormatOf(const Serving& serving) {
    const auto& chat = serving.model->chat();
    return chat ? chat->tool_call_format() : chat::ToolCallFormat::kGeneric;
  }
  // The prompt for a conversation (see ChatFormatter::Render); FailedPrecondition
  // when the model has no chat template.
  absl::StatusOr<std::string> RenderChat(const Serving& serving, const nlohmann::ordered_json& messages,
                                         const nlohmann::ordered_json& tools, bool add_generation_prompt = true) const;

  // Embeds `inputs` (each tokenized as a prompt) on the scheduler's thread and
  // calls `done` once with the result, possibly before returning. Errors
  // (InvalidArgument, ResourceExhausted, Unavailable) go to `done`.
  void Embed(const std::string& model, std::vector<std::string> inputs,
             std::function<void(absl::StatusOr<EmbedResult>)> done) const;

  ModelDescription Describe() const;

  // Serves `adapter` from now on, replacing one of the same name; requests
  // in flight keep the one they started with. Named adapters that do not fit
  // the base model served are refused to requests, naming why.
  void AddAdapter(ServedAdapter adapter);
  // Serves `version` of the model from now on: requests that name no adapter
  // run with `adapter` (nullptr: the bare base model) on `model` (nullptr: the
  // base model served now). Requests in flight finish on the model and
  // version they started with; a replaced model's memory is returned once its
  // last one has ended (told to `on_freed`, on a thread of the core's).
  void SetModelVersion(std::string version, std::shared_ptr<const engine::LoraAdapter> adapter,
                       std::shared_ptr<ServedModel> model = nullptr);
  void set_on_model_freed(std::function<void(const std::string& file)> on_freed);
  // Stops serving the base model to free its memory for another that cannot
  // fit beside it: new requests are refused (Unavailable, saying why) until
  // SetModelVersion gives a model again; requests in flight go on until
  // `deadline`, then are cut off. Returns once its memory is returned
  // (false if it was not by `deadline` plus a grace).
  bool Unload(Clock::time_point deadline);

  // Over every model still running (the served one and any being replaced):
  // see Scheduler.
  void SetMemoryPressure(ops::MemoryPressure pressure);
  bool Alive(Clock::duration max_step) const;
  int Drain(Clock::time_point deadline);
  void Stop();
  // Models loaded now: 2 while a replaced one still finishes requests.
  int models_loaded() const;

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

  // Frees replaced models no request holds any more, until the core stops.
  void RetireModels();
  std::vector<std::shared_ptr<ServedModel>> LiveModels() const;

  const InferenceCoreConfig config_;
  ServeMetrics* const metrics_;
  SessionStore sessions_;
  // Places (active + waiting) of a model's scheduler, for the callers' shares.
  const int places_;
  mutable Mutex adapters_mu_;
  Serving serving_ ABSL_GUARDED_BY(adapters_mu_);
  std::vector<LoadedAdapter> adapters_ ABSL_GUARDED_BY(adapters_mu_);
  uint64_t next_prefix_space_ ABSL_GUARDED_BY(adapters_mu_) = 1;
  // Replaced models whose requests may still run; freed by the retiring thread.
  std::vector<std::shared_ptr<ServedModel>> replaced_ ABSL_GUARDED_BY(adapters_mu_);
  std::function<void(const std::string&)> on_freed_ ABSL_GUARDED_BY(adapters_mu_);
  bool stopping_ ABSL_GUARDED_BY(adapters_mu_) = false;
  std::thread retirer_;
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
