#include "federated/aggregator/coordinator.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/hashing.h"
#include "common/log_text.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/train/held_out_set.h"
#include "federated/adapter/adapter_tensors.h"
#include "federated/aggregator/name_list_file.h"
#include "federated/aggregator/strategy.h"
#include "federated/protocol/protocol.h"
#include "federated/protocol/sha256.h"
#include "federated/protocol/update_codec.h"
#include "federated/release/signing_key.h"

namespace edgellm::federated {
namespace fs = std::filesystem;

// One model's rounds. Fields below `layout` change under the coordinator's mu_.
struct Coordinator::ModelState {
  ModelConfig config;
  std::unique_ptr<NameListFile> allowed_devices;  // null: no devices_file
  std::string base_sha256;
  std::unique_ptr<engine::LlamaModel> model;
  std::optional<train::HeldOutSet> held_out;  // from eval_data
  engine::LoraConfig lora;
  std::vector<std::string> target_names;
  TensorSet layout;  // the tensors an update holds: B only under FFA-LoRA

  std::optional<RoundRecord> round;          // the latest round
  std::unique_ptr<Aggregation> aggregation;  // of the open round
  std::map<std::string, std::pair<std::string, std::string>> accepted;  // device -> (key, sha) in the open round
  bool closing = false;
  VersionRecord version;  // the latest
  int64_t closed_rounds = 0;
};

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Decodes a stored update for the aggregate (it was validated when accepted).
absl::StatusOr<TensorSet> LoadUpdate(const ArtifactStore& artifacts, const std::string& sha) {
  EDGELLM_ASSIGN_OR_RETURN(std::string bytes, artifacts.Get(sha));
  EDGELLM_ASSIGN_OR_RETURN(EncodedTensors decoded, DecodeTensors(bytes));
  return std::move(decoded.tensors);
}

bool GoodKey(const std::string& key) {
  return !key.empty() && key.size() <= 64 &&
         key.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == std::string::npos;
}

std::string Short(const std::string& sha) { return sha.substr(0, 12); }

// A secret 64-bit seed from the kernel's CSPRNG. Never 0: that marks a round
// stored before seeds were kept. Internal when the kernel gives none: a round
// must not open with a guessable seed.
absl::StatusOr<uint64_t> SecretSeed() {
  uint64_t seed = 0;
  while (seed == 0) {
    const ssize_t got = ::getrandom(&seed, sizeof(seed), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got != static_cast<ssize_t>(sizeof(seed))) {
      return absl::InternalError(StrCat("no random seed from the kernel: ", std::strerror(errno)));
    }
  }
  return seed;
}

// The registered local example count in a device's capabilities JSON.
int64_t LocalExamples(const std::string& capabilities) {
  const nlohmann::json c = nlohmann::json::parse(capabilities, nullptr, false);
  return c.is_object() && c.contains("local_examples") && c["local_examples"].is_number_integer()
             ? c["local_examples"].get<int64_t>()
             : 0;
}

// An update's weight in its round: its example count, capped.
double UpdateWeight(int64_t example_count, int64_t weight_cap) {
  return static_cast<double>(weight_cap > 0 ? std::min(example_count, weight_cap) : example_count);
}

}  // namespace

Coordinator::Coordinator(AggregatorConfig config, AggregatorMetrics& metrics, Log log)
    : config_(std::move(config)), metrics_(metrics), log_(std::move(log)) {}

Coordinator::~Coordinator() = default;

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Open(const AggregatorConfig& config,
                                                               AggregatorMetrics& metrics, Log log) {
  std::unique_ptr<Coordinator> c(new Coordinator(config, metrics, std::move(log)));
  std::error_code ec;
  fs::create_directories(fs::path(config.state_dir) / "uploads", ec);
  if (ec) return absl::InternalError(StrCat(config.state_dir, ": ", ec.message()));
  // Part files of the earlier flat layout (MODEL.ROUND.DEVICE.KEY.part): nobody can resume them now.
  for (const auto& entry : fs::directory_iterator(fs::path(config.state_dir) / "uploads", ec)) {
    if (entry.is_regular_file()) fs::remove(entry.path(), ec);
  }
  EDGELLM_ASSIGN_OR_RETURN(c->store_, StateStore::Open((fs::path(config.state_dir) / "state.db").string()));
  c->artifacts_ = std::make_unique<ArtifactStore>((fs::path(config.state_dir) / "artifacts").string());
  std::optional<release::SigningKey> audit_key;
  if (!config.audit_signing_key.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(audit_key, release::SigningKey::Load(config.audit_signing_key));
  }
  EDGELLM_ASSIGN_OR_RETURN(c->audit_,
                           AuditLog::Open((fs::path(config.state_dir) / "audit.log").string(), std::move(audit_key)));
  for (const ModelConfig& m : config.models) EDGELLM_RETURN_IF_ERROR(c->LoadModel(m));
  // Devices known before a restart count as alive for one liveness period.
  EDGELLM_ASSIGN_OR_RETURN(std::vector<DeviceRecord> devices, c->store_->Devices());
  using Enrollments = std::map<std::string, std::string>;
  EDGELLM_ASSIGN_OR_RETURN(Enrollments enrolled, c->store_->Enrollments());
  MutexLock lock(&c->mu_);
  c->enrolled_ = std::move(enrolled);
  for (const DeviceRecord& d : devices) {
    c->devices_[d.device_id] = {d.model_id, NowMs(), LocalExamples(d.capabilities)};
    c->enrolled_.emplace(d.device_id, d.model_id);  // registered before enrollments were kept
  }
  return c;
}

