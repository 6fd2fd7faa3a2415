// federated/aggregator/report_budget.h — how often each device may report
// on a rollout. Every install report is a write to the state database (and
// one that fails its judgement a line in the audit log): a device that
// reports in a loop must not wear out either, nor take the writes other
// devices wait for.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_REPORT_BUDGET_H_
#define EDGELLM_FEDERATED_AGGREGATOR_REPORT_BUDGET_H_

#include <chrono>
#include <map>
#include <string>

#include "common/mutex.h"

namespace edgellm::federated {

// A token bucket per device: `burst` reports at once, refilled at
// `per_second`. Holds one entry per device that reported, so call it only
// for devices known to be enrolled. Thread-safe.
class ReportBudget {
 public:
  using Clock = std::chrono::steady_clock;

  ReportBudget(double burst, double per_second) : burst_(burst), per_second_(per_second) {}

  // True, and one report spent, when `device_id` has one left at `now`.
  bool Take(const std::string& device_id, Clock::time_point now = Clock::now()) {
    MutexLock lock(&mu_);
    auto [it, fresh] = buckets_.try_emplace(device_id, Bucket{burst_, now});
    Bucket& bucket = it->second;
    if (!fresh && now > bucket.updated) {
      const double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
      bucket.tokens = std::min(burst_, bucket.tokens + elapsed * per_second_);
      bucket.updated = now;
    }
    if (bucket.tokens < 1.0) return false;
    bucket.tokens -= 1.0;
    return true;
  }

  double per_second() const { return per_second_; }

 private:
  struct Bucket {
    double tokens;
    Clock::time_point updated;
  };
  const double burst_;
  const double per_second_;
  Mutex mu_;
  std::map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_REPORT_BUDGET_H_
