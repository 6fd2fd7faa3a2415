// ops/metrics.h — plain metric instruments that components own, and the
// registry that renders them in the Prometheus text exposition format.
//
// Instruments are lock-free to update (atomics) and cheap to read; a
// component declares its families once at start-up and updates them on its
// own thread. Rendering happens in one place (Render), so no component links
// an HTTP or metrics library.
#ifndef EDGELLM_OPS_METRICS_H_
#define EDGELLM_OPS_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mutex.h"

namespace edgellm::ops {

// A monotonically increasing count. Thread-safe.
class Counter {
 public:
  void Add(double v = 1.0);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down. Thread-safe.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into fixed upper bounds ("le" buckets). Thread-safe.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative count per bound, then the total (the +Inf bucket).
  std::vector<uint64_t> CumulativeCounts() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, +Inf last
  std::atomic<double> sum_{0.0};
};

using Labels = std::map<std::string, std::string>;

// Metric families by name, each with its series by label set. Thread-safe;
// returned instruments live as long as the registry.
class MetricsRegistry {
 public:
  Counter& AddCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& AddGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& AddHistogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                          const Labels& labels = {});
  // A gauge read when rendered (memory, queue lengths owned elsewhere).
  void AddCallbackGauge(const std::string& name, const std::string& help, std::function<double()> read,
                        const Labels& labels = {});

  // Every family in the Prometheus text format, version 0.0.4.
  std::string Render() const;

 private:
  struct Series {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> read;
  };
  struct Family {
    std::string type;  // counter, gauge, histogram
    std::string help;
    std::vector<Series> series;
  };
  Series& NewSeries(const std::string& name, const std::string& type, const std::string& help, const Labels& labels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
};

// Bucket bounds for latencies, in seconds, from 1 ms to 60 s.
std::vector<double> LatencyBuckets();

}  // namespace edgellm::ops

#endif  // EDGELLM_OPS_METRICS_H_