absl::Status Coordinator::LoadModel(const ModelConfig& mc) {
  auto state = std::make_unique<ModelState>();
  ModelState& m = *state;
  m.config = mc;
  if (!mc.devices_file.empty()) {
    m.allowed_devices = std::make_unique<NameListFile>(mc.devices_file);
    if (!fs::exists(mc.devices_file)) {
      log_(StrCat("model ", mc.id, ": devices_file ", mc.devices_file, " does not exist (yet): no device may enroll"));
    }
  }
  EDGELLM_ASSIGN_OR_RETURN(m.base_sha256, Sha256OfFile(mc.base_model));
  engine::ModelOptions options;
  options.threads = config_.threads;
  EDGELLM_ASSIGN_OR_RETURN(m.model, engine::LlamaModel::Load(mc.base_model, options));
  m.lora.rank = mc.rank;
  m.lora.alpha = static_cast<float>(mc.alpha);
  m.lora.freeze_a = mc.freeze_a;
  m.lora.seed = mc.lora_seed;
  EDGELLM_ASSIGN_OR_RETURN(m.lora.targets, engine::ParseLoraTargets(mc.targets));
  for (engine::LoraTarget t : m.lora.targets) m.target_names.emplace_back(engine::LoraTargetName(t));
  EDGELLM_ASSIGN_OR_RETURN(engine::LoraAdapter initial, engine::LoraAdapter::Create(m.lora, m.model->config()));
  m.layout = ZerosLike(AdapterTensors(initial, !mc.freeze_a));
  m.config.ResolveNormBounds(ValueCount(m.layout));
  if (!mc.eval_data.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(m.held_out, train::HeldOutSet::Load(mc.eval_data, m.model->tokenizer(), mc.max_length));
  }
  models_[mc.id] = std::move(state);
  EDGELLM_RETURN_IF_ERROR(EnsureFirstVersion(m));
  EDGELLM_ASSIGN_OR_RETURN(m.closed_rounds, store_->CountRounds(mc.id, RoundState::kClosed));
  EDGELLM_RETURN_IF_ERROR(RecoverRound(m));
  metrics_.Gauge("edgellm_aggregator_version", "The model's latest adapter version.", mc.id)
      .Set(static_cast<double>(m.version.version));
  log_(StrCat("model ", mc.id, ": base ", fs::path(mc.base_model).filename().string(), " (sha256 ",
              Short(m.base_sha256), "), adapter rank ", mc.rank, " on ", absl::StrJoin(m.target_names, ","),
              mc.freeze_a ? " (FFA-LoRA)" : "", ", strategy ", mc.strategy.name, ", updates refused above norm ",
              m.config.max_update_norm, " and clipped to ", m.config.strategy.norm_bound, ", at version ",
              m.version.version,
              m.round && m.round->state == RoundState::kOpen ? StrCat(", round ", m.round->round_id, " open") : ""));
  return absl::OkStatus();
}

std::string Coordinator::VersionDir(const std::string& model_id, uint64_t version) const {
  return (fs::path(config_.state_dir) / "models" / model_id / StrCat("v", version)).string();
}

absl::Status Coordinator::EnsureFirstVersion(ModelState& m) {
  EDGELLM_ASSIGN_OR_RETURN(std::optional<VersionRecord> latest, store_->LatestVersion(m.config.id));
  if (latest) {
    m.version = *latest;
    return absl::OkStatus();
  }
  EDGELLM_ASSIGN_OR_RETURN(engine::LoraAdapter adapter, engine::LoraAdapter::Create(m.lora, m.model->config()));
  const std::string bytes =
      EncodeTensors({m.config.id, 0, 1, AdapterTensors(adapter, true)}, TensorEncoding::kF32);
  EDGELLM_ASSIGN_OR_RETURN(std::string sha, artifacts_->Put(bytes));
  EDGELLM_RETURN_IF_ERROR(adapter.Save(VersionDir(m.config.id, 1), m.config.id));
  nlohmann::json metrics = {{"initial", true}};
  if (m.held_out) {
    EDGELLM_ASSIGN_OR_RETURN(double loss, m.held_out->MeanLoss(*m.model, &adapter));
    metrics["eval_loss"] = loss;
  }
  m.version = {m.config.id, 1, 0, 0, sha, bytes.size(), NowMs(), metrics.dump(), ""};
  return store_->PutVersion(m.version);
}

absl::Status Coordinator::RecoverRound(ModelState& m) {
  EDGELLM_ASSIGN_OR_RETURN(m.round, store_->LatestRound(m.config.id));
  if (!m.round || m.round->state != RoundState::kOpen) return absl::OkStatus();
  if (m.round->noise_seed == 0) {  // opened by an aggregator that kept no seed
    EDGELLM_ASSIGN_OR_RETURN(m.round->noise_seed, SecretSeed());
    EDGELLM_RETURN_IF_ERROR(store_->PutRound(*m.round));
  }
  m.aggregation = NewAggregation(m.config.strategy, m.layout, m.round->noise_seed);
  EDGELLM_ASSIGN_OR_RETURN(std::vector<UpdateRecord> updates, store_->Updates(m.config.id, m.round->round_id));
  for (const UpdateRecord& u : updates) {
    EDGELLM_ASSIGN_OR_RETURN(TensorSet delta, LoadUpdate(*artifacts_, u.sha256));
    m.aggregation->Add(delta, UpdateWeight(u.example_count, m.round->weight_cap));
    m.accepted[u.device_id] = {u.idempotency_key, u.sha256};
  }
  log_(StrCat("model ", m.config.id, ": round ", m.round->round_id, " continues with its ", updates.size(),
              " accepted updates"));
  return absl::OkStatus();
}

Coordinator::ModelState* Coordinator::FindModel(const std::string& model_id) {
  auto it = models_.find(model_id);
  return it == models_.end() ? nullptr : it->second.get();
}

bool Coordinator::Alive(const std::string& device_id, int64_t now) const {
  auto it = devices_.find(device_id);
  return it != devices_.end() &&
         now - it->second.last_seen_ms <= static_cast<int64_t>(config_.liveness_timeout_seconds * 1000);
}

int64_t Coordinator::LastSeenMs(const std::string& device_id) {
  MutexLock lock(&mu_);
  auto it = devices_.find(device_id);
  return it == devices_.end() ? 0 : it->second.last_seen_ms;
}

int32_t Coordinator::AliveDevices(const std::string& model_id) {
  MutexLock lock(&mu_);
  const int64_t now = NowMs();
  int32_t n = 0;
  for (const auto& [id, d] : devices_) n += d.model_id == model_id && Alive(id, now);
  return n;
}

