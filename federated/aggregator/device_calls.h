// federated/aggregator/device_calls.h — how many calls each device has in
// flight. Every call of the synchronous server holds a thread while it runs,
// so one device (or a thief with its certificate) opening thousands of
// streams it never reads could take them all: past `limit` calls of one
// device, the next is refused at once.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_DEVICE_CALLS_H_
#define EDGELLM_FEDERATED_AGGREGATOR_DEVICE_CALLS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"

namespace edgellm::federated {

class DeviceCalls {
 public:
  explicit DeviceCalls(int32_t limit) : limit_(limit) {}

  // A place for one call, given back when destroyed; empty (false) when the
  // device already has `limit` calls in flight.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept : calls_(other.calls_), device_(std::move(other.device_)) { other.calls_ = nullptr; }
    Ticket& operator=(Ticket&& other) noexcept {
      std::swap(calls_, other.calls_);
      std::swap(device_, other.device_);
      return *this;
    }
    ~Ticket() {
      if (calls_ != nullptr) calls_->Release(device_);
    }
    explicit operator bool() const { return calls_ != nullptr; }

   private:
    friend class DeviceCalls;
    Ticket(DeviceCalls* calls, std::string device) : calls_(calls), device_(std::move(device)) {}
    DeviceCalls* calls_ = nullptr;
    std::string device_;
  };

  Ticket Admit(const std::string& device_id) {
    MutexLock lock(&mu_);
    int32_t& held = in_flight_[device_id];
    if (held >= limit_) return {};
    ++held;
    return Ticket(this, device_id);
  }

  int32_t limit() const { return limit_; }

 private:
  void Release(const std::string& device_id) {
    MutexLock lock(&mu_);
    auto it = in_flight_.find(device_id);
    if (it != in_flight_.end() && --it->second <= 0) in_flight_.erase(it);
  }

  const int32_t limit_;
  Mutex mu_;
  std::map<std::string, int32_t> in_flight_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_DEVICE_CALLS_H_
