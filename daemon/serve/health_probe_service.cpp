#include "daemon/serve/health_probe_service.h"

#include <grpcpp/ext/health_check_service_server_builder_option.h>

#include <algorithm>
#include <vector>

namespace edgellm::serve {
namespace {

// Takes gRPC's reflection plugin (which the reflection library adds to every
// server builder when it is loaded) out of one builder.
class WithoutReflection : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    std::erase_if(*plugins, [](const auto& plugin) { return plugin->name() == "proto_server_reflection"; });
  }
};

}  // namespace

grpc::ServerUnaryReactor* HealthProbeService::Check(grpc::CallbackServerContext* context,
                                                    const grpc::health::v1::HealthCheckRequest* request,
                                                    grpc::health::v1::HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!request->service().empty() && request->service() != service_name_) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service"));
    return reactor;
  }
  response->set_status(serving_.load() ? grpc::health::v1::HealthCheckResponse::SERVING
                                       : grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

std::unique_ptr<grpc::Server> StartHealthProbeServer(const std::string& address, HealthProbeService& service,
                                                     int* port) {
  grpc::ServerBuilder builder;
  builder.SetOption(std::make_unique<WithoutReflection>());
  // Nor the default health service (a null one disables it): this server has its own.
  builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(4 << 10);
  return builder.BuildAndStart();
}

}  // namespace edgellm::serve