absl::StatusOr<v1::RegisterResponse> Coordinator::Register(const v1::RegisterRequest& r) {
  ModelState* m = FindModel(r.model_id());
  if (m == nullptr) {
    std::vector<std::string> ids;
    for (const auto& [id, _] : models_) ids.push_back(id);
    return absl::NotFoundError(StrCat("no model '", r.model_id(), "' here; models: ", absl::StrJoin(ids, ", ")));
  }
  std::vector<std::string> mismatches;
  if (r.protocol_version() != kProtocolVersion) {
    mismatches.push_back(StrCat("protocol version ", r.protocol_version(), " (this aggregator speaks ", kProtocolVersion, ")"));
  }
  if (r.base_model_sha256() != m->base_sha256) {
    mismatches.push_back(StrCat("base model sha256 ", Short(r.base_model_sha256()), "… (the round's is ",
                                Short(m->base_sha256), "…)"));
  }
  const std::vector<std::string> targets(r.adapter_schema().targets().begin(), r.adapter_schema().targets().end());
  if (r.adapter_schema().rank() != m->config.rank || targets != m->target_names) {
    mismatches.push_back(StrCat("adapter rank ", r.adapter_schema().rank(), " on ", absl::StrJoin(targets, ","),
                                " (the round's is rank ", m->config.rank, " on ", absl::StrJoin(m->target_names, ","),
                                ")"));
  }
  // A device of another model hears nothing of this one's; a device that
  // does not fit it is not bound to it (a mistaken model id is not for life).
  EDGELLM_RETURN_IF_ERROR(CheckNotEnrolledElsewhere(r.device_id(), r.model_id()));
  if (!mismatches.empty()) {
    log_(StrCat("refused device ", r.device_id(), ": ", absl::StrJoin(mismatches, "; ")));
    return absl::FailedPreconditionError(
        StrCat("device ", r.device_id(), " is incompatible with model ", r.model_id(), ": ",
               absl::StrJoin(mismatches, "; ")));
  }
  nlohmann::json capabilities = {{"free_memory_bytes", r.capabilities().free_memory_bytes()},
                                 {"accelerator", r.capabilities().accelerator()},
                                 {"threads", r.capabilities().threads()},
                                 {"local_examples", r.capabilities().local_examples()}};
  EDGELLM_RETURN_IF_ERROR(Enroll(r.device_id(), r.model_id()));
  EDGELLM_RETURN_IF_ERROR(
      store_->PutDevice({r.device_id(), r.model_id(), r.daemon_version(), capabilities.dump(), NowMs()}));
  {
    MutexLock lock(&mu_);
    const bool known = devices_.contains(r.device_id());
    devices_[r.device_id()] = {r.model_id(), NowMs(), r.capabilities().local_examples()};
    if (!known) {
      log_(StrCat("device ", r.device_id(), " registered for ", r.model_id(), " (edgellmd ", LogText(r.daemon_version(), 64), ", ",
                  r.capabilities().local_examples(), " local examples, ",
                  r.capabilities().free_memory_bytes() >> 20, " MiB free)"));
    }
  }
  v1::RegisterResponse response;
  response.set_heartbeat_interval_ms(static_cast<uint32_t>(config_.heartbeat_interval_seconds * 1000));
  response.set_poll_interval_ms(static_cast<uint32_t>(config_.poll_interval_seconds * 1000));
  response.set_liveness_timeout_ms(static_cast<uint32_t>(config_.liveness_timeout_seconds * 1000));
  return response;
}

v1::HeartbeatResponse Coordinator::Heartbeat(const v1::HeartbeatRequest& r) {
  v1::HeartbeatResponse response;
  ModelState* m = FindModel(r.model_id());
  MutexLock lock(&mu_);
  auto it = devices_.find(r.device_id());
  if (it == devices_.end() || m == nullptr) {
    response.set_outcome(v1::HeartbeatResponse::REGISTER_AGAIN);
    return response;
  }
  it->second.last_seen_ms = NowMs();
  response.set_outcome(v1::HeartbeatResponse::OK);
  const bool open = m->round && m->round->state == RoundState::kOpen && !m->closing;
  response.set_round_over(r.round_id() != 0 && !(open && m->round->round_id == r.round_id()));
  if (r.state() == v1::DEVICE_STATE_FAILED) log_(StrCat("device ", r.device_id(), " reports a failure: ", LogText(r.detail())));
  return response;
}

absl::StatusOr<v1::GetTaskResponse> Coordinator::GetTask(const v1::GetTaskRequest& r) {
  ModelState* m = FindModel(r.model_id());
  if (m == nullptr) return absl::NotFoundError(StrCat("no model '", r.model_id(), "' here"));
  v1::GetTaskResponse response;
  response.set_retry_after_ms(static_cast<uint32_t>(config_.poll_interval_seconds * 1000));
  MutexLock lock(&mu_);
  auto device = devices_.find(r.device_id());
  if (device == devices_.end()) {
    response.set_outcome(v1::GetTaskResponse::REGISTER_AGAIN);
    return response;
  }
  device->second.last_seen_ms = NowMs();
  const bool open = m->round && m->round->state == RoundState::kOpen && !m->closing;
  if (!open) {
    const bool finished = m->config.rounds > 0 && m->closed_rounds >= m->config.rounds;
    response.set_outcome(finished ? v1::GetTaskResponse::FINISHED : v1::GetTaskResponse::TRY_LATER);
    return response;
  }
  const RoundRecord& round = *m->round;
  const bool selected = std::find(round.selected.begin(), round.selected.end(), r.device_id()) != round.selected.end();
  if (!selected || m->accepted.contains(r.device_id())) {
    response.set_outcome(v1::GetTaskResponse::NO_TASK);
    return response;
  }
  EDGELLM_ASSIGN_OR_RETURN(std::optional<VersionRecord> base, store_->Version(m->config.id, round.base_version));
  if (!base) return absl::InternalError(StrCat("round ", round.round_id, ": its base version is missing"));
  response.set_outcome(v1::GetTaskResponse::TRAIN);
  v1::Task* task = response.mutable_task();
  task->set_model_id(m->config.id);
  task->set_round_id(round.round_id);
  task->set_adapter_version(base->version);
  task->set_adapter_sha256(base->sha256);
  task->set_adapter_bytes(base->bytes);
  task->set_deadline_unix_ms(round.deadline_ms);
  v1::RoundConfig* c = task->mutable_config();
  const ModelConfig& mc = m->config;
  c->set_local_steps(mc.local_steps);
  c->set_learning_rate(mc.learning_rate);
  c->set_micro_batch(mc.micro_batch);
  c->set_max_length(mc.max_length);
  c->set_rank(mc.rank);
  c->set_alpha(static_cast<float>(mc.alpha));
  for (const std::string& t : m->target_names) c->add_targets(t);
  c->set_freeze_a(mc.freeze_a);
  c->set_lora_seed(mc.lora_seed);
  c->set_clip_norm(mc.clip_norm);
  c->set_proximal_mu(mc.proximal_mu);
  c->set_encoding(mc.encoding == "f16" ? v1::RoundConfig::ENCODING_F16 : v1::RoundConfig::ENCODING_INT8);
  c->set_max_update_bytes(mc.max_update_bytes);
  return response;
}

