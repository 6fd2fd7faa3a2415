#include "daemon/ops/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/str_cat.h"

namespace edgellm::ops {
namespace {

void AtomicAdd(std::atomic<double>& target, double v) {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + v, std::memory_order_relaxed)) {
  }
}

// Label values escape backslash, double quote and newline.
std::string Escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string FormatLabels(const Labels& labels, const std::string& extra_key = "", const std::string& extra_value = "") {
  std::vector<std::string> parts;
  for (const auto& [k, v] : labels) parts.push_back(edgellm::StrCat(k, "=\"", Escape(v), "\""));
  if (!extra_key.empty()) parts.push_back(edgellm::StrCat(extra_key, "=\"", extra_value, "\""));
  if (parts.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "," : "") + parts[i];
  return out + "}";
}

std::string FormatValue(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.17g", v);
  return buffer;
}

}  // namespace

void Counter::Add(double v) { AtomicAdd(value_, v); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  std::sort(bounds_.begin(), bounds_.end());
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  const size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, v);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

MetricsRegistry::Series& MetricsRegistry::NewSeries(const std::string& name, const std::string& type,
                                                    const std::string& help, const Labels& labels) {
  Family& family = families_[name];
  family.type = type;
  family.help = help;
  family.series.push_back(Series{labels, nullptr, nullptr, nullptr, nullptr});
  return family.series.back();
}

Counter& MetricsRegistry::AddCounter(const std::string& name, const std::string& help, const Labels& labels) {
  MutexLock lock(&mu_);
  Series& s = NewSeries(name, "counter", help, labels);
  s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& MetricsRegistry::AddGauge(const std::string& name, const std::string& help, const Labels& labels) {
  MutexLock lock(&mu_);
  Series& s = NewSeries(name, "gauge", help, labels);
  s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                         std::vector<double> bounds, const Labels& labels) {
  MutexLock lock(&mu_);
  Series& s = NewSeries(name, "histogram", help, labels);
  s.histogram = std::make_unique<Histogram>(std::move(bounds));
  return *s.histogram;
}

void MetricsRegistry::AddCallbackGauge(const std::string& name, const std::string& help,
                                       std::function<double()> read, const Labels& labels) {
  MutexLock lock(&mu_);
  NewSeries(name, "gauge", help, labels).read = std::move(read);
}

std::string MetricsRegistry::Render() const {
  MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    absl::StrAppend(&out, "# HELP ", name, " ", family.help, "\n# TYPE ", name, " ", family.type, "\n");
    for (const Series& s : family.series) {
      if (s.histogram) {
        const std::vector<uint64_t> counts = s.histogram->CumulativeCounts();
        const std::vector<double>& bounds = s.histogram->bounds();
        for (size_t i = 0; i <= bounds.size(); ++i) {
          const std::string le = i < bounds.size() ? FormatValue(bounds[i]) : "+Inf";
          absl::StrAppend(&out, name, "_bucket", FormatLabels(s.labels, "le", le), " ", counts[i], "\n");
        }
        absl::StrAppend(&out, name, "_sum", FormatLabels(s.labels), " ", FormatValue(s.histogram->sum()), "\n");
        absl::StrAppend(&out, name, "_count", FormatLabels(s.labels), " ", counts.back(), "\n");
        continue;
      }
      const double value = s.counter ? s.counter->value() : s.gauge ? s.gauge->value() : s.read();
      absl::StrAppend(&out, name, FormatLabels(s.labels), " ", FormatValue(value), "\n");
    }
  }
  return out;
}

std::vector<double> LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0};
}

}  // namespace edgellm::ops
