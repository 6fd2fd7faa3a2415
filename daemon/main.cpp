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
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/aggregator_identity.h"
#include "daemon/engine/drafter.h"
#include "daemon/engine/llama_model.h"
#include "daemon/model_loader.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/ops/config.h"
#include "daemon/ops/http_endpoint.h"
#include "daemon/ops/memory_guard.h"
#include "daemon/ops/metrics.h"
#include "daemon/ops/systemd_notify.h"
#include "daemon/ops/tls_files.h"
#include "daemon/ota/release_store.h"
#include "daemon/ota_wiring.h"
#include "daemon/serve/health_probe_service.h"
#include "daemon/ops/http_server.h"
#include "daemon/serve/inference_core.h"
#include "daemon/serve/inference_service.h"
#include "daemon/serve/openai_api.h"
#include "daemon/serve/serve_metrics.h"
#include "daemon/train/training_worker.h"
#include "federated/client/federated_client.h"

namespace edgellm {

void Log(const std::string& message) { std::fprintf(stderr, "edgellmd: %s\n", message.c_str()); }

namespace {

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

// The trainer's command line from the train_* keys, training on the model in `model_file`.
train::TrainCommand TrainingCommand(const ops::DaemonConfig& args, const std::string& model_file) {
  train::TrainCommand c;
  c.program = args.train_program;
  c.model = model_file;
  c.data = args.train_data;
  c.out_dir = args.train_dir;
  c.steps = args.train_steps;
  c.learning_rate = args.train_learning_rate;
  c.rank = args.train_rank;
  c.alpha = args.train_alpha;
  c.targets = args.train_targets;
  c.max_length = args.train_max_length;
  c.micro_batch = args.train_micro_batch;
  c.memory_budget_mib = args.train_memory_budget_mib;
  c.threads = args.threads;
  return c;
}

// Beyond loopback, only clients with a certificate from tls_client_ca, unless
// tls_allow_any_client says otherwise.
absl::Status CheckClientCa(const ops::DaemonConfig& args, const std::string& address) {
  if (IsLoopback(address) || !args.tls_client_ca.empty() || args.tls_allow_any_client) return absl::OkStatus();
  return absl::InvalidArgumentError("refusing to listen on " + address +
                                    ": beyond loopback clients need certificates from tls_client_ca "
                                    "(or tls_allow_any_client: true to serve any TLS client)");
}

// The OpenAI-compatible API on http_listen, with the gRPC listener's TLS files.
absl::StatusOr<std::unique_ptr<ops::HttpServer>> StartHttpApi(const ops::DaemonConfig& args,
                                                                serve::OpenAiApi& api) {
  if (!IsLoopback(args.http_listen) && args.tls_cert.empty()) {
    return absl::InvalidArgumentError("refusing to serve HTTP on " + args.http_listen +
                                      ": beyond loopback it needs TLS (tls_cert, tls_key)");
  }
  EDGELLM_RETURN_IF_ERROR(CheckClientCa(args, args.http_listen));
  ops::HttpServerConfig config;
  config.listen = args.http_listen;
  config.tls_cert = args.tls_cert;
  config.tls_key = args.tls_key;
  config.tls_client_ca = args.tls_client_ca;
  config.max_body_bytes = static_cast<uint64_t>(args.http_max_body_kib) << 10;
  config.request_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(std::ceil(args.http_request_timeout_seconds * 1000)));
  config.idle_timeout = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(args.http_idle_timeout_seconds * 1000)));
  return ops::HttpServer::Start(
      config, [&api](ops::HttpRequest request, std::shared_ptr<ops::HttpResponder> responder) {
        api.Handle(std::move(request), std::move(responder));
      },
      [](int status, const std::string& message) { return serve::OpenAiApi::ErrorBody(status, message); });
}

// Logs why start-up failed and gives the exit code: 2 for a configuration
// the daemon refuses, 1 for a failure at run time.
int Fail(const absl::Status& status, int exit_code) {
  Log(std::string(status.message()));
  return exit_code;
}