bool Coordinator::Allowed(const std::string& device_id, const std::string& model_id) {
  const ModelState* m = FindModel(model_id);
  return m != nullptr && (m->allowed_devices == nullptr || m->allowed_devices->Contains(device_id));
}

absl::Status Coordinator::CheckAllowed(const std::string& device_id, const std::string& model_id) {
  if (Allowed(device_id, model_id)) return absl::OkStatus();
  return absl::PermissionDeniedError(StrCat("device ", device_id, " is not in the devices_file of model ", model_id));
}

absl::Status Coordinator::CheckNotEnrolledElsewhere(const std::string& device_id, const std::string& model_id) {
  std::string enrolled_for;
  {
    MutexLock lock(&mu_);
    auto it = enrolled_.find(device_id);
    if (it == enrolled_.end() || it->second == model_id) return absl::OkStatus();
    enrolled_for = it->second;
  }
  // An operator moves a device by taking it off one model's list and putting
  // it on another's.
  if (!Allowed(device_id, enrolled_for) && Allowed(device_id, model_id)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      StrCat("device ", device_id, " is enrolled for model ", enrolled_for, ", not ", model_id));
}

absl::Status Coordinator::Enroll(const std::string& device_id, const std::string& model_id) {
  if (FindModel(model_id) == nullptr) return absl::NotFoundError(StrCat("no model '", model_id, "' here"));
  EDGELLM_RETURN_IF_ERROR(CheckAllowed(device_id, model_id));
  EDGELLM_RETURN_IF_ERROR(CheckNotEnrolledElsewhere(device_id, model_id));
  {
    MutexLock lock(&mu_);
    auto it = enrolled_.find(device_id);
    if (it != enrolled_.end() && it->second == model_id) return absl::OkStatus();
  }
  EDGELLM_RETURN_IF_ERROR(store_->PutEnrollment(device_id, model_id));
  MutexLock lock(&mu_);
  std::string& enrolled_for = enrolled_[device_id];
  const std::string moved_from = std::exchange(enrolled_for, model_id);
  if (moved_from != model_id) {
    log_(moved_from.empty() ? StrCat("device ", device_id, " enrolled for model ", model_id)
                            : StrCat("device ", device_id, " moved from model ", moved_from, " to model ", model_id));
  }
  return absl::OkStatus();
}

absl::Status Coordinator::CheckEnrolled(const std::string& device_id, const std::string& model_id) {
  {
    MutexLock lock(&mu_);
    auto it = enrolled_.find(device_id);
    if (it == enrolled_.end() || it->second != model_id) {
      return absl::PermissionDeniedError(StrCat("device ", device_id, " is not enrolled for model ", model_id));
    }
  }
  return CheckAllowed(device_id, model_id);
}

absl::StatusOr<std::string> Coordinator::EnrolledModel(const std::string& device_id) {
  MutexLock lock(&mu_);
  auto it = enrolled_.find(device_id);
  if (it == enrolled_.end()) return absl::PermissionDeniedError(StrCat("device ", device_id, " is not enrolled"));
  return it->second;
}

absl::StatusOr<ArtifactRef> Coordinator::AdapterArtifact(const std::string& device_id, const std::string& model_id,
                                                         uint64_t version) {
  if (FindModel(model_id) == nullptr) return absl::NotFoundError(StrCat("no model '", model_id, "' here"));
  EDGELLM_RETURN_IF_ERROR(CheckEnrolled(device_id, model_id));
  EDGELLM_ASSIGN_OR_RETURN(std::optional<VersionRecord> v, store_->Version(model_id, version));
  if (!v) return absl::NotFoundError(StrCat("model ", model_id, " has no version ", version));
  return ArtifactRef{artifacts_->PathOf(v->sha256), v->sha256, v->bytes};
}

absl::StatusOr<std::vector<VersionRecord>> Coordinator::Versions(const std::string& model_id) {
  return store_->Versions(model_id);
}

fs::path Coordinator::UploadsDir(const std::string& model_id, uint64_t round_id) const {
  return fs::path(config_.state_dir) / "uploads" / model_id / StrCat(round_id);
}

std::string Coordinator::PartPath(const v1::UpdateHeader& h) const {
  return (UploadsDir(h.model_id(), h.round_id()) / StrCat(h.device_id(), ".", h.idempotency_key(), ".part")).string();
}

absl::StatusOr<v1::UploadStatusResponse> Coordinator::UploadStatus(const v1::UploadStatusRequest& r) {
  if (FindModel(r.model_id()) == nullptr) return absl::NotFoundError(StrCat("no model '", r.model_id(), "' here"));
  if (!GoodKey(r.idempotency_key())) return absl::InvalidArgumentError("idempotency_key must be 1-64 of [A-Za-z0-9_-]");
  v1::UploadStatusResponse response;
  ModelState* m = FindModel(r.model_id());
  {
    MutexLock lock(&mu_);
    auto it = m->accepted.find(r.device_id());
    response.set_accepted(it != m->accepted.end() && it->second.first == r.idempotency_key() && m->round &&
                          m->round->round_id == r.round_id());
  }
  v1::UpdateHeader h;
  h.set_model_id(r.model_id());
  h.set_round_id(r.round_id());
  h.set_device_id(r.device_id());
  h.set_idempotency_key(r.idempotency_key());
  std::error_code ec;
  const auto size = fs::file_size(PartPath(h), ec);
  response.set_received_bytes(ec ? 0 : size);
  return response;
}

void Coordinator::CountRefusal(const std::string& model_id, const std::string& reason) {
  if (FindModel(model_id) != nullptr) metrics_.Refused(model_id, reason);
}

