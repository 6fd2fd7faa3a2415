// serve/inference_service.h — the gRPC service edgellm.v1.Inference.
//
// Turns messages into the shared core's requests (inference_core.h):
// Generate and Chat go through the scheduler (and its batching and
// admission), continuing a session's conversation when they name one; Embed
// runs on the scheduler's thread between steps; Tokenize, Detokenize and
// ListModels answer directly from the model's tokenizer and metadata. Every
// size from the network is bounded, and every refusal is a status with a
// message.
#ifndef EDGELLM_SERVE_INFERENCE_SERVICE_H_
#define EDGELLM_SERVE_INFERENCE_SERVICE_H_

#include <string>

#include "daemon/serve/inference_core.h"
#include "daemon/serve/unix_peer_listener.h"
#include "edgellm/v1/inference.grpc.pb.h"

namespace edgellm::serve {

// Thread-safe: handlers run on gRPC's threads.
class GenerateReactor;

class InferenceService final : public v1::Inference::CallbackService {
 public:
  // `core` (and `local_peers`, if any) must outlive the service. Callers
  // are told apart by their client certificate, or on a unix socket accepted
  // by `local_peers` by their uid; every other caller is "local".
  explicit InferenceService(InferenceCore& core, UnixPeerListener* local_peers = nullptr)
      : core_(core), local_peers_(local_peers) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext* context,
                                                           const v1::GenerateRequest* request) override;
  grpc::ServerWriteReactor<v1::GenerateResponse>* Chat(grpc::CallbackServerContext* context,
                                                       const v1::ChatRequest* request) override;
  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* context, const v1::EmbedRequest* request,
                                  v1::EmbedResponse* response) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context, const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context, const v1::DetokenizeRequest* request,
                                       v1::DetokenizeResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context, const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;

 private:
  // A reactor for `caller`'s stream, counted by the core; when the caller has
  // no place left it is already finished with that error (`*admitted` false).
  GenerateReactor* NewReactor(const Serving& serving, const std::string& caller, bool* admitted);
  // A stream refused at once with `status` (counted in the metrics).
  grpc::ServerWriteReactor<v1::GenerateResponse>* RefuseStream(const absl::Status& status);
  // "cert:NAME", "uid:N" or "local".
  std::string CallerOf(const grpc::CallbackServerContext& context) const;

  InferenceCore& core_;
  UnixPeerListener* const local_peers_;
};

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_INFERENCE_SERVICE_H_