// The gRPC listener's credentials: TLS from the files, or plaintext on a unix
// socket or loopback only.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcCredentials(const ops::DaemonConfig& args) {
  if (UnixSocketPath(args.listen).empty() && !IsLoopback(args.listen) && args.tls_cert.empty()) {
    return absl::InvalidArgumentError("refusing to listen on " + args.listen +
                                      ": TCP beyond loopback needs TLS (tls_cert, tls_key)");
  }
  if (UnixSocketPath(args.listen).empty()) EDGELLM_RETURN_IF_ERROR(CheckClientCa(args, args.listen));
  if (args.tls_cert.empty()) return grpc::InsecureServerCredentials();
  EDGELLM_ASSIGN_OR_RETURN(ops::TlsFiles tls, ops::LoadTlsFiles(args.tls_cert, args.tls_key, args.tls_client_ca));
  grpc::SslServerCredentialsOptions ssl(tls.client_ca.empty()
                                            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = tls.client_ca;
  ssl.pem_key_cert_pairs.push_back({tls.private_key, tls.cert_chain});
  return grpc::SslServerCredentials(ssl);
}

// The draft model; nullptr without one. The model loader checks it can
// draft for each model it loads.
absl::StatusOr<std::unique_ptr<engine::LlamaModel>> LoadDraftModel(const ops::DaemonConfig& args) {
  if (args.draft_model.empty()) return nullptr;
  EDGELLM_ASSIGN_OR_RETURN(const engine::ModelOptions options, ServingModelOptions(args));
  absl::StatusOr<std::unique_ptr<engine::LlamaModel>> draft = engine::LlamaModel::Load(args.draft_model, options);
  if (!draft.ok()) {
    return absl::InvalidArgumentError("draft_model " + args.draft_model + ": " + std::string(draft.status().message()));
  }
  Log("drafting with " + std::filesystem::path(args.draft_model).stem().string() + " for requests with draft_tokens > 0" +
      " (default " + std::to_string(args.draft_tokens) + ")");
  return draft;
}

// The configured adapters, each checked once here against the model.
absl::StatusOr<std::vector<serve::ServedAdapter>> LoadAdapters(const ops::DaemonConfig& args,
                                                               const engine::LlamaModel& model) {
  std::vector<serve::ServedAdapter> adapters;
  for (const auto& [name, dir] : args.adapters) {
    absl::StatusOr<engine::LoraAdapter> adapter = engine::LoraAdapter::Load(dir, model.config());
    if (!adapter.ok()) return absl::InvalidArgumentError("adapter " + name + ": " + std::string(adapter.status().message()));
    Log("adapter " + name + ": rank " + std::to_string(adapter->config().rank) + ", " +
        std::to_string(adapter->parameter_count()) + " values, from " + dir);
    adapters.push_back({name, std::make_shared<const engine::LoraAdapter>(*std::move(adapter))});
  }
  return adapters;
}

