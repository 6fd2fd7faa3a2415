#include "daemon/ops/memory_guard.h"

#include <charconv>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/read_file.h"

namespace edgellm::ops {
namespace {

std::optional<uint64_t> ParseNumber(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end == text.data()) return std::nullopt;
  return value;
}

// The value of `key` in a "key value" per line file (memory.stat).
std::optional<uint64_t> StatValue(std::string_view stat, std::string_view key) {
  for (absl::string_view piece : absl::StrSplit(absl::string_view(stat.data(), stat.size()), '\n')) {
    const std::string_view line(piece.data(), piece.size());
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ') {
      return ParseNumber(line.substr(key.size() + 1));
    }
  }
  return std::nullopt;
}

std::optional<std::string> ReadFile(const std::filesystem::path& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path.string());
  return text.ok() ? std::optional<std::string>(*std::move(text)) : std::nullopt;
}

// The headroom under the cgroup limit in `dir`, in the v2 or v1 file names.
std::optional<uint64_t> CgroupDirHeadroom(const std::filesystem::path& dir, bool v2) {
  std::optional<std::string> limit = ReadFile(dir / (v2 ? "memory.max" : "memory.limit_in_bytes"));
  std::optional<std::string> usage = ReadFile(dir / (v2 ? "memory.current" : "memory.usage_in_bytes"));
  std::optional<std::string> stat = ReadFile(dir / "memory.stat");
  if (!limit || !usage) return std::nullopt;
  return CgroupHeadroom(*limit, *usage, stat.value_or(""));
}

// The process's cgroup headroom, if it has a memory limit.
std::optional<uint64_t> ProcessCgroupHeadroom() {
  std::optional<std::string> cgroups = ReadFile("/proc/self/cgroup");
  if (!cgroups) return std::nullopt;
  const std::filesystem::path root = "/sys/fs/cgroup";
  for (absl::string_view line : absl::StrSplit(*cgroups, '\n')) {
    // "0::/path" (v2) or "4:memory:/path" (v1).
    std::vector<std::string> fields = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (fields.size() != 3) continue;
    const std::string relative = std::filesystem::path(fields[2]).relative_path().string();
    std::optional<uint64_t> headroom;
    if (fields[0] == "0" && fields[1].empty()) {
      headroom = CgroupDirHeadroom(root / relative, true);
      if (!headroom) headroom = CgroupDirHeadroom(root / "unified" / relative, true);
    } else if (absl::StrContains(fields[1], "memory")) {
      headroom = CgroupDirHeadroom(root / "memory" / relative, false);
      // In a container the path is often not visible and the root is its own cgroup.
      if (!headroom) headroom = CgroupDirHeadroom(root / "memory", false);
    }
    if (headroom) return headroom;
  }
  return std::nullopt;
}

}  // namespace

std::string_view MemoryPressureName(MemoryPressure pressure) {
  switch (pressure) {
    case MemoryPressure::kNone: return "none";
    case MemoryPressure::kLow: return "low";
    case MemoryPressure::kCritical: return "critical";
  }
  return "unknown";
}

std::optional<uint64_t> ParseMemAvailable(std::string_view meminfo) {
  constexpr std::string_view kKey = "MemAvailable:";
  const size_t at = meminfo.find(kKey);
  if (at == std::string_view::npos) return std::nullopt;
  std::optional<uint64_t> kib = ParseNumber(meminfo.substr(at + kKey.size()));
  if (!kib) return std::nullopt;
  return *kib * 1024;
}

std::optional<uint64_t> CgroupHeadroom(std::string_view limit, std::string_view usage, std::string_view stat) {
  std::optional<uint64_t> max = ParseNumber(limit);
  std::optional<uint64_t> used = ParseNumber(usage);
  // "max" (v2) or a page-rounded 2^63 (v1) mean no limit.
  if (!max || !used || *max >= (1ull << 60)) return std::nullopt;
  uint64_t working_set = *used;
  std::optional<uint64_t> inactive_file = StatValue(stat, "inactive_file");
  if (!inactive_file) inactive_file = StatValue(stat, "total_inactive_file");
  if (inactive_file) working_set -= std::min(working_set, *inactive_file);
  return *max > working_set ? *max - working_set : 0;
}

absl::StatusOr<uint64_t> SystemMemory::AvailableBytes() {
  std::optional<std::string> meminfo = ReadFile("/proc/meminfo");
  std::optional<uint64_t> available = meminfo ? ParseMemAvailable(*meminfo) : std::nullopt;
  std::optional<uint64_t> headroom = ProcessCgroupHeadroom();
  if (available && headroom) return std::min(*available, *headroom);
  if (available) return *available;
  if (headroom) return *headroom;
  return absl::UnavailableError("cannot read MemAvailable from /proc/meminfo or a cgroup memory limit");
}

MemoryPressure MemoryGuard::Classify(uint64_t available, const MemoryGuardConfig& config) {
  if (available < config.critical_bytes) return MemoryPressure::kCritical;
  if (available < config.low_bytes) return MemoryPressure::kLow;
  return MemoryPressure::kNone;
}

MemoryGuard::MemoryGuard(std::unique_ptr<MemorySource> source, MemoryGuardConfig config, OnChange on_change)
    : source_(std::move(source)), config_(config), on_change_(std::move(on_change)) {
  if (config_.low_bytes == 0 && config_.critical_bytes == 0) return;
  Sample(/*first=*/true);
  thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(absl::FromChrono(config_.interval))) Sample(/*first=*/false);
  });
}

MemoryGuard::~MemoryGuard() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void MemoryGuard::Sample(bool first) {
  absl::StatusOr<uint64_t> available = source_->AvailableBytes();
  if (!available.ok()) return;  // keep the last reading
  available_ = *available;
  const MemoryPressure pressure = Classify(*available, config_);
  if (pressure_.exchange(pressure) != pressure || first) on_change_(pressure, *available);
}

}  // namespace edgellm::ops
