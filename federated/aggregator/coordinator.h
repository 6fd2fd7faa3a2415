// federated/aggregator/coordinator.h — rounds, per model: who is available,
// who is selected, which updates are accepted, when a round closes and what
// version it produces. The gRPC service is a thin layer over this.
//
// A round opens once `min_devices` registered devices are alive (heard from
// within the liveness timeout); a share of them is selected by a stable hash
// of (round, device id). It closes with a new version as soon as every
// selected device has sent its update, or once the quorum is met and the
// devices still missing have gone silent, or at the deadline with the quorum;
// at the deadline without the quorum it fails and the next round starts from
// the same version. Updates for a round that is over are refused.
//
// Durability: an accepted update's bytes are in the artifact store and its
// row in SQLite before the device hears "accepted". A restarted coordinator
// rebuilds the open round's aggregate from those, so a kill -9 loses nothing
// that was acknowledged. Closing is deterministic (DP noise comes from a
// secret seed drawn when the round opened and kept with it), so a round whose
// close was interrupted closes again identically.
//
// No device decides the average: an update whose norm is beyond
// max_update_norm, or whose example count is beyond what its device
// registered, is refused; an accepted one weighs at most the round's weight
// cap (max_weight_ratio × the median registered count of its devices) and is
// clipped to the strategy's norm bound.
//
// Enrollment: a device is bound to the first model it registers for or asks
// releases of, durably; calls for any other model are refused.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_COORDINATOR_H_
#define EDGELLM_FEDERATED_AGGREGATOR_COORDINATOR_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "edgellm/v1/federation.pb.h"
#include "federated/aggregator/aggregator_config.h"
#include "federated/aggregator/aggregator_metrics.h"
#include "federated/aggregator/artifact_store.h"
#include "federated/aggregator/audit_log.h"
#include "federated/aggregator/state_store.h"

namespace edgellm::federated {

// Where an upload's bytes go while they arrive.
struct UploadTarget {
  std::optional<v1::SubmitUpdateResponse> answer;  // set: answer this at once, take no bytes
  std::string part_path;                           // else append here, from received_bytes
  uint64_t received_bytes = 0;
};

struct ArtifactRef {
  std::string path;
  std::string sha256;
  uint64_t bytes = 0;
};

class Coordinator {
 public:
  using Log = std::function<void(const std::string&)>;
  // Opens the state under config.state_dir, creates each model's first
  // version if it has none, and takes up any open round where it was.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Open(const AggregatorConfig& config,
                                                           AggregatorMetrics& metrics, Log log);
  ~Coordinator();

  // Every call below names a device already authenticated by its certificate.
  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& request);
  v1::HeartbeatResponse Heartbeat(const v1::HeartbeatRequest& request);
  absl::StatusOr<v1::GetTaskResponse> GetTask(const v1::GetTaskRequest& request);
  // A version's artifact, for a device enrolled for the model.
  absl::StatusOr<ArtifactRef> AdapterArtifact(const std::string& device_id, const std::string& model_id,
                                              uint64_t version);
  // Binds the device to the model when it has no model yet; PermissionDenied
  // when it is enrolled for another one.
  absl::Status Enroll(const std::string& device_id, const std::string& model_id);
  // PermissionDenied unless the device is enrolled for the model.
  absl::Status CheckEnrolled(const std::string& device_id, const std::string& model_id);
  // PermissionDenied when the device is enrolled for another model.
  absl::Status CheckNotEnrolledElsewhere(const std::string& device_id, const std::string& model_id);
  // The model the device is enrolled for; PermissionDenied when none.
  absl::StatusOr<std::string> EnrolledModel(const std::string& device_id);
  absl::StatusOr<v1::UploadStatusResponse> UploadStatus(const v1::UploadStatusRequest& request);
  // The first message of an upload: checks it and says where its bytes go.
  absl::StatusOr<UploadTarget> BeginUpload(const v1::UpdateHeader& header);
  // All `header.total_bytes` are in the part file: verify, validate, accept.
  absl::StatusOr<v1::SubmitUpdateResponse> FinishUpload(const v1::UpdateHeader& header);
  // Counts a refusal of the model's update in the metrics.
  void CountRefusal(const std::string& model_id, const std::string& reason);
  void CountReceived(const std::string& model_id, uint64_t bytes);

  // Opens and closes rounds as time and arrivals ask; call every ~100 ms.
  void Tick();
  // Devices heard from within the liveness timeout, for the model.
  int32_t AliveDevices(const std::string& model_id);
  // When the device last called for rounds since the aggregator started; 0: never.
  int64_t LastSeenMs(const std::string& device_id);
  const AggregatorConfig& config() const { return config_; }
  // The state directory's PEFT copy of a version (for serving and OTA).
  std::string VersionDir(const std::string& model_id, uint64_t version) const;
  // Versions of a model, oldest first.
  absl::StatusOr<std::vector<VersionRecord>> Versions(const std::string& model_id);
  // The sha256 of the model's base GGUF; NotFound for an unknown model.
  absl::StatusOr<std::string> BaseSha256(const std::string& model_id);
  std::vector<std::string> ModelIds() const;

  // The durable state, shared with the rollouts.
  StateStore& store() { return *store_; }
  const ArtifactStore& artifacts() const { return *artifacts_; }
  AuditLog& audit() { return *audit_; }

 private:
  struct ModelState;
  struct DeviceState {
    std::string model_id;
    int64_t last_seen_ms = 0;
    int64_t local_examples = 0;  // as registered
  };
  Coordinator(AggregatorConfig config, AggregatorMetrics& metrics, Log log);

  absl::Status LoadModel(const ModelConfig& model_config);
  absl::Status EnsureFirstVersion(ModelState& model);
  absl::Status RecoverRound(ModelState& model);
  ModelState* FindModel(const std::string& model_id);
  // Whether the model's devices_file (if any) lists the device.
  bool Allowed(const std::string& device_id, const std::string& model_id);
  absl::Status CheckAllowed(const std::string& device_id, const std::string& model_id);
  bool Alive(const std::string& device_id, int64_t now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeOpenRound(ModelState& model, int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The round should end now: "" if not, else why.
  std::string EndReason(ModelState& model, int64_t now, bool* closes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Aggregates, registers the version, audits; runs without mu_ held.
  absl::Status CloseRound(ModelState& model, RoundRecord round, const std::string& reason);
  absl::Status FailRound(ModelState& model, RoundRecord round, const std::string& reason);
  // Unfinished uploads live in uploads/MODEL/ROUND/DEVICE.KEY.part.
  std::filesystem::path UploadsDir(const std::string& model_id, uint64_t round_id) const;
  std::string PartPath(const v1::UpdateHeader& header) const;
  // Unfinished uploads of a round that ended: nobody will resume them.
  void RemoveUploads(const std::string& model_id, uint64_t round_id) const;
  absl::StatusOr<v1::SubmitUpdateResponse> Refuse(const std::string& model_id, const std::string& reason,
                                                  absl::Status status, const std::string& part_path);

  const AggregatorConfig config_;
  AggregatorMetrics& metrics_;
  const Log log_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<ArtifactStore> artifacts_;
  std::unique_ptr<AuditLog> audit_;
  std::map<std::string, std::unique_ptr<ModelState>> models_;

  Mutex mu_;
  std::map<std::string, DeviceState> devices_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> enrolled_ ABSL_GUARDED_BY(mu_);  // device -> model

  // Uploads being read and decoded: at most config_.max_concurrent_decodes.
  Mutex decode_mu_;
  int32_t decoding_ ABSL_GUARDED_BY(decode_mu_) = 0;
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_COORDINATOR_H_
