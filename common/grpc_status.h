// common/grpc_status.h — the one place where absl::Status becomes grpc::Status.
// Abseil's codes are gRPC's codes, so the mapping keeps code and message.
#ifndef EDGELLM_COMMON_GRPC_STATUS_H_
#define EDGELLM_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace edgellm {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace edgellm

#endif  // EDGELLM_COMMON_GRPC_STATUS_H_
