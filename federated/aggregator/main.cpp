// edgellm-aggregator — runs federated rounds for edge devices over mutual
// TLS, aggregates their adapter updates into new versions, and keeps its
// state (SQLite + content-addressed artifacts + audit log) crash-safe.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/ascii.h"
#include "common/read_file.h"
#include "common/str_cat.h"
#include "daemon/ops/http_endpoint.h"
#include "daemon/ops/metrics.h"
#include "daemon/ops/systemd_notify.h"
#include "daemon/ops/tls_files.h"
#include "federated/aggregator/aggregator_config.h"
#include "federated/aggregator/aggregator_metrics.h"
#include "federated/aggregator/coordinator.h"
#include "federated/aggregator/device_calls.h"
#include "federated/aggregator/name_list_file.h"
#include "federated/aggregator/federation_service.h"
#include "federated/aggregator/fleet_page.h"
#include "federated/aggregator/release_service.h"
#include "federated/aggregator/rollout.h"
#include "federated/protocol/protocol.h"

namespace edgellm::federated {
namespace {

void Log(const std::string& message) { std::fprintf(stderr, "edgellm-aggregator: %s\n", message.c_str()); }

// The fleet page as `config` asks: its token read from fleet_token_file (trimmed), if any.
absl::StatusOr<std::unique_ptr<FleetPage>> StartFleetPage(const AggregatorConfig& config, Coordinator& coordinator,
                                                          Rollouts& rollouts, NameListFile& revoked) {
  FleetPageConfig page{config.fleet_listen, config.tls_cert, config.tls_key, config.tls_client_ca, "", config.admins};
  if (!config.fleet_token_file.empty()) {
    absl::StatusOr<std::string> token = ReadFileToString(config.fleet_token_file, "fleet_token_file");
    if (!token.ok()) return token.status();
    page.token = std::string(absl::StripAsciiWhitespace(*token));
  }
  return FleetPage::Start(std::move(page), coordinator, rollouts, revoked);
}

int Run(const AggregatorConfig& config) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<ops::TlsFiles> tls = ops::LoadTlsFiles(config.tls_cert, config.tls_key, config.tls_client_ca);
  if (!tls.ok()) {
    Log(std::string(tls.status().message()));
    return 2;
  }
  ops::MetricsRegistry registry;
  AggregatorMetrics metrics(registry);
  auto coordinator = Coordinator::Open(config, metrics, Log);
  if (!coordinator.ok()) {
    Log(std::string(coordinator.status().message()));
    return 1;
  }
  auto rollouts = Rollouts::Create(**coordinator, Log);
  if (!rollouts.ok()) {
    Log(std::string(rollouts.status().message()));
    return 2;
  }
  std::atomic<bool> serving{false};
  std::unique_ptr<ops::HttpEndpoint> metrics_endpoint;
  if (!config.metrics_listen.empty()) {
    auto endpoint = ops::StartMetricsEndpoint(config.metrics_listen, registry, serving);
    if (!endpoint.ok()) {
      Log(std::string(endpoint.status().message()));
      return 1;
    }
    metrics_endpoint = std::move(*endpoint);
    Log(StrCat("metrics on port ", metrics_endpoint->port(), " (/metrics, /healthz)"));
  }

  // Devices must present a certificate from the configured CA; plaintext and
  // unverified clients never reach a handler.
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = tls->client_ca;
  ssl.pem_key_cert_pairs.push_back({tls->private_key, tls->cert_chain});
  DeviceCalls device_calls(config.max_calls_per_device);
  NameListFile revoked(config.revoked_certificates_file);
  StreamDeadlines deadlines(std::chrono::milliseconds(static_cast<int64_t>(config.max_stream_seconds * 1000)), Log,
                            registry.AddCounter("edgellm_aggregator_streams_cut_total",
                                                "Streams cancelled for running longer than max_stream_seconds."));
  RateBudget device_rates(config.device_call_burst, config.device_calls_per_second);
  CallerChecks checks{device_calls, device_rates, revoked, config.admins, deadlines};
  FederationService service(**coordinator, checks);
  ReleaseService releases(**rollouts, checks);
  ReleaseAdminService release_admin(**coordinator, **rollouts, config.admins, revoked);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config.listen, grpc::SslServerCredentials(ssl), &port);
  builder.RegisterService(&service);
  builder.RegisterService(&releases);
  builder.RegisterService(&release_admin);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  // Every bound a device could otherwise push: threads (a call beyond them is
  // refused), streams on one connection, connections left idle or silently
  // gone (keepalive pings find them), and how often a client may ping.
  grpc::ResourceQuota quota("edgellm-aggregator");
  quota.SetMaxThreads(config.max_threads);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, config.max_streams_per_connection);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, static_cast<int>(config.connection_idle_seconds * 1000));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  std::unique_ptr<FleetPage> fleet_page;
  if (!config.fleet_listen.empty()) {
    absl::StatusOr<std::unique_ptr<FleetPage>> page = StartFleetPage(config, **coordinator, **rollouts, revoked);
    if (!page.ok()) {
      Log("the fleet page: " + std::string(page.status().message()));
      return absl::IsInvalidArgument(page.status()) ? 2 : 1;
    }
    fleet_page = *std::move(page);
    Log(StrCat("fleet page on port ", fleet_page->port(), " (https, ",
               config.fleet_token_file.empty() ? "admins' certificates" : "a token", ")"));
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    Log("cannot listen on " + config.listen);
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  serving = true;
  Log(StrCat("listening on ", config.listen, " (port ", port, ", mutual TLS); state in ", config.state_dir));
  ops::NotifyReady("aggregating");

  std::atomic<bool> stopping{false};
  std::thread rounds([&] {
    while (!stopping) {
      (*coordinator)->Tick();
      (*rollouts)->Tick();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Log(signal_number == SIGTERM ? "received SIGTERM: stopping" : "received SIGINT: stopping");
  serving = false;
  ops::NotifyStopping("stopping");
  stopping = true;
  rounds.join();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  Log("stopped");
  return 0;
}

}  // namespace
}  // namespace edgellm::federated

int main(int argc, char** argv) {
  std::string config_path;
  CLI::App app{"edgellm-aggregator — federated rounds over mutual TLS"};
  app.add_option("--config", config_path, "YAML config file (keys in deploy/aggregator.yaml)")->required();
  CLI11_PARSE(app, argc, argv);
  auto config = edgellm::federated::AggregatorConfig::Load(config_path);
  if (!config.ok()) {
    edgellm::federated::Log(std::string(config.status().message()));
    return 2;
  }
  return edgellm::federated::Run(*config);
}
