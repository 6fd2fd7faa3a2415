// federated/aggregator/release_service.h — edgellm.v1.Releases (devices) and
// edgellm.v1.ReleaseAdmin (operators) over Rollouts. Devices are
// authenticated as in Federation; operators by a client certificate whose
// common name is in the configured `admins`.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_RELEASE_SERVICE_H_
#define EDGELLM_FEDERATED_AGGREGATOR_RELEASE_SERVICE_H_

#include <string>
#include <vector>

#include "edgellm/v1/ota.grpc.pb.h"
#include "federated/aggregator/rollout.h"

namespace edgellm::federated {

class ReleaseService final : public v1::Releases::Service {
 public:
  explicit ReleaseService(Rollouts& rollouts) : rollouts_(rollouts) {}

  grpc::Status GetRelease(grpc::ServerContext* context, const v1::GetReleaseRequest* request,
                          v1::GetReleaseResponse* response) override;
  grpc::Status FetchArtifact(grpc::ServerContext* context, const v1::FetchArtifactRequest* request,
                             grpc::ServerWriter<v1::ArtifactChunk>* writer) override;
  grpc::Status ReportInstall(grpc::ServerContext* context, const v1::InstallReport* request,
                             v1::InstallReportResponse* response) override;

 private:
  Rollouts& rollouts_;
};

class ReleaseAdminService final : public v1::ReleaseAdmin::Service {
 public:
  ReleaseAdminService(Rollouts& rollouts, std::vector<std::string> admins)
      : rollouts_(rollouts), admins_(std::move(admins)) {}

  grpc::Status PrepareRelease(grpc::ServerContext* context, const v1::PrepareReleaseRequest* request,
                              v1::PrepareReleaseResponse* response) override;
  grpc::Status Publish(grpc::ServerContext* context, const v1::PublishRequest* request,
                       v1::RolloutStatus* response) override;
  grpc::Status GetRollout(grpc::ServerContext* context, const v1::GetRolloutRequest* request,
                          v1::RolloutStatus* response) override;
  grpc::Status ControlRollout(grpc::ServerContext* context, const v1::ControlRolloutRequest* request,
                              v1::RolloutStatus* response) override;

 private:
  // OK for a caller whose certificate names an admin; PERMISSION_DENIED else.
  grpc::Status Authorize(const grpc::ServerContext& context) const;
  Rollouts& rollouts_;
  const std::vector<std::string> admins_;
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_RELEASE_SERVICE_H_