void Coordinator::CountReceived(const std::string& model_id, uint64_t bytes) {
  if (FindModel(model_id) != nullptr) metrics_.Received(model_id, bytes);
}

absl::StatusOr<UploadTarget> Coordinator::BeginUpload(const v1::UpdateHeader& h) {
  ModelState* m = FindModel(h.model_id());
  if (m == nullptr) return absl::NotFoundError(StrCat("no model '", h.model_id(), "' here"));
  auto refuse = [&](const std::string& reason, absl::Status status) -> absl::StatusOr<UploadTarget> {
    metrics_.Refused(h.model_id(), reason);
    log_(StrCat("refused an update from ", h.device_id(), ": ", status.message()));
    return status;
  };
  if (!GoodKey(h.idempotency_key())) {
    return refuse("header", absl::InvalidArgumentError("idempotency_key must be 1-64 of [A-Za-z0-9_-]"));
  }
  if (!IsSha256Hex(h.sha256())) return refuse("header", absl::InvalidArgumentError("sha256 must be 64 hex digits"));
  if (h.example_count() < 1 || h.example_count() > 1'000'000'000) {
    return refuse("header", absl::InvalidArgumentError(StrCat("example_count ", h.example_count(), " is not within 1..1e9")));
  }
  if (h.metrics_size() > 32) return refuse("header", absl::InvalidArgumentError("more than 32 metrics"));
  if (h.total_bytes() == 0 || h.total_bytes() > m->config.max_update_bytes) {
    return refuse("size", absl::ResourceExhaustedError(StrCat("an update of ", h.total_bytes(),
                                                              " bytes is outside the bound of 1..",
                                                              m->config.max_update_bytes)));
  }
  UploadTarget target;
  auto answer = [&](v1::SubmitUpdateResponse::Outcome outcome, const std::string& detail) {
    v1::SubmitUpdateResponse response;
    response.set_outcome(outcome);
    response.set_detail(detail);
    target.answer = response;
    return target;
  };
  {
    MutexLock lock(&mu_);
    const bool open = m->round && m->round->state == RoundState::kOpen && !m->closing;
    if (!open || m->round->round_id != h.round_id()) {
      // A retry whose first answer was lost when the round closed: it counted.
      auto earlier = store_->Updates(h.model_id(), h.round_id());
      if (earlier.ok()) {
        for (const UpdateRecord& u : *earlier) {
          if (u.device_id == h.device_id() && u.idempotency_key == h.idempotency_key()) {
            return answer(v1::SubmitUpdateResponse::ACCEPTED_EARLIER,
                          StrCat("update ", Short(u.sha256), " was accepted in round ", h.round_id()));
          }
        }
      }
      metrics_.Refused(h.model_id(), "late");
      const std::string current = open ? StrCat("; round ", m->round->round_id, " is open") : "";
      log_(StrCat("refused a late update from ", h.device_id(), " for round ", h.round_id(), current));
      return answer(v1::SubmitUpdateResponse::ROUND_OVER, StrCat("round ", h.round_id(), " is over", current));
    }
    auto accepted = m->accepted.find(h.device_id());
    if (accepted != m->accepted.end()) {
      if (accepted->second.first == h.idempotency_key()) {
        return answer(v1::SubmitUpdateResponse::ACCEPTED_EARLIER,
                      StrCat("update ", Short(accepted->second.second), " was accepted earlier"));
      }
      metrics_.Refused(h.model_id(), "duplicate");
      return absl::AlreadyExistsError(StrCat("device ", h.device_id(), " already has an update in round ", h.round_id(),
                                             " (key ", accepted->second.first, ")"));
    }
    const auto& selected = m->round->selected;
    if (std::find(selected.begin(), selected.end(), h.device_id()) == selected.end()) {
      metrics_.Refused(h.model_id(), "not_selected");
      return answer(v1::SubmitUpdateResponse::NOT_SELECTED,
                    StrCat("device ", h.device_id(), " is not selected for round ", h.round_id()));
    }
    DeviceState& device = devices_[h.device_id()];
    if (h.example_count() > std::max<int64_t>(1, device.local_examples)) {
      return refuse("weight", absl::InvalidArgumentError(StrCat("example_count ", h.example_count(),
                                                                " is more than the ", device.local_examples,
                                                                " local examples device ", h.device_id(),
                                                                " registered")));
    }
    device.last_seen_ms = NowMs();
  }
  target.part_path = PartPath(h);
  std::error_code ec;
  const fs::path dir = UploadsDir(h.model_id(), h.round_id());
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(StrCat("cannot store uploads: ", ec.message()));
  // One unfinished upload per device and round: a new key abandons the others,
  // so fresh keys cannot fill the disk.
  // Names are DEVICE.KEY.part and keys hold no dot, so the device is all before the last dot of the stem.
  const fs::path mine = fs::path(target.part_path).filename();
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string stem = entry.path().stem().string();
    const bool same_device = stem.substr(0, stem.rfind('.')) == h.device_id();
    if (same_device && entry.path().filename() != mine) fs::remove(entry.path(), ec);
  }
  const auto size = fs::file_size(target.part_path, ec);
  target.received_bytes = ec ? 0 : size;
  if (h.offset() != target.received_bytes) {
    return absl::FailedPreconditionError(
        StrCat("the upload resumes at byte ", target.received_bytes, ", not ", h.offset()));
  }
  return target;
}

absl::StatusOr<v1::SubmitUpdateResponse> Coordinator::Refuse(const std::string& model_id, const std::string& reason,
                                                             absl::Status status, const std::string& part_path) {
  metrics_.Refused(model_id, reason);
  std::error_code ec;
  fs::remove(part_path, ec);
  log_(StrCat("refused an update (", reason, "): ", status.message()));
  return status;
}

