#include "federated/aggregator/federation_service.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/grpc_status.h"
#include "common/log_text.h"
#include "common/str_cat.h"
#include "federated/protocol/protocol.h"

namespace edgellm::federated {
namespace {

bool GoodDeviceId(const std::string& id) {
  return !id.empty() && id.size() <= 64 &&
         id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
             std::string::npos &&
         id != "." && id != "..";
}

// Appends to a part file, synced before the stream's answer.
class PartFile {
 public:
  explicit PartFile(const std::string& path) : fd_(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) {}
  ~PartFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  bool Append(const std::string& bytes) {
    return ::write(fd_, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  }
  bool Sync() { return ::fsync(fd_) == 0; }

 private:
  int fd_;
};

}  // namespace

grpc::Status CertifiedName(const grpc::ServerContext& context, std::string* name) {
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  const std::vector<grpc::string_ref> names =
      auth ? auth->FindPropertyValues("x509_common_name") : std::vector<grpc::string_ref>();
  if (names.empty()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "a client certificate with a common name is required");
  }
  name->assign(names.front().data(), names.front().size());
  return grpc::Status::OK;
}

grpc::Status AuthenticateDevice(const grpc::ServerContext& context, const std::string& device_id) {
  std::string certified;
  if (grpc::Status s = CertifiedName(context, &certified); !s.ok()) return s;
  if (!GoodDeviceId(device_id)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "device_id must be 1-64 of [A-Za-z0-9._-]");
  }
  if (device_id != certified) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        StrCat("device id '", device_id, "' is not the certificate's ('", certified, "')"));
  }
  return grpc::Status::OK;
}

grpc::Status AdmitCaller(const grpc::ServerContext& context, CallerChecks& checks, DeviceCalls::Ticket* ticket) {
  std::string certified;
  if (grpc::Status s = CertifiedName(context, &certified); !s.ok()) return s;
  if (checks.revoked.Contains(certified)) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, StrCat("certificate '", certified, "' is revoked"));
  }
  if (std::find(checks.operators.begin(), checks.operators.end(), certified) != checks.operators.end()) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        StrCat("'", certified, "' is an operator's certificate, not a device's"));
  }
  *ticket = checks.calls.Admit(certified);
  if (!*ticket) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        StrCat("'", certified, "' already has ", checks.calls.limit(), " calls in flight"));
  }
  if (!checks.rates.Take(certified)) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, StrCat("'", certified, "' calls faster than ",
                                                                     checks.rates.per_second(),
                                                                     " a second: back off and try again"));
  }
  return grpc::Status::OK;
}

grpc::Status AdmitDevice(const grpc::ServerContext& context, const std::string& device_id, CallerChecks& checks,
                         DeviceCalls::Ticket* ticket) {
  if (grpc::Status s = AuthenticateDevice(context, device_id); !s.ok()) return s;
  return AdmitCaller(context, checks, ticket);
}

grpc::Status StreamArtifact(const grpc::ServerContext& context, const ArtifactRef& artifact, uint64_t offset,
                            grpc::ServerWriter<v1::ArtifactChunk>* writer) {
  if (offset > artifact.bytes) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                        StrCat("offset ", offset, " is past the artifact's ", artifact.bytes, " bytes"));
  }
  std::ifstream in(artifact.path, std::ios::binary);
  if (!in) return grpc::Status(grpc::StatusCode::INTERNAL, "the artifact cannot be read");
  in.seekg(static_cast<std::streamoff>(offset));
  std::string buffer(kChunkBytes, '\0');
  do {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto got = static_cast<size_t>(in.gcount());
    v1::ArtifactChunk chunk;
    chunk.set_offset(offset);
    chunk.set_data(buffer.data(), got);
    chunk.set_total_bytes(artifact.bytes);
    chunk.set_sha256(artifact.sha256);
    if (!writer->Write(chunk)) return grpc::Status(grpc::StatusCode::CANCELLED, "the device went away");
    offset += got;
    if (got == 0) break;
  } while (offset < artifact.bytes && !context.IsCancelled());
  return grpc::Status::OK;
}

grpc::Status FederationService::Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                                         v1::RegisterResponse* response) {
  DeviceCalls::Ticket ticket;
  if (grpc::Status s = AdmitDevice(*context, request->device_id(), checks_, &ticket); !s.ok()) return s;
  auto result = coordinator_.Register(*request);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *result;
  return grpc::Status::OK;
}

