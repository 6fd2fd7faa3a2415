#include "federated/aggregator/rollout.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/hashing.h"
#include "common/log_text.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "federated/protocol/sha256.h"
#include "common/str_cat.h"
#include "federated/release/evaluation_proto.h"

namespace edgellm::federated {
namespace {

namespace fs = std::filesystem;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool IsFailure(const std::string& outcome) { return outcome != "INSTALLED"; }

// Held-out examples fit for a manifest: `text`'s whole lines, as many as fit in the bound.
std::string LeadingLines(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  const size_t end = text.rfind('\n', max_bytes - 1);
  return end == std::string::npos ? std::string() : text.substr(0, end + 1);
}

// Failures the threshold tolerates among `devices`.
int64_t ToleratedFailures(double success_threshold, size_t devices) {
  return static_cast<int64_t>(std::floor((1.0 - success_threshold) * static_cast<double>(devices) + 1e-9));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Rollouts>> Rollouts::Create(Coordinator& coordinator, Log log) {
  std::unique_ptr<Rollouts> rollouts(new Rollouts(coordinator, std::move(log)));
  const AggregatorConfig& config = coordinator.config();
  rollouts->deltas_ = std::make_unique<BaseDeltas>(coordinator.artifacts(),
                                                   (fs::path(config.state_dir) / "deltas").string(), rollouts->log_);
  if (config.base_deltas) rollouts->deltas_->ResumeStopped();
  if (config.release_keys.empty()) return rollouts;
  EDGELLM_ASSIGN_OR_RETURN(release::TrustPolicy policy,
                           release::TrustPolicy::Load(config.release_keys, config.release_key_threshold));
  rollouts->policy_ = std::move(policy);
  if (!config.release_signing_key.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(release::SigningKey key, release::SigningKey::Load(config.release_signing_key));
    const auto& trusted = rollouts->policy_->keys();
    const bool counts = std::any_of(trusted.begin(), trusted.end(),
                                    [&](const release::PublicKey& k) { return k.key_id() == key.key_id(); });
    if (counts && rollouts->policy_->threshold() <= 1) {
      rollouts->log_(StrCat("WARNING: release_signing_key (key ", key.key_id(), ") alone meets the threshold of ",
                            rollouts->policy_->threshold(), ": whoever takes this machine can release to the whole ",
                            "fleet. Keep release keys offline, or raise release_key_threshold so that an operator ",
                            "must sign too."));
    }
    rollouts->signing_key_ = std::move(key);
  }
  return rollouts;
}

absl::StatusOr<std::string> Rollouts::Prepare(const v1::PrepareReleaseRequest& request) {
  MutexLock lock(&mu_);
  return PrepareLocked(request);
}

absl::StatusOr<std::string> Rollouts::BeginBaseModelUpload(const v1::BaseModelHeader& header) {
  if (!enabled()) return absl::FailedPreconditionError("releases are off: the aggregator has no release_keys");
  EDGELLM_RETURN_IF_ERROR(coordinator_.BaseSha256(header.model_id()).status());
  if (!IsSha256Hex(header.sha256())) return absl::InvalidArgumentError("the header's sha256 is not 64 hex digits");
  const uint64_t limit = config_.max_base_model_mib << 20;
  if (header.total_bytes() == 0 || header.total_bytes() > limit) {
    return absl::ResourceExhaustedError(StrCat("a base model of ", header.total_bytes(), " bytes; the limit is ",
                                               config_.max_base_model_mib, " MiB (max_base_model_mib)"));
  }
  const fs::path dir = fs::path(config_.state_dir) / "uploads";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(StrCat("cannot create ", dir.string(), ": ", ec.message()));
  // One upload at a time per file: whatever an earlier, broken one left goes.
  const fs::path part = dir / (header.sha256() + ".part");
  fs::remove(part, ec);
  // The upload and its copy in the artifact store, beside what is there.
  const fs::space_info space = fs::space(dir, ec);
  if (!ec && space.available < header.total_bytes() + (uint64_t{256} << 20)) {
    return absl::ResourceExhaustedError(StrCat("the state directory has ", space.available >> 20, " MiB free; a base ",
                                               "model of ", header.total_bytes() >> 20, " MiB needs 256 MiB more"));
  }
  return part.string();
}

absl::Status Rollouts::FinishBaseModelUpload(const v1::BaseModelHeader& header, const std::string& part,
                                             uint64_t received, const std::string& sha256) {
  std::error_code ec;
  const auto refuse = [&](const std::string& why) {
    fs::remove(part, ec);
    return absl::InvalidArgumentError(why);
  };
  if (received != header.total_bytes()) {
    return refuse(StrCat("the upload ended at ", received, " of ", header.total_bytes(), " bytes"));
  }
  if (sha256 != header.sha256()) {
    return refuse(StrCat("the upload's sha256 is ", sha256, ", its header says ", header.sha256()));
  }
  std::string magic(4, '\0');
  std::ifstream(part, std::ios::binary).read(magic.data(), 4);
  if (magic != "GGUF") return refuse("the upload is not a GGUF file");
  EDGELLM_RETURN_IF_ERROR(coordinator_.artifacts().Adopt(part, sha256));
  log_(StrCat("base model ", sha256.substr(0, 12), " (", received, " bytes) uploaded for ", header.model_id()));
  return absl::OkStatus();
}

absl::Status Rollouts::StartBaseDelta(const std::string& signed_release) {
  EDGELLM_ASSIGN_OR_RETURN(release::SignedRelease envelope, release::SignedRelease::FromJson(signed_release));
  // Not verified yet (Publish does that): at worst a delta is made for nothing.
  absl::StatusOr<release::ReleaseManifest> m = release::ReleaseManifest::FromJson(envelope.manifest_json);
  if (!config_.base_deltas || !m.ok() || m->kind != release::ArtifactKind::kBase) return absl::OkStatus();
  const auto model = std::find_if(config_.models.begin(), config_.models.end(),
                                  [&](const ModelConfig& c) { return c.id == m->model_id; });
  std::error_code ec;
  if (model == config_.models.end() || !fs::exists(coordinator_.artifacts().PathOf(m->artifact_sha256), ec)) {
    return absl::OkStatus();
  }
  EDGELLM_ASSIGN_OR_RETURN(std::string configured_sha, coordinator_.BaseSha256(m->model_id));
  deltas_->StartMaking(m->model_id, m->artifact_sha256, model->base_model, configured_sha);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Rollouts::PrepareLocked(const v1::PrepareReleaseRequest& request) {
  if (!enabled()) return absl::FailedPreconditionError("releases are off: the aggregator has no release_keys");
  if (!request.base_model_sha256().empty()) return PrepareBaseLocked(request);
  EDGELLM_ASSIGN_OR_RETURN(std::string base_sha, coordinator_.BaseSha256(request.model_id()));
  EDGELLM_ASSIGN_OR_RETURN(std::vector<VersionRecord> versions, coordinator_.Versions(request.model_id()));
  if (versions.empty()) return absl::NotFoundError(StrCat("model ", request.model_id(), " has no version"));
  const VersionRecord* version = &versions.back();
  if (request.version() != 0) {
    auto it = std::find_if(versions.begin(), versions.end(),
                           [&](const VersionRecord& v) { return v.version == request.version(); });
    if (it == versions.end()) {
      return absl::NotFoundError(StrCat("model ", request.model_id(), " has no version ", request.version()));
    }
    version = &*it;
  }
  const fs::path dir = coordinator_.VersionDir(request.model_id(), version->version);
  EDGELLM_ASSIGN_OR_RETURN(std::string weights,
                           ReadFileToString((dir / "adapter_model.safetensors").string(), "version adapter"));
  EDGELLM_ASSIGN_OR_RETURN(std::string adapter_config,
                           ReadFileToString((dir / "adapter_config.json").string(), "version adapter config"));
  EDGELLM_ASSIGN_OR_RETURN(std::string sha, coordinator_.artifacts().Put(weights));
  prepared_[request.model_id()].insert(sha);
  EDGELLM_ASSIGN_OR_RETURN(std::optional<ReleaseRecord> latest, coordinator_.store().LatestRelease(request.model_id()));

  release::ReleaseManifest manifest;
  manifest.model_id = request.model_id();
  manifest.release = latest ? latest->release + 1 : 1;
  manifest.version = version->version;
  manifest.parent_version = version->parent;
  manifest.kind = release::ArtifactKind::kAdapter;
  manifest.artifact_sha256 = sha;
  manifest.artifact_bytes = weights.size();
  manifest.base_model_sha256 = base_sha;
  manifest.adapter_config = adapter_config;
  return FinishManifest(request, manifest);
}

absl::StatusOr<std::string> Rollouts::PrepareBaseLocked(const v1::PrepareReleaseRequest& request) {
  EDGELLM_RETURN_IF_ERROR(coordinator_.BaseSha256(request.model_id()).status());
  const std::string& sha = request.base_model_sha256();
  std::error_code ec;
  const std::string path = IsSha256Hex(sha) ? coordinator_.artifacts().PathOf(sha) : std::string();
  const uint64_t bytes = path.empty() ? 0 : fs::file_size(path, ec);
  if (path.empty() || ec) {
    return absl::NotFoundError(StrCat("no base model with sha256 ", sha.substr(0, 64), " was uploaded"));
  }
  prepared_[request.model_id()].insert(sha);
  EDGELLM_ASSIGN_OR_RETURN(std::vector<VersionRecord> versions, coordinator_.Versions(request.model_id()));
  EDGELLM_ASSIGN_OR_RETURN(std::optional<ReleaseRecord> latest, coordinator_.store().LatestRelease(request.model_id()));
  const uint64_t newest = std::max<uint64_t>(versions.empty() ? 0 : versions.back().version, latest ? latest->version : 0);
  release::ReleaseManifest manifest;
  manifest.model_id = request.model_id();
  manifest.release = latest ? latest->release + 1 : 1;
  manifest.version = request.version() != 0 ? request.version() : newest + 1;
  manifest.parent_version = latest ? latest->version : 0;
  manifest.kind = release::ArtifactKind::kBase;
  manifest.artifact_sha256 = sha;
  manifest.artifact_bytes = bytes;
  manifest.base_model_sha256 = sha;
  return FinishManifest(request, manifest);
}

absl::StatusOr<std::string> Rollouts::FinishManifest(const v1::PrepareReleaseRequest& request,
                                                     release::ReleaseManifest& manifest) const {
  manifest.rollback = request.rollback();
  manifest.created_at = NowMs() / 1000;
  const double days = request.expires_in_days() > 0 ? request.expires_in_days() : config_.release_expiry_days;
  manifest.expires_at = manifest.created_at + static_cast<int64_t>(days * 86400);
  EDGELLM_ASSIGN_OR_RETURN(manifest.evaluation, EvaluationFor(request));
  return manifest.ToJson();
}

absl::StatusOr<std::optional<release::EvaluationSpec>> Rollouts::EvaluationFor(
    const v1::PrepareReleaseRequest& request) const {
  if (request.no_evaluation()) return std::nullopt;
  if (!request.evaluation_json().empty()) {
    EDGELLM_ASSIGN_OR_RETURN(release::EvaluationSpec spec, release::EvaluationSpec::FromJson(request.evaluation_json()));
    if (spec.empty()) return std::nullopt;
    return spec;
  }
  // A rollback is an operator's deliberate step back: not judged against the version it undoes unless asked.
  if (request.rollback() || config_.canary_max_loss_ratio == 0) return std::nullopt;
  const auto model = std::find_if(config_.models.begin(), config_.models.end(),
                                  [&](const ModelConfig& m) { return m.id == request.model_id(); });
  if (model == config_.models.end() || model->eval_data.empty()) return std::nullopt;
  EDGELLM_ASSIGN_OR_RETURN(std::string examples, ReadFileToString(model->eval_data, "eval_data"));
  release::EvaluationSpec spec;
  spec.examples_jsonl = LeadingLines(examples, release::kMaxEvaluationExamplesBytes);
  spec.max_length = model->max_length;
  spec.max_loss_ratio = config_.canary_max_loss_ratio;
  if (spec.examples_jsonl.empty()) {
    return absl::FailedPreconditionError(StrCat("eval_data ", model->eval_data, " has no line within ",
                                                release::kMaxEvaluationExamplesBytes, " bytes"));
  }
  return spec;
}

absl::StatusOr<ArtifactRef> Rollouts::PreparedArtifact(const std::string& model_id, const std::string& sha256) {
  MutexLock lock(&mu_);
  if (!prepared_[model_id].contains(sha256)) {
    return absl::NotFoundError(StrCat("no release of model ", model_id, " was prepared with that artifact"));
  }
  ArtifactRef ref{coordinator_.artifacts().PathOf(sha256), sha256, 0};
  std::error_code ec;
  ref.bytes = fs::file_size(ref.path, ec);
  if (ec) return absl::InternalError("a prepared artifact is missing from the artifact store");
  return ref;
}

absl::StatusOr<v1::RolloutStatus> Rollouts::Publish(const v1::PublishRequest& request, const std::string& publisher) {
  MutexLock lock(&mu_);
  return PublishLocked(request, publisher);
}

absl::StatusOr<v1::RolloutStatus> Rollouts::PublishLocked(const v1::PublishRequest& request,
                                                          const std::string& publisher) {
  if (!enabled()) return absl::FailedPreconditionError("releases are off: the aggregator has no release_keys");
  EDGELLM_ASSIGN_OR_RETURN(release::SignedRelease envelope, release::SignedRelease::FromJson(request.signed_release()));
  EDGELLM_ASSIGN_OR_RETURN(release::ReleaseManifest m, policy_->Verify(envelope, NowMs() / 1000));
  EDGELLM_ASSIGN_OR_RETURN(std::string base_sha, coordinator_.BaseSha256(m.model_id));
  // A base-model release brings its own; an adapter is for the aggregator's.
  if (m.kind == release::ArtifactKind::kAdapter && m.base_model_sha256 != base_sha) {
    return absl::FailedPreconditionError("the manifest's base model is not the one this aggregator's devices hold");
  }
  EDGELLM_ASSIGN_OR_RETURN(std::optional<ReleaseRecord> latest, coordinator_.store().LatestRelease(m.model_id));
  const uint64_t next = latest ? latest->release + 1 : 1;
  if (m.release != next) {
    return absl::FailedPreconditionError(
        StrCat("the manifest is release ", m.release, " but the next release of ", m.model_id, " is ", next,
               ": prepare it again"));
  }
  if (latest && m.version <= latest->version && !m.rollback) {
    return absl::FailedPreconditionError(StrCat("version ", m.version, " is not newer than release ", latest->release,
                                                "'s version ", latest->version, ": publish it as a rollback"));
  }
  std::error_code ec;
  const std::string path = coordinator_.artifacts().PathOf(m.artifact_sha256);
  if (fs::file_size(path, ec) != m.artifact_bytes || ec) {
    return absl::FailedPreconditionError("the manifest's artifact is not held here (or has another size)");
  }
  const v1::RolloutParams& p = request.rollout();
  ReleaseRecord record;
  record.model_id = m.model_id;
  record.release = m.release;
  record.version = m.version;
  record.rollback = m.rollback;
  record.artifact_sha256 = m.artifact_sha256;
  record.signed_release = envelope.ToJson();
  record.canary_fraction = p.canary_fraction() > 0 ? std::min(p.canary_fraction(), 1.0) : config_.canary_fraction;
  record.success_threshold =
      p.success_threshold() > 0 ? std::min(p.success_threshold(), 1.0) : config_.success_threshold;
  record.soak_seconds = p.has_soak_seconds() ? p.soak_seconds() : static_cast<int64_t>(config_.soak_seconds);
  // An operator's rollback is that operator's decision already: the configured default does not hold it.
  record.require_approval = p.require_approval() || (config_.require_approval && !m.rollback);
  record.stage = "canary";
  {
    // The canaries are chosen now: devices that turn up later cannot make themselves canaries.
    EDGELLM_ASSIGN_OR_RETURN(std::vector<InstallRecord> installs, coordinator_.store().Installs(m.model_id));
    const std::set<std::string> canaries = Canaries(Fleet(m.model_id, installs), record.canary_fraction);
    record.canaries.assign(canaries.begin(), canaries.end());
  }
  record.published_ms = NowMs();
  record.stage_ms = record.published_ms;
  nlohmann::json signers = nlohmann::json::array();
  for (const release::Signature& s : envelope.signatures) signers.push_back(s.key_id);
  EDGELLM_RETURN_IF_ERROR(coordinator_.audit().Append({{"model", m.model_id},
                                                       {"release", m.release},
                                                       {"version", m.version},
                                                       {"rollback", m.rollback},
                                                       {"artifact_sha256", m.artifact_sha256},
                                                       {"signers", signers},
                                                       {"published_by", publisher},
                                                       {"canary_fraction", record.canary_fraction},
                                                       {"success_threshold", record.success_threshold},
                                                       {"soak_seconds", record.soak_seconds},
                                                       {"require_approval", record.require_approval},
                                                       {"evaluated", m.evaluation.has_value()},
                                                       {"canaries", record.canaries},
                                                       {"published_unix_ms", record.published_ms}}));
  EDGELLM_RETURN_IF_ERROR(coordinator_.store().PutRelease(record));
  if (m.kind == release::ArtifactKind::kBase) EDGELLM_RETURN_IF_ERROR(deltas_->Released(m.model_id, m.artifact_sha256));
  log_(StrCat("model ", m.model_id, ": release ", m.release, " (version ", m.version, m.rollback ? ", a rollback" : "",
              m.kind == release::ArtifactKind::kBase ? ", a base model" : "", ") published; canaries first (",
              record.canary_fraction, " of the fleet)"));
  return Describe(m.model_id);
}

absl::StatusOr<v1::RolloutStatus> Rollouts::Status(const std::string& model_id) {
  MutexLock lock(&mu_);
  EDGELLM_RETURN_IF_ERROR(coordinator_.BaseSha256(model_id).status());
  return Describe(model_id);
}

absl::StatusOr<v1::RolloutStatus> Rollouts::Control(const v1::ControlRolloutRequest& request,
                                                    const std::string& operator_name) {
  MutexLock lock(&mu_);
  EDGELLM_ASSIGN_OR_RETURN(std::optional<ReleaseRecord> latest, coordinator_.store().LatestRelease(request.model_id()));
  if (!latest) return absl::NotFoundError(StrCat("model ", request.model_id(), " has no release"));
  ReleaseRecord& r = *latest;
  const bool running = r.stage == "canary" || r.stage == "soak" || r.stage == "approval" || r.stage == "full";
  switch (request.action()) {
    case v1::ControlRolloutRequest::PAUSE:
      if (!running) return absl::FailedPreconditionError(StrCat("the rollout is ", r.stage, ": nothing to pause"));
      r.resume_stage = r.stage;
      r.stage = "paused";
      break;
    case v1::ControlRolloutRequest::RESUME:
      if (r.stage != "paused" && r.stage != "halted") {
        return absl::FailedPreconditionError(StrCat("the rollout is ", r.stage, ": nothing to resume"));
      }
      // A halted rollout resumes at its canaries, whose failures were looked
      // at: they no longer count, and the devices that failed are offered it again.
      if (r.stage == "halted") r.failures_before_ms = NowMs();
      r.stage = r.stage == "paused" ? r.resume_stage : "canary";
      r.resume_stage.clear();
      r.detail.clear();
      break;
    case v1::ControlRolloutRequest::APPROVE:
      if (r.stage != "approval") {
        return absl::FailedPreconditionError(StrCat("the rollout is ", r.stage, ": nothing awaits approval"));
      }
      r.stage = "full";
      break;
    case v1::ControlRolloutRequest::ABORT:
      if (r.stage == "done" || r.stage == "aborted") {
        return absl::FailedPreconditionError(StrCat("the rollout is ", r.stage, ": nothing to abort"));
      }
      r.stage = "aborted";
      r.detail = "aborted by an operator";
      break;
    default:
      return absl::InvalidArgumentError("action must be PAUSE, RESUME, APPROVE or ABORT");
  }
  r.stage_ms = NowMs();
  last_said_.clear();
  EDGELLM_RETURN_IF_ERROR(coordinator_.audit().Append({{"model", r.model_id},
                                                       {"release", r.release},
                                                       {"action", v1::ControlRolloutRequest::Action_Name(request.action())},
                                                       {"stage", r.stage},
                                                       {"operator", operator_name},
                                                       {"unix_ms", r.stage_ms}}));
  EDGELLM_RETURN_IF_ERROR(coordinator_.store().PutRelease(r));
  log_(StrCat("model ", r.model_id, ": release ", r.release, " rollout ", r.stage, " (", operator_name, ")"));
  return Describe(r.model_id);
}

absl::StatusOr<v1::GetReleaseResponse> Rollouts::ReleaseFor(const v1::GetReleaseRequest& request) {
  v1::GetReleaseResponse response;
  response.set_outcome(v1::GetReleaseResponse::UP_TO_DATE);
  response.set_retry_after_ms(static_cast<uint32_t>(config_.poll_interval_seconds * 1000));
  EDGELLM_RETURN_IF_ERROR(coordinator_.Enroll(request.device_id(), request.model_id()));
  MutexLock lock(&mu_);
  pollers_[request.model_id()].insert(request.device_id());
  last_polled_ms_[request.device_id()] = NowMs();
  if (!enabled()) return response;
  EDGELLM_ASSIGN_OR_RETURN(std::optional<ReleaseRecord> latest, coordinator_.store().LatestRelease(request.model_id()));
  if (!latest || request.last_release() >= latest->release || latest->stage == "aborted") return response;
  // Everyone waits for a base model's delta, so that every device is offered it.
  if (deltas_->Making(latest->artifact_sha256)) {
    response.set_outcome(v1::GetReleaseResponse::NOT_YET);
    return response;
  }
  EDGELLM_ASSIGN_OR_RETURN(std::vector<InstallRecord> installs, coordinator_.store().Installs(request.model_id()));
  for (const InstallRecord& i : installs) {
    const bool forgiven = IsFailure(i.outcome) && i.reported_ms < latest->failures_before_ms;
    if (i.device_id == request.device_id() && i.release == latest->release && !forgiven) return response;  // handled
  }
  const std::string& stage = latest->stage;
  const bool canary = CanariesOf(*latest, Fleet(request.model_id(), installs)).contains(request.device_id());
  const bool reached =
      stage == "full" || stage == "done" || (canary && (stage == "canary" || stage == "soak" || stage == "approval"));
  if (!reached) {
    response.set_outcome(v1::GetReleaseResponse::NOT_YET);
    return response;
  }
  // Only a device that was offered a release may report on it.
  EDGELLM_RETURN_IF_ERROR(coordinator_.store().PutOffer(request.model_id(), latest->release, request.device_id()));
  response.set_outcome(v1::GetReleaseResponse::INSTALL);
  response.set_signed_release(latest->signed_release);
  if (std::optional<BaseDelta> delta = deltas_->For(latest->artifact_sha256)) {
    response.mutable_delta()->set_from_sha256(delta->from_sha256);
    response.mutable_delta()->set_sha256(delta->sha256);
    response.mutable_delta()->set_bytes(delta->bytes);
  }
  return response;
}

absl::StatusOr<ArtifactRef> Rollouts::Artifact(const std::string& device_id, const std::string& sha256) {
  EDGELLM_ASSIGN_OR_RETURN(std::string model_id, coordinator_.EnrolledModel(device_id));
  EDGELLM_ASSIGN_OR_RETURN(bool released, coordinator_.store().IsReleasedArtifact(model_id, sha256));
  if (!released) {
    // Or the delta of the latest release's base model.
    EDGELLM_ASSIGN_OR_RETURN(std::optional<ReleaseRecord> latest, coordinator_.store().LatestRelease(model_id));
    released = latest && deltas_->IsDeltaOf(latest->artifact_sha256, sha256);
  }
  if (!released) return absl::NotFoundError(StrCat("no release of model ", model_id, " has that artifact"));
  ArtifactRef ref{coordinator_.artifacts().PathOf(sha256), sha256, 0};
  std::error_code ec;
  ref.bytes = fs::file_size(ref.path, ec);
  if (ec) return absl::InternalError("a released artifact is missing from the artifact store");
  return ref;
}

absl::Status Rollouts::Report(const v1::InstallReport& report) {
  if (report.outcome() == v1::InstallReport::OUTCOME_UNSPECIFIED) {
    return absl::InvalidArgumentError("an install report needs an outcome");
  }
  EDGELLM_RETURN_IF_ERROR(coordinator_.BaseSha256(report.model_id()).status());
  EDGELLM_RETURN_IF_ERROR(coordinator_.CheckEnrolled(report.device_id(), report.model_id()));
  // Before the database is read: an enrolled device's budget, so the map holds the fleet at most.
  if (!reports_.Take(report.device_id())) {
    return absl::ResourceExhaustedError(StrCat("device ", report.device_id(), " reports faster than ",
                                               reports_.per_second(), " a second: try again later"));
  }
  EDGELLM_ASSIGN_OR_RETURN(bool offered,
                           coordinator_.store().WasOffered(report.model_id(), report.release(), report.device_id()));
  if (!offered) {
    log_(StrCat("model ", report.model_id(), ": refused a report from ", report.device_id(), " on release ",
                report.release(), ", which it was not offered"));
    return absl::PermissionDeniedError(StrCat("release ", report.release(), " of model ", report.model_id(),
                                              " was not offered to device ", report.device_id()));
  }
  MutexLock lock(&mu_);
  EDGELLM_ASSIGN_OR_RETURN(std::optional<ReleaseRecord> latest, coordinator_.store().LatestRelease(report.model_id()));
  // Live figures matter to the rollout under way alone: those of an older
  // release (a device still on probation with it) must not replace what the
  // device reported on the latest one.
  if (report.has_live() && (!latest || latest->release != report.release())) return absl::OkStatus();
  std::string outcome = v1::InstallReport::Outcome_Name(report.outcome());
  std::string detail = report.detail().substr(0, 512);
  std::string figures_json;
  if (report.has_evaluation()) figures_json = release::FromProto(report.evaluation()).ToJson();
  if (outcome == "INSTALLED" && latest && latest->release == report.release()) {
    // A device's word that the release passed its evaluation is checked
    // against the release's own thresholds.
    if (const std::optional<release::EvaluationSpec>& spec = EvaluationOf(*latest)) {
      const absl::Status judged = report.has_evaluation()
                                      ? release::Judge(*spec, release::FromProto(report.evaluation()))
                                      : absl::FailedPreconditionError("the device reported no evaluation figures");
      if (!judged.ok()) {
        outcome = "EVAL_FAILED";
        detail = StrCat("judged by the aggregator: ", judged.message());
      }
    }
  }
  // While on probation a device sends INSTALLED again with how its serving
  // went since the swap: judged against how it went before.
  std::string live_json;
  std::optional<release::LiveReport> live;
  if (report.has_live()) {
    live = release::LiveReport{release::FromProto(report.live()), release::FromProto(report.live_baseline())};
    live_json = live->ToJson();
    if (outcome == "INSTALLED" && latest && latest->release == report.release()) {
      if (absl::Status judged = release::JudgeLive(config_.canary_live, *live); !judged.ok()) {
        outcome = "LIVE_FAILED";
        detail = StrCat("judged by the aggregator on the device's serving since the swap: ", judged.message());
      }
    }
  }
  // A live report that passes changes nothing worth a line in the logs, nor
  // does a device saying again what it said last since the rollout last
  // changed hands (its detail and figures are kept all the same).
  const std::string said = StrCat(report.release(), " ", outcome);
  std::string& last_said = last_said_[report.device_id()];
  const bool quiet = (live && outcome == "INSTALLED") || said == last_said;
  if (!quiet) {
    nlohmann::json entry = {{"model", report.model_id()},
                            {"release", report.release()},
                            {"device", report.device_id()},
                            {"outcome", outcome},
                            {"serving_version", report.serving_version()},
                            {"detail", detail},
                            {"unix_ms", NowMs()}};
    if (!figures_json.empty()) entry["evaluation"] = nlohmann::json::parse(figures_json);
    if (!live_json.empty()) entry["live"] = nlohmann::json::parse(live_json);
    EDGELLM_RETURN_IF_ERROR(coordinator_.audit().Append(entry));
    last_said = said;
  }
  EDGELLM_RETURN_IF_ERROR(coordinator_.store().PutInstall({report.model_id(), report.device_id(), report.release(),
                                                           outcome, report.serving_version(), detail, NowMs(),
                                                           figures_json, live_json}));
  if (!quiet) {
    const std::string figures_text =
        report.has_evaluation() ? release::DescribeFigures(release::FromProto(report.evaluation())) : std::string();
    log_(StrCat("model ", report.model_id(), ": ", report.device_id(), " reports ", outcome, " for release ",
                report.release(), ", serving version ", report.serving_version(),
                detail.empty() ? "" : StrCat(" (", LogText(detail), ")"),
                figures_text.empty() ? "" : StrCat("; ", figures_text),
                live ? StrCat("; ", release::DescribeLive(*live)) : ""));
  }
  if (latest && latest->release == report.release()) return Advance(*latest);
  return absl::OkStatus();
}

const std::optional<release::EvaluationSpec>& Rollouts::EvaluationOf(const ReleaseRecord& record) {
  auto& [parsed_release, spec] = evaluations_[record.model_id];
  if (parsed_release == record.release) return spec;
  parsed_release = record.release;
  spec.reset();
  absl::StatusOr<release::SignedRelease> envelope = release::SignedRelease::FromJson(record.signed_release);
  if (!envelope.ok()) return spec;
  absl::StatusOr<release::ReleaseManifest> manifest = release::ReleaseManifest::FromJson(envelope->manifest_json);
  if (manifest.ok()) spec = manifest->evaluation;
  return spec;
}

int64_t Rollouts::LastPolledMs(const std::string& device_id) {
  MutexLock lock(&mu_);
  auto it = last_polled_ms_.find(device_id);
  return it == last_polled_ms_.end() ? 0 : it->second;
}

void Rollouts::Tick() {
  MutexLock lock(&mu_);
  if (!enabled()) return;
  for (const std::string& model_id : coordinator_.ModelIds()) {
    absl::StatusOr<std::optional<ReleaseRecord>> latest = coordinator_.store().LatestRelease(model_id);
    if (latest.ok() && *latest && (*latest)->stage == "soak") {
      if (absl::Status s = Advance(**latest); !s.ok()) log_(StrCat("model ", model_id, ": ", s.message()));
    }
  }
  if (signing_key_) PublishNewVersions();
}

void Rollouts::PublishNewVersions() {
  for (const std::string& model_id : coordinator_.ModelIds()) {
    absl::StatusOr<std::vector<VersionRecord>> versions = coordinator_.Versions(model_id);
    absl::StatusOr<std::optional<ReleaseRecord>> latest = coordinator_.store().LatestRelease(model_id);
    if (!versions.ok() || versions->empty() || !latest.ok()) continue;
    // Versions made by rounds only; each once. A rollback in place means an
    // operator stepped in: newer versions wait for them.
    const VersionRecord& newest = versions->back();
    if (newest.round_id == 0 || (*latest && ((*latest)->version >= newest.version || (*latest)->rollback))) continue;
    if (unpublishable_[model_id] == newest.version) continue;
    unpublishable_[model_id] = newest.version;  // until it is published below
    v1::PrepareReleaseRequest prepare;
    prepare.set_model_id(model_id);
    prepare.set_version(newest.version);
    absl::StatusOr<std::string> manifest = PrepareLocked(prepare);
    if (!manifest.ok()) {
      log_(StrCat("model ", model_id, ": cannot prepare the release of version ", newest.version, ": ",
                  manifest.status().message()));
      continue;
    }
    release::SignedRelease envelope{*manifest, {}};
    release::AddSignature(envelope, *signing_key_);
    v1::PublishRequest publish;
    publish.set_signed_release(envelope.ToJson());
    if (absl::StatusOr<v1::RolloutStatus> s = PublishLocked(publish, "edgellm-aggregator"); !s.ok()) {
      log_(StrCat("model ", model_id, ": cannot publish version ", newest.version, ": ", s.status().message()));
      continue;
    }
    unpublishable_.erase(model_id);
  }
}

std::vector<std::string> Rollouts::Fleet(const std::string& model_id, const std::vector<InstallRecord>& installs) {
  std::set<std::string> fleet = pollers_[model_id];
  if (absl::StatusOr<std::vector<DeviceRecord>> devices = coordinator_.store().Devices(); devices.ok()) {
    for (const DeviceRecord& d : *devices) {
      if (d.model_id == model_id) fleet.insert(d.device_id);
    }
  }
  for (const InstallRecord& i : installs) fleet.insert(i.device_id);
  return {fleet.begin(), fleet.end()};
}

std::set<std::string> Rollouts::Canaries(std::vector<std::string> fleet, double fraction) {
  std::sort(fleet.begin(), fleet.end(), [](const std::string& a, const std::string& b) {
    const uint64_t ha = SplitMix64(Fnv1a(a)), hb = SplitMix64(Fnv1a(b));
    return ha != hb ? ha < hb : a < b;
  });
  const size_t count = std::max<size_t>(1, static_cast<size_t>(std::ceil(fraction * static_cast<double>(fleet.size()))));
  fleet.resize(std::min(count, fleet.size()));
  return {fleet.begin(), fleet.end()};
}

std::set<std::string> Rollouts::CanariesOf(const ReleaseRecord& release, const std::vector<std::string>& fleet) {
  // A release published before any device was known picks its canaries from whoever is known now.
  if (release.canaries.empty()) return Canaries(fleet, release.canary_fraction);
  return {release.canaries.begin(), release.canaries.end()};
}

absl::Status Rollouts::Advance(ReleaseRecord& r) {
  // A rollout awaiting approval still halts when a canary fails meanwhile.
  if (r.stage != "canary" && r.stage != "soak" && r.stage != "approval" && r.stage != "full") return absl::OkStatus();
  EDGELLM_ASSIGN_OR_RETURN(std::vector<InstallRecord> installs, coordinator_.store().Installs(r.model_id));
  const std::vector<std::string> devices = Fleet(r.model_id, installs);
  const std::set<std::string> canaries = CanariesOf(r, devices);
  const size_t fleet = devices.size();
  int64_t canary_ok = 0, canary_failed = 0, ok = 0, failed = 0;
  std::string first_failure;
  for (const InstallRecord& i : installs) {
    if (i.release != r.release) continue;
    const bool failure = IsFailure(i.outcome);
    if (failure && i.reported_ms < r.failures_before_ms) continue;  // looked at before a resume
    (failure ? failed : ok) += 1;
    if (canaries.contains(i.device_id)) (failure ? canary_failed : canary_ok) += 1;
    if (failure && first_failure.empty()) {
      first_failure = StrCat(i.device_id, " reported ", i.outcome, i.detail.empty() ? "" : ": " + i.detail);
    }
  }
  const int64_t now = NowMs();
  const bool too_many_failures = canary_failed > ToleratedFailures(r.success_threshold, canaries.size()) ||
                                 failed > ToleratedFailures(r.success_threshold, fleet);
  const int64_t canaries_needed =
      static_cast<int64_t>(std::ceil(r.success_threshold * static_cast<double>(canaries.size())));
  // One stage at a time, each logged: a soak of zero goes on at once.
  while (true) {
    std::string next = r.stage;
    if (too_many_failures) {
      next = "halted";
    } else if (r.stage == "canary" && canary_ok >= canaries_needed) {
      next = "soak";
    } else if (r.stage == "soak" && now - r.stage_ms >= r.soak_seconds * 1000) {
      next = r.require_approval ? "approval" : "full";
    } else if (r.stage == "full" && ok >= static_cast<int64_t>(fleet)) {
      next = "done";
    }
    if (next == r.stage) return absl::OkStatus();
    if (next == "halted") {
      r.detail = StrCat(failed, " of ", fleet, " devices failed (", canary_failed, " of ", canaries.size(),
                        " canaries); first: ", first_failure);
    }
    log_(StrCat("model ", r.model_id, ": release ", r.release, " rollout: ", r.stage, " -> ", next,
                next == "halted" ? StrCat(" (", r.detail, ")") : ""));
    r.stage = next;
    r.stage_ms = now;
    EDGELLM_RETURN_IF_ERROR(coordinator_.store().PutRelease(r));
    if (next == "halted" || next == "done" || next == "approval") return absl::OkStatus();
  }
}

absl::StatusOr<v1::RolloutStatus> Rollouts::Describe(const std::string& model_id) {
  v1::RolloutStatus status;
  status.set_model_id(model_id);
  EDGELLM_ASSIGN_OR_RETURN(std::optional<ReleaseRecord> latest, coordinator_.store().LatestRelease(model_id));
  EDGELLM_ASSIGN_OR_RETURN(std::vector<InstallRecord> installs, coordinator_.store().Installs(model_id));
  if (!latest) {
    status.set_stage("none");
  } else {
    status.set_release(latest->release);
    status.set_version(latest->version);
    status.set_rollback(latest->rollback);
    status.set_stage(latest->stage);
    status.set_detail(latest->detail);
    if (latest->detail.empty() && deltas_->Making(latest->artifact_sha256)) {
      status.set_detail("making the base model's delta: devices are offered the release once it is made");
    }
    status.mutable_params()->set_canary_fraction(latest->canary_fraction);
    status.mutable_params()->set_success_threshold(latest->success_threshold);
    status.mutable_params()->set_soak_seconds(static_cast<uint32_t>(latest->soak_seconds));
    status.mutable_params()->set_require_approval(latest->require_approval);
  }
  const std::vector<std::string> fleet = Fleet(model_id, installs);
  const std::set<std::string> canaries = latest ? CanariesOf(*latest, fleet) : std::set<std::string>();
  for (const std::string& device : fleet) {
    v1::DeviceRollout* d = status.add_devices();
    d->set_device_id(device);
    d->set_canary(canaries.contains(device));
    for (const InstallRecord& i : installs) {
      if (i.device_id != device) continue;
      d->set_serving_version(i.serving_version);
      if (latest && i.release == latest->release) {
        d->set_last_report(i.outcome);
        d->set_detail(i.detail);
        if (absl::StatusOr<release::EvaluationFigures> f = release::EvaluationFigures::FromJson(i.evaluation); f.ok()) {
          release::ToProto(*f, d->mutable_evaluation());
        }
        if (absl::StatusOr<release::LiveReport> l = release::LiveReport::FromJson(i.live); l.ok()) {
          release::ToProto(l->live, d->mutable_live());
          release::ToProto(l->baseline, d->mutable_live_baseline());
        }
      }
    }
  }
  return status;
}

}  // namespace edgellm::federated
