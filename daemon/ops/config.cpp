#include "daemon/ops/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>

#include "common/read_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"

namespace edgellm::ops {
namespace {

absl::Status KeyError(const std::string& origin, const YAML::Node& node, const std::string& key,
                      const std::string& what) {
  return absl::InvalidArgumentError(
      edgellm::StrCat(origin, ":", node.Mark().line + 1, ": ", key, ": ", what));
}

// Reads a scalar of type T, refusing anything yaml-cpp cannot convert.
template <typename T>
absl::Status Read(const std::string& origin, const YAML::Node& node, const std::string& key, T* out,
                  const char* type_name) {
  if (!node.IsScalar()) return KeyError(origin, node, key, edgellm::StrCat("expected ", type_name));
  try {
    *out = node.as<T>();
  } catch (const YAML::Exception&) {
    return KeyError(origin, node, key, edgellm::StrCat("expected ", type_name, ", found '", node.Scalar(), "'"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DaemonConfig> DaemonConfig::FromYaml(const std::string& text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(edgellm::StrCat(origin, ":", e.mark.line + 1, ": ", e.msg));
  }
  DaemonConfig config;
  if (root.IsNull()) return config;
  if (!root.IsMap()) return absl::InvalidArgumentError(edgellm::StrCat(origin, ": expected a mapping of keys"));

  using Reader = std::function<absl::Status(const YAML::Node&, const std::string&)>;
  auto text_field = [&](std::string* field) -> Reader {
    return [&, field](const YAML::Node& n, const std::string& k) { return Read(origin, n, k, field, "text"); };
  };
  auto int_field = [&](int32_t* field) -> Reader {
    return [&, field](const YAML::Node& n, const std::string& k) { return Read(origin, n, k, field, "an integer"); };
  };
  auto number_field = [&](double* field) -> Reader {
    return [&, field](const YAML::Node& n, const std::string& k) { return Read(origin, n, k, field, "a number"); };
  };
  auto bool_field = [&](bool* field) -> Reader {
    return [&, field](const YAML::Node& n, const std::string& k) { return Read(origin, n, k, field, "true or false"); };
  };
  auto adapters_field = [&](const YAML::Node& n, const std::string& k) -> absl::Status {
    if (!n.IsMap()) return KeyError(origin, n, k, "expected a mapping of names to adapter directories");
    for (const auto& entry : n) {
      std::string dir;
      EDGELLM_RETURN_IF_ERROR(Read(origin, entry.second, k + "." + entry.first.as<std::string>(), &dir, "a directory"));
      config.adapters[entry.first.as<std::string>()] = dir;
    }
    return absl::OkStatus();
  };
  const std::map<std::string, Reader> readers = {
      {"adapters", adapters_field},
      {"model", text_field(&config.model)},
      {"listen", text_field(&config.listen)},
      {"tls_cert", text_field(&config.tls_cert)},
      {"tls_key", text_field(&config.tls_key)},
      {"tls_client_ca", text_field(&config.tls_client_ca)},
      {"metrics_listen", text_field(&config.metrics_listen)},
      {"threads", int_field(&config.threads)},
      {"context_length", int_field(&config.context_length)},
      {"max_active", int_field(&config.max_active)},
      {"max_waiting", int_field(&config.max_waiting)},
      {"prefill_chunk", int_field(&config.prefill_chunk)},
      {"kv_cache_mib", int_field(&config.kv_cache_mib)},
      {"kv_block_size", int_field(&config.kv_block_size)},
      {"prefix_caching", bool_field(&config.prefix_caching)},
      {"max_sessions", int_field(&config.max_sessions)},
      {"draft_tokens", int_field(&config.draft_tokens)},
      {"draft_model", text_field(&config.draft_model)},
      {"session_ttl_seconds", number_field(&config.session_ttl_seconds)},
      {"memory_low_mib", int_field(&config.memory_low_mib)},
      {"memory_critical_mib", int_field(&config.memory_critical_mib)},
      {"drain_timeout_seconds", number_field(&config.drain_timeout_seconds)},
      {"train_data", text_field(&config.train_data)},
      {"train_dir", text_field(&config.train_dir)},
      {"train_adapter", text_field(&config.train_adapter)},
      {"train_steps", int_field(&config.train_steps)},
      {"train_learning_rate", number_field(&config.train_learning_rate)},
      {"train_rank", int_field(&config.train_rank)},
      {"train_alpha", number_field(&config.train_alpha)},
      {"train_targets", text_field(&config.train_targets)},
      {"train_max_length", int_field(&config.train_max_length)},
      {"train_micro_batch", int_field(&config.train_micro_batch)},
      {"train_memory_budget_mib", int_field(&config.train_memory_budget_mib)},
      {"train_busy_share", number_field(&config.train_busy_share)},
      {"train_idle_seconds", number_field(&config.train_idle_seconds)},
      {"train_program", text_field(&config.train_program)},
  };
  for (const auto& entry : root) {
    const std::string key = entry.first.as<std::string>();
    auto reader = readers.find(key);
    if (reader == readers.end()) return KeyError(origin, entry.first, key, "unknown key");
    EDGELLM_RETURN_IF_ERROR(reader->second(entry.second, key));
  }
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
  EDGELLM_RETURN_IF_ERROR(at_least("max_sessions", max_sessions, 1));
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
