#include "daemon/serve/serve_metrics.h"

namespace edgellm::serve {

ServeMetrics::ServeMetrics(ops::MetricsRegistry& r, const std::string& model)
    : requests_running(r.AddGauge("edgellm_num_requests_running", "Requests in the running batch.", {{"model", model}})),
      requests_waiting(r.AddGauge("edgellm_num_requests_waiting", "Requests waiting to be scheduled.", {{"model", model}})),
      kv_cache_usage(r.AddGauge("edgellm_kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
                                {{"model", model}})),
      memory_pressure(r.AddGauge("edgellm_memory_pressure",
                                 "Memory pressure: 0 none, 1 low (shedding load), 2 critical (refusing requests).",
                                 {{"model", model}})),
      prompt_tokens(r.AddCounter("edgellm_prompt_tokens_total", "Prefill tokens processed.", {{"model", model}})),
      generation_tokens(r.AddCounter("edgellm_generation_tokens_total", "Generation tokens processed.", {{"model", model}})),
      time_to_first_token(r.AddHistogram("edgellm_time_to_first_token_seconds",
                                         "Time from arrival to the first generated token.", ops::LatencyBuckets(),
                                         {{"model", model}})),
      inter_token_latency(r.AddHistogram("edgellm_inter_token_latency_seconds", "Time between generated tokens.",
                                         ops::LatencyBuckets(), {{"model", model}})),
      e2e_latency(r.AddHistogram("edgellm_e2e_request_latency_seconds", "Time from arrival to the last token.",
                                 ops::LatencyBuckets(), {{"model", model}})),
      prefix_cache_queries(r.AddCounter("edgellm_prefix_cache_queries_total",
                                        "Prompt tokens looked up in the prefix cache.", {{"model", model}})),
      prefix_cache_hits(r.AddCounter("edgellm_prefix_cache_hits_total",
                                     "Prompt tokens found in the prefix cache.", {{"model", model}})),
      draft_tokens(r.AddCounter("edgellm_spec_decode_num_draft_tokens_total",
                                "Speculative draft tokens checked by the model.", {{"model", model}})),
      accepted_tokens(r.AddCounter("edgellm_spec_decode_num_accepted_tokens_total",
                                   "Speculative draft tokens that stood.", {{"model", model}})) {
  const std::pair<engine::FinishReason, const char*> reasons[] = {
      {engine::FinishReason::kStop, "stop"}, {engine::FinishReason::kLength, "length"},
      {engine::FinishReason::kCancelled, "abort"}};
  for (const auto& [reason, name] : reasons) {
    finished_[reason] = &r.AddCounter("edgellm_request_success_total", "Requests that finished, by reason.",
                                      {{"model", model}, {"finished_reason", name}});
  }
  const absl::StatusCode codes[] = {
      absl::StatusCode::kOk,           absl::StatusCode::kCancelled,         absl::StatusCode::kInvalidArgument,
      absl::StatusCode::kNotFound,     absl::StatusCode::kDeadlineExceeded,  absl::StatusCode::kPermissionDenied,
      absl::StatusCode::kResourceExhausted, absl::StatusCode::kFailedPrecondition, absl::StatusCode::kAborted,
      absl::StatusCode::kUnimplemented, absl::StatusCode::kInternal,       absl::StatusCode::kUnavailable,
      absl::StatusCode::kUnauthenticated};
  for (absl::StatusCode code : codes) {
    std::string name = absl::StatusCodeToString(code);
    for (char& c : name) c = c == ' ' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    requests_[code] = &r.AddCounter("edgellm_requests_total", "Generate calls by final status.",
                                    {{"model", model}, {"code", name}});
  }
}

void ServeMetrics::CountFinished(engine::FinishReason reason) { finished_.at(reason)->Add(); }

void ServeMetrics::CountRequest(absl::StatusCode code) {
  auto it = requests_.find(code);
  (it != requests_.end() ? it->second : requests_.at(absl::StatusCode::kInternal))->Add();
}

uint64_t ServeMetrics::RequestsEndedWith(absl::StatusCode code) const {
  auto it = requests_.find(code);
  return it != requests_.end() ? static_cast<uint64_t>(it->second->value()) : 0;
}

uint64_t ServeMetrics::RequestsEnded() const {
  double total = 0;
  for (const auto& [code, counter] : requests_) total += counter->value();
  return static_cast<uint64_t>(total);
}

}  // namespace edgellm::serve