grpc::Status FederationService::Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                                          v1::HeartbeatResponse* response) {
  DeviceCalls::Ticket ticket;
  if (grpc::Status s = AdmitDevice(*context, request->device_id(), checks_, &ticket); !s.ok()) return s;
  *response = coordinator_.Heartbeat(*request);
  return grpc::Status::OK;
}

grpc::Status FederationService::GetTask(grpc::ServerContext* context, const v1::GetTaskRequest* request,
                                        v1::GetTaskResponse* response) {
  DeviceCalls::Ticket ticket;
  if (grpc::Status s = AdmitDevice(*context, request->device_id(), checks_, &ticket); !s.ok()) return s;
  auto result = coordinator_.GetTask(*request);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *result;
  return grpc::Status::OK;
}

grpc::Status FederationService::FetchAdapter(grpc::ServerContext* context, const v1::FetchAdapterRequest* request,
                                             grpc::ServerWriter<v1::ArtifactChunk>* writer) {
  DeviceCalls::Ticket ticket;
  if (grpc::Status s = AdmitDevice(*context, request->device_id(), checks_, &ticket); !s.ok()) return s;
  const StreamDeadlines::Watch watch = checks_.deadlines.Start(context, "FetchAdapter of " + request->device_id());
  auto artifact = coordinator_.AdapterArtifact(request->device_id(), request->model_id(), request->version());
  if (!artifact.ok()) return ToGrpcStatus(artifact.status());
  return StreamArtifact(*context, *artifact, request->offset(), writer);
}

grpc::Status FederationService::UploadStatus(grpc::ServerContext* context, const v1::UploadStatusRequest* request,
                                             v1::UploadStatusResponse* response) {
  DeviceCalls::Ticket ticket;
  if (grpc::Status s = AdmitDevice(*context, request->device_id(), checks_, &ticket); !s.ok()) return s;
  auto result = coordinator_.UploadStatus(*request);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *result;
  return grpc::Status::OK;
}

grpc::Status FederationService::SubmitUpdate(grpc::ServerContext* context, grpc::ServerReader<v1::UpdateChunk>* reader,
                                             v1::SubmitUpdateResponse* response) {
  // Admitted before its first message is read: a stream that never sends one holds a place all the same.
  DeviceCalls::Ticket ticket;
  if (grpc::Status s = AdmitCaller(*context, checks_, &ticket); !s.ok()) return s;
  std::string caller;
  CertifiedName(*context, &caller);  // admitted: it has one
  const StreamDeadlines::Watch watch = checks_.deadlines.Start(context, "SubmitUpdate of " + LogText(caller));
  v1::UpdateChunk chunk;
  if (!reader->Read(&chunk) || !chunk.has_header()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "an upload starts with its header");
  }
  const v1::UpdateHeader header = chunk.header();
  if (grpc::Status s = AuthenticateDevice(*context, header.device_id()); !s.ok()) {
    coordinator_.CountRefusal(header.model_id(), "identity");
    return s;
  }
  auto target = coordinator_.BeginUpload(header);
  if (!target.ok()) return ToGrpcStatus(target.status());
  if (target->answer) {
    *response = *target->answer;
    return grpc::Status::OK;
  }
  PartFile part(target->part_path);
  if (!part.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "cannot store the upload");
  uint64_t received = target->received_bytes;
  while (reader->Read(&chunk)) {
    if (chunk.has_header()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "only the first message of an upload is a header");
    }
    if (received + chunk.data().size() > header.total_bytes()) {
      std::error_code ec;
      std::filesystem::remove(target->part_path, ec);
      coordinator_.CountRefusal(header.model_id(), "size");
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          StrCat("the upload runs past its declared ", header.total_bytes(), " bytes"));
    }
    if (!part.Append(chunk.data())) return grpc::Status(grpc::StatusCode::INTERNAL, "cannot store the upload");
    received += chunk.data().size();
    coordinator_.CountReceived(header.model_id(), chunk.data().size());
  }
  if (!part.Sync()) return grpc::Status(grpc::StatusCode::INTERNAL, "cannot store the upload");
  if (received < header.total_bytes()) {
    response->set_outcome(v1::SubmitUpdateResponse::INCOMPLETE);
    response->set_received_bytes(received);
    response->set_detail(StrCat("have ", received, " of ", header.total_bytes(), " bytes; resume there"));
    return grpc::Status::OK;
  }
  auto result = coordinator_.FinishUpload(header);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *result;
  return grpc::Status::OK;
}

}  // namespace edgellm::federated
