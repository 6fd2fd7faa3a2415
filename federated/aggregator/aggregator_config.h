// federated/aggregator/aggregator_config.h — edgellm-aggregator's YAML
// config: where it listens (always mutual TLS), where its state lives, and
// per model the adapter, the rounds and the strategy. Every key is listed in
// deploy/aggregator.yaml.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_AGGREGATOR_CONFIG_H_
#define EDGELLM_FEDERATED_AGGREGATOR_AGGREGATOR_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "federated/release/live_figures.h"

namespace edgellm::federated {

// A norm bound written `auto` in the config: derived from what devices train
// (see ModelConfig::ResolveNormBounds).
inline constexpr double kAutoNormBound = -1.0;

// How a round's updates become the next version.
struct StrategyConfig {
  // fedavg | fedadam | median | trimmed_mean | krum | dp_fedavg
  std::string name = "fedavg";
  // The aggregate is applied as version += server_learning_rate × aggregate
  // (FedAdam: its step size η).
  double server_learning_rate = 1.0;
  // Norm bounding: each update is scaled down to at most this L2 norm before
  // it is aggregated (0: off). dp_fedavg requires it: it is the clip S.
  // auto (the default): local_steps × learning_rate × √(values in an update),
  // the norm of an update that moved every value one learning rate per step.
  double norm_bound = kAutoNormBound;
  // trimmed_mean: the share of values dropped at each end, per coordinate.
  double trim_fraction = 0.2;
  // krum: the number of Byzantine updates tolerated (f; a round needs more
  // than 2f + 2 updates) and how many of the best-scored updates are
  // averaged (1: Krum; more: multi-Krum).
  int32_t krum_byzantine = 1;
  int32_t krum_selected = 1;
  // dp_fedavg: Gaussian noise of standard deviation noise_multiplier × S
  // on the sum of clipped updates, and the δ the reported ε is for.
  double noise_multiplier = 1.0;
  double dp_delta = 1e-5;
  // fedadam: moments and adaptivity (Reddi et al., "Adaptive Federated Optimization").
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.99;
  double adam_tau = 1e-3;

  absl::Status Validate() const;
};

struct ModelConfig {
  std::string id;          // what devices register for
  std::string base_model;  // the GGUF devices must hold (its sha256 is checked at registration)
  // The devices allowed to enroll for the model, by certificate name (a
  // NameListFile, read again when it changes); "": any device of the CA, the
  // first model it asks for. A device taken off the list is refused at its
  // next call; put on another model's list, it may enroll there.
  std::string devices_file;
  // The shared adapter.
  int32_t rank = 8;
  double alpha = 16.0;
  std::string targets = "q_proj,v_proj";  // or "all"
  bool freeze_a = true;                   // FFA-LoRA: exact averaging; devices send B only
  uint64_t lora_seed = 1;
  // Rounds.
  int32_t rounds = 0;                 // rounds to run; 0: without end
  double selection_fraction = 1.0;    // of the available devices
  int32_t min_devices = 2;            // a round opens once this many are available
  int32_t quorum = 2;                 // updates a round needs to close
  double round_timeout_seconds = 600; // the deadline, from the round's opening
  // What devices train.
  int32_t local_steps = 20;
  double learning_rate = 1e-3;
  int32_t micro_batch = 4;
  int32_t max_length = 256;
  double clip_norm = 1.0;             // devices' gradient clipping
  double proximal_mu = 0.0;           // FedProx: devices' proximal term μ (0: plain local training)
  std::string encoding = "int8";      // int8 | f16: how devices encode their delta
  // Validation of updates.
  uint64_t max_update_bytes = 64ull << 20;  // encoded
  // Refuse updates with a larger L2 norm (0: no bound). auto (the default):
  // three times the strategy's auto norm bound.
  double max_update_norm = kAutoNormBound;
  // One update's weight is at most this many times the median of the local
  // example counts the round's devices registered (0: no cap).
  double max_weight_ratio = 4.0;
  StrategyConfig strategy;
  // JSONL held out on the aggregator: each new version's loss on it is
  // measured and recorded (optional).
  std::string eval_data;

