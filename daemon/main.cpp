// edgellmd — the edge inference daemon. main() only wires the order:
// load and warm up, serve, report SERVING (health) and READY (systemd), feed
// the watchdog, wait for SIGTERM, report NOT_SERVING and STOPPING, refuse new
// work, drain in-flight requests, shut down.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <filesystem>

#include "daemon/engine/llama_model.h"
#include "daemon/ops/http_endpoint.h"
#include "daemon/ops/metrics.h"
#include "daemon/ops/systemd_notify.h"
#include "daemon/serve/serve_metrics.h"
#include "daemon/serve/inference_service.h"
#include "daemon/serve/scheduler.h"

namespace edgellm {
namespace {

struct DaemonArgs {
  std::string model;
  std::string listen = "unix:/run/edgellmd/edgellmd.sock";
  std::string metrics_listen;  // empty: no metrics endpoint
  int32_t threads = 0;
  int32_t context = 0;
  serve::SchedulerConfig scheduler;
  double drain_seconds = 30.0;
};

void Log(const std::string& message) { std::fprintf(stderr, "edgellmd: %s\n", message.c_str()); }

// A unix socket path, or "" for a TCP address.
std::string UnixSocketPath(const std::string& listen) {
  if (listen.rfind("unix://", 0) == 0) return listen.substr(7);
  if (listen.rfind("unix:", 0) == 0) return listen.substr(5);
  return "";
}

double ResidentBytes() {
  long pages_total = 0, pages_resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(pages_resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

bool IsLoopback(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address.rfind("localhost:", 0) == 0 || address.rfind("[::1]:", 0) == 0;
}

int Run(const DaemonArgs& args) {
  // Signals are taken by sigwait in this thread only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::string socket_path = UnixSocketPath(args.listen);
  if (socket_path.empty() && !IsLoopback(args.listen)) {
    Log("refusing to listen on " + args.listen + ": TCP beyond loopback needs TLS, which is not configured");
    return 2;
  }

  engine::ModelOptions options;
  options.threads = args.threads;
  options.context_length = args.context;
  auto model = engine::LlamaModel::Load(args.model, options);
  if (!model.ok()) {
    Log(std::string(model.status().message()));
    return 1;
  }
  // Warm-up: the first forward pays for allocations and thread start-up.
  {
    auto cache = (*model)->NewCache(8);
    std::vector<float> logits;
    if (absl::Status s = (*model)->Forward((*model)->tokenizer().Encode("warm up"), cache.get(), false, &logits);
        !s.ok()) {
      Log("warm-up failed: " + std::string(s.message()));
      return 1;
    }
  }

  serve::InferenceServiceConfig service_config;
  service_config.model_name = std::filesystem::path(args.model).stem().string();
  ops::MetricsRegistry registry;
  serve::ServeMetrics serve_metrics(registry, service_config.model_name);
  registry.AddCallbackGauge("process_resident_memory_bytes", "Resident memory size in bytes.", ResidentBytes);
  serve::Scheduler scheduler(**model, args.scheduler, &serve_metrics);
  scheduler.Start();
  serve::InferenceService service(**model, scheduler, service_config, &serve_metrics);

  std::atomic<bool> serving{false};
  std::unique_ptr<ops::HttpEndpoint> metrics_endpoint;
  if (!args.metrics_listen.empty()) {
    auto endpoint = ops::HttpEndpoint::Start(args.metrics_listen, [&](const std::string& path) -> ops::HttpReply {
      if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", registry.Render()};
      if (path == "/healthz") return serving ? ops::HttpReply{200, "text/plain", "ok\n"}
                                             : ops::HttpReply{503, "text/plain", "not serving\n"};
      return {404, "text/plain", "not found\n"};
    });
    if (!endpoint.ok()) {
      Log(std::string(endpoint.status().message()));
      return 1;
    }
    metrics_endpoint = std::move(*endpoint);
    Log("metrics on port " + std::to_string(metrics_endpoint->port()) + " (/metrics, /healthz)");
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (!socket_path.empty()) std::filesystem::remove(socket_path);
  builder.AddListeningPort(args.listen, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(4 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    Log("cannot listen on " + args.listen);
    return 1;
  }
  if (!socket_path.empty()) ::chmod(socket_path.c_str(), 0660);
  server->GetHealthCheckService()->SetServingStatus(true);
  serving = true;
  Log("serving " + service_config.model_name + " on " + args.listen);
  ops::NotifyReady("serving " + service_config.model_name);
  // A step that runs for a minute means the loop is stuck: stop feeding the watchdog.
  ops::WatchdogPinger watchdog([&scheduler] { return scheduler.Alive(std::chrono::minutes(1)); });

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Log(std::string("received ") + (signal_number == SIGTERM ? "SIGTERM" : "SIGINT") + ": draining");
  server->GetHealthCheckService()->SetServingStatus(false);
  serving = false;
  ops::NotifyStopping("draining");
  const auto drain_deadline =
      serve::Clock::now() + std::chrono::duration_cast<serve::Clock::duration>(std::chrono::duration<double>(args.drain_seconds));
  const int cut = scheduler.Drain(drain_deadline);
  if (cut > 0) Log(std::to_string(cut) + " requests were cut off at the drain timeout");
  if (!service.WaitForStreams(drain_deadline)) Log("some streams were still open at the drain timeout");
  // Every stream has ended: what remains are idle connections, closed at once.
  server->Shutdown(std::chrono::system_clock::now());
  scheduler.Stop();
  if (!socket_path.empty()) std::filesystem::remove(socket_path);
  Log("stopped");
  return 0;
}

}  // namespace
}  // namespace edgellm

int main(int argc, char** argv) {
  edgellm::DaemonArgs args;
  CLI::App app{"edgellmd — local gRPC inference for edge apps"};
  app.add_option("-m,--model", args.model, "GGUF model file")->required();
  app.add_option("--listen", args.listen, "unix:PATH, or HOST:PORT on loopback")->capture_default_str();
  app.add_option("--metrics-listen", args.metrics_listen, "HOST:PORT serving /metrics (Prometheus) and /healthz");
  app.add_option("-t,--threads", args.threads, "Compute threads (default: one per core)");
  app.add_option("-c,--ctx", args.context, "Context length (default: the model's, at most 4096)");
  app.add_option("--max-active", args.scheduler.max_active, "Sequences decoded together in one batched step")
      ->capture_default_str();
  app.add_option("--max-waiting", args.scheduler.max_waiting, "Queued requests beyond which new ones are refused")
      ->capture_default_str();
  app.add_option("--prefill-chunk", args.scheduler.prefill_chunk, "Prompt tokens per sequence per step")
      ->capture_default_str();
  app.add_option("--drain-timeout", args.drain_seconds, "Seconds to finish in-flight requests on SIGTERM")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return edgellm::Run(args);
}
