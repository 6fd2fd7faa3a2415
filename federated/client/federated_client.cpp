#include "federated/client/federated_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_join.h"
#include "common/atomic_file.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/ops/tls_files.h"
#include "edgellm/v1/federation.grpc.pb.h"
#include "federated/adapter/adapter_tensors.h"
#include "federated/channel/aggregator_channel.h"
#include "federated/protocol/protocol.h"
#include "federated/protocol/sha256.h"
#include "federated/protocol/tensor_set.h"
#include "federated/protocol/update_codec.h"

namespace edgellm::federated {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t MemAvailableBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib << 10;
  }
  return 0;
}

std::string Kib(uint64_t bytes) { return StrCat(std::lround(static_cast<double>(bytes) / 102.4) / 10.0, " KiB"); }

}  // namespace

struct FederatedClient::Impl {
  FederatedClientConfig config;
  engine::LlamaConfig model;
  Log log;
  std::string base_sha256;
  int64_t local_examples = 0;
  uint64_t data_bytes = 0;
  uint64_t model_bytes = 0;
  std::unique_ptr<v1::Federation::Stub> stub;
  std::thread loop;
  std::thread heartbeats;

  std::atomic<bool> registered{false};
  std::atomic<uint32_t> heartbeat_ms{5000};
  std::atomic<uint64_t> round_id{0};
  std::atomic<bool> round_over{false};
  std::atomic<int32_t> state{v1::DEVICE_STATE_IDLE};
  std::atomic<int32_t> step{0};
  std::atomic<int32_t> steps{0};
  std::string failure;  // the last failure's reason, for the heartbeat (under mu)

  mutable Mutex mu;
  bool busy ABSL_GUARDED_BY(mu) = false;
  bool memory_short ABSL_GUARDED_BY(mu) = false;
  std::shared_ptr<train::TrainingWorker> worker ABSL_GUARDED_BY(mu);
  FederatedClientStats stats ABSL_GUARDED_BY(mu);

  CallTracker calls;
  CallTracker::Call NewCall(std::chrono::seconds timeout) { return calls.NewCall(timeout); }
  bool Sleep(std::chrono::milliseconds duration) { return calls.Sleep(duration); }
  bool Stopping() const { return calls.stopping(); }
  void SetState(v1::DeviceState s) { state = s; }
  void Fail(const std::string& why) {
    log(why);
    MutexLock lock(&mu);
    failure = why;
    state = v1::DEVICE_STATE_FAILED;
  }

  grpc::Status Register();
  void Loop();
  void HeartbeatLoop();
  void RunRound(const v1::Task& task);
  absl::StatusOr<std::string> Fetch(const v1::Task& task, const fs::path& file);
  // True when the adapter trained to its end.
  bool Train(const v1::Task& task, const fs::path& dir, std::map<std::string, double>* metrics);
  void Upload(const v1::Task& task, const std::string& bytes, const std::map<std::string, double>& metrics);
};

FederatedClient::FederatedClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

FederatedClient::~FederatedClient() { Stop(); }

absl::StatusOr<std::unique_ptr<FederatedClient>> FederatedClient::Create(FederatedClientConfig config,
                                                                         const engine::LlamaConfig& model, Log log) {
  auto impl = std::make_unique<Impl>();
  EDGELLM_ASSIGN_OR_RETURN(ops::TlsFiles tls, ops::LoadTlsFiles(config.cert_file, config.key_file, config.ca_file));
  if (config.device_id.empty()) config.device_id = tls.common_name;
  if (config.device_id != tls.common_name) {
    return absl::InvalidArgumentError(StrCat("federation_device_id '", config.device_id,
                                             "' is not the common name of the certificate ", config.cert_file, " ('",
                                             tls.common_name, "'): the aggregator would refuse it"));
  }
  EDGELLM_RETURN_IF_ERROR(engine::ParseLoraTargets(config.targets).status());
  EDGELLM_ASSIGN_OR_RETURN(impl->base_sha256, Sha256OfFile(config.trainer.model));
  EDGELLM_ASSIGN_OR_RETURN(std::string data, ReadFileToString(config.trainer.data, "train_data"));
  impl->data_bytes = data.size();
  impl->local_examples = std::count(data.begin(), data.end(), '\n') + (!data.empty() && data.back() != '\n');
  std::error_code ec;
  impl->model_bytes = fs::file_size(config.trainer.model, ec);
  fs::create_directories(config.work_dir, ec);
  if (ec) return absl::InternalError(StrCat("federation_dir ", config.work_dir, ": ", ec.message()));
  impl->stub = v1::Federation::NewStub(AggregatorChannel(config.aggregator, tls));
  impl->config = std::move(config);
  impl->model = model;
  impl->log = std::move(log);
  return std::unique_ptr<FederatedClient>(new FederatedClient(std::move(impl)));
}

