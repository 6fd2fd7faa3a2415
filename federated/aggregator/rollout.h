// federated/aggregator/rollout.h — signed releases of model versions and
// their staged rollout.
//
// A release is prepared here (the manifest of a registered version: its PEFT
// adapter as the artifact, the next release number, an expiry), signed by
// the operator's keys outside the aggregator (or by the aggregator's own key,
// when it publishes each round's version by itself), and published: its
// signatures must satisfy the same trust policy the devices apply.
//
// Rollout stages: canary → soak → (approval) → full → done. The canaries are the first
// max(1, ⌈canary_fraction × N⌉) of the model's N known devices ranked by a
// stable hash of their ids, chosen when the release is published. Once ⌈success_threshold × canaries⌉ of them report
// INSTALLED the rollout soaks for soak_seconds (a canary that rolls back in
// that time still counts against it), then — after an operator's approval,
// where the release requires one — every device gets it. A canary passes
// only if it serves the release and, for a release that carries an
// evaluation, its figures meet the thresholds (judged on the device, and
// again here). More
// failures than the threshold allows — among the canaries, or later among
// all — halt it by itself; an operator may pause, resume or abort it. Each
// model has at most one rollout: the latest release's. Durable in the state
// store: a restarted aggregator continues it.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_ROLLOUT_H_
#define EDGELLM_FEDERATED_AGGREGATOR_ROLLOUT_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "edgellm/v1/ota.pb.h"
#include "federated/aggregator/aggregator_config.h"
#include "federated/aggregator/base_deltas.h"
#include "federated/aggregator/coordinator.h"
#include "federated/aggregator/rate_budget.h"
#include "federated/release/evaluation.h"
#include "federated/release/signing_key.h"
#include "federated/release/trust_policy.h"

namespace edgellm::federated {

// Thread-safe.
class Rollouts {
 public:
  using Log = std::function<void(const std::string&)>;
  // Reads the trusted keys and the signing key named by the coordinator's
  // config, which it keeps for its lifetime (InvalidArgument naming a bad
  // file). Without release_keys, releases are off: every call answers
  // FailedPrecondition, devices hear UP_TO_DATE.
  static absl::StatusOr<std::unique_ptr<Rollouts>> Create(Coordinator& coordinator, Log log);

  // Operator calls (ReleaseAdmin).
  // The unsigned manifest of the next release: NotFound for an unknown model
  // or version, or a base model not uploaded.
  absl::StatusOr<std::string> Prepare(const v1::PrepareReleaseRequest& request);
  // Where the upload of a base model goes while it arrives, after checking
  // the header: the model, a size within max_base_model_mib and the disk's
  // room for it (ResourceExhausted naming the bound), a sha256.
  absl::StatusOr<std::string> BeginBaseModelUpload(const v1::BaseModelHeader& header);
  // Stores the upload at `part` under its sha256 when its bytes are the
  // header's (`received` of them hashing to `sha256`) and a GGUF file;
  // InvalidArgument (the part removed) otherwise.
  absl::Status FinishBaseModelUpload(const v1::BaseModelHeader& header, const std::string& part, uint64_t received,
                                     const std::string& sha256);
  // For the envelope of a base-model release about to be published: starts
  // making its delta against the base model the fleet holds now
  // (BaseDeltas), in the background. Devices hear NOT_YET until it is done,
  // so that the delta is offered from the first INSTALL on. Nothing for other
  // releases.
  absl::Status StartBaseDelta(const std::string& signed_release);
  // Checks the envelope (trusted signatures, the next release number, not
  // expired, its artifact held) and starts its rollout.
  // `publisher` (the operator's name) goes into the audit log.
  absl::StatusOr<v1::RolloutStatus> Publish(const v1::PublishRequest& request, const std::string& publisher);
  absl::StatusOr<v1::RolloutStatus> Status(const std::string& model_id);
  // The artifact of one of the model's versions, by the sha256 Prepare named;
  // NotFound for any other.
  absl::StatusOr<ArtifactRef> PreparedArtifact(const std::string& model_id, const std::string& sha256);
  // Pauses, resumes or aborts; the action and `operator_name` go into the audit log.
  absl::StatusOr<v1::RolloutStatus> Control(const v1::ControlRolloutRequest& request, const std::string& operator_name);

