// federated/aggregator/rate_budget.h — how often each device may call. The
// calls in flight per device are bounded (DeviceCalls), but a device calling
// in a loop, one call at a time, would still have the state database read
// (and for install reports written) as fast as it likes, and take that time
// from the other devices: each device gets a budget of calls, and of
// reports, over time.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_RATE_BUDGET_H_
#define EDGELLM_FEDERATED_AGGREGATOR_RATE_BUDGET_H_

#include <chrono>
#include <map>
#include <string>

#include "common/mutex.h"

namespace edgellm::federated {

// A token bucket per device: `burst` calls at once, refilled at
// `per_second`. Holds one entry per device that called, so call it only
// for devices whose certificate was checked. Thread-safe.
class RateBudget {
 public:
  using Clock = std::chrono::steady_clock;

  RateBudget(double burst, double per_second) : burst_(burst), per_second_(per_second) {}

  // True, and one call spent, when `device_id` has one left at `now`.
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

#endif  // EDGELLM_FEDERATED_AGGREGATOR_RATE_BUDGET_H_
