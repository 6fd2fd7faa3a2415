#include "daemon/ops/metrics.h"

#include <gtest/gtest.h>

namespace edgellm::ops {
namespace {

TEST(MetricsRegistry, RendersCountersAndGaugesInTheTextFormat) {
  MetricsRegistry registry;
  Counter& tokens = registry.AddCounter("edgellm_generation_tokens_total", "Generation tokens.", {{"model", "m"}});
  Gauge& running = registry.AddGauge("edgellm_num_requests_running", "Running.", {{"model", "m"}});
  tokens.Add(3);
  tokens.Add();
  running.Set(2);
  EXPECT_EQ(registry.Render(),
            "# HELP edgellm_generation_tokens_total Generation tokens.\n"
            "# TYPE edgellm_generation_tokens_total counter\n"
            "edgellm_generation_tokens_total{model=\"m\"} 4\n"
            "# HELP edgellm_num_requests_running Running.\n"
            "# TYPE edgellm_num_requests_running gauge\n"
            "edgellm_num_requests_running{model=\"m\"} 2\n");
}

TEST(MetricsRegistry, HistogramBucketsAreCumulative) {
  MetricsRegistry registry;
  Histogram& h = registry.AddHistogram("latency_seconds", "Latency.", {0.1, 1.0});
  h.Observe(0.05);
  h.Observe(0.1);  // a bound is inclusive
  h.Observe(0.5);
  h.Observe(7.0);
  EXPECT_EQ(registry.Render(),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{le=\"0.10000000000000001\"} 2\n"
            "latency_seconds_bucket{le=\"1\"} 3\n"
            "latency_seconds_bucket{le=\"+Inf\"} 4\n"
            "latency_seconds_sum 7.6500000000000004\n"
            "latency_seconds_count 4\n");
}

TEST(MetricsRegistry, SeveralSeriesShareOneFamilyAndLabelsAreEscaped) {
  MetricsRegistry registry;
  registry.AddCounter("requests_total", "Requests.", {{"code", "OK"}}).Add(5);
  registry.AddCounter("requests_total", "Requests.", {{"code", "a\"b\\c\nd"}}).Add(1);
  registry.AddCallbackGauge("memory_bytes", "Memory.", [] { return 1024.0; });
  const std::string text = registry.Render();
  EXPECT_NE(text.find("requests_total{code=\"OK\"} 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("requests_total{code=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("memory_bytes 1024\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("# TYPE requests_total"), text.rfind("# TYPE requests_total"));  // one header per family
}

}  // namespace
}  // namespace edgellm::ops