// On-device training (train_data without an aggregator): a child process,
// paused whenever requests are served. The finished adapter is served through
// `*core` (set once the core exists). nullptr when not configured.
std::unique_ptr<train::TrainingWorker> NewTrainingWorker(const ops::DaemonConfig& args,
                                                         const serve::ServedModel& model,
                                                         ops::MetricsRegistry& registry, serve::InferenceCore** core) {
  if (args.train_data.empty() || !args.federation_aggregator.empty()) return nullptr;
  ops::Gauge& train_step = registry.AddGauge("edgellm_train_step", "Optimizer steps of on-device training done.");
  ops::Gauge& train_loss = registry.AddGauge("edgellm_train_loss", "Training loss of the last step.");
  ops::Gauge& eval_loss = registry.AddGauge("edgellm_train_eval_loss", "Loss on the held-out examples, last measured.");
  ops::Counter& train_tokens = registry.AddCounter("edgellm_train_tokens_total", "Tokens trained on.");
  train::TrainingWorkerConfig config;
  config.command = train::TrainCommandLine(TrainingCommand(args, model.file()));
  config.out_dir = args.train_dir;
  config.busy_share = args.train_busy_share;
  config.idle_grace = std::chrono::milliseconds(static_cast<int64_t>(args.train_idle_seconds * 1000));
  train::TrainingWorker::Callbacks callbacks;
  callbacks.log = [](const std::string& line) { Log(line); };
  callbacks.on_step = [&train_step, &train_loss, &eval_loss, &train_tokens](const train::TrainingProgress& p) {
    train_step.Set(p.step);
    train_loss.Set(p.loss);
    if (p.eval_loss) eval_loss.Set(*p.eval_loss);
    train_tokens.Add(static_cast<double>(p.tokens));
    Log(StrCat("training: step ", p.step, "/", p.steps, " loss ", p.loss,
               p.eval_loss ? StrCat(" eval_loss ", *p.eval_loss) : std::string(), " (", p.seconds, " s)"));
  };
  callbacks.on_done = [config = model.model().config(), core, name = args.train_adapter](const std::string& dir) {
    absl::StatusOr<engine::LoraAdapter> adapter = engine::LoraAdapter::Load(dir, config);
    if (!adapter.ok()) {
      Log("training: the finished adapter cannot be served: " + std::string(adapter.status().message()));
      return;
    }
    (*core)->AddAdapter({name, std::make_shared<const engine::LoraAdapter>(*std::move(adapter))});
    Log("training: done; serving the adapter as '" + name + "'");
  };
  auto worker = std::make_unique<train::TrainingWorker>(config, callbacks);
  train::TrainingWorker* raw = worker.get();
  registry.AddCallbackGauge("edgellm_train_state",
                            "On-device training: 0 starting, 1 running, 2 paused for requests, 3 done, "
                            "4 failed, 5 stopped, 6 waiting for memory.",
                            [raw] { return static_cast<double>(raw->state()); });
  return worker;
}

// Federated rounds (train_data with an aggregator): the client trains in the
// rounds it is selected for. nullptr when not configured.
absl::StatusOr<std::unique_ptr<federated::FederatedClient>> NewFederation(const ops::DaemonConfig& args,
                                                                          const serve::ServedModel& model,
                                                                          const std::string& model_name,
                                                                          ops::MetricsRegistry& registry) {
  if (args.federation_aggregator.empty() || args.train_data.empty()) return nullptr;
  federated::FederatedClientConfig config;
  SetAggregatorIdentity(args, model_name, config);
  config.work_dir = args.federation_dir;
  config.rank = args.train_rank;
  config.targets = args.train_targets;
  config.trainer = TrainingCommand(args, model.file());
  config.busy_share = args.train_busy_share;
  config.idle_grace = std::chrono::milliseconds(static_cast<int64_t>(args.train_idle_seconds * 1000));
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<federated::FederatedClient> client,
                           federated::FederatedClient::Create(std::move(config), model.model().config(), Log));
  federated::FederatedClient* raw = client.get();
  registry.AddCallbackGauge("edgellm_federation_rounds_submitted", "Federated rounds whose update was accepted.",
                            [raw] { return static_cast<double>(raw->stats().rounds_submitted); });
  registry.AddCallbackGauge("edgellm_federation_sent_bytes", "Update bytes sent to the aggregator, all rounds.",
                            [raw] { return static_cast<double>(raw->stats().bytes_sent); });
  registry.AddCallbackGauge("edgellm_federation_fetched_bytes", "Adapter bytes fetched from the aggregator.",
                            [raw] { return static_cast<double>(raw->stats().bytes_fetched); });
  registry.AddCallbackGauge("edgellm_federation_round", "The federated round worked on last.",
                            [raw] { return static_cast<double>(raw->stats().round_id); });
  registry.AddCallbackGauge("edgellm_federation_state",
                            "Federated client: 1 idle, 2 fetching, 3 training, 4 uploading, 5 failed.",
                            [raw] { return static_cast<double>(raw->stats().state); });
  return client;
}

