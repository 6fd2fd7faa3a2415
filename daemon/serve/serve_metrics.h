// serve/serve_metrics.h — the serving metrics, named and defined as vLLM's
// (vllm:time_to_first_token_seconds, vllm:num_requests_waiting, ...) under the
// edgellm_ prefix, so existing dashboards and inference gateways can read
// them. Every series carries a `model` label.
#ifndef EDGELLM_SERVE_SERVE_METRICS_H_
#define EDGELLM_SERVE_SERVE_METRICS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "daemon/engine/generation_state.h"
#include "daemon/ops/metrics.h"

namespace edgellm::serve {

// Instruments registered in `registry`, which must outlive them. Thread-safe.
class ServeMetrics {
 public:
  ServeMetrics(ops::MetricsRegistry& registry, const std::string& model);

  ops::Gauge& requests_running;       // edgellm_num_requests_running
  ops::Gauge& requests_waiting;       // edgellm_num_requests_waiting
  ops::Gauge& kv_cache_usage;         // edgellm_kv_cache_usage_perc: KV blocks held by sequences, 0..1
  ops::Gauge& memory_pressure;        // edgellm_memory_pressure: 0 none, 1 low, 2 critical
  ops::Counter& prompt_tokens;        // edgellm_prompt_tokens_total
  ops::Counter& generation_tokens;    // edgellm_generation_tokens_total
  ops::Histogram& time_to_first_token;  // edgellm_time_to_first_token_seconds
  ops::Histogram& inter_token_latency;  // edgellm_inter_token_latency_seconds
  ops::Histogram& e2e_latency;          // edgellm_e2e_request_latency_seconds
  ops::Counter& prefix_cache_queries;   // edgellm_prefix_cache_queries_total: prompt tokens looked up
  ops::Counter& prefix_cache_hits;      // edgellm_prefix_cache_hits_total: of those, found in KV blocks
  ops::Counter& draft_tokens;           // edgellm_spec_decode_num_draft_tokens_total: speculative drafts checked
  ops::Counter& accepted_tokens;        // edgellm_spec_decode_num_accepted_tokens_total: of those, the ones that stood

  // edgellm_request_success_total{finished_reason="stop|length|abort"}
  void CountFinished(engine::FinishReason reason);
  // edgellm_requests_total{code="OK|INVALID_ARGUMENT|..."}: every Generate call by its final status.
  // Codes without a series of their own count as INTERNAL.
  void CountRequest(absl::StatusCode code);
  // Requests counted so far with `code`, and with any.
  uint64_t RequestsEndedWith(absl::StatusCode code) const;
  uint64_t RequestsEnded() const;

 private:
  std::map<engine::FinishReason, ops::Counter*> finished_;
  std::map<absl::StatusCode, ops::Counter*> requests_;
};

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_SERVE_METRICS_H_
