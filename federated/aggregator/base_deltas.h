// federated/aggregator/base_deltas.h — the deltas base-model releases ship
// as: for each released base model, its delta (release::WriteBaseDelta)
// against the base model the fleet held before it — the previous base-model
// release of the model, or its configured base_model — made once when the
// release is published, on a thread of its own (seconds per GB: an
// operator's publish call does not wait for it), and kept in the artifact
// store. Devices that hold that file download the delta; the others, or any
// whose rebuild fails, the whole file.
//
// Under state_dir/deltas: <to_sha256>.json ({"from", "sha256", "bytes"}) per
// delta made, <to_sha256>.job ({"from_path", "from_sha256"}) per delta still
// to make, and <model>.base naming the model's latest base-model release.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_BASE_DELTAS_H_
#define EDGELLM_FEDERATED_AGGREGATOR_BASE_DELTAS_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "federated/aggregator/artifact_store.h"

namespace edgellm::federated {

struct BaseDelta {
  std::string from_sha256;  // the file it applies to
  std::string sha256;       // of the delta itself
  uint64_t bytes = 0;
};

// Thread-safe.
class BaseDeltas {
 public:
  using Log = std::function<void(const std::string&)>;
  BaseDeltas(const ArtifactStore& artifacts, std::string dir, Log log)
      : artifacts_(artifacts), dir_(std::move(dir)), log_(std::move(log)) {}
  // Stops a delta being made (no part of it is kept; ResumeStopped makes it
  // at the next start) and waits for its thread.
  ~BaseDeltas();
  BaseDeltas(const BaseDeltas&) = delete;
  BaseDeltas& operator=(const BaseDeltas&) = delete;

  // Starts making the delta of the stored base model `to_sha256` of
  // `model_id` against the base model its fleet holds now (the model's
  // latest base release, or `configured_base`, whose sha256 the caller
  // knows): which file that is is decided before this returns, so a release
  // recorded right after does not change it. Making(to_sha256) is true until
  // it is done. No delta when it would save less than a tenth of the file,
  // or the files cannot be compared (logged).
  void StartMaking(const std::string& model_id, const std::string& to_sha256, const std::string& configured_base,
                   const std::string& configured_sha256);
  // True while the delta of `to_sha256` is waiting to be made or being made.
  bool Making(const std::string& to_sha256);
  // Starts making again the deltas a stop interrupted (each StartMaking is
  // kept as <to_sha256>.job until its delta is made); call once at start.
  void ResumeStopped();
  // Records `to_sha256` as the model's base model from now on: it has been published.
  absl::Status Released(const std::string& model_id, const std::string& to_sha256);
  // The delta made for the base model `to_sha256`, if any.
  std::optional<BaseDelta> For(const std::string& to_sha256);
  // True when `sha256` is a delta of the base model `to_sha256`.
  bool IsDeltaOf(const std::string& to_sha256, const std::string& sha256);

 private:
  // A delta to make: of the stored base model `to_sha256`, against `from_path`.
  struct Job {
    std::string to_sha256;
    std::string from_path;
    std::string from_sha256;
  };
  // The job for `to_sha256` of `model_id`: against the model's latest base release, or the configured base.
  absl::StatusOr<Job> Plan(const std::string& model_id, const std::string& to_sha256,
                           const std::string& configured_base, const std::string& configured_sha256);
  // The delta made, or nullopt (logged why); an error only when the state cannot be written.
  // Cancelled when stopped before it was made.
  absl::StatusOr<std::optional<BaseDelta>> Run(const Job& job);
  void Enqueue(Job job);
  void Worker();
  std::string JobFile(const std::string& to_sha256) const;

  const ArtifactStore& artifacts_;
  const std::string dir_;
  const Log log_;
  Mutex mu_;
  std::map<std::string, std::optional<BaseDelta>> known_ ABSL_GUARDED_BY(mu_);  // to_sha256 → its delta, as read
  std::deque<Job> jobs_ ABSL_GUARDED_BY(mu_);  // the first one is being made
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;  // started with the first job
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_BASE_DELTAS_H_
