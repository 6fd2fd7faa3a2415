#include "federated/aggregator/aggregator_metrics.h"

namespace edgellm::federated {

ops::Counter& AggregatorMetrics::CounterFor(const std::string& name, const std::string& help,
                                            const ops::Labels& labels) {
  MutexLock lock(&mu_);
  ops::Counter*& counter = counters_[{name, labels}];
  if (counter == nullptr) counter = &registry_.AddCounter(name, help, labels);
  return *counter;
}

void AggregatorMetrics::RoundEnded(const std::string& model, bool closed, double seconds) {
  CounterFor("edgellm_aggregator_rounds_total", "Rounds ended, by outcome (closed: a new version; failed: no quorum).",
             {{"model", model}, {"outcome", closed ? "closed" : "failed"}})
      .Add();
  MutexLock lock(&mu_);
  ops::Histogram*& histogram = durations_[model];
  if (histogram == nullptr) {
    histogram = &registry_.AddHistogram("edgellm_aggregator_round_duration_seconds",
                                        "From a round's opening to its end.",
                                        {1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}, {{"model", model}});
  }
  histogram->Observe(seconds);
}

void AggregatorMetrics::Accepted(const std::string& model) {
  CounterFor("edgellm_aggregator_updates_accepted_total", "Updates validated and counted in their round.",
             {{"model", model}})
      .Add();
}

void AggregatorMetrics::Refused(const std::string& model, const std::string& reason) {
  CounterFor("edgellm_aggregator_updates_refused_total", "Updates refused, by reason.",
             {{"model", model}, {"reason", reason}})
      .Add();
}

void AggregatorMetrics::Bounded(const std::string& model, const std::string& bound) {
  CounterFor("edgellm_aggregator_updates_bounded_total",
             "Accepted updates counted with less weight or norm than they claimed, by bound.",
             {{"bound", bound}, {"model", model}})
      .Add();
}

void AggregatorMetrics::Received(const std::string& model, uint64_t bytes) {
  CounterFor("edgellm_aggregator_received_bytes_total", "Update bytes received from devices.", {{"model", model}})
      .Add(static_cast<double>(bytes));
}

ops::Gauge& AggregatorMetrics::Gauge(const std::string& name, const std::string& help, const std::string& model) {
  MutexLock lock(&mu_);
  ops::Gauge*& gauge = gauges_[{name, model}];
  if (gauge == nullptr) gauge = &registry_.AddGauge(name, help, {{"model", model}});
  return *gauge;
}

}  // namespace edgellm::federated