void FederatedClient::Start() {
  impl_->loop = std::thread([this] { impl_->Loop(); });
  impl_->heartbeats = std::thread([this] { impl_->HeartbeatLoop(); });
}

void FederatedClient::Stop() {
  impl_->calls.Stop();
  std::shared_ptr<train::TrainingWorker> worker;
  {
    MutexLock lock(&impl_->mu);
    worker = impl_->worker;
  }
  if (worker) worker->Stop();
  if (impl_->loop.joinable()) impl_->loop.join();
  if (impl_->heartbeats.joinable()) impl_->heartbeats.join();
}

void FederatedClient::SetBusy(bool busy) {
  std::shared_ptr<train::TrainingWorker> worker;
  {
    MutexLock lock(&impl_->mu);
    impl_->busy = busy;
    worker = impl_->worker;
  }
  if (worker) worker->SetBusy(busy);
}

void FederatedClient::SetMemoryShort(bool short_of_memory) {
  std::shared_ptr<train::TrainingWorker> worker;
  {
    MutexLock lock(&impl_->mu);
    impl_->memory_short = short_of_memory;
    worker = impl_->worker;
  }
  if (worker) worker->SetMemoryShort(short_of_memory);
}

FederatedClientStats FederatedClient::stats() const {
  MutexLock lock(&impl_->mu);
  FederatedClientStats s = impl_->stats;
  s.round_id = impl_->round_id;
  s.state = impl_->state;
  return s;
}

const std::string& FederatedClient::device_id() const { return impl_->config.device_id; }

grpc::Status FederatedClient::Impl::Register() {
  v1::RegisterRequest request;
  request.set_device_id(config.device_id);
  request.set_protocol_version(kProtocolVersion);
  request.set_daemon_version(kDaemonVersion);
  request.set_model_id(config.model_id);
  request.set_base_model_sha256(base_sha256);
  auto targets = engine::ParseLoraTargets(config.targets);
  for (engine::LoraTarget t : *targets) request.mutable_adapter_schema()->add_targets(std::string(engine::LoraTargetName(t)));
  request.mutable_adapter_schema()->set_rank(config.rank);
  request.mutable_capabilities()->set_free_memory_bytes(MemAvailableBytes());
  request.mutable_capabilities()->set_accelerator("cpu");
  request.mutable_capabilities()->set_threads(config.trainer.threads);
  request.mutable_capabilities()->set_local_examples(local_examples);
  v1::RegisterResponse response;
  grpc::Status s = stub->Register(NewCall(std::chrono::seconds(10)).get(), request, &response);
  if (s.ok()) {
    heartbeat_ms = std::max<uint32_t>(100, response.heartbeat_interval_ms());
    registered = true;
  }
  return s;
}