  absl::Status Validate() const;
  // Replaces `auto` norm bounds with their values for updates of `values` values.
  void ResolveNormBounds(size_t values);
};

struct AggregatorConfig {
  std::string listen = "0.0.0.0:7443";
  // Required: the server certificate and key, and the CA that signs device certificates.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  std::string metrics_listen;  // HOST:PORT for /metrics and /healthz; empty: off
  // HOST:PORT of the fleet page (HTTPS with tls_cert); empty: off. Readers
  // show the token in fleet_token_file, or without one a client
  // certificate from tls_client_ca whose common name is among the admins.
  std::string fleet_listen;
  std::string fleet_token_file;
  std::string state_dir = "/var/lib/edgellm-aggregator";
  double heartbeat_interval_seconds = 5;
  double poll_interval_seconds = 2;
  double liveness_timeout_seconds = 30;  // silent this long: gone
  int32_t threads = 0;                   // evaluation threads (0: one per core)
  // Uploads decoded and checked at once; others wait their turn.
  int32_t max_concurrent_decodes = 2;
  // Bounds on what devices can hold: calls in flight per device (each holds
  // a thread), threads of the gRPC server in all, streams per connection, and
  // how long a connection may stay idle and a stream may run (a device
  // resumes an upload or a download that was cut where it stopped).
  int32_t max_calls_per_device = 8;
  int32_t max_threads = 256;
  int32_t max_streams_per_connection = 16;
  double connection_idle_seconds = 600;
  double max_stream_seconds = 900;
  // Calls a device may make at once, and how many a second after that; and
  // of those, install reports (outcomes, and live figures while on
  // probation). More are refused with RESOURCE_EXHAUSTED, which devices
  // retry later.
  double device_call_burst = 100;
  double device_calls_per_second = 20;
  double device_report_burst = 10;
  double device_reports_per_second = 1;
  std::vector<ModelConfig> models;
  // Releases. Operators whose client-certificate common name is in `admins`
  // may publish and steer rollouts. A release is accepted for rollout only
  // when signed by release_key_threshold of release_keys (PEM Ed25519 public
  // keys: the devices' trust set). With release_signing_key (a PEM Ed25519
  // private key), each round's new version is published by itself.
  std::vector<std::string> admins;
  // Common names of certificates no longer accepted, one per line; read again
  // whenever the file changes (no restart). Empty: none.
  std::string revoked_certificates_file;
  std::vector<std::string> release_keys;
  int32_t release_key_threshold = 1;
  std::string release_signing_key;
  // A PEM Ed25519 private key that signs the audit log's head after every
  // append (audit.log.head), so a rewritten tail is found; empty: unsigned.
  // Keep it where whoever could rewrite state_dir cannot read it.
  std::string audit_signing_key;
  // The largest GGUF an operator may upload for a base-model release.
  uint64_t max_base_model_mib = 32768;
  // Base-model releases are also offered as a delta against the base model
  // the fleet holds (made at publishing: seconds per GB of model).
  bool base_deltas = true;
  double release_expiry_days = 30;   // of manifests published by the aggregator itself
  double canary_fraction = 0.25;     // rollout defaults, for releases that do not say
  double success_threshold = 1.0;
  double soak_seconds = 60;
  // Releases of a model with eval_data carry its examples (the first 256 KiB
  // of lines) as their evaluation: each canary measures the release against
  // the version it serves and refuses it when its loss is over this many
  // times the served version's (0: no evaluation unless a release asks).
  double canary_max_loss_ratio = 1.05;
  // After the soak, rollouts wait for an operator's approval before the rest
  // of the fleet (rollbacks only when they ask).
  bool require_approval = false;
  // How each device's serving after the swap (errors, refusals, time to
  // first token, from the live figures it sends while on probation) is
  // judged against its serving before; past them, its report counts as
  // LIVE_FAILED: canary_live_min_requests, canary_max_error_rate_increase,
  // canary_max_refusal_rate_increase, canary_max_ttft_p99_ratio.
  release::LiveThresholds canary_live;

  static absl::StatusOr<AggregatorConfig> FromYaml(const std::string& text, const std::string& origin);
  static absl::StatusOr<AggregatorConfig> Load(const std::string& path);
  absl::Status Validate() const;
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_AGGREGATOR_CONFIG_H_
