// ops/config.h — edgellmd's configuration: a plain struct, one comment and a
// default per field, parsed from YAML and validated once. Command-line flags
// override the file field by field.
#ifndef EDGELLM_OPS_CONFIG_H_
#define EDGELLM_OPS_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace edgellm::ops {

struct DaemonConfig {
  // GGUF model file to serve. Required.
  std::string model;
  // gRPC address: unix:PATH, or HOST:PORT (beyond loopback only with TLS).
  std::string listen = "unix:/run/edgellmd/edgellmd.sock";
  // TLS for a TCP listen address: PEM certificate chain and private key. Both or neither.
  std::string tls_cert;
  std::string tls_key;
  // PEM CA bundle: when set, clients must present a certificate it signed (mutual TLS).
  std::string tls_client_ca;
  // Beyond loopback a client CA is required: without one, any TLS client
  // could generate text, read adapters' outputs and hold slots. This opts out.
  bool tls_allow_any_client = false;
  // HOST:PORT of the /metrics and /healthz endpoint; empty turns it off.
  std::string metrics_listen;
  // HOST:PORT of a plaintext gRPC listener with grpc.health.v1 and nothing
  // else, for probes that cannot speak TLS (Kubernetes' gRPC probes); empty: off.
  std::string health_listen;
  // HOST:PORT of the OpenAI-compatible HTTP API (/v1/chat/completions, ...);
  // empty: off. Port 0 picks a free port (logged). Beyond loopback only with
  // TLS (tls_cert, tls_key, and tls_client_ca for client certificates, as gRPC).
  std::string http_listen;
  // A file of API keys, one per line: HTTP requests must send one as
  // "Authorization: Bearer KEY". Empty: no key is asked for.
  std::string http_api_keys_file;
  // HTTP bodies larger than this are refused (413) before they are read.
  int32_t http_max_body_kib = 4096;
  // Seconds for an HTTP request to arrive whole; a slower client gets 408.
  double http_request_timeout_seconds = 30;
  // Seconds a kept-alive HTTP connection may wait for its next request before it is closed.
  double http_idle_timeout_seconds = 60;
  // A Jinja chat template that replaces the model file's tokenizer.chat_template
  // (for files that carry none, or a fixed one): the template text itself, or
  // chat_template_file naming a file that holds it. Not both.
  std::string chat_template;
  std::string chat_template_file;
  // CPU compute threads; 0 = one per core.
  int32_t threads = 0;
  // Positions per sequence; 0 = the model's trained context, at most 4096.
  int32_t context_length = 0;
  // Map the model file from the page cache (shared with other processes,
  // nothing read at start) instead of reading it into the daemon's memory,
  // which decodes faster (README: Performance).
  bool mmap_weights = false;
  // Sequences decoded together in one batched step.
  int32_t max_active = 8;
  // Requests queued beyond the running ones; more are refused with RESOURCE_EXHAUSTED.
  int32_t max_waiting = 32;
  // Prompt tokens per sequence per step, so long prompts do not stall running streams.
  int32_t prefill_chunk = 128;
  // KV cache budget in MiB, shared by all sequences; 0 = room for max_active full contexts.
  int32_t kv_cache_mib = 0;
  // Positions per KV block.
  int32_t kv_block_size = 16;
  // How the KV cache stores keys and values: "f16" (half the memory and the
  // bytes attention reads, as llama.cpp's default) or "f32" (exact).
  std::string kv_type = "f16";
  // Reuse the KV blocks of identical prompt prefixes (and of a session's earlier turns).
  bool prefix_caching = true;
  // Speculative decoding for requests that do not set draft_tokens: tokens
  // drafted per step (by prompt lookup, or by draft_model), checked in the
  // same forward; 0: off.
  // Pays off when replies repeat their prompt (edits, quotes, code); costs a
  // little when they do not.
  int32_t draft_tokens = 0;
  // A smaller GGUF with the model's vocabulary that drafts instead of prompt
  // lookup: it guesses free text too, for a forward of its own per drafted
  // token. Each drafting request holds a KV cache of it beside the budget
  // above. Empty: prompt lookup.
  std::string draft_model;
  // LoRA adapters to serve, by name: PEFT directories (adapter_config.json +
  // adapter_model.safetensors) made for the model. A request picks one with
  // its `adapter` field. Names: 1-64 of [A-Za-z0-9._-].
  std::map<std::string, std::string> adapters;
  // On-device LoRA training on local data, in a child process (the
  // `edgellm train` CLI) that inference preempts: stopped the moment a
  // request arrives, continued once none has been served for
  // train_idle_seconds. When it finishes, the adapter is served as
  // train_adapter. Empty train_data: no training.
  std::string train_data;        // JSONL: {"text": ...} or {"prompt": ..., "completion": ...} per line
  std::string train_dir = "/var/lib/edgellm/train";  // the adapter and its checkpoint (a restart resumes)
  std::string train_adapter = "local";
  int32_t train_steps = 100;
  double train_learning_rate = 2e-4;
  int32_t train_rank = 8;
  double train_alpha = 16.0;
  std::string train_targets = "q_proj,v_proj";  // or "all"
  int32_t train_max_length = 256;
  int32_t train_micro_batch = 4;
  int32_t train_memory_budget_mib = 0;  // activations and optimizer state of a step; 0: no limit
  double train_busy_share = 0.0;        // share of time it may also run while requests are served
  double train_idle_seconds = 0.25;
  std::string train_program;            // the edgellm CLI; empty: the one beside edgellmd, else on PATH
  // Federated rounds: the aggregator's HOST:PORT. When set, this node trains
  // only in the rounds it is selected for, on train_data, with the round's
  // settings (train_rank and train_targets are the schema it declares).
  std::string federation_aggregator;
  std::string federation_ca;    // PEM CA that signed the aggregator's certificate
  std::string federation_cert;  // PEM: this device's certificate; its common name is the device id
  std::string federation_key;
  std::string federation_device_id;  // empty: the certificate's common name
  std::string federation_model_id;   // empty: the model file's name without .gguf
  std::string federation_dir = "/var/lib/edgellm/federation";
  // Over-the-air releases from the same aggregator, when ota_release_keys
  // (PEM Ed25519 public keys) are set: a release needs signatures by
  // ota_key_threshold distinct ones of them. A new version stays on
  // probation for ota_probation_seconds: an unclean stop in that time
  // restores the last-known-good version at the next start.
  std::vector<std::string> ota_release_keys;
  int32_t ota_key_threshold = 1;
  std::string ota_dir = "/var/lib/edgellm/ota";
  double ota_poll_seconds = 5.0;
  double ota_probation_seconds = 300.0;
  // While on probation: how often the serving since the swap is reported.
  double ota_live_report_seconds = 10.0;
  std::string ota_smoke_prompt = "Once upon a time";  // a new version must generate from it before it serves
  // Multi-turn sessions kept at once, and how long an idle one is kept.
  int32_t max_sessions = 256;
  double session_ttl_seconds = 600.0;
  // Fair share: one caller (client certificate, API key, or all uncertified
  // local clients together) may hold at most this share of max_active +
  // max_waiting; 1: no limit.
  double max_caller_share = 1.0;
  // Shed load when available memory (MemAvailable or the cgroup's headroom)
  // falls below memory_low_mib (fewer slots, shorter context) and refuse new
  // requests below memory_critical_mib; 0 and 0 turn the guard off.
  int32_t memory_low_mib = 256;
  int32_t memory_critical_mib = 64;
  // Seconds in-flight requests get to finish after SIGTERM.
  double drain_timeout_seconds = 30.0;

  // Parses YAML text (a mapping of the keys above; `origin` names it in
  // errors). InvalidArgument naming the key and line for an unknown key, a
  // value of the wrong type, or a value out of range.
  static absl::StatusOr<DaemonConfig> FromYaml(const std::string& text, const std::string& origin);
  // Reads and parses a file; NotFound if it is missing.
  static absl::StatusOr<DaemonConfig> Load(const std::string& path);
  // InvalidArgument naming the first field out of range (model may still be empty).
  absl::Status Validate() const;
};

}  // namespace edgellm::ops

#endif  // EDGELLM_OPS_CONFIG_H_