void FederatedClient::Impl::Loop() {
  std::chrono::milliseconds backoff(500);
  std::string last_error;
  auto retry = [&](const std::string& error) {
    if (error != last_error) log(error);  // the same failure is logged once, not every retry
    last_error = error;
    Sleep(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(30));
  };
  while (!Stopping()) {
    if (!registered) {
      grpc::Status s = Register();
      if (!s.ok()) {
        retry(StrCat("federation: cannot register with ", config.aggregator, " (", Describe(s), ")"));
        continue;
      }
      log(StrCat("federation: registered with ", config.aggregator, " as ", config.device_id, " for ",
                 config.model_id));
    }
    v1::GetTaskRequest request;
    request.set_device_id(config.device_id);
    request.set_model_id(config.model_id);
    v1::GetTaskResponse response;
    grpc::Status s = stub->GetTask(NewCall(std::chrono::seconds(10)).get(), request, &response);
    if (!s.ok()) {
      retry(StrCat("federation: asking for a task failed (", Describe(s), ")"));
      continue;
    }
    backoff = std::chrono::milliseconds(500);
    last_error.clear();
    const auto wait = std::chrono::milliseconds(std::max<uint32_t>(100, response.retry_after_ms()));
    switch (response.outcome()) {
      case v1::GetTaskResponse::TRAIN:
        RunRound(response.task());
        break;
      case v1::GetTaskResponse::REGISTER_AGAIN:
        registered = false;
        break;
      case v1::GetTaskResponse::FINISHED:
        Sleep(std::max<std::chrono::milliseconds>(wait, std::chrono::seconds(10)));
        break;
      default:
        Sleep(wait);
    }
  }
}

void FederatedClient::Impl::HeartbeatLoop() {
  while (Sleep(std::chrono::milliseconds(heartbeat_ms.load()))) {
    if (!registered) continue;
    v1::HeartbeatRequest request;
    request.set_device_id(config.device_id);
    request.set_model_id(config.model_id);
    request.set_state(static_cast<v1::DeviceState>(state.load()));
    request.set_round_id(round_id);
    request.set_step(step);
    request.set_steps(steps);
    request.set_free_memory_bytes(MemAvailableBytes());
    {
      MutexLock lock(&mu);
      if (state == v1::DEVICE_STATE_FAILED) request.set_detail(failure);
    }
    v1::HeartbeatResponse response;
    if (!stub->Heartbeat(NewCall(std::chrono::seconds(5)).get(), request, &response).ok()) continue;
    if (response.outcome() == v1::HeartbeatResponse::REGISTER_AGAIN) registered = false;
    if (response.round_over() && request.round_id() != 0 && request.round_id() == round_id) round_over = true;
  }
}

absl::StatusOr<std::string> FederatedClient::Impl::Fetch(const v1::Task& task, const fs::path& file) {
  if (fs::exists(file)) {
    EDGELLM_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(file.string(), "adapter"));
    if (Sha256Hex(bytes) == task.adapter_sha256()) return bytes;
    fs::remove(file);
  }
  const fs::path part = file.string() + ".part";
  for (int attempt = 0; attempt < 8 && !Stopping(); ++attempt) {
    std::error_code ec;
    uint64_t offset = fs::exists(part) ? fs::file_size(part, ec) : 0;
    if (offset > task.adapter_bytes()) {
      fs::remove(part);
      offset = 0;
    }
    v1::FetchAdapterRequest request;
    request.set_device_id(config.device_id);
    request.set_model_id(task.model_id());
    request.set_version(task.adapter_version());
    request.set_offset(offset);
    auto context = NewCall(std::chrono::seconds(120));
    auto reader = stub->FetchAdapter(context.get(), request);
    std::ofstream out(part, std::ios::binary | std::ios::app);
    v1::ArtifactChunk chunk;
    while (reader->Read(&chunk)) {
      if (chunk.offset() != offset || offset + chunk.data().size() > task.adapter_bytes()) break;
      out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
      offset += chunk.data().size();
      MutexLock lock(&mu);
      stats.bytes_fetched += static_cast<int64_t>(chunk.data().size());
    }
    out.close();
    grpc::Status s = reader->Finish();
    if (offset == task.adapter_bytes()) {
      EDGELLM_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(part.string(), "adapter"));
      if (Sha256Hex(bytes) != task.adapter_sha256()) {
        fs::remove(part);
        log(StrCat("federation: round ", task.round_id(), ": the adapter download does not match its sha256; again"));
        continue;
      }
      fs::rename(part, file);
      return bytes;
    }
    if (!s.ok() && !Transient(s)) return absl::UnavailableError(StrCat("fetching the adapter: ", Describe(s)));
    Sleep(std::chrono::milliseconds(500 << std::min(attempt, 5)));
  }
  return absl::UnavailableError("fetching the adapter: gave up after 8 attempts");
}

