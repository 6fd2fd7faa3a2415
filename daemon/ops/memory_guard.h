// ops/memory_guard.h — watches the memory the daemon may still use and says
// when to shed load, before the kernel's OOM killer decides instead.
//
// Available memory is the smaller of the machine's MemAvailable and the
// headroom under the process's cgroup limit (v2 memory.max or v1
// memory.limit_in_bytes, minus the working set: usage less inactive file
// cache, which the kernel reclaims first). Below one threshold the pressure
// is low (serve with fewer slots and shorter contexts, drop cached KV), below
// a second it is critical (refuse new requests).
#ifndef EDGELLM_OPS_MEMORY_GUARD_H_
#define EDGELLM_OPS_MEMORY_GUARD_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"
#include "common/mutex.h"

namespace edgellm::ops {

enum class MemoryPressure { kNone = 0, kLow = 1, kCritical = 2 };
std::string_view MemoryPressureName(MemoryPressure pressure);

// Where available memory comes from; tests substitute their own.
class MemorySource {
 public:
  virtual ~MemorySource() = default;
  // Bytes the process may still allocate; an error if nothing can be read.
  virtual absl::StatusOr<uint64_t> AvailableBytes() = 0;
};

// The running system: /proc/meminfo and the process's memory cgroup.
class SystemMemory final : public MemorySource {
 public:
  absl::StatusOr<uint64_t> AvailableBytes() override;
};

// Parsers for the files SystemMemory reads, exposed for tests.
// MemAvailable of /proc/meminfo, in bytes.
std::optional<uint64_t> ParseMemAvailable(std::string_view meminfo);
// Headroom under a cgroup limit: limit - (usage - inactive file cache);
// nullopt when the limit is "max" or absurdly large (no limit).
std::optional<uint64_t> CgroupHeadroom(std::string_view limit, std::string_view usage, std::string_view stat);

struct MemoryGuardConfig {
  uint64_t low_bytes = 256ull << 20;       // below this: low pressure; 0 turns the guard off
  uint64_t critical_bytes = 64ull << 20;  // below this: critical
  std::chrono::milliseconds interval{1000};
};

// Samples the source every interval on its own thread; thread-safe.
class MemoryGuard {
 public:
  using OnChange = std::function<void(MemoryPressure pressure, uint64_t available_bytes)>;
  // `on_change` runs on the guard's thread whenever the pressure changes, and
  // once at the first sample.
  MemoryGuard(std::unique_ptr<MemorySource> source, MemoryGuardConfig config, OnChange on_change);
  ~MemoryGuard();  // stops the thread
  MemoryGuard(const MemoryGuard&) = delete;
  MemoryGuard& operator=(const MemoryGuard&) = delete;

  // The pressure for `available` bytes under `config`.
  static MemoryPressure Classify(uint64_t available, const MemoryGuardConfig& config);
  MemoryPressure pressure() const { return pressure_.load(); }
  uint64_t available_bytes() const { return available_.load(); }

 private:
  void Sample(bool first);

  std::unique_ptr<MemorySource> source_;
  const MemoryGuardConfig config_;
  const OnChange on_change_;
  std::atomic<MemoryPressure> pressure_{MemoryPressure::kNone};
  std::atomic<uint64_t> available_{0};
  Notification stop_;
  std::thread thread_;
};

}  // namespace edgellm::ops

#endif  // EDGELLM_OPS_MEMORY_GUARD_H_