absl::StatusOr<v1::SubmitUpdateResponse> Coordinator::FinishUpload(const v1::UpdateHeader& h) {
  ModelState* m = FindModel(h.model_id());
  if (m == nullptr) return absl::NotFoundError(StrCat("no model '", h.model_id(), "' here"));
  // An upload is read whole and decoded: only a few at once, whatever number of devices finish together.
  {
    MutexLock lock(&decode_mu_);
    decode_mu_.Await(absl::Condition(
        +[](Coordinator* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->decode_mu_) { return c->decoding_ < c->config_.max_concurrent_decodes; },
        this));
    ++decoding_;
  }
  absl::Cleanup done = [this] {
    MutexLock lock(&decode_mu_);
    --decoding_;
  };
  const std::string part = PartPath(h);
  EDGELLM_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(part, "upload"));
  const std::string sha = Sha256Hex(bytes);
  if (sha != h.sha256()) {
    return Refuse(h.model_id(), "checksum",
                  absl::InvalidArgumentError(StrCat("the update's bytes hash to ", Short(sha), "…, not the declared ",
                                                    Short(h.sha256()), "…")),
                  part);
  }
  EDGELLM_ASSIGN_OR_RETURN(std::optional<UpdateRecord> earlier, store_->UpdateBySha(sha));
  if (earlier) {
    return Refuse(h.model_id(), "replay",
                  absl::AlreadyExistsError(StrCat("this update replays ", Short(sha), "…, which ", earlier->device_id,
                                                  " sent in round ", earlier->round_id)),
                  part);
  }
  if (absl::Status s = CheckDeclaredSize(bytes, h.model_id(), m->layout); !s.ok()) {
    return Refuse(h.model_id(), "shape", s, part);
  }
  DecodeLimits limits;
  limits.layout = &m->layout;
  limits.model_id = h.model_id();
  limits.max_decoded_bytes = DecodedSize(h.model_id(), m->layout, TensorEncoding::kF32);
  absl::StatusOr<EncodedTensors> decoded = DecodeTensors(bytes, limits);
  if (!decoded.ok()) return Refuse(h.model_id(), "malformed", decoded.status(), part);
  if (decoded->model_id != h.model_id() || decoded->round_id != h.round_id()) {
    return Refuse(h.model_id(), "replay",
                  absl::InvalidArgumentError(StrCat("the update was made for ", decoded->model_id, " round ",
                                                    decoded->round_id, ", not ", h.model_id(), " round ",
                                                    h.round_id())),
                  part);
  }
  if (absl::Status s = CheckSameLayout(m->layout, decoded->tensors); !s.ok()) {
    return Refuse(h.model_id(), "shape", s, part);
  }
  if (const std::string bad = FirstNonFinite(decoded->tensors); !bad.empty()) {
    return Refuse(h.model_id(), "not_finite",
                  absl::InvalidArgumentError(StrCat("tensor ", bad, " holds NaN or infinity")), part);
  }
  const double norm = L2Norm(decoded->tensors);
  if (m->config.max_update_norm > 0 && norm > m->config.max_update_norm) {
    return Refuse(h.model_id(), "norm",
                  absl::InvalidArgumentError(StrCat("the update's L2 norm ", norm, " exceeds the bound ",
                                                    m->config.max_update_norm)),
                  part);
  }
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [name, value] : h.metrics()) metrics[name] = std::isfinite(value) ? nlohmann::json(value) : nlohmann::json();
  metrics["norm"] = norm;
  MutexLock lock(&mu_);
  const bool open = m->round && m->round->state == RoundState::kOpen && !m->closing && m->round->round_id == h.round_id();
  if (!open) {
    metrics_.Refused(h.model_id(), "late");
    v1::SubmitUpdateResponse response;
    response.set_outcome(v1::SubmitUpdateResponse::ROUND_OVER);
    response.set_detail(StrCat("round ", h.round_id(), " ended while the update arrived"));
    return response;
  }
  if (decoded->base_version != m->round->base_version) {
    return Refuse(h.model_id(), "base",
                  absl::InvalidArgumentError(StrCat("the update is against version ", decoded->base_version,
                                                    "; round ", h.round_id(), " trains version ",
                                                    m->round->base_version)),
                  part);
  }
  // The bytes first, then the row, then the answer: what is acknowledged is durable.
  EDGELLM_RETURN_IF_ERROR(artifacts_->Adopt(part, sha));
  UpdateRecord record{h.model_id(), h.round_id(), h.device_id(), h.idempotency_key(), sha, h.example_count(),
                      metrics.dump(), bytes.size(), NowMs()};
  EDGELLM_RETURN_IF_ERROR(store_->AddUpdate(record));
  const double weight = UpdateWeight(h.example_count(), m->round->weight_cap);
  if (weight < static_cast<double>(h.example_count())) metrics_.Bounded(h.model_id(), "weight_cap");
  if (m->config.strategy.norm_bound > 0 && norm > m->config.strategy.norm_bound) {
    metrics_.Bounded(h.model_id(), "norm_clip");
  }
  m->aggregation->Add(decoded->tensors, weight);
  m->accepted[h.device_id()] = {h.idempotency_key(), sha};
  metrics_.Accepted(h.model_id());
  log_(StrCat("round ", h.round_id(), ": accepted ", Short(sha), " from ", h.device_id(), " (", bytes.size(),
              " bytes, ", h.example_count(), " examples", weight < h.example_count() ? StrCat(" weighing ", weight) : "",
              ", norm ", norm, "); ", m->accepted.size(), " of ", m->round->selected.size()));
  v1::SubmitUpdateResponse response;
  response.set_outcome(v1::SubmitUpdateResponse::ACCEPTED);
  response.set_received_bytes(bytes.size());
  response.set_detail(StrCat("accepted as ", sha));
  return response;
}

