// federated/release/live_figures.h — how a canary's serving goes after the
// swap, against how it went before: the soak's judge beside the evaluation.
//
// A device counts every request its front ends end (by final status) and
// the time to first token of each generation, from its own metrics. At a
// swap it takes the window since the previous swap (or its start) as the
// baseline; while the new version is on probation it reports the window
// since the swap beside that baseline. The aggregator judges the two with
// thresholds of its own and halts the rollout when the new version errs,
// refuses or answers slowly beyond them.
#ifndef EDGELLM_FEDERATED_RELEASE_LIVE_FIGURES_H_
#define EDGELLM_FEDERATED_RELEASE_LIVE_FIGURES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace edgellm::release {

// A device's serving counts since it started.
struct ServingTally {
  uint64_t requests = 0;  // requests ended, by any front end and with any status
  uint64_t errors = 0;    // ended by a fault of the daemon's: INTERNAL, UNKNOWN, DATA_LOSS
  uint64_t refusals = 0;  // refused for load: RESOURCE_EXHAUSTED, UNAVAILABLE
  // The time-to-first-token histogram: upper bounds, and the cumulative
  // count at each of them followed by the total (as Prometheus keeps it).
  std::vector<double> ttft_bounds;
  std::vector<uint64_t> ttft_cumulative;
};

// One window of serving.
struct LiveFigures {
  int64_t requests = 0;
  int64_t errors = 0;
  int64_t refusals = 0;
  int64_t ttft_samples = 0;  // generations that produced a first token
  double ttft_p99_s = 0.0;   // 0 without samples
  double seconds = 0.0;      // the window's length

  double error_rate() const { return requests > 0 ? static_cast<double>(errors) / static_cast<double>(requests) : 0.0; }
  double refusal_rate() const {
    return requests > 0 ? static_cast<double>(refusals) / static_cast<double>(requests) : 0.0;
  }
};

// The window from `from` to `to` (the same histogram's), `seconds` long. The
// p99 is interpolated within its bucket as Prometheus's histogram_quantile
// does; in the +Inf bucket it is the highest finite bound.
LiveFigures Between(const ServingTally& from, const ServingTally& to, double seconds);

// What a canary reports while on probation.
struct LiveReport {
  LiveFigures live;      // since the swap
  LiveFigures baseline;  // before it: since the previous swap or the daemon's start

  std::string ToJson() const;
  // InvalidArgument for malformed JSON, negative counts or non-finite times.
  static absl::StatusOr<LiveReport> FromJson(std::string_view json);
};

struct LiveThresholds {
  // Windows with fewer requests (or first tokens, for the p99) are not judged.
  int32_t min_requests = 20;
  // The new version's share of errors may exceed the baseline's by this
  // much (0.02: two percentage points); refusals likewise.
  double max_error_rate_increase = 0.02;
  double max_refusal_rate_increase = 0.10;
  // Its p99 time to first token may be at most this times the baseline's; 0: not judged.
  double max_ttft_p99_ratio = 2.0;
};

// OK (also for a window too small to judge), or FailedPrecondition saying
// which figure went past which threshold; a baseline too small to judge
// counts as no errors and no refusals.
absl::Status JudgeLive(const LiveThresholds& thresholds, const LiveReport& report);

// "24 requests: errors 0.0% vs 0.0%, refusals 87.5% vs 0.0%, TTFT p99 41 ms vs 12 ms (before the swap: 12 requests)".
std::string DescribeLive(const LiveReport& report);

}  // namespace edgellm::release

#endif  // EDGELLM_FEDERATED_RELEASE_LIVE_FIGURES_H_