bool FederatedClient::Impl::Train(const v1::Task& task, const fs::path& dir, std::map<std::string, double>* metrics) {
  const v1::RoundConfig& rc = task.config();
  train::TrainCommand command = config.trainer;
  command.out_dir = (dir / "trained").string();
  command.init_adapter = (dir / "start").string();
  command.steps = rc.local_steps();
  command.learning_rate = rc.learning_rate();
  command.micro_batch = rc.micro_batch();
  command.max_length = rc.max_length();
  command.rank = rc.rank();
  command.alpha = rc.alpha();
  command.targets = absl::StrJoin(rc.targets(), ",");
  command.freeze_a = rc.freeze_a();
  command.lora_seed = rc.lora_seed();
  command.clip_norm = rc.clip_norm();
  command.proximal_mu = rc.proximal_mu();
  train::TrainingWorkerConfig worker_config;
  worker_config.command = train::TrainCommandLine(command);
  worker_config.out_dir = command.out_dir;
  worker_config.busy_share = config.busy_share;
  worker_config.idle_grace = config.idle_grace;
  train::TrainingWorker::Callbacks callbacks;
  callbacks.log = [this, round = task.round_id()](const std::string& line) {
    log(StrCat("federation: round ", round, ": ", line));
  };
  callbacks.on_step = [this, metrics](const train::TrainingProgress& p) {
    step = p.step;
    steps = p.steps;
    MutexLock lock(&mu);
    (*metrics)["loss"] = p.loss;
    if (p.eval_loss) (*metrics)["eval_loss"] = *p.eval_loss;
    (*metrics)["steps"] = p.step;
    (*metrics)["train_seconds"] += p.seconds;
  };
  auto worker = std::make_shared<train::TrainingWorker>(worker_config, callbacks);
  {
    MutexLock lock(&mu);
    if (Stopping()) return false;
    worker->SetBusy(busy);
    worker->SetMemoryShort(memory_short);
    this->worker = worker;
  }
  worker->Start();
  train::TrainingState s;
  while (true) {
    s = worker->state();
    if (s == train::TrainingState::kDone || s == train::TrainingState::kFailed || round_over || Stopping()) break;
    Sleep(std::chrono::milliseconds(100));
  }
  worker->Stop();
  {
    MutexLock lock(&mu);
    this->worker.reset();
  }
  if (s == train::TrainingState::kFailed) Fail(StrCat("federation: round ", task.round_id(), ": training failed"));
  if (round_over && s != train::TrainingState::kDone) {
    log(StrCat("federation: round ", task.round_id(), " is over; training for it stopped"));
  }
  return s == train::TrainingState::kDone;
}

