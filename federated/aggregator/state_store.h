// federated/aggregator/state_store.h — the aggregator's durable state in
// SQLite (WAL mode, synchronous FULL): registered devices, rounds, accepted
// updates and adapter versions. A row is written only after the artifact it
// names is on disk, so after a kill -9 every row's bytes exist.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_STATE_STORE_H_
#define EDGELLM_FEDERATED_AGGREGATOR_STATE_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/mutex.h"

struct sqlite3;

namespace edgellm::federated {

struct DeviceRecord {
  std::string device_id;
  std::string model_id;
  std::string daemon_version;
  std::string capabilities;  // JSON
  int64_t registered_ms = 0;
};

enum class RoundState { kOpen, kClosed, kFailed };
std::string_view RoundStateName(RoundState state);

struct RoundRecord {
  std::string model_id;
  uint64_t round_id = 0;
  uint64_t base_version = 0;
  RoundState state = RoundState::kOpen;
  int64_t opened_ms = 0;
  int64_t deadline_ms = 0;
  int64_t closed_ms = 0;
  std::vector<std::string> selected;  // device ids
  std::string outcome;                // why it closed or failed, in words
  // dp_fedavg's noise seed, drawn from the system's CSPRNG when the round
  // opens. Secret: with it, two versions give away the sum of the updates.
  uint64_t noise_seed = 0;
  // The most weight (examples) one update may carry in this round; 0: no cap.
  int64_t weight_cap = 0;
};

struct UpdateRecord {
  std::string model_id;
  uint64_t round_id = 0;
  std::string device_id;
  std::string idempotency_key;
  std::string sha256;  // of the encoded update, also its artifact name
  int64_t example_count = 0;
  std::string metrics;  // JSON of the device's local metrics
  uint64_t bytes = 0;
  int64_t accepted_ms = 0;
};

struct VersionRecord {
  std::string model_id;
  uint64_t version = 0;
  uint64_t parent = 0;    // 0 for the initial adapter
  uint64_t round_id = 0;  // the round that made it; 0 for the initial adapter
  std::string sha256;     // of the adapter artifact
  uint64_t bytes = 0;
  int64_t created_ms = 0;
  std::string metrics;            // JSON: updates, examples, eval loss, ε...
  std::string optimizer_sha256;   // FedAdam's moments after this version, or ""
};

// A published release and where its rollout stands.
struct ReleaseRecord {
  std::string model_id;
  uint64_t release = 0;
  uint64_t version = 0;
  bool rollback = false;
  std::string artifact_sha256;
  std::string signed_release;  // the envelope devices receive
  double canary_fraction = 0.25;
  double success_threshold = 1.0;
  int64_t soak_seconds = 0;
  std::string stage;   // canary | soak | approval | full | done | paused | halted | aborted
  std::string resume_stage;  // while paused: the stage RESUME returns to
  std::string detail;
  int64_t published_ms = 0;
  int64_t stage_ms = 0;  // when the stage began
  std::vector<std::string> canaries;  // chosen when it was published
  int64_t failures_before_ms = 0;     // failures reported before this (a resume) no longer count
  bool require_approval = false;      // after the soak, "approval" waits for an operator
};

// The last install report of a device for a model.
struct InstallRecord {
  std::string model_id;
  std::string device_id;
  uint64_t release = 0;
  std::string outcome;  // INSTALLED, REFUSED, SMOKE_FAILED, ROLLED_BACK, EVAL_FAILED
  uint64_t serving_version = 0;
  std::string detail;
  int64_t reported_ms = 0;
  std::string evaluation;  // release::EvaluationFigures JSON; "": the release was not evaluated
  std::string live;        // release::LiveReport JSON: the last live figures sent; "": none
};

class StateStore {
 public:
  // Opens or creates the database at `path`. Internal errors name the file.
  static absl::StatusOr<std::unique_ptr<StateStore>> Open(const std::string& path);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  absl::Status PutDevice(const DeviceRecord& device);  // insert or replace
  absl::StatusOr<std::vector<DeviceRecord>> Devices();

  // Which model each device is enrolled for: device id -> model id.
  absl::Status PutEnrollment(const std::string& device_id, const std::string& model_id);
  absl::StatusOr<std::map<std::string, std::string>> Enrollments();

  absl::Status PutRound(const RoundRecord& round);  // insert or replace
  absl::StatusOr<std::optional<RoundRecord>> LatestRound(const std::string& model_id);
  // The model's latest `count` rounds, oldest first.
  absl::StatusOr<std::vector<RoundRecord>> LatestRounds(const std::string& model_id, int64_t count);
  // Rounds of the model in `state`.
  absl::StatusOr<int64_t> CountRounds(const std::string& model_id, RoundState state);

  // AlreadyExists when the device already has an update in the round.
  absl::Status AddUpdate(const UpdateRecord& update);
  // The round's updates in the order they were accepted.
  absl::StatusOr<std::vector<UpdateRecord>> Updates(const std::string& model_id, uint64_t round_id);
  absl::StatusOr<std::optional<UpdateRecord>> UpdateBySha(const std::string& sha256);

  absl::Status PutVersion(const VersionRecord& version);
  absl::StatusOr<std::optional<VersionRecord>> LatestVersion(const std::string& model_id);
  // The model's latest `count` versions, oldest first.
  absl::StatusOr<std::vector<VersionRecord>> LatestVersions(const std::string& model_id, int64_t count);
  absl::StatusOr<std::optional<VersionRecord>> Version(const std::string& model_id, uint64_t version);
  absl::StatusOr<std::vector<VersionRecord>> Versions(const std::string& model_id);

  absl::Status PutRelease(const ReleaseRecord& release);  // insert or replace
  absl::StatusOr<std::optional<ReleaseRecord>> LatestRelease(const std::string& model_id);
  // True when a release of the model names the artifact.
  absl::StatusOr<bool> IsReleasedArtifact(const std::string& model_id, const std::string& sha256);
  // That the release was offered to the device (it heard INSTALL for it).
  absl::Status PutOffer(const std::string& model_id, uint64_t release, const std::string& device_id);
  absl::StatusOr<bool> WasOffered(const std::string& model_id, uint64_t release, const std::string& device_id);

  absl::Status PutInstall(const InstallRecord& install);  // replaces the device's last
  absl::StatusOr<std::vector<InstallRecord>> Installs(const std::string& model_id);

  // The round's end and, when it produced one, its version, in one transaction.
  absl::Status CloseRound(const RoundRecord& round, const std::optional<VersionRecord>& version);

 private:
  StateStore(sqlite3* db, std::string path);
  absl::Status Exec(const std::string& sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Brings a database made by an earlier edgellm-aggregator to the current schema.
  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status PutRoundLocked(const RoundRecord& round) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status PutVersionLocked(const VersionRecord& version) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<VersionRecord>> QueryVersions(const std::string& where_sql, const std::string& model_id,
                                                           int64_t number) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  const std::string path_;
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_STATE_STORE_H_
