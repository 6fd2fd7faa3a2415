#include "federated/aggregator/release_service.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/grpc_status.h"
#include "common/str_cat.h"
#include "federated/aggregator/federation_service.h"
#include "federated/aggregator/fleet_view.h"
#include "federated/protocol/sha256.h"

namespace edgellm::federated {
namespace {

// Answers `result` into `response`, or its error.
template <typename T>
grpc::Status Answer(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status ReleaseService::GetRelease(grpc::ServerContext* context, const v1::GetReleaseRequest* request,
                                        v1::GetReleaseResponse* response) {
  DeviceCalls::Ticket ticket;
  if (grpc::Status s = AdmitDevice(*context, request->device_id(), checks_, &ticket); !s.ok()) return s;
  return Answer(rollouts_.ReleaseFor(*request), response);
}

grpc::Status ReleaseService::FetchArtifact(grpc::ServerContext* context, const v1::FetchArtifactRequest* request,
                                           grpc::ServerWriter<v1::ArtifactChunk>* writer) {
  DeviceCalls::Ticket ticket;
  if (grpc::Status s = AdmitDevice(*context, request->device_id(), checks_, &ticket); !s.ok()) return s;
  const StreamDeadlines::Watch watch = checks_.deadlines.Start(context, "FetchArtifact of " + request->device_id());
  absl::StatusOr<ArtifactRef> artifact = rollouts_.Artifact(request->device_id(), request->sha256());
  if (!artifact.ok()) return ToGrpcStatus(artifact.status());
  return StreamArtifact(*context, *artifact, request->offset(), writer);
}

grpc::Status ReleaseService::ReportInstall(grpc::ServerContext* context, const v1::InstallReport* request,
                                           v1::InstallReportResponse*) {
  DeviceCalls::Ticket ticket;
  if (grpc::Status s = AdmitDevice(*context, request->device_id(), checks_, &ticket); !s.ok()) return s;
  return ToGrpcStatus(rollouts_.Report(*request));
}

grpc::Status ReleaseAdminService::Authorize(const grpc::ServerContext& context, std::string* operator_name) const {
  std::string ignored;
  std::string& name = operator_name != nullptr ? *operator_name : ignored;
  if (grpc::Status s = CertifiedName(context, &name); !s.ok()) return s;
  if (revoked_.Contains(name)) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, StrCat("certificate '", name, "' is revoked"));
  }
  if (std::find(admins_.begin(), admins_.end(), name) == admins_.end()) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        StrCat("'", name, "' is not among the aggregator's admins"));
  }
  return grpc::Status::OK;
}

grpc::Status ReleaseAdminService::PrepareRelease(grpc::ServerContext* context, const v1::PrepareReleaseRequest* request,
                                                 v1::PrepareReleaseResponse* response) {
  if (grpc::Status s = Authorize(*context); !s.ok()) return s;
  absl::StatusOr<std::string> manifest = rollouts_.Prepare(*request);
  if (!manifest.ok()) return ToGrpcStatus(manifest.status());
  response->set_manifest_json(*std::move(manifest));
  return grpc::Status::OK;
}

grpc::Status ReleaseAdminService::Publish(grpc::ServerContext* context, const v1::PublishRequest* request,
                                          v1::RolloutStatus* response) {
  std::string name;
  if (grpc::Status s = Authorize(*context, &name); !s.ok()) return s;
  if (absl::Status s = rollouts_.StartBaseDelta(request->signed_release()); !s.ok()) return ToGrpcStatus(s);
  return Answer(rollouts_.Publish(*request, name), response);
}

grpc::Status ReleaseAdminService::GetRollout(grpc::ServerContext* context, const v1::GetRolloutRequest* request,
                                             v1::RolloutStatus* response) {
  if (grpc::Status s = Authorize(*context); !s.ok()) return s;
  return Answer(rollouts_.Status(request->model_id()), response);
}

grpc::Status ReleaseAdminService::ControlRollout(grpc::ServerContext* context,
                                                 const v1::ControlRolloutRequest* request,
                                                 v1::RolloutStatus* response) {
  std::string name;
  if (grpc::Status s = Authorize(*context, &name); !s.ok()) return s;
  return Answer(rollouts_.Control(*request, name), response);
}

grpc::Status ReleaseAdminService::FetchPreparedArtifact(grpc::ServerContext* context,
                                                        const v1::FetchPreparedArtifactRequest* request,
                                                        grpc::ServerWriter<v1::ArtifactChunk>* writer) {
  if (grpc::Status s = Authorize(*context); !s.ok()) return s;
  absl::StatusOr<ArtifactRef> artifact = rollouts_.PreparedArtifact(request->model_id(), request->sha256());
  if (!artifact.ok()) return ToGrpcStatus(artifact.status());
  return StreamArtifact(*context, *artifact, request->offset(), writer);
}

grpc::Status ReleaseAdminService::GetFleet(grpc::ServerContext* context, const v1::GetFleetRequest* request,
                                           v1::FleetStatus* response) {
  if (grpc::Status s = Authorize(*context); !s.ok()) return s;
  return Answer(ReadFleet(coordinator_, rollouts_, request->model_id()), response);
}

grpc::Status ReleaseAdminService::UploadBaseModel(grpc::ServerContext* context,
                                                  grpc::ServerReader<v1::BaseModelChunk>* reader,
                                                  v1::UploadBaseModelResponse* response) {
  if (grpc::Status s = Authorize(*context); !s.ok()) return s;
  v1::BaseModelChunk chunk;
  if (!reader->Read(&chunk) || !chunk.has_header()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "an upload starts with its header");
  }
  const v1::BaseModelHeader header = chunk.header();
  absl::StatusOr<std::string> part_path = rollouts_.BeginBaseModelUpload(header);
  if (!part_path.ok()) return ToGrpcStatus(part_path.status());
  std::ofstream part(*part_path, std::ios::binary | std::ios::trunc);
  Sha256 hash;
  uint64_t received = 0;
  const auto append = [&](const std::string& data) -> grpc::Status {
    if (received + data.size() > header.total_bytes()) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          StrCat("the upload runs past its declared ", header.total_bytes(), " bytes"));
    }
    part.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!part) return grpc::Status(grpc::StatusCode::INTERNAL, "cannot store the upload");
    hash.Update(data);
    received += data.size();
    return grpc::Status::OK;
  };
  grpc::Status appended = append(chunk.data());
  while (appended.ok() && reader->Read(&chunk)) {
    if (chunk.has_header()) {
      appended = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "only the first message of an upload is a header");
      break;
    }
    appended = append(chunk.data());
  }
  part.close();
  if (!appended.ok() || !part) {
    std::error_code ec;
    std::filesystem::remove(*part_path, ec);
    return appended.ok() ? grpc::Status(grpc::StatusCode::INTERNAL, "cannot store the upload") : appended;
  }
  const std::string sha = hash.Finish();
  if (grpc::Status s = ToGrpcStatus(rollouts_.FinishBaseModelUpload(header, *part_path, received, sha)); !s.ok()) {
    return s;
  }
  response->set_sha256(sha);
  response->set_bytes(received);
  return grpc::Status::OK;
}

}  // namespace edgellm::federated
