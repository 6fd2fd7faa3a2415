#include "daemon/ops/config.h"

#include <algorithm>
#include <cctype>

#include "common/read_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/ops/yaml_fields.h"

namespace edgellm::ops {

absl::StatusOr<DaemonConfig> DaemonConfig::FromYaml(const std::string& text, const std::string& origin) {
  EDGELLM_ASSIGN_OR_RETURN(YAML::Node root, ParseYaml(text, origin));
  DaemonConfig config;
  if (root.IsNull()) return config;
  YamlFields fields(origin);
  fields.Custom("adapters", [&](const YAML::Node& n, const std::string& k) -> absl::Status {
    if (!n.IsMap()) return fields.Error(n, k, "expected a mapping of names to adapter directories");
    for (const auto& entry : n) {
      const std::string name = entry.first.as<std::string>();
      if (!entry.second.IsScalar()) return fields.Error(entry.second, k + "." + name, "expected a directory");
      config.adapters[name] = entry.second.Scalar();
    }
    return absl::OkStatus();
  });
  fields.Text("model", &config.model);
  fields.Text("listen", &config.listen);
  fields.Text("tls_cert", &config.tls_cert);
  fields.Text("tls_key", &config.tls_key);
  fields.Text("tls_client_ca", &config.tls_client_ca);
  fields.Bool("tls_allow_any_client", &config.tls_allow_any_client);
  fields.Text("metrics_listen", &config.metrics_listen);
  fields.Text("health_listen", &config.health_listen);
  fields.Text("http_listen", &config.http_listen);
  fields.Text("http_api_keys_file", &config.http_api_keys_file);
  fields.Int("http_max_body_kib", &config.http_max_body_kib);
  fields.Number("http_request_timeout_seconds", &config.http_request_timeout_seconds);
  fields.Number("http_idle_timeout_seconds", &config.http_idle_timeout_seconds);
  fields.Text("chat_template", &config.chat_template);
  fields.Text("chat_template_file", &config.chat_template_file);
  fields.Int("threads", &config.threads);
  fields.Int("context_length", &config.context_length);
  fields.Bool("mmap_weights", &config.mmap_weights);
  fields.Int("max_active", &config.max_active);
  fields.Int("max_waiting", &config.max_waiting);
  fields.Int("prefill_chunk", &config.prefill_chunk);
  fields.Int("kv_cache_mib", &config.kv_cache_mib);
  fields.Int("kv_block_size", &config.kv_block_size);
  fields.Text("kv_type", &config.kv_type);
  fields.Bool("prefix_caching", &config.prefix_caching);
  fields.Int("max_sessions", &config.max_sessions);
  fields.Number("max_caller_share", &config.max_caller_share);
  fields.Int("draft_tokens", &config.draft_tokens);
  fields.Text("draft_model", &config.draft_model);
  fields.Number("session_ttl_seconds", &config.session_ttl_seconds);
  fields.Int("memory_low_mib", &config.memory_low_mib);
  fields.Int("memory_critical_mib", &config.memory_critical_mib);
  fields.Number("drain_timeout_seconds", &config.drain_timeout_seconds);
  fields.Text("train_data", &config.train_data);
  fields.Text("train_dir", &config.train_dir);
  fields.Text("train_adapter", &config.train_adapter);
  fields.Int("train_steps", &config.train_steps);
  fields.Number("train_learning_rate", &config.train_learning_rate);
  fields.Int("train_rank", &config.train_rank);
  fields.Number("train_alpha", &config.train_alpha);
  fields.Text("train_targets", &config.train_targets);
  fields.Int("train_max_length", &config.train_max_length);
  fields.Int("train_micro_batch", &config.train_micro_batch);
  fields.Int("train_memory_budget_mib", &config.train_memory_budget_mib);
  fields.Number("train_busy_share", &config.train_busy_share);
  fields.Number("train_idle_seconds", &config.train_idle_seconds);
  fields.Text("train_program", &config.train_program);
  fields.Text("federation_aggregator", &config.federation_aggregator);
  fields.Text("federation_ca", &config.federation_ca);
  fields.Text("federation_cert", &config.federation_cert);
  fields.Text("federation_key", &config.federation_key);
  fields.Text("federation_device_id", &config.federation_device_id);
  fields.Text("federation_model_id", &config.federation_model_id);
  fields.Text("federation_dir", &config.federation_dir);
  fields.TextList("ota_release_keys", &config.ota_release_keys);
  fields.Int("ota_key_threshold", &config.ota_key_threshold);
  fields.Text("ota_dir", &config.ota_dir);
  fields.Number("ota_poll_seconds", &config.ota_poll_seconds);
  fields.Number("ota_probation_seconds", &config.ota_probation_seconds);
  fields.Number("ota_live_report_seconds", &config.ota_live_report_seconds);
  fields.Text("ota_smoke_prompt", &config.ota_smoke_prompt);
  EDGELLM_RETURN_IF_ERROR(fields.Apply(root));
  EDGELLM_RETURN_IF_ERROR(config.Validate());
  return config;
}

absl::StatusOr<DaemonConfig> DaemonConfig::Load(const std::string& path) {
  EDGELLM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, "config"));
  return FromYaml(text, path);
}

