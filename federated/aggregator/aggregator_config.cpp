#include "federated/aggregator/aggregator_config.h"

#include <cmath>
#include <set>

#include "common/read_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/ops/yaml_fields.h"

namespace edgellm::federated {
namespace {

absl::Status Bad(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(StrCat(where, ": ", what));
}

// A number, or `auto` (kAutoNormBound).
void NumberOrAuto(ops::YamlFields& f, const std::string& key, double* field) {
  f.Custom(key, [&f, field](const YAML::Node& value, const std::string& k) -> absl::Status {
    if (value.IsScalar() && value.Scalar() == "auto") {
      *field = kAutoNormBound;
      return absl::OkStatus();
    }
    try {
      *field = value.as<double>();
    } catch (const YAML::Exception&) {
      return f.Error(value, k, "expected a number or auto");
    }
    return absl::OkStatus();
  });
}

void DeclareStrategy(ops::YamlFields& f, StrategyConfig& s) {
  f.Text("strategy", &s.name);
  f.Number("server_learning_rate", &s.server_learning_rate);
  NumberOrAuto(f, "norm_bound", &s.norm_bound);
  f.Number("trim_fraction", &s.trim_fraction);
  f.Int("krum_byzantine", &s.krum_byzantine);
  f.Int("krum_selected", &s.krum_selected);
  f.Number("noise_multiplier", &s.noise_multiplier);
  f.Number("dp_delta", &s.dp_delta);
  f.Number("adam_beta1", &s.adam_beta1);
  f.Number("adam_beta2", &s.adam_beta2);
  f.Number("adam_tau", &s.adam_tau);
}

void DeclareModel(ops::YamlFields& f, ModelConfig& m) {
  f.Text("id", &m.id);
  f.Text("base_model", &m.base_model);
  f.Text("devices_file", &m.devices_file);
  f.Int("rank", &m.rank);
  f.Number("alpha", &m.alpha);
  f.Text("targets", &m.targets);
  f.Bool("freeze_a", &m.freeze_a);
  f.UInt64("lora_seed", &m.lora_seed);
  f.Int("rounds", &m.rounds);
  f.Number("selection_fraction", &m.selection_fraction);
  f.Int("min_devices", &m.min_devices);
  f.Int("quorum", &m.quorum);
  f.Number("round_timeout_seconds", &m.round_timeout_seconds);
  f.Int("local_steps", &m.local_steps);
  f.Number("learning_rate", &m.learning_rate);
  f.Int("micro_batch", &m.micro_batch);
  f.Int("max_length", &m.max_length);
  f.Number("clip_norm", &m.clip_norm);
  f.Number("proximal_mu", &m.proximal_mu);
  f.Text("encoding", &m.encoding);
  f.UInt64("max_update_bytes", &m.max_update_bytes);
  NumberOrAuto(f, "max_update_norm", &m.max_update_norm);
  f.Number("max_weight_ratio", &m.max_weight_ratio);
  f.Text("eval_data", &m.eval_data);
  DeclareStrategy(f, m.strategy);
}

}  // namespace

absl::Status StrategyConfig::Validate() const {
  static const std::set<std::string> kNames = {"fedavg", "fedadam", "median", "trimmed_mean", "krum", "dp_fedavg"};
  if (!kNames.contains(name)) {
    return Bad("strategy",
               StrCat("'", name, "' is not one of fedavg, fedadam, median, trimmed_mean, krum, dp_fedavg"));
  }
  if (!(server_learning_rate > 0)) return Bad("server_learning_rate", "must be positive");
  if (!(norm_bound >= 0 || norm_bound == kAutoNormBound)) return Bad("norm_bound", "must be auto or not negative");
  if (krum_byzantine < 0 || krum_selected < 1) {
    return Bad("krum_byzantine, krum_selected", "must be at least 0 and 1");
  }
  if (!(trim_fraction >= 0 && trim_fraction < 0.5)) return Bad("trim_fraction", "must be within [0, 0.5)");
  if (name == "dp_fedavg") {
    if (norm_bound == 0) return Bad("norm_bound", "dp_fedavg clips every update to it: it must be positive or auto");
    if (!(noise_multiplier > 0)) return Bad("noise_multiplier", "must be positive for dp_fedavg");
    if (!(dp_delta > 0 && dp_delta < 1)) return Bad("dp_delta", "must be within (0, 1)");
  }
  if (!(adam_beta1 >= 0 && adam_beta1 < 1) || !(adam_beta2 >= 0 && adam_beta2 < 1)) {
    return Bad("adam_beta1, adam_beta2", "must be within [0, 1)");
  }
  if (!(adam_tau > 0)) return Bad("adam_tau", "must be positive");
  return absl::OkStatus();
}

absl::Status ModelConfig::Validate() const {
  const std::string where = StrCat("model ", id);
  const bool good_id = !id.empty() && id.size() <= 64 && id.find_first_not_of(
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == std::string::npos;
  if (!good_id) return Bad(where, "id must be 1-64 of [A-Za-z0-9._-]");
  if (base_model.empty()) return Bad(where, "base_model is required");
  if (rank < 1 || rank > 256) return Bad(where, "rank must be within 1..256");
  if (!(alpha > 0)) return Bad(where, "alpha must be positive");
  if (rounds < 0) return Bad(where, "rounds must not be negative");
  if (!(selection_fraction > 0 && selection_fraction <= 1)) return Bad(where, "selection_fraction must be within (0, 1]");
  if (min_devices < 1) return Bad(where, "min_devices must be at least 1");
  if (quorum < 1 || quorum > min_devices) return Bad(where, "quorum must be within 1..min_devices");
  if (!(round_timeout_seconds > 0)) return Bad(where, "round_timeout_seconds must be positive");
  if (local_steps < 1 || micro_batch < 1 || max_length < 32) {
    return Bad(where, "local_steps and micro_batch must be at least 1, max_length at least 32");
  }
  if (!(learning_rate > 0) || !(clip_norm >= 0)) return Bad(where, "learning_rate must be positive, clip_norm not negative");
  if (!(proximal_mu >= 0) || !std::isfinite(proximal_mu)) return Bad(where, "proximal_mu must not be negative");
  if (encoding != "int8" && encoding != "f16") return Bad(where, "encoding must be int8 or f16");
  if (max_update_bytes < 1024) return Bad(where, "max_update_bytes must be at least 1024");
  if (!(max_update_norm >= 0 || max_update_norm == kAutoNormBound)) {
    return Bad(where, "max_update_norm must be auto or not negative");
  }
  if (!(max_weight_ratio >= 0)) return Bad(where, "max_weight_ratio must not be negative");
  if (strategy.name == "krum" && quorum <= 2 * strategy.krum_byzantine + 2) {
    return Bad(where, StrCat("krum tolerating ", strategy.krum_byzantine, " Byzantine updates needs a quorum above ",
                             2 * strategy.krum_byzantine + 2));
  }
  if (absl::Status s = strategy.Validate(); !s.ok()) return Bad(where, std::string(s.message()));
  return absl::OkStatus();
}

void ModelConfig::ResolveNormBounds(size_t values) {
  const double full_movement = local_steps * learning_rate * std::sqrt(static_cast<double>(values));
  if (strategy.norm_bound == kAutoNormBound) strategy.norm_bound = full_movement;
  if (max_update_norm == kAutoNormBound) max_update_norm = 3 * full_movement;
}

absl::Status AggregatorConfig::Validate() const {
  if (tls_cert.empty() || tls_key.empty() || tls_client_ca.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert, tls_key and tls_client_ca are required: the aggregator speaks only mutual TLS");
  }
  if (state_dir.empty()) return absl::InvalidArgumentError("state_dir must not be empty");
  if (!(heartbeat_interval_seconds > 0) || !(poll_interval_seconds > 0)) {
    return absl::InvalidArgumentError("heartbeat_interval_seconds and poll_interval_seconds must be positive");
  }
  if (!(liveness_timeout_seconds >= 2 * heartbeat_interval_seconds)) {
    return absl::InvalidArgumentError("liveness_timeout_seconds must be at least twice heartbeat_interval_seconds");
  }
  if (models.empty()) return absl::InvalidArgumentError("models: at least one model is needed");
  if (max_concurrent_decodes < 1) return absl::InvalidArgumentError("max_concurrent_decodes must be at least 1");
  if (max_calls_per_device < 1 || max_streams_per_connection < 1) {
    return absl::InvalidArgumentError("max_calls_per_device and max_streams_per_connection must be at least 1");
  }
  if (max_threads < 8) return absl::InvalidArgumentError("max_threads must be at least 8");
  if (!(device_call_burst >= 1) || !(device_calls_per_second > 0) || !(device_report_burst >= 1) ||
      !(device_reports_per_second > 0)) {
    return absl::InvalidArgumentError(
        "device_call_burst and device_report_burst must be at least 1, device_calls_per_second and "
        "device_reports_per_second positive");
  }
  if (!(connection_idle_seconds > 0)) return absl::InvalidArgumentError("connection_idle_seconds must be positive");
  if (!(max_stream_seconds > 0) || max_stream_seconds > 86'400) {
    return absl::InvalidArgumentError("max_stream_seconds must be within (0, 86400]");
  }
  if (!release_keys.empty() &&
      (release_key_threshold < 1 || release_key_threshold > static_cast<int32_t>(release_keys.size()))) {
    return absl::InvalidArgumentError(StrCat("release_key_threshold ", release_key_threshold,
                                             " must be between 1 and the ", release_keys.size(), " release_keys"));
  }
  if (!release_signing_key.empty() && release_keys.empty()) {
    return absl::InvalidArgumentError("release_signing_key needs release_keys: the set devices trust");
  }
  if (!(release_expiry_days > 0)) return absl::InvalidArgumentError("release_expiry_days must be positive");
  if (max_base_model_mib == 0 || max_base_model_mib > (uint64_t{1} << 24)) {
    return absl::InvalidArgumentError("max_base_model_mib must be 1 to 16777216");
  }
  if (!(canary_fraction > 0 && canary_fraction <= 1) || !(success_threshold > 0 && success_threshold <= 1)) {
    return absl::InvalidArgumentError("canary_fraction and success_threshold must be within (0, 1]");
  }
  if (!(soak_seconds >= 0)) return absl::InvalidArgumentError("soak_seconds must not be negative");
  if (!(canary_max_loss_ratio >= 0) || !std::isfinite(canary_max_loss_ratio)) {
    return absl::InvalidArgumentError("canary_max_loss_ratio must be a finite number >= 0");
  }
  const release::LiveThresholds& live = canary_live;
  if (live.min_requests < 1) return absl::InvalidArgumentError("canary_live_min_requests must be at least 1");
  if (!(live.max_error_rate_increase >= 0 && live.max_error_rate_increase <= 1) ||
      !(live.max_refusal_rate_increase >= 0 && live.max_refusal_rate_increase <= 1)) {
    return absl::InvalidArgumentError(
        "canary_max_error_rate_increase and canary_max_refusal_rate_increase must be within [0, 1]");
  }
  if (!(live.max_ttft_p99_ratio >= 0) || !std::isfinite(live.max_ttft_p99_ratio)) {
    return absl::InvalidArgumentError("canary_max_ttft_p99_ratio must be a finite number >= 0");
  }
  std::set<std::string> ids;
  for (const ModelConfig& m : models) {
    EDGELLM_RETURN_IF_ERROR(m.Validate());
    if (!ids.insert(m.id).second) return absl::InvalidArgumentError(StrCat("model ", m.id, " is listed twice"));
  }
  return absl::OkStatus();
}

absl::StatusOr<AggregatorConfig> AggregatorConfig::FromYaml(const std::string& text, const std::string& origin) {
  EDGELLM_ASSIGN_OR_RETURN(YAML::Node root, ops::ParseYaml(text, origin));
  AggregatorConfig config;
  ops::YamlFields fields(origin);
  fields.Text("listen", &config.listen);
  fields.Text("tls_cert", &config.tls_cert);
  fields.Text("tls_key", &config.tls_key);
  fields.Text("tls_client_ca", &config.tls_client_ca);
  fields.Text("metrics_listen", &config.metrics_listen);
  fields.Text("fleet_listen", &config.fleet_listen);
  fields.Text("fleet_token_file", &config.fleet_token_file);
  fields.Text("state_dir", &config.state_dir);
  fields.Number("heartbeat_interval_seconds", &config.heartbeat_interval_seconds);
  fields.Number("poll_interval_seconds", &config.poll_interval_seconds);
  fields.Number("liveness_timeout_seconds", &config.liveness_timeout_seconds);
  fields.Int("threads", &config.threads);
  fields.Int("max_concurrent_decodes", &config.max_concurrent_decodes);
  fields.Int("max_calls_per_device", &config.max_calls_per_device);
  fields.Int("max_threads", &config.max_threads);
  fields.Int("max_streams_per_connection", &config.max_streams_per_connection);
  fields.Number("connection_idle_seconds", &config.connection_idle_seconds);
  fields.Number("max_stream_seconds", &config.max_stream_seconds);
  fields.Number("device_call_burst", &config.device_call_burst);
  fields.Number("device_calls_per_second", &config.device_calls_per_second);
  fields.Number("device_report_burst", &config.device_report_burst);
  fields.Number("device_reports_per_second", &config.device_reports_per_second);
  fields.TextList("admins", &config.admins);
  fields.Text("revoked_certificates_file", &config.revoked_certificates_file);
  fields.TextList("release_keys", &config.release_keys);
  fields.Int("release_key_threshold", &config.release_key_threshold);
  fields.Text("release_signing_key", &config.release_signing_key);
  fields.Text("audit_signing_key", &config.audit_signing_key);
  fields.Number("release_expiry_days", &config.release_expiry_days);
  fields.UInt64("max_base_model_mib", &config.max_base_model_mib);
  fields.Bool("base_deltas", &config.base_deltas);
  fields.Number("canary_fraction", &config.canary_fraction);
  fields.Number("success_threshold", &config.success_threshold);
  fields.Number("soak_seconds", &config.soak_seconds);
  fields.Number("canary_max_loss_ratio", &config.canary_max_loss_ratio);
  fields.Bool("require_approval", &config.require_approval);
  fields.Int("canary_live_min_requests", &config.canary_live.min_requests);
  fields.Number("canary_max_error_rate_increase", &config.canary_live.max_error_rate_increase);
  fields.Number("canary_max_refusal_rate_increase", &config.canary_live.max_refusal_rate_increase);
  fields.Number("canary_max_ttft_p99_ratio", &config.canary_live.max_ttft_p99_ratio);
  fields.Custom("models", [&](const YAML::Node& list, const std::string& key) -> absl::Status {
    if (!list.IsSequence()) return fields.Error(list, key, "expected a list of models");
    for (const YAML::Node& entry : list) {
      ModelConfig model;
      ops::YamlFields model_fields(origin);
      DeclareModel(model_fields, model);
      EDGELLM_RETURN_IF_ERROR(model_fields.Apply(entry));
      config.models.push_back(std::move(model));
    }
    return absl::OkStatus();
  });
  EDGELLM_RETURN_IF_ERROR(fields.Apply(root));
  EDGELLM_RETURN_IF_ERROR(config.Validate());
  return config;
}

absl::StatusOr<AggregatorConfig> AggregatorConfig::Load(const std::string& path) {
  EDGELLM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, "config"));
  return FromYaml(text, path);
}

}  // namespace edgellm::federated
