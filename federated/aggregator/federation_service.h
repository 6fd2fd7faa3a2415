// federated/aggregator/federation_service.h — edgellm.v1.Federation over the
// Coordinator: authenticates every call by the client certificate's common
// name, bounds every stream and each device's calls in flight, and maps the
// coordinator's answers to gRPC.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_FEDERATION_SERVICE_H_
#define EDGELLM_FEDERATED_AGGREGATOR_FEDERATION_SERVICE_H_

#include "edgellm/v1/federation.grpc.pb.h"
#include "federated/aggregator/coordinator.h"
#include "federated/aggregator/device_calls.h"
#include "federated/aggregator/name_list_file.h"
#include "federated/aggregator/rate_budget.h"
#include "federated/aggregator/stream_deadlines.h"

namespace edgellm::federated {

// What every device call passes before its handler runs: a certificate that
// is not revoked and not an operator's, and a place among its calls in flight.
struct CallerChecks {
  DeviceCalls& calls;
  RateBudget& rates;  // calls per device over time
  NameListFile& revoked;
  const std::vector<std::string>& operators;  // the admins: their certificates are never devices
  StreamDeadlines& deadlines;
};

class FederationService final : public v1::Federation::Service {
 public:
  FederationService(Coordinator& coordinator, CallerChecks& checks) : coordinator_(coordinator), checks_(checks) {}

  grpc::Status Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                        v1::RegisterResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status GetTask(grpc::ServerContext* context, const v1::GetTaskRequest* request,
                       v1::GetTaskResponse* response) override;
  grpc::Status FetchAdapter(grpc::ServerContext* context, const v1::FetchAdapterRequest* request,
                            grpc::ServerWriter<v1::ArtifactChunk>* writer) override;
  grpc::Status UploadStatus(grpc::ServerContext* context, const v1::UploadStatusRequest* request,
                            v1::UploadStatusResponse* response) override;
  grpc::Status SubmitUpdate(grpc::ServerContext* context, grpc::ServerReader<v1::UpdateChunk>* reader,
                            v1::SubmitUpdateResponse* response) override;

 private:
  Coordinator& coordinator_;
  CallerChecks& checks_;
};

// The common name of the peer's client certificate into *name; UNAUTHENTICATED
// without one.
grpc::Status CertifiedName(const grpc::ServerContext& context, std::string* name);

// OK when the peer's certificate names `device_id`: UNAUTHENTICATED without
// a certificate common name, PERMISSION_DENIED for another device's id,
// INVALID_ARGUMENT for an id that is not 1-64 of [A-Za-z0-9._-].
grpc::Status AuthenticateDevice(const grpc::ServerContext& context, const std::string& device_id);

// A place among the calls in flight of the certificate's holder into
// *ticket: UNAUTHENTICATED without a certificate, PERMISSION_DENIED for a
// revoked one or an operator's, RESOURCE_EXHAUSTED when it has no place left.
grpc::Status AdmitCaller(const grpc::ServerContext& context, CallerChecks& checks, DeviceCalls::Ticket* ticket);
// AuthenticateDevice, then AdmitCaller.
grpc::Status AdmitDevice(const grpc::ServerContext& context, const std::string& device_id, CallerChecks& checks,
                         DeviceCalls::Ticket* ticket);

// Streams `artifact` from `offset` in chunks of kChunkBytes: OUT_OF_RANGE
// for an offset past its end, CANCELLED when the device goes away.
grpc::Status StreamArtifact(const grpc::ServerContext& context, const ArtifactRef& artifact, uint64_t offset,
                            grpc::ServerWriter<v1::ArtifactChunk>* writer);

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_FEDERATION_SERVICE_H_