void FederatedClient::Impl::RunRound(const v1::Task& task) {
  const v1::RoundConfig& rc = task.config();
  round_id = task.round_id();
  round_over = false;
  step = 0;
  steps = rc.local_steps();
  const fs::path dir = fs::path(config.work_dir) / StrCat(task.model_id(), "-round-", task.round_id());
  // Earlier rounds' files are of no further use.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(config.work_dir, ec)) {
    if (entry.path() != dir && entry.path().filename().string().starts_with(task.model_id() + "-round-")) {
      fs::remove_all(entry.path(), ec);
    }
  }
  fs::create_directories(dir, ec);
  log(StrCat("federation: round ", task.round_id(), ": selected; version ", task.adapter_version(), ", ",
             rc.local_steps(), " steps at lr ", rc.learning_rate(), rc.freeze_a() ? ", FFA-LoRA" : ""));

  const fs::path update_file = dir / "update.bin";
  if (!fs::exists(update_file)) {
    SetState(v1::DEVICE_STATE_FETCHING);
    absl::StatusOr<std::string> artifact = Fetch(task, dir / "start.bin");
    if (!artifact.ok()) return Fail(StrCat("federation: round ", task.round_id(), ": ", artifact.status().message()));
    absl::StatusOr<EncodedTensors> start = DecodeTensors(*artifact);
    if (!start.ok() || start->base_version != task.adapter_version()) {
      return Fail(StrCat("federation: round ", task.round_id(), ": the adapter is unusable: ",
                         start.ok() ? "wrong version" : start.status().message()));
    }
    engine::LoraConfig lora;
    lora.rank = rc.rank();
    lora.alpha = rc.alpha();
    lora.freeze_a = rc.freeze_a();
    lora.seed = rc.lora_seed();
    auto targets = engine::ParseLoraTargets(absl::StrJoin(rc.targets(), ","));
    if (!targets.ok()) return Fail(StrCat("federation: round ", task.round_id(), ": ", targets.status().message()));
    lora.targets = *targets;
    absl::StatusOr<engine::LoraAdapter> adapter = engine::LoraAdapter::Create(lora, model);
    absl::Status usable = adapter.ok() ? SetAdapterTensors(*adapter, start->tensors) : adapter.status();
    if (usable.ok() && !fs::exists(dir / "start" / "adapter_model.safetensors")) {
      usable = adapter->Save((dir / "start").string(), config.model_id);
    }
    if (!usable.ok()) return Fail(StrCat("federation: round ", task.round_id(), ": ", usable.message()));

    SetState(v1::DEVICE_STATE_TRAINING);
    std::map<std::string, double> metrics;
    if (!Train(task, dir, &metrics)) {
      if (state != v1::DEVICE_STATE_FAILED) SetState(v1::DEVICE_STATE_IDLE);
      return;
    }
    absl::StatusOr<engine::LoraAdapter> trained = engine::LoraAdapter::Load((dir / "trained").string(), model);
    if (!trained.ok()) return Fail(StrCat("federation: round ", task.round_id(), ": ", trained.status().message()));
    absl::StatusOr<TensorSet> delta =
        Difference(AdapterTensors(*trained, !rc.freeze_a()), AdapterTensors(*adapter, !rc.freeze_a()));
    if (!delta.ok()) return Fail(StrCat("federation: round ", task.round_id(), ": ", delta.status().message()));
    const TensorEncoding encoding =
        rc.encoding() == v1::RoundConfig::ENCODING_F16 ? TensorEncoding::kF16 : TensorEncoding::kInt8;
    const std::string bytes = EncodeTensors({task.model_id(), task.round_id(), task.adapter_version(), *delta}, encoding);
    if (absl::Status s = WriteFileAtomically(update_file.string(), bytes); !s.ok()) {
      return Fail(StrCat("federation: round ", task.round_id(), ": ", s.message()));
    }
    std::string lines;
    for (const auto& [k, v] : metrics) lines += StrCat(k, "=", v, "\n");
    WriteFileAtomically((dir / "metrics.txt").string(), lines).IgnoreError();
  }
  absl::StatusOr<std::string> bytes = ReadFileToString(update_file.string(), "update");
  if (!bytes.ok()) return Fail(std::string(bytes.status().message()));
  std::map<std::string, double> metrics;
  if (auto text = ReadFileToString((dir / "metrics.txt").string(), "metrics"); text.ok()) {
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      const size_t eq = line.find('=');
      if (eq != std::string::npos) metrics[line.substr(0, eq)] = std::strtod(line.c_str() + eq + 1, nullptr);
    }
  }
  SetState(v1::DEVICE_STATE_UPLOADING);
  Upload(task, *bytes, metrics);
}

