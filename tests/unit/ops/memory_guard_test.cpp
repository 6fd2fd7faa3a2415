#include "daemon/ops/memory_guard.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "common/mutex.h"

namespace edgellm::ops {
namespace {

TEST(MemoryGuard, ParsesMemAvailable) {
  const std::string meminfo =
      "MemTotal:       24576000 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\nBuffers: 1 kB\n";
  EXPECT_EQ(ParseMemAvailable(meminfo), 20000000ull * 1024);
  EXPECT_EQ(ParseMemAvailable("MemTotal: 5 kB\n"), std::nullopt);
  EXPECT_EQ(ParseMemAvailable("MemAvailable: lots\n"), std::nullopt);
}

TEST(MemoryGuard, ReadsThisMachinesMemory) {
  absl::StatusOr<uint64_t> available = SystemMemory().AvailableBytes();
  ASSERT_TRUE(available.ok()) << available.status();
  EXPECT_GT(*available, 0u);
}

TEST(MemoryGuard, CgroupHeadroomDiscountsReclaimableFileCache) {
  // v2: limit 1000, 900 used of which 300 inactive file cache.
  EXPECT_EQ(CgroupHeadroom("1000\n", "900\n", "anon 500\ninactive_file 300\nactive_file 100\n"), 400u);
  // v1 names the field total_inactive_file.
  EXPECT_EQ(CgroupHeadroom("1000\n", "900\n", "cache 400\ntotal_inactive_file 300\n"), 400u);
  EXPECT_EQ(CgroupHeadroom("1000\n", "1200\n", ""), 0u);
  EXPECT_EQ(CgroupHeadroom("max\n", "900\n", ""), std::nullopt);
  EXPECT_EQ(CgroupHeadroom("9223372036854771712\n", "900\n", ""), std::nullopt);
}

TEST(MemoryGuard, ClassifiesByTheThresholds) {
  const MemoryGuardConfig config{.low_bytes = 100, .critical_bytes = 10};
  EXPECT_EQ(MemoryGuard::Classify(500, config), MemoryPressure::kNone);
  EXPECT_EQ(MemoryGuard::Classify(99, config), MemoryPressure::kLow);
  EXPECT_EQ(MemoryGuard::Classify(9, config), MemoryPressure::kCritical);
}

// Reports the values it is given, one per sample, then repeats the last.
class ScriptedMemory final : public MemorySource {
 public:
  explicit ScriptedMemory(std::vector<uint64_t> values) : values_(std::move(values)) {}
  absl::StatusOr<uint64_t> AvailableBytes() override {
    const size_t i = std::min(next_++, values_.size() - 1);
    return values_[i];
  }

 private:
  std::vector<uint64_t> values_;
  size_t next_ = 0;
};

TEST(MemoryGuard, ReportsTheFirstSampleAndEveryChange) {
  Mutex mu;
  std::vector<MemoryPressure> seen;
  {
    MemoryGuard guard(std::make_unique<ScriptedMemory>(std::vector<uint64_t>{500, 500, 50, 50, 5, 500}),
                      {.low_bytes = 100, .critical_bytes = 10, .interval = std::chrono::milliseconds(1)},
                      [&](MemoryPressure pressure, uint64_t) {
                        MutexLock lock(&mu);
                        seen.push_back(pressure);
                      });
    MutexLock lock(&mu);
    mu.Await(absl::Condition(+[](std::vector<MemoryPressure>* s) { return s->size() >= 4; }, &seen));
    EXPECT_EQ(guard.available_bytes(), 500u);
  }
  EXPECT_EQ(seen, (std::vector<MemoryPressure>{MemoryPressure::kNone, MemoryPressure::kLow,
                                               MemoryPressure::kCritical, MemoryPressure::kNone}));
}

}  // namespace
}  // namespace edgellm::ops
