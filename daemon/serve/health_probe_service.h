// serve/health_probe_service.h — grpc.health.v1 for the plaintext
// health_listen port, and nothing else there.
//
// gRPC's default health service cannot be used on that port: a server needs
// a service of its own to be polled, and the reflection library adds its
// plugin to every server builder of the process, so the plaintext port would
// serve reflection, whose streams each hold a thread. This service answers
// Check on the callback API (no thread per call); Watch is not offered
// (Kubernetes' gRPC probes and grpc-health-probe use Check).
#ifndef EDGELLM_SERVE_HEALTH_PROBE_SERVICE_H_
#define EDGELLM_SERVE_HEALTH_PROBE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>

#include "grpc/health/v1/health.grpc.pb.h"

namespace edgellm::serve {

class HealthProbeService : public grpc::health::v1::Health::CallbackService {
 public:
  // `service_name` answers as "" does; any other name is NOT_FOUND.
  explicit HealthProbeService(std::string service_name) : service_name_(std::move(service_name)) {}

  void SetServing(bool serving) { serving_.store(serving); }

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;

 private:
  const std::string service_name_;
  std::atomic<bool> serving_{false};
};

// A plaintext server on `address` with the health probe service only (no
// reflection, no default health service). nullptr when it cannot listen;
// `*port` is the port it got.
std::unique_ptr<grpc::Server> StartHealthProbeServer(const std::string& address, HealthProbeService& service,
                                                     int* port);

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_HEALTH_PROBE_SERVICE_H_