void Coordinator::MaybeOpenRound(ModelState& m, int64_t now) {
  if (m.config.rounds > 0 && m.closed_rounds >= m.config.rounds) return;
  std::vector<std::string> alive;
  for (const auto& [id, d] : devices_) {
    if (d.model_id == m.config.id && Alive(id, now)) alive.push_back(id);
  }
  if (static_cast<int32_t>(alive.size()) < m.config.min_devices) return;
  RoundRecord round;
  round.model_id = m.config.id;
  round.round_id = m.round ? m.round->round_id + 1 : 1;
  round.base_version = m.version.version;
  round.opened_ms = now;
  round.deadline_ms = now + static_cast<int64_t>(m.config.round_timeout_seconds * 1000);
  // A stable shuffle: the same devices and round always select the same ones.
  std::sort(alive.begin(), alive.end(), [&](const std::string& a, const std::string& b) {
    return MixSeeds(Fnv1a(a), round.round_id) < MixSeeds(Fnv1a(b), round.round_id);
  });
  const size_t wanted = std::max<size_t>(
      static_cast<size_t>(m.config.min_devices),
      static_cast<size_t>(std::ceil(m.config.selection_fraction * static_cast<double>(alive.size()))));
  alive.resize(std::min(alive.size(), wanted));
  round.selected = alive;
  absl::StatusOr<uint64_t> seed = SecretSeed();
  if (!seed.ok()) {
    log_(StrCat("cannot open a round: ", seed.status().message()));
    return;
  }
  round.noise_seed = *seed;
  if (m.config.max_weight_ratio > 0) {
    std::vector<int64_t> registered;
    for (const std::string& id : alive) registered.push_back(devices_.at(id).local_examples);
    std::sort(registered.begin(), registered.end());
    const int64_t median = registered[(registered.size() - 1) / 2];
    round.weight_cap = std::max<int64_t>(1, static_cast<int64_t>(m.config.max_weight_ratio * static_cast<double>(median)));
  }
  if (absl::Status s = store_->PutRound(round); !s.ok()) {
    log_(StrCat("cannot open a round: ", s.message()));
    return;
  }
  m.round = round;
  m.accepted.clear();
  m.aggregation = NewAggregation(m.config.strategy, m.layout, round.noise_seed);
  metrics_.Gauge("edgellm_aggregator_round", "The model's latest round.", m.config.id)
      .Set(static_cast<double>(round.round_id));
  log_(StrCat("model ", m.config.id, ": round ", round.round_id, " opens on version ", round.base_version, " with ",
              absl::StrJoin(round.selected, ", "), "; quorum ", m.config.quorum, ", deadline in ",
              m.config.round_timeout_seconds, " s",
              round.weight_cap > 0 ? StrCat(", an update weighs at most ", round.weight_cap, " examples") : ""));
}

std::string Coordinator::EndReason(ModelState& m, int64_t now, bool* closes) {
  const RoundRecord& r = *m.round;
  const int32_t have = static_cast<int32_t>(m.accepted.size());
  const bool quorum = have >= m.config.quorum;
  bool missing_alive = false;
  for (const std::string& d : r.selected) missing_alive = missing_alive || (!m.accepted.contains(d) && Alive(d, now));
  *closes = quorum;
  if (have == static_cast<int32_t>(r.selected.size())) return "every selected device sent its update";
  if (quorum && !missing_alive) {
    return StrCat("quorum (", have, " of ", r.selected.size(), ") and the other devices went silent");
  }
  if (now >= r.deadline_ms) {
    return quorum ? StrCat("deadline, with quorum (", have, " of ", r.selected.size(), ")")
                  : StrCat("deadline without quorum: ", have, " of ", m.config.quorum, " updates");
  }
  return "";
}

void Coordinator::Tick() {
  const int64_t now = NowMs();
  for (auto& [id, state] : models_) {
    ModelState& m = *state;
    // Set here rather than read at render time: the metrics registry's lock
    // is never held while taking this coordinator's.
    metrics_.Gauge("edgellm_aggregator_devices_connected", "Registered devices heard from within the liveness timeout.", id)
        .Set(static_cast<double>(AliveDevices(id)));
    RoundRecord round;
    std::string reason;
    bool closes = false;
    {
      MutexLock lock(&mu_);
      if (m.closing) continue;
      if (!m.round || m.round->state != RoundState::kOpen) {
        MaybeOpenRound(m, now);
        continue;
      }
      reason = EndReason(m, now, &closes);
      if (reason.empty()) continue;
      m.closing = true;
      round = *m.round;
    }
    absl::Status s = closes ? CloseRound(m, round, reason) : FailRound(m, round, reason);
    if (!s.ok()) log_(StrCat("model ", id, ": round ", round.round_id, " could not end: ", s.message()));
    MutexLock lock(&mu_);
    m.closing = false;
  }
}

void Coordinator::RemoveUploads(const std::string& model_id, uint64_t round_id) const {
  std::error_code ec;
  fs::remove_all(UploadsDir(model_id, round_id), ec);
}

absl::Status Coordinator::FailRound(ModelState& m, RoundRecord round, const std::string& reason) {
  round.state = RoundState::kFailed;
  round.closed_ms = NowMs();
  round.outcome = reason;
  std::vector<std::string> devices;
  for (const auto& [device, key_sha] : m.accepted) devices.push_back(device);
  if (!audit_->HasRound(m.config.id, round.round_id)) {
    EDGELLM_RETURN_IF_ERROR(audit_->Append({{"model", m.config.id},
                                            {"round", round.round_id},
                                            {"outcome", "failed"},
                                            {"reason", reason},
                                            {"base_version", round.base_version},
                                            {"updates_discarded", devices}}));
  }
  EDGELLM_RETURN_IF_ERROR(store_->CloseRound(round, std::nullopt));
  RemoveUploads(m.config.id, round.round_id);
  metrics_.RoundEnded(m.config.id, false, static_cast<double>(round.closed_ms - round.opened_ms) / 1000.0);
  log_(StrCat("model ", m.config.id, ": round ", round.round_id, " failed: ", reason));
  MutexLock lock(&mu_);
  m.round = round;
  m.aggregation.reset();
  m.accepted.clear();
  return absl::OkStatus();
}