// The guard that sheds load as memory runs short: training gives way first
// (its memory is freed at once), then the scheduler.
std::unique_ptr<ops::MemoryGuard> NewMemoryGuard(const ops::DaemonConfig& args, serve::InferenceCore& core,
                                                 train::TrainingWorker* trainer,
                                                 federated::FederatedClient* federation,
                                                 serve::ServeMetrics& serve_metrics, ops::MetricsRegistry& registry) {
  ops::MemoryGuardConfig config;
  config.low_bytes = static_cast<uint64_t>(args.memory_low_mib) << 20;
  config.critical_bytes = static_cast<uint64_t>(args.memory_critical_mib) << 20;
  auto guard = std::make_unique<ops::MemoryGuard>(
      std::make_unique<ops::SystemMemory>(), config,
      [&core, trainer, federation, &serve_metrics](ops::MemoryPressure pressure, uint64_t available) {
        core.SetMemoryPressure(pressure);
        const bool short_of_memory = pressure != ops::MemoryPressure::kNone;
        if (trainer != nullptr) trainer->SetMemoryShort(short_of_memory);
        if (federation != nullptr) federation->SetMemoryShort(short_of_memory);
        serve_metrics.memory_pressure.Set(static_cast<double>(pressure));
        Log("memory pressure " + std::string(ops::MemoryPressureName(pressure)) + " (" +
            std::to_string(available >> 20) + " MiB available)");
      });
  ops::MemoryGuard* raw = guard.get();
  registry.AddCallbackGauge("edgellm_memory_available_bytes",
                            "Memory the daemon may still use: MemAvailable or the cgroup's headroom, the smaller.",
                            [raw] { return static_cast<double>(raw->available_bytes()); });
  return guard;
}

// The daemon's own listener for a plaintext unix socket `listen` (replaced,
// made group-accessible), which knows each connection's uid; nullptr for TCP
// or TLS, which gRPC listens for itself.
absl::StatusOr<std::unique_ptr<serve::UnixPeerListener>> ListenOnUnixSocket(const ops::DaemonConfig& args) {
  const std::string socket_path = UnixSocketPath(args.listen);
  if (socket_path.empty() || !args.tls_cert.empty()) return nullptr;
  return serve::UnixPeerListener::Listen(socket_path);
}

// The inference service (and health and reflection) on `unix_listener`'s
// connections, or on `listen`: a unix socket with TLS is replaced and made
// group-accessible, a TCP port 0 becomes a free port, logged as "gRPC on port N".
absl::StatusOr<std::unique_ptr<grpc::Server>> StartGrpc(const ops::DaemonConfig& args,
                                                        std::shared_ptr<grpc::ServerCredentials> credentials,
                                                        serve::InferenceService& service,
                                                        serve::UnixPeerListener* unix_listener) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  const std::string socket_path = unix_listener == nullptr ? UnixSocketPath(args.listen) : "";
  if (!socket_path.empty()) std::filesystem::remove(socket_path);
  grpc::ServerBuilder builder;
  int port = 0;
  if (unix_listener == nullptr) builder.AddListeningPort(args.listen, std::move(credentials), &port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(4 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  const bool tcp = unix_listener == nullptr && socket_path.empty();
  if (!server || (tcp && port == 0)) return absl::UnavailableError("cannot listen on " + args.listen);
  if (unix_listener != nullptr) unix_listener->Start(server.get());
  if (!socket_path.empty()) ::chmod(socket_path.c_str(), 0660);
  if (tcp) Log("gRPC on port " + std::to_string(port));
  return server;
}

// Health only, in plaintext, on health_listen: what it says is public anyway. nullptr when off.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartHealthListener(const ops::DaemonConfig& args,
                                                                  serve::HealthProbeService& service) {
  if (args.health_listen.empty()) return nullptr;
  int port = 0;
  std::unique_ptr<grpc::Server> server = serve::StartHealthProbeServer(args.health_listen, service, &port);
  if (!server || port == 0) return absl::UnavailableError("cannot listen on " + args.health_listen + " (health_listen)");
  Log("health on port " + std::to_string(port));
  return server;
}

