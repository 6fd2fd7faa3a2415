// serve/inference_service.h — the gRPC service edgellm.v1.Inference.
//
// Turns requests into engine calls: Generate goes through the scheduler (and
// its batching and admission), continuing a session's conversation when it
// names one; Tokenize, Detokenize and ListModels answer directly from the
// model's tokenizer and metadata. Every size from the
// network is bounded, and every refusal is a status with a message.
#ifndef EDGELLM_SERVE_INFERENCE_SERVICE_H_
#define EDGELLM_SERVE_INFERENCE_SERVICE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/serve/scheduler.h"
#include "daemon/serve/serve_metrics.h"
#include "daemon/serve/session_store.h"
#include "edgellm/v1/inference.grpc.pb.h"

namespace edgellm::serve {

// A LoRA adapter the daemon serves, chosen by GenerateRequest.adapter.
struct ServedAdapter {
  std::string name;
  std::shared_ptr<const engine::LoraAdapter> adapter;
};

struct InferenceServiceConfig {
  std::string model_name;               // what clients name; "" also selects it
  uint64_t max_prompt_bytes = 1 << 20;  // longer prompts, texts or conversations are refused
  SessionStoreConfig sessions;
  int32_t draft_tokens = 0;  // speculative drafts per step for requests that do not say; 0: off
  double draft_row_cost = 0.0;  // the model's, for every request's drafting (GenerateOptions)
};

// Thread-safe: handlers run on gRPC's threads.
class InferenceService final : public v1::Inference::CallbackService {
 public:
  // `model`, `scheduler` (and `metrics`, which may be null) must outlive the service.
  InferenceService(const engine::LlamaModel& model, Scheduler& scheduler, InferenceServiceConfig config,
                   ServeMetrics* metrics = nullptr);

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext* context,
                                                           const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context, const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context, const v1::DetokenizeRequest* request,
                                       v1::DetokenizeResponse* response) override;
  // Blocks until no Generate stream is open, or `deadline`; true if none is.
  // After the scheduler has drained, this is the wait for the last responses
  // to reach their clients.
  bool WaitForStreams(Clock::time_point deadline);

  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context, const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;

  // Serves `adapter` from now on, replacing one of the same name; requests
  // in flight keep the one they started with.
  void AddAdapter(ServedAdapter adapter);

  // Serves `version` of the model from now on: requests that name no adapter
  // run with `adapter` (nullptr: the bare base model), and ListModels reports
  // the version. Requests in flight finish on the version they started with.
  void SetModelVersion(std::string version, std::shared_ptr<const engine::LoraAdapter> adapter);

 private:
  struct LoadedAdapter {
    ServedAdapter served;
    uint64_t prefix_space;  // never reused, so a replaced adapter's KV blocks are never shared
  };

  absl::Status CheckModel(const std::string& name) const;
  // `prompt` is the request's, or the session's conversation followed by it.
  absl::StatusOr<GenerationRequest> ToGenerationRequest(const grpc::CallbackServerContext& context,
                                                        const v1::GenerateRequest& request,
                                                        const std::string& prompt) const;

  const engine::LlamaModel& model_;
  Scheduler& scheduler_;
  const InferenceServiceConfig config_;
  ServeMetrics* const metrics_;
  v1::ModelInfo info_;  // computed once, but for its adapters
  SessionStore sessions_;
  mutable absl::Mutex adapters_mu_;
  std::vector<LoadedAdapter> adapters_ ABSL_GUARDED_BY(adapters_mu_);
  uint64_t next_prefix_space_ ABSL_GUARDED_BY(adapters_mu_) = 1;
  // The installed model version, for requests that name no adapter.
  std::string version_ ABSL_GUARDED_BY(adapters_mu_) = "local";
  LoadedAdapter version_adapter_ ABSL_GUARDED_BY(adapters_mu_){{"", nullptr}, 0};
  absl::Mutex streams_mu_;
  int open_streams_ ABSL_GUARDED_BY(streams_mu_) = 0;
};

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_INFERENCE_SERVICE_H_