absl::Status DaemonConfig::Validate() const {
  auto at_least = [](const char* key, int64_t value, int64_t minimum) {
    return value >= minimum ? absl::OkStatus()
                            : absl::InvalidArgumentError(edgellm::StrCat(key, " ", value, " must be at least ", minimum));
  };
  EDGELLM_RETURN_IF_ERROR(at_least("threads", threads, 0));
  EDGELLM_RETURN_IF_ERROR(at_least("context_length", context_length, 0));
  EDGELLM_RETURN_IF_ERROR(at_least("max_active", max_active, 1));
  EDGELLM_RETURN_IF_ERROR(at_least("max_waiting", max_waiting, 0));
  EDGELLM_RETURN_IF_ERROR(at_least("prefill_chunk", prefill_chunk, 1));
  EDGELLM_RETURN_IF_ERROR(at_least("kv_cache_mib", kv_cache_mib, 0));
  EDGELLM_RETURN_IF_ERROR(at_least("kv_block_size", kv_block_size, 1));
  if (kv_block_size > 1024) return absl::InvalidArgumentError("kv_block_size must be at most 1024");
  if (kv_type != "f16" && kv_type != "f32" && kv_type != "q8_0") {
    return absl::InvalidArgumentError("kv_type \"" + kv_type + "\" must be f16, f32 or q8_0");
  }
  EDGELLM_RETURN_IF_ERROR(at_least("max_sessions", max_sessions, 1));
  if (!(max_caller_share > 0 && max_caller_share <= 1)) {
    return absl::InvalidArgumentError("max_caller_share must be within (0, 1]");
  }
  EDGELLM_RETURN_IF_ERROR(at_least("draft_tokens", draft_tokens, 0));
  if (draft_tokens > 64) return absl::InvalidArgumentError("draft_tokens must be at most 64");
  EDGELLM_RETURN_IF_ERROR(at_least("memory_low_mib", memory_low_mib, 0));
  EDGELLM_RETURN_IF_ERROR(at_least("memory_critical_mib", memory_critical_mib, 0));
  if (memory_critical_mib > memory_low_mib) {
    return absl::InvalidArgumentError("memory_critical_mib must not exceed memory_low_mib");
  }
  if (!(drain_timeout_seconds >= 0)) {
    return absl::InvalidArgumentError("drain_timeout_seconds must not be negative");
  }
  if (!(session_ttl_seconds > 0)) return absl::InvalidArgumentError("session_ttl_seconds must be positive");
  if (listen.empty()) return absl::InvalidArgumentError("listen must not be empty");
  EDGELLM_RETURN_IF_ERROR(at_least("http_max_body_kib", http_max_body_kib, 1));
  if (!(http_request_timeout_seconds > 0)) {
    return absl::InvalidArgumentError("http_request_timeout_seconds must be positive");
  }
  if (!(http_idle_timeout_seconds > 0)) return absl::InvalidArgumentError("http_idle_timeout_seconds must be positive");
  if (!chat_template.empty() && !chat_template_file.empty()) {
    return absl::InvalidArgumentError("chat_template and chat_template_file are exclusive: give one");
  }
  EDGELLM_RETURN_IF_ERROR(at_least("train_steps", train_steps, 1));
  EDGELLM_RETURN_IF_ERROR(at_least("train_rank", train_rank, 1));
  EDGELLM_RETURN_IF_ERROR(at_least("train_max_length", train_max_length, 32));
  EDGELLM_RETURN_IF_ERROR(at_least("train_micro_batch", train_micro_batch, 1));
  EDGELLM_RETURN_IF_ERROR(at_least("train_memory_budget_mib", train_memory_budget_mib, 0));
  if (!(train_learning_rate > 0)) return absl::InvalidArgumentError("train_learning_rate must be positive");
  if (!(train_alpha > 0)) return absl::InvalidArgumentError("train_alpha must be positive");
  if (!(train_busy_share >= 0 && train_busy_share <= 1)) {
    return absl::InvalidArgumentError("train_busy_share must be within [0, 1]");
  }
  if (!(train_idle_seconds >= 0)) return absl::InvalidArgumentError("train_idle_seconds must not be negative");
  if (!train_data.empty() && train_dir.empty()) return absl::InvalidArgumentError("train_data needs a train_dir");
  if (!federation_aggregator.empty()) {
    if (federation_ca.empty() || federation_cert.empty() || federation_key.empty()) {
      return absl::InvalidArgumentError(
          "federation_aggregator needs federation_ca, federation_cert and federation_key: rounds run over mutual TLS");
    }
    if (train_data.empty() && ota_release_keys.empty()) {
      return absl::InvalidArgumentError(
          "federation_aggregator needs train_data (to train in rounds) or ota_release_keys (to install releases)");
    }
    if (federation_dir.empty()) return absl::InvalidArgumentError("federation_dir must not be empty");
  }
  if (!ota_release_keys.empty()) {
    if (federation_aggregator.empty()) {
      return absl::InvalidArgumentError("ota_release_keys needs federation_aggregator: releases come from it");
    }
    if (ota_key_threshold < 1 || ota_key_threshold > static_cast<int32_t>(ota_release_keys.size())) {
      return absl::InvalidArgumentError(edgellm::StrCat("ota_key_threshold ", ota_key_threshold,
                                                        " must be between 1 and the ", ota_release_keys.size(),
                                                        " ota_release_keys"));
    }
    if (ota_dir.empty()) return absl::InvalidArgumentError("ota_dir must not be empty");
    if (!(ota_poll_seconds > 0)) return absl::InvalidArgumentError("ota_poll_seconds must be positive");
    if (!(ota_probation_seconds >= 0)) return absl::InvalidArgumentError("ota_probation_seconds must not be negative");
    if (!(ota_live_report_seconds > 0)) return absl::InvalidArgumentError("ota_live_report_seconds must be positive");
    if (ota_smoke_prompt.empty()) return absl::InvalidArgumentError("ota_smoke_prompt must not be empty");
  }
  auto check_name = [](const std::string& name) {
    const bool good = !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    });
    return good ? absl::OkStatus()
                : absl::InvalidArgumentError(
                      edgellm::StrCat("adapter name '", name.substr(0, 64), "' must be 1-64 of [A-Za-z0-9._-]"));
  };
  for (const auto& [name, dir] : adapters) {
    EDGELLM_RETURN_IF_ERROR(check_name(name));
    if (dir.empty()) return absl::InvalidArgumentError(edgellm::StrCat("adapter ", name, " has no directory"));
  }
  EDGELLM_RETURN_IF_ERROR(check_name(train_adapter));
  if (tls_cert.empty() != tls_key.empty()) {
    return absl::InvalidArgumentError("tls_cert and tls_key go together: give both or neither");
  }
  if (!tls_client_ca.empty() && tls_cert.empty()) {
    return absl::InvalidArgumentError("tls_client_ca needs tls_cert and tls_key");
  }
  return absl::OkStatus();
}

}  // namespace edgellm::ops
