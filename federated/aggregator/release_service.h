// federated/aggregator/release_service.h — edgellm.v1.Releases (devices) and
// edgellm.v1.ReleaseAdmin (operators) over Rollouts. Devices are
// authenticated as in Federation; operators by a client certificate whose
// common name is in the configured `admins`.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_RELEASE_SERVICE_H_
#define EDGELLM_FEDERATED_AGGREGATOR_RELEASE_SERVICE_H_

#include <string>
#include <vector>

#include "edgellm/v1/ota.grpc.pb.h"
#include "federated/aggregator/federation_service.h"
#include "federated/aggregator/rollout.h"

namespace edgellm::federated {

class ReleaseService final : public v1::Releases::Service {
 public:
  ReleaseService(Rollouts& rollouts, CallerChecks& checks) : rollouts_(rollouts), checks_(checks) {}

  grpc::Status GetRelease(grpc::ServerContext* context, const v1::GetReleaseRequest* request,
                          v1::GetReleaseResponse* response) override;
  grpc::Status FetchArtifact(grpc::ServerContext* context, const v1::FetchArtifactRequest* request,
                             grpc::ServerWriter<v1::ArtifactChunk>* writer) override;
  grpc::Status ReportInstall(grpc::ServerContext* context, const v1::InstallReport* request,
                             v1::InstallReportResponse* response) override;

 private:
  Rollouts& rollouts_;
  CallerChecks& checks_;
};

class ReleaseAdminService final : public v1::ReleaseAdmin::Service {
 public:
  ReleaseAdminService(Coordinator& coordinator, Rollouts& rollouts, std::vector<std::string> admins,
                      NameListFile& revoked)
      : coordinator_(coordinator), rollouts_(rollouts), admins_(std::move(admins)), revoked_(revoked) {}

  grpc::Status PrepareRelease(grpc::ServerContext* context, const v1::PrepareReleaseRequest* request,
                              v1::PrepareReleaseResponse* response) override;
  grpc::Status Publish(grpc::ServerContext* context, const v1::PublishRequest* request,
                       v1::RolloutStatus* response) override;
  grpc::Status GetRollout(grpc::ServerContext* context, const v1::GetRolloutRequest* request,
                          v1::RolloutStatus* response) override;
  grpc::Status ControlRollout(grpc::ServerContext* context, const v1::ControlRolloutRequest* request,
                              v1::RolloutStatus* response) override;
  grpc::Status FetchPreparedArtifact(grpc::ServerContext* context, const v1::FetchPreparedArtifactRequest* request,
                                     grpc::ServerWriter<v1::ArtifactChunk>* writer) override;
  grpc::Status GetFleet(grpc::ServerContext* context, const v1::GetFleetRequest* request,
                        v1::FleetStatus* response) override;
  grpc::Status UploadBaseModel(grpc::ServerContext* context, grpc::ServerReader<v1::BaseModelChunk>* reader,
                               v1::UploadBaseModelResponse* response) override;

 private:
  // OK for an admin's certificate, whose name goes to *operator_name if given.
  grpc::Status Authorize(const grpc::ServerContext& context, std::string* operator_name = nullptr) const;
  Coordinator& coordinator_;
  Rollouts& rollouts_;
  const std::vector<std::string> admins_;
  NameListFile& revoked_;
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_RELEASE_SERVICE_H_