// The OpenAI-compatible API when http_listen is set (nullptr otherwise).
absl::StatusOr<std::unique_ptr<ops::HttpServer>> StartHttpApiIfListening(const ops::DaemonConfig& args,
                                                                           serve::OpenAiApi& api) {
  if (args.http_listen.empty()) return nullptr;
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<ops::HttpServer> server, StartHttpApi(args, api));
  Log("OpenAI-compatible HTTP API on port " + std::to_string(server->port()) + (args.tls_cert.empty() ? "" : " (TLS)") +
      (args.http_api_keys_file.empty() ? "" : ", API keys required"));
  return server;
}

int Run(const ops::DaemonConfig& args) {
  // Signals are taken by sigwait in this thread only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = GrpcCredentials(args);
  if (!credentials.ok()) return Fail(credentials.status(), 2);
  absl::StatusOr<std::unique_ptr<engine::LlamaModel>> draft_model = LoadDraftModel(args);
  if (!draft_model.ok()) return Fail(draft_model.status(), 2);

  const std::string model_name = std::filesystem::path(args.model).stem().string();
  ops::MetricsRegistry registry;
  serve::ServeMetrics serve_metrics(registry, model_name);
  registry.AddCallbackGauge("process_resident_memory_bytes", "Resident memory size in bytes.", ResidentBytes);
  // Set once the model is loaded; on-device training pauses while requests are served.
  std::unique_ptr<train::TrainingWorker> trainer;
  std::unique_ptr<federated::FederatedClient> federation;
  serve::SchedulerConfig scheduler_config;
  if (!args.train_data.empty()) {
    scheduler_config.on_busy_change = [&trainer, &federation](bool busy) {
      if (trainer != nullptr) trainer->SetBusy(busy);
      if (federation != nullptr) federation->SetBusy(busy);
    };
  }
  scheduler_config.max_active = args.max_active;
  scheduler_config.max_waiting = args.max_waiting;
  scheduler_config.prefill_chunk = args.prefill_chunk;
  scheduler_config.draft_model = draft_model->get();
  // So drafting stops wherever checking drafts costs more than it saves.
  scheduler_config.measure_row_cost = true;
  const ModelLoader loader(args, scheduler_config, &serve_metrics, Log);
  // A base model installed over the air serves from the start.
  const std::string model_file =
      args.ota_release_keys.empty() ? args.model : ota::BaseFileAtStart(args.ota_dir).value_or(args.model);
  absl::StatusOr<std::shared_ptr<serve::ServedModel>> model = loader.Load(model_file);
  if (!model.ok()) return Fail(model.status(), absl::IsInvalidArgument(model.status()) ? 2 : 1);
  if (*draft_model != nullptr && model_file == args.model) {
    if (absl::Status usable = engine::ModelDrafter::Create((*model)->model(), **draft_model, {}).status(); !usable.ok()) {
      return Fail(absl::InvalidArgumentError("draft_model " + args.draft_model + ": " + std::string(usable.message())), 2);
    }
  }
  absl::StatusOr<std::vector<serve::ServedAdapter>> adapters = LoadAdapters(args, (*model)->model());
  if (!adapters.ok()) return Fail(adapters.status(), 2);

  serve::InferenceCore* core_for_training = nullptr;  // set once the core exists
  trainer = NewTrainingWorker(args, **model, registry, &core_for_training);
  absl::StatusOr<std::unique_ptr<federated::FederatedClient>> new_federation =
      NewFederation(args, **model, model_name, registry);
  if (!new_federation.ok()) return Fail(new_federation.status(), 2);
  federation = *std::move(new_federation);

  serve::InferenceCoreConfig core_config;
  core_config.model_name = model_name;
  core_config.sessions.max_sessions = args.max_sessions;
  core_config.max_caller_share = args.max_caller_share;
  core_config.sessions.idle_ttl = std::chrono::seconds(static_cast<int64_t>(std::ceil(args.session_ttl_seconds)));
  core_config.draft_tokens = args.draft_tokens;
  Log("up to " + std::to_string((*model)->scheduler().context_limit()) + " positions per request");
  serve::InferenceCore core(*std::move(model), core_config, &serve_metrics);
  core.set_on_model_freed([](const std::string& file) {
    Log("the replaced base model " + std::filesystem::path(file).filename().string() +
        " finished its last request; its memory is returned");
  });
  for (serve::ServedAdapter& adapter : *adapters) core.AddAdapter(std::move(adapter));
  core_for_training = &core;
  absl::StatusOr<std::unique_ptr<serve::UnixPeerListener>> unix_listener = ListenOnUnixSocket(args);
  if (!unix_listener.ok()) return Fail(unix_listener.status(), 1);
  serve::InferenceService grpc_service(core, unix_listener->get());
  // Over-the-air releases: the installed version serves before the first request.
  std::unique_ptr<ota::OtaAgent> ota_agent;
  if (!args.ota_release_keys.empty()) {
    auto agent = StartOta(args, model_name, loader, core, registry, Log);
    if (!agent.ok()) return Fail(agent.status(), 2);
    ota_agent = std::move(*agent);
  }
  std::unique_ptr<ops::MemoryGuard> memory_guard =
      NewMemoryGuard(args, core, trainer.get(), federation.get(), serve_metrics, registry);

  std::atomic<bool> serving{false};
  std::unique_ptr<ops::HttpEndpoint> metrics_endpoint;
  if (!args.metrics_listen.empty()) {
    auto endpoint = ops::StartMetricsEndpoint(args.metrics_listen, registry, serving);
    if (!endpoint.ok()) return Fail(endpoint.status(), 1);
    metrics_endpoint = std::move(*endpoint);
    Log("metrics on port " + std::to_string(metrics_endpoint->port()) + " (/metrics, /healthz)");
  }
  std::vector<std::string> api_keys;
  if (!args.http_api_keys_file.empty()) {
    absl::StatusOr<std::vector<std::string>> keys = serve::LoadApiKeys(args.http_api_keys_file);
    if (!keys.ok()) return Fail(keys.status(), 2);
    api_keys = *std::move(keys);
  }
  serve::OpenAiApi openai_api(core, std::move(api_keys));
  absl::StatusOr<std::unique_ptr<ops::HttpServer>> http_server = StartHttpApiIfListening(args, openai_api);
  if (!http_server.ok()) return Fail(http_server.status(), 2);
  absl::StatusOr<std::unique_ptr<grpc::Server>> server =
      StartGrpc(args, *credentials, grpc_service, unix_listener->get());
  if (!server.ok()) return Fail(server.status(), 1);
  // Whatever way Run ends, no connection is handed to the server once it is gone.
  absl::Cleanup stop_accepting = [&unix_listener] {
    if (*unix_listener) (*unix_listener)->Stop();
  };
  serve::HealthProbeService health_probe("edgellm.v1.Inference");
  absl::StatusOr<std::unique_ptr<grpc::Server>> health_server = StartHealthListener(args, health_probe);
  if (!health_server.ok()) return Fail(health_server.status(), 1);

  health_probe.SetServing(true);
  (*server)->GetHealthCheckService()->SetServingStatus(true);
  serving = true;
  Log("serving " + model_name + " on " + args.listen);
  ops::NotifyReady("serving " + model_name);
  if (trainer != nullptr) {
    Log("training on " + args.train_data + " into " + args.train_dir + " while no request is being served");
    trainer->Start();
  }
  if (federation != nullptr) {
    Log("federated rounds with " + args.federation_aggregator + " as " + federation->device_id() + ", on " +
        args.train_data + ", while no request is being served");
    federation->Start();
  }
  if (ota_agent != nullptr) ota_agent->Start();
  // A step that runs for a minute means the loop is stuck: stop feeding the watchdog.
  ops::WatchdogPinger watchdog([&core] { return core.Alive(std::chrono::minutes(1)); });

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Log(std::string("received ") + (signal_number == SIGTERM ? "SIGTERM" : "SIGINT") + ": draining");
  (*server)->GetHealthCheckService()->SetServingStatus(false);
  health_probe.SetServing(false);
  serving = false;
  ops::NotifyStopping("draining");
  const auto drain_deadline =
      serve::Clock::now() + std::chrono::duration_cast<serve::Clock::duration>(std::chrono::duration<double>(args.drain_timeout_seconds));
  const int cut = core.Drain(drain_deadline);
  if (cut > 0) Log(std::to_string(cut) + " requests were cut off at the drain timeout");
  if (!core.WaitForStreams(drain_deadline)) Log("some streams were still open at the drain timeout");
  // Every stream has ended: what remains are idle connections. A short grace
  // lets the transport flush the last streams' trailers before it closes
  // them (closing at once could cut a finished stream's status off: the
  // client then saw "Broken pipe"); with no call left, Shutdown returns then.
  if (*unix_listener) (*unix_listener)->Stop();
  const auto flush_deadline = std::chrono::system_clock::now() + std::chrono::seconds(1);
  (*server)->Shutdown(flush_deadline);
  if (*health_server) (*health_server)->Shutdown(flush_deadline);
  core.Stop();
  // Every response has had its last event: the HTTP connections can go.
  http_server->reset();
  // Its checkpoint stays: the next start resumes.
  if (trainer != nullptr) trainer->Stop();
  if (federation != nullptr) federation->Stop();
  if (ota_agent != nullptr) ota_agent->Stop();
  const std::string socket_path = UnixSocketPath(args.listen);
  if (!socket_path.empty()) std::filesystem::remove(socket_path);
  Log("stopped");
  return 0;
}

}  // namespace
}  // namespace edgellm