absl::Status Coordinator::CloseRound(ModelState& m, RoundRecord round, const std::string& reason) {
  const StrategyConfig& strategy = m.config.strategy;
  EDGELLM_ASSIGN_OR_RETURN(std::vector<UpdateRecord> updates, store_->Updates(m.config.id, round.round_id));
  EDGELLM_ASSIGN_OR_RETURN(TensorSet aggregate, m.aggregation->Finish());
  // FedAdam's moments come from the version the round trained.
  ServerOptimizerState optimizer;
  if (!m.version.optimizer_sha256.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(std::string bytes, artifacts_->Get(m.version.optimizer_sha256));
    EDGELLM_ASSIGN_OR_RETURN(EncodedTensors moments, DecodeTensors(bytes));
    const size_t half = moments.tensors.size() / 2;
    optimizer.m.assign(moments.tensors.begin(), moments.tensors.begin() + static_cast<std::ptrdiff_t>(half));
    optimizer.v.assign(moments.tensors.begin() + static_cast<std::ptrdiff_t>(half), moments.tensors.end());
  }
  const TensorSet step = ServerStep(strategy, aggregate, optimizer);
  // The new version: the base version's adapter plus the step.
  EDGELLM_ASSIGN_OR_RETURN(engine::LoraAdapter adapter, engine::LoraAdapter::Create(m.lora, m.model->config()));
  EDGELLM_ASSIGN_OR_RETURN(std::string base_bytes, artifacts_->Get(m.version.sha256));
  EDGELLM_ASSIGN_OR_RETURN(EncodedTensors base, DecodeTensors(base_bytes));
  EDGELLM_RETURN_IF_ERROR(SetAdapterTensors(adapter, base.tensors));
  EDGELLM_RETURN_IF_ERROR(AddToAdapter(adapter, step));
  // Only finite versions are registered: a step that overflows (finite
  // updates, a wild server learning rate) fails the round, and nothing of it
  // can be released.
  const TensorSet version_tensors = AdapterTensors(adapter, true);
  if (const std::string bad = FirstNonFinite(version_tensors); !bad.empty()) {
    return FailRound(m, round, StrCat("the new version's tensor ", bad, " holds NaN or infinity; not registered"));
  }
  std::optional<double> eval_loss;
  if (m.held_out) {
    EDGELLM_ASSIGN_OR_RETURN(eval_loss, m.held_out->MeanLoss(*m.model, &adapter));
    if (!std::isfinite(*eval_loss)) {
      return FailRound(m, round, "the new version's loss on eval_data is not finite; not registered");
    }
  }
  const uint64_t version = m.version.version + 1;
  const std::string bytes = EncodeTensors({m.config.id, 0, version, version_tensors}, TensorEncoding::kF32);
  EDGELLM_ASSIGN_OR_RETURN(std::string sha, artifacts_->Put(bytes));
  EDGELLM_RETURN_IF_ERROR(adapter.Save(VersionDir(m.config.id, version), m.config.id));
  std::string optimizer_sha;
  if (strategy.name == "fedadam") {
    TensorSet moments = optimizer.m;
    moments.insert(moments.end(), optimizer.v.begin(), optimizer.v.end());
    EDGELLM_ASSIGN_OR_RETURN(optimizer_sha, artifacts_->Put(EncodeTensors({m.config.id, round.round_id, version, moments},
                                                                          TensorEncoding::kF32)));
  }
  int64_t examples = 0;
  nlohmann::json accepted = nlohmann::json::array();
  for (const UpdateRecord& u : updates) {
    examples += u.example_count;
    accepted.push_back({{"device", u.device_id}, {"sha256", u.sha256}, {"examples", u.example_count},
                        {"bytes", u.bytes}, {"metrics", nlohmann::json::parse(u.metrics, nullptr, false)}});
  }
  nlohmann::json metrics = {{"updates", updates.size()}, {"examples", examples}, {"step_norm", L2Norm(step)}};
  if (eval_loss) metrics["eval_loss"] = *eval_loss;
  nlohmann::json parameters = {{"strategy", strategy.name},
                               {"server_learning_rate", strategy.server_learning_rate},
                               {"norm_bound", strategy.norm_bound},
                               {"freeze_a", m.config.freeze_a}};
  if (strategy.name == "trimmed_mean") parameters["trim_fraction"] = strategy.trim_fraction;
  if (strategy.name == "fedadam") {
    parameters["adam"] = {strategy.adam_beta1, strategy.adam_beta2, strategy.adam_tau};
  }
  if (strategy.name == "dp_fedavg") {
    const double epsilon = DpEpsilon(strategy.noise_multiplier, m.closed_rounds + 1, strategy.dp_delta);
    parameters["noise_multiplier"] = strategy.noise_multiplier;
    parameters["dp_delta"] = strategy.dp_delta;
    metrics["dp_epsilon"] = epsilon;
    metrics_.Gauge("edgellm_aggregator_dp_epsilon", "Privacy spent so far: epsilon at the configured delta.",
                   m.config.id)
        .Set(epsilon);
  }
  if (!audit_->HasRound(m.config.id, round.round_id)) {
    EDGELLM_RETURN_IF_ERROR(audit_->Append({{"model", m.config.id},
                                            {"round", round.round_id},
                                            {"outcome", "closed"},
                                            {"reason", reason},
                                            {"base_version", round.base_version},
                                            {"version", version},
                                            {"version_sha256", sha},
                                            {"parameters", parameters},
                                            {"updates", accepted},
                                            {"closed_unix_ms", NowMs()}}));
  }
  round.state = RoundState::kClosed;
  round.closed_ms = NowMs();
  round.outcome = reason;
  VersionRecord record{m.config.id, version, m.version.version, round.round_id, sha, bytes.size(), round.closed_ms,
                       metrics.dump(), optimizer_sha};
  EDGELLM_RETURN_IF_ERROR(store_->CloseRound(round, record));
  RemoveUploads(m.config.id, round.round_id);
  metrics_.RoundEnded(m.config.id, true, static_cast<double>(round.closed_ms - round.opened_ms) / 1000.0);
  metrics_.Gauge("edgellm_aggregator_version", "The model's latest adapter version.", m.config.id)
      .Set(static_cast<double>(version));
  log_(StrCat("model ", m.config.id, ": round ", round.round_id, " closed (", reason, "): version ", version, " from ",
              updates.size(), " updates, ", examples, " examples",
              metrics.contains("eval_loss") ? StrCat(", eval loss ", metrics["eval_loss"].get<double>()) : "",
              metrics.contains("dp_epsilon") ? StrCat(", epsilon ", metrics["dp_epsilon"].get<double>()) : ""));
  MutexLock lock(&mu_);
  m.round = round;
  m.version = record;
  ++m.closed_rounds;
  m.aggregation.reset();
  m.accepted.clear();
  return absl::OkStatus();
}

absl::StatusOr<std::string> Coordinator::BaseSha256(const std::string& model_id) {
  ModelState* m = FindModel(model_id);
  if (m == nullptr) return absl::NotFoundError(StrCat("no model '", model_id, "'"));
  return m->base_sha256;
}

std::vector<std::string> Coordinator::ModelIds() const {
  std::vector<std::string> ids;
  for (const auto& [id, model] : models_) ids.push_back(id);
  return ids;
}

}  // namespace edgellm::federated