void FederatedClient::Impl::Upload(const v1::Task& task, const std::string& bytes,
                                   const std::map<std::string, double>& metrics) {
  const std::string sha = Sha256Hex(bytes);
  const std::string key = sha.substr(0, 32);  // the same update always retries under the same key
  int64_t sent = 0;
  std::chrono::milliseconds backoff(500);
  for (int attempt = 1; !Stopping(); ++attempt) {
    if (NowUnixMs() > task.deadline_unix_ms() + 60'000) {
      return Fail(StrCat("federation: round ", task.round_id(), ": the deadline passed before the update was accepted"));
    }
    v1::UploadStatusRequest status_request;
    status_request.set_device_id(config.device_id);
    status_request.set_model_id(task.model_id());
    status_request.set_round_id(task.round_id());
    status_request.set_idempotency_key(key);
    v1::UploadStatusResponse status;
    grpc::Status s = stub->UploadStatus(NewCall(std::chrono::seconds(10)).get(), status_request, &status);
    uint64_t offset = s.ok() ? status.received_bytes() : 0;
    if (offset > bytes.size()) offset = 0;
    v1::SubmitUpdateResponse response;
    if (s.ok()) {
      auto context = NewCall(std::chrono::seconds(300));
      auto writer = stub->SubmitUpdate(context.get(), &response);
      v1::UpdateChunk header;
      v1::UpdateHeader* h = header.mutable_header();
      h->set_device_id(config.device_id);
      h->set_model_id(task.model_id());
      h->set_round_id(task.round_id());
      h->set_idempotency_key(key);
      h->set_example_count(std::max<int64_t>(1, local_examples));
      for (const auto& [k, v] : metrics) (*h->mutable_metrics())[k] = v;
      h->set_total_bytes(bytes.size());
      h->set_sha256(sha);
      h->set_offset(offset);
      bool open = writer->Write(header);
      for (uint64_t at = offset; open && at < bytes.size(); at += kChunkBytes) {
        v1::UpdateChunk chunk;
        chunk.set_data(bytes.substr(at, kChunkBytes));
        open = writer->Write(chunk);
        if (open) sent += static_cast<int64_t>(chunk.data().size());
      }
      writer->WritesDone();
      s = writer->Finish();
    }
    if (s.ok()) {
      switch (response.outcome()) {
        case v1::SubmitUpdateResponse::ACCEPTED:
        case v1::SubmitUpdateResponse::ACCEPTED_EARLIER: {
          MutexLock lock(&mu);
          stats.rounds_submitted += 1;
          stats.bytes_sent += sent;
          state = v1::DEVICE_STATE_IDLE;
          log(StrCat("federation: round ", task.round_id(), ": update accepted (", response.detail(), "); sent ",
                     sent, " bytes (", Kib(bytes.size()), " update, ",
                     v1::RoundConfig::Encoding_Name(task.config().encoding()), "+zstd, ", attempt,
                     attempt == 1 ? " attempt" : " attempts", ") for ", local_examples, " local examples (",
                     Kib(data_bytes), " of data that stays here); the base model is ", Kib(model_bytes)));
          return;
        }
        case v1::SubmitUpdateResponse::INCOMPLETE:
          break;
        case v1::SubmitUpdateResponse::ROUND_OVER:
        case v1::SubmitUpdateResponse::NOT_SELECTED:
        default:
          state = v1::DEVICE_STATE_IDLE;
          log(StrCat("federation: round ", task.round_id(), ": the update was refused: ",
                     v1::SubmitUpdateResponse::Outcome_Name(response.outcome()), " (", response.detail(), ")"));
          return;
      }
    } else if (!Transient(s)) {
      return Fail(StrCat("federation: round ", task.round_id(), ": the update was refused (", Describe(s), ")"));
    } else {
      log(StrCat("federation: round ", task.round_id(), ": upload attempt ", attempt, " failed (", Describe(s),
                 "); retrying"));
    }
    Sleep(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(15));
  }
}

}  // namespace edgellm::federated