// The flags that override the config file, field by field: each is declared
// once, with the field it sets when given.
class ConfigFlags {
 public:
  explicit ConfigFlags(CLI::App& app) : app_(app) {}
  ConfigFlags(const ConfigFlags&) = delete;
  ConfigFlags& operator=(const ConfigFlags&) = delete;

  template <typename T>
  void Add(const std::string& names, T edgellm::ops::DaemonConfig::*field, const std::string& help) {
    const CLI::Option* option = app_.add_option(names, given_.*field, help);
    overrides_.push_back([this, option, field](edgellm::ops::DaemonConfig& config) {
      if (option->count() > 0) config.*field = given_.*field;
    });
  }
  void ApplyTo(edgellm::ops::DaemonConfig& config) const {
    for (const auto& override_field : overrides_) override_field(config);
  }

 private:
  CLI::App& app_;
  edgellm::ops::DaemonConfig given_;
  std::vector<std::function<void(edgellm::ops::DaemonConfig&)>> overrides_;
};

int main(int argc, char** argv) {
  using edgellm::ops::DaemonConfig;
  std::string config_path;
  CLI::App app{"edgellmd — local gRPC inference for edge apps"};
  app.add_option("--config", config_path, "YAML config file (keys in the README); flags override it");
  ConfigFlags flags(app);
  flags.Add("-m,--model", &DaemonConfig::model, "GGUF model file");
  flags.Add("--listen", &DaemonConfig::listen,
            "unix:PATH, or HOST:PORT (beyond loopback only with TLS; default unix:/run/edgellmd/edgellmd.sock)");
  flags.Add("--metrics-listen", &DaemonConfig::metrics_listen, "HOST:PORT serving /metrics (Prometheus) and /healthz");
  flags.Add("--health-listen", &DaemonConfig::health_listen, "HOST:PORT serving only grpc.health.v1, in plaintext");
  flags.Add("--http-listen", &DaemonConfig::http_listen,
            "HOST:PORT of the OpenAI-compatible HTTP API (port 0: any free port, logged)");
  flags.Add("--http-api-keys-file", &DaemonConfig::http_api_keys_file,
            "File of API keys (one per line) the HTTP API requires as 'Authorization: Bearer KEY'");
  flags.Add("--chat-template-file", &DaemonConfig::chat_template_file,
            "Jinja chat template to use instead of the model file's tokenizer.chat_template");
  flags.Add("-t,--threads", &DaemonConfig::threads, "Compute threads (default: one per core)");
  flags.Add("-c,--ctx", &DaemonConfig::context_length, "Context length (default: the model's, at most 4096)");
  flags.Add("--mmap-weights", &DaemonConfig::mmap_weights,
            "true|false: map the model from the page cache instead of reading it into memory (default false)");
  flags.Add("--max-active", &DaemonConfig::max_active, "Sequences decoded together in one batched step");
  flags.Add("--max-waiting", &DaemonConfig::max_waiting, "Queued requests beyond which new ones are refused");
  flags.Add("--prefill-chunk", &DaemonConfig::prefill_chunk, "Prompt tokens per sequence per step");
  flags.Add("--kv-cache-mib", &DaemonConfig::kv_cache_mib,
            "KV cache budget in MiB (default: room for max-active full contexts)");
  flags.Add("--kv-type", &DaemonConfig::kv_type,
            "f16|f32|q8_0: how the KV cache stores keys and values (default f16: half the memory; q8_0 about a quarter)");
  flags.Add("--prefix-caching", &DaemonConfig::prefix_caching,
            "true|false: reuse the KV blocks of identical prompt prefixes (default true)");
  flags.Add("--draft-tokens", &DaemonConfig::draft_tokens,
            "Speculative drafts per step for requests that do not choose (0: off)");
  flags.Add("--draft-model", &DaemonConfig::draft_model,
            "GGUF model with the same vocabulary that drafts (default: prompt lookup)");
  flags.Add("--tls-cert", &DaemonConfig::tls_cert, "PEM certificate chain: serve TLS");
  flags.Add("--tls-key", &DaemonConfig::tls_key, "PEM private key of --tls-cert");
  flags.Add("--tls-client-ca", &DaemonConfig::tls_client_ca,
            "PEM CA bundle: require client certificates it signed (mutual TLS)");
  flags.Add("--tls-allow-any-client", &DaemonConfig::tls_allow_any_client,
            "Beyond loopback, serve TLS clients without a certificate from --tls-client-ca");
  flags.Add("--drain-timeout", &DaemonConfig::drain_timeout_seconds, "Seconds to finish in-flight requests on SIGTERM");
  std::vector<std::string> adapter_flags;
  app.add_option("--adapter", adapter_flags,
                 "NAME=DIR: serve the PEFT adapter in DIR as NAME (repeatable; adds to the config's adapters)");
  CLI11_PARSE(app, argc, argv);

  DaemonConfig config;
  if (!config_path.empty()) {
    auto loaded = edgellm::ops::DaemonConfig::Load(config_path);
    if (!loaded.ok()) {
      edgellm::Log(std::string(loaded.status().message()));
      return 2;
    }
    config = *loaded;
  }
  flags.ApplyTo(config);
  for (const std::string& flag : adapter_flags) {
    const size_t equals = flag.find('=');
    if (equals == std::string::npos) {
      edgellm::Log("--adapter " + flag + ": expected NAME=DIR");
      return 2;
    }
    config.adapters[flag.substr(0, equals)] = flag.substr(equals + 1);
  }
  if (absl::Status s = config.Validate(); !s.ok()) {
    edgellm::Log(std::string(s.message()));
    return 2;
  }
  if (config.model.empty()) {
    edgellm::Log("no model: give --model FILE or model: in the --config file");
    return 2;
  }
  return edgellm::Run(config);
}
