// ota/release_store.h — the device's installed releases on disk, and what it
// serves, so that a kill -9 at any point leaves a verified version to serve.
//
// Layout under the OTA directory:
//   state.json            what is served, the last-known-good, the highest
//                         release seen, the probation left, the time floor,
//                         a smoke test under way (atomic writes)
//   staging/<sha>.part    a download in progress (resumed after a restart)
//   versions/r<R>-v<N>/   an installed release: the artifact
//                         (adapter_model.safetensors and adapter_config.json
//                         of an adapter release, model.gguf of a base-model
//                         release), the signed envelope, the held-out
//                         examples of its evaluation; made as a hidden
//                         temporary directory, fsynced, then renamed in
// A version directory exists complete or not at all; state.json names only
// complete ones. An adapter version names the base model it runs on: the
// configured model file, or a base-model release's directory. Pruning keeps
// the current and the last-known-good version and their base models: two
// base-model slots at most, the one serving and the one to fall back to.
// Not thread-safe: the OTA agent's thread owns it.
#ifndef EDGELLM_OTA_RELEASE_STORE_H_
#define EDGELLM_OTA_RELEASE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "federated/release/manifest.h"
#include "federated/release/trust_policy.h"

namespace edgellm::ota {

// In a version's directory: the held-out examples of the release's evaluation (JSONL).
inline constexpr const char* kEvaluationExamplesFile = "evaluation.jsonl";
// In a base-model release's directory: the model.
inline constexpr const char* kBaseModelFile = "model.gguf";

struct InstalledVersion {
  uint64_t release = 0;  // 0: none; the bare base model serves
  uint64_t version = 0;
  std::string dir;       // the version's directory name under versions/
  // The base model it runs on: a base-model release's directory name under
  // versions/ (its own, for a base-model release), or "" for the configured
  // model file.
  std::string base;
  std::string base_sha256;  // of that base model's file; "" for the configured one (computed when needed)

  bool is_base() const { return !dir.empty() && base == dir; }
};

// An install report not yet delivered to the aggregator.
struct PendingReport {
  uint64_t release = 0;  // 0: none
  int32_t outcome = 0;   // edgellm.v1.InstallReport.Outcome
  std::string detail;
  std::string evaluation;  // release::EvaluationFigures JSON; "": not evaluated
};

// A smoke test begun and not yet concluded: if the next start finds one, the
// daemon died during it.
struct SmokeInProgress {
  InstalledVersion version;  // release 0: none
  std::string artifact_sha256;
  int attempts = 0;      // smoke tests of this release begun and not concluded
};

struct OtaState {
  InstalledVersion current;
  InstalledVersion last_good;  // what a failed current falls back to
  uint64_t last_release = 0;   // the highest release accepted or refused for good
  // Serving time (measured by the monotonic clock, so a jumping wall clock
  // neither shortens nor stretches it) the current version still has on
  // probation: a daemon that stops uncleanly before it restores last_good.
  int64_t probation_left_ms = 0;
  int64_t time_floor = 0;  // TrustedClock's floor, seconds since the epoch
  bool clean_stop = true;
  SmokeInProgress smoke;
  PendingReport report;
};

class ReleaseStore {
 public:
  // Creates the layout under `dir` if needed and removes half-made version
  // directories. Internal errors name the path.
  static absl::StatusOr<std::unique_ptr<ReleaseStore>> Open(const std::string& dir);

  const OtaState& state() const { return state_; }
  // Makes `state` durable (atomic replace of state.json) and current.
  absl::Status Save(const OtaState& state);

  // Takes an installed version apart again, its artifact back to staging as
  // the complete download of `sha256`: a version whose smoke test could not
  // run now is tried again later without being downloaded again.
  absl::Status ReturnToStaging(const InstalledVersion& version, const std::string& sha256);

  // Where the download of the artifact `sha256` is kept while it arrives.
  std::string PartPath(const std::string& sha256) const;
  // Installs a verified release whose complete, checked artifact is at
  // `artifact`: moves it into a new version directory with the envelope (and
  // an adapter's config), fsyncs, renames the directory into place. An
  // adapter release is installed on `base` (the base model served now).
  // Returns the installed version (not yet served; Save a state naming it).
  absl::StatusOr<InstalledVersion> Install(const release::SignedRelease& signed_release,
                                           const release::ReleaseManifest& manifest, const std::string& artifact,
                                           const InstalledVersion& base);
  // Checks an installed version again: its envelope's signatures (not its
  // expiry: an installed version stays usable) and its artifact's sha256.
  absl::Status Verify(const InstalledVersion& version, const release::TrustPolicy& policy) const;
  // The directory of an installed version (a PEFT adapter directory, or a
  // base-model release's).
  std::string PathOf(const InstalledVersion& version) const;
  // The model file `version` runs on; "" for the configured model file.
  std::string BaseFileOf(const InstalledVersion& version) const;
  // The adapter directory `version` serves; "" for none (a bare base model).
  std::string AdapterDirOf(const InstalledVersion& version) const;
  // The model file the daemon should load at start, before the agent checks
  // anything ("" for the configured one): the current version's, or the
  // last-known-good's when the current one was on probation when the daemon
  // stopped uncleanly — what Restore will most likely choose.
  std::string BaseFileAtStart() const;
  // Removes version directories that are neither current nor last-known-good
  // nor the base model of either.
  void Prune() const;

 private:
  explicit ReleaseStore(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  OtaState state_;
};

// The model file a daemon keeping its releases in `dir` should load at start
// (ReleaseStore::BaseFileAtStart); nullopt for the configured one, also when
// nothing is installed or the file is missing.
std::optional<std::string> BaseFileAtStart(const std::string& dir);

}  // namespace edgellm::ota

#endif  // EDGELLM_OTA_RELEASE_STORE_H_