  // Device calls (Releases), for a device authenticated by its certificate.
  absl::StatusOr<v1::GetReleaseResponse> ReleaseFor(const v1::GetReleaseRequest& request);
  // An artifact released for the device's model; NotFound for any other sha256.
  absl::StatusOr<ArtifactRef> Artifact(const std::string& device_id, const std::string& sha256);
  // PermissionDenied unless the device is enrolled for the model and was
  // offered the release.
  absl::Status Report(const v1::InstallReport& report);

  // When the device last asked for releases since the aggregator started; 0: never.
  int64_t LastPolledMs(const std::string& device_id);

  // Soak timers, and the aggregator's own publishing of new versions; call
  // every ~100 ms.
  void Tick();

 private:
  Rollouts(Coordinator& coordinator, Log log)
      : config_(coordinator.config()),
        coordinator_(coordinator),
        log_(std::move(log)),
        reports_(config_.device_report_burst, config_.device_reports_per_second) {}
  bool enabled() const { return policy_.has_value(); }
  absl::StatusOr<std::string> PrepareLocked(const v1::PrepareReleaseRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The manifest of a base-model release of the uploaded GGUF the request names.
  absl::StatusOr<std::string> PrepareBaseLocked(const v1::PrepareReleaseRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets what every prepared manifest takes from the request (rollback,
  // times, evaluation) and returns its JSON.
  absl::StatusOr<std::string> FinishManifest(const v1::PrepareReleaseRequest& request,
                                             release::ReleaseManifest& manifest) const;
  // The evaluation the canaries judge the release by: the request's, or the
  // model's eval_data with canary_max_loss_ratio; none for a rollback that does not ask.
  absl::StatusOr<std::optional<release::EvaluationSpec>> EvaluationFor(const v1::PrepareReleaseRequest& request) const;
  // The evaluation the model's latest release carries, if any: parsed from
  // its signed manifest (up to 256 KiB of examples) once per release, not
  // at every report.
  const std::optional<release::EvaluationSpec>& EvaluationOf(const ReleaseRecord& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::RolloutStatus> PublishLocked(const v1::PublishRequest& request, const std::string& publisher)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Devices of the model: registered for rounds, heard asking for releases,
  // or named in its install reports (`installs`, read once by the caller).
  std::vector<std::string> Fleet(const std::string& model_id, const std::vector<InstallRecord>& installs)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The first max(1, ⌈fraction × N⌉) of `fleet` ranked by a stable hash of the id.
  static std::set<std::string> Canaries(std::vector<std::string> fleet, double fraction);
  // The release's canaries: those chosen at publishing, or else Canaries(fleet).
  static std::set<std::string> CanariesOf(const ReleaseRecord& release, const std::vector<std::string>& fleet);
  // Moves the release to the stage its reports and timers call for.
  absl::Status Advance(ReleaseRecord& release) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::RolloutStatus> Describe(const std::string& model_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PublishNewVersions() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AggregatorConfig& config_;
  Coordinator& coordinator_;
  const Log log_;
  std::optional<release::TrustPolicy> policy_;
  std::optional<release::SigningKey> signing_key_;
  std::unique_ptr<BaseDeltas> deltas_;
  RateBudget reports_;  // install reports per device
  Mutex mu_;
  std::map<std::string, std::set<std::string>> pollers_ ABSL_GUARDED_BY(mu_);  // model → devices
  std::map<std::string, std::set<std::string>> prepared_ ABSL_GUARDED_BY(mu_);  // model → artifacts prepared
  std::map<std::string, int64_t> last_polled_ms_ ABSL_GUARDED_BY(mu_);  // device → when it last asked for releases
  // model → its latest release's number and evaluation, as EvaluationOf parsed them
  std::map<std::string, std::pair<uint64_t, std::optional<release::EvaluationSpec>>> evaluations_
      ABSL_GUARDED_BY(mu_);
  // model → the version whose automatic publishing failed (logged once, not retried every tick)
  std::map<std::string, uint64_t> unpublishable_ ABSL_GUARDED_BY(mu_);
  // device → the release, outcome and detail of its last audited report
  std::map<std::string, std::string> last_said_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_ROLLOUT_H_
