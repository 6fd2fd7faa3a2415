// federated/aggregator/aggregator_metrics.h — the aggregator's Prometheus
// families: rounds, updates accepted and refused (by reason), bytes received,
// round duration, devices connected, current round and version, ε.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_AGGREGATOR_METRICS_H_
#define EDGELLM_FEDERATED_AGGREGATOR_AGGREGATOR_METRICS_H_

#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"
#include "daemon/ops/metrics.h"

namespace edgellm::federated {

// Thread-safe.
class AggregatorMetrics {
 public:
  explicit AggregatorMetrics(ops::MetricsRegistry& registry) : registry_(registry) {}

  void RoundEnded(const std::string& model, bool closed, double seconds);
  void Accepted(const std::string& model);
  // `reason`: a short fixed word (nan, shape, norm, size, replay, ...).
  void Refused(const std::string& model, const std::string& reason);
  // An accepted update counted with less than it claimed: `bound` is
  // weight_cap (its example count) or norm_clip (its norm).
  void Bounded(const std::string& model, const std::string& bound);
  void Received(const std::string& model, uint64_t bytes);
  ops::Gauge& Gauge(const std::string& name, const std::string& help, const std::string& model);
  ops::MetricsRegistry& registry() { return registry_; }

 private:
  ops::Counter& CounterFor(const std::string& name, const std::string& help, const ops::Labels& labels);

  ops::MetricsRegistry& registry_;
  Mutex mu_;
  std::map<std::pair<std::string, ops::Labels>, ops::Counter*> counters_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, ops::Histogram*> durations_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, ops::Gauge*> gauges_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_AGGREGATOR_METRICS_H_
