// ota/ota_agent.h — the device's side of releases, inside edgellmd.
//
// At start it serves the version its state names, after checking it again
// (signatures and sha256); a version that fails the check, or that was on
// probation when the daemon died, gives way to the last-known-good one (or
// to the bare base model). Then a thread polls the aggregator for the
// release meant for this device; for one it: checks the signatures against
// the trusted keys and threshold, the expiry, the model, and that it is newer
// than what is installed (or a signed rollback); that an adapter release is
// for the base model served, and that a base-model release's file fits on
// the disk; downloads the artifact in chunks, resuming a broken download;
// checks its sha256; installs it atomically; smoke-tests it without serving
// it (a base model loaded beside the one serving); runs the evaluation its
// manifest carries, if any, against the version served now and refuses it
// when it falls below the thresholds; and swaps it in — requests
// in flight finish on the version (and base model) they began with. Every outcome is reported
// to the aggregator (kept on disk until delivered). A new version stays on
// probation for a while of serving time (the monotonic clock's, so a jumping
// wall clock changes nothing): if the daemon dies uncleanly in that time, the
// next start restores the last-known-good version and reports the rollback.
// While it is on probation the agent also reports, every
// live_report_interval, how serving went since the swap against how it went
// before (errors, refusals, time to first token: release::LiveFigures), for
// the aggregator to judge.
// A release the daemon dies in the smoke test of is tried once more, then
// reported SMOKE_FAILED and skipped: no crash loop. Expiry is checked against
// a TrustedClock, so a clock set back does not revive expired releases.
#ifndef EDGELLM_OTA_OTA_AGENT_H_
#define EDGELLM_OTA_OTA_AGENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "federated/release/evaluation.h"
#include "federated/release/live_figures.h"

namespace edgellm::ota {

struct OtaAgentConfig {
  std::string aggregator;  // HOST:PORT, mutual TLS as for federated rounds
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string device_id;  // "": the certificate's common name
  std::string model_id;
  // The GGUF served: a release signed for another base model is refused
  // (its sha256 is computed once, in the agent's thread).
  std::string base_model_path;
  std::string dir;  // the ReleaseStore's directory
  std::vector<std::string> release_keys;  // PEM public keys trusted to sign releases
  int key_threshold = 1;                  // signatures by distinct trusted keys a release needs
  std::chrono::milliseconds poll_interval{5000};
  std::chrono::seconds probation{300};
  std::chrono::milliseconds live_report_interval{10000};
};

// What a version serves: a base model and an adapter on it.
struct ServedFiles {
  std::string base;     // the GGUF file; "": the configured model file
  std::string adapter;  // a PEFT adapter directory; "": none (the bare base model)
};

// How the agent puts a version to use; provided by the daemon.
struct ServingHooks {
  // Loads the version and generates from it without serving it (a base
  // model other than the one serving is loaded beside it): OK, or why it is
  // unusable (load failure, failed or non-finite generation);
  // ResourceExhausted when it cannot be loaded here (no memory for a second
  // base model): the release is refused; Unavailable when it could not run now (the daemon refused it
  // for load, memory or draining): that says nothing of the version, and it
  // is tried again later.
  std::function<absl::Status(const ServedFiles& files)> smoke_test;
  // Serves `files` as `version` from now on; requests in flight keep theirs.
  std::function<absl::Status(const ServedFiles& files, uint64_t version)> serve;
  // Measures the candidate version against the one served, on the held-out
  // examples in `examples_file` (if the spec has them), as `spec` asks;
  // Unavailable when it could not run now. Unset: releases that carry an
  // evaluation fail it.
  std::function<absl::StatusOr<release::EvaluationFigures>(const ServedFiles& candidate, const ServedFiles& served,
                                                           const std::string& examples_file,
                                                           const release::EvaluationSpec& spec)>
      evaluate;
  // The daemon's serving counts since it started. Unset: no live figures are reported.
  std::function<release::ServingTally()> tally;
  // The version last smoke-tested will not be served: a base model loaded
  // for it may go. Unset: nothing to free.
  std::function<void()> forget_candidate;
};

struct OtaStats {
  uint64_t version = 0;  // served; 0: the bare base model
  uint64_t release = 0;
  int64_t installs = 0;
  int64_t refusals = 0;      // releases that failed verification
  int64_t smoke_failures = 0;
  int64_t eval_failures = 0;  // releases that fell below their evaluation's thresholds
  int64_t rollbacks = 0;     // restores of the last-known-good after a crash on probation
  int64_t base_installs = 0;  // of those installs, base-model releases
  int64_t bytes_fetched = 0;
};

class OtaAgent {
 public:
  using Log = std::function<void(const std::string&)>;
  // Reads the keys and certificates (InvalidArgument naming a bad file), opens
  // the store, and serves the installed version (or the last-known-good) now.
  static absl::StatusOr<std::unique_ptr<OtaAgent>> Create(OtaAgentConfig config, ServingHooks hooks, Log log);
  ~OtaAgent();  // Stop()

  void Start();
  // Ends the poll thread, cancelling calls in flight, and records a clean stop.
  void Stop();
  OtaStats stats() const;

 private:
  struct Impl;
  explicit OtaAgent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgellm::ota

#endif  // EDGELLM_OTA_OTA_AGENT_H_
