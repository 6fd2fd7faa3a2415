#include "federated/aggregator/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/str_cat.h"
#include "federated/protocol/sha256.h"

namespace edgellm::federated {
namespace {

constexpr const char* kGenesis = "0000000000000000000000000000000000000000000000000000000000000000";

}  // namespace

absl::Status AuditLog::Verify(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::string prev = kGenesis;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_discarded() || !record.contains("prev") || record["prev"] != prev) {
      return absl::DataLossError(StrCat(path, ":", number, ": the audit chain is broken here"));
    }
    prev = Sha256Hex(line);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  // A crash in the middle of an append leaves a line without its newline:
  // that record was never acknowledged, so it is cut off.
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    std::ifstream in(path, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!text.empty() && text.back() != '\n') {
      const size_t keep = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
      std::filesystem::resize_file(path, keep, ec);
      if (ec) return absl::InternalError(StrCat(path, ": cannot cut a torn last line: ", ec.message()));
    }
  }
  if (absl::Status s = Verify(path); !s.ok()) return s;
  std::unique_ptr<AuditLog> log(new AuditLog(path));
  absl::MutexLock lock(&log->mu_);
  log->last_hash_ = kGenesis;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    log->last_hash_ = Sha256Hex(line);
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    if (record.contains("model") && record.contains("round")) {
      log->rounds_.emplace_back(record["model"].get<std::string>(), record["round"].get<uint64_t>());
    }
  }
  return log;
}

absl::Status AuditLog::Append(nlohmann::json record) {
  absl::MutexLock lock(&mu_);
  record["prev"] = last_hash_;
  const std::string line = record.dump();
  const std::string with_newline = line + "\n";
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return absl::InternalError(StrCat(path_, ": cannot be opened for appending"));
  const bool written = ::write(fd, with_newline.data(), with_newline.size()) == static_cast<ssize_t>(with_newline.size());
  const bool synced = written && ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) return absl::InternalError(StrCat(path_, ": append failed"));
  last_hash_ = Sha256Hex(line);
  if (record.contains("model") && record.contains("round")) {
    rounds_.emplace_back(record["model"].get<std::string>(), record["round"].get<uint64_t>());
  }
  return absl::OkStatus();
}

bool AuditLog::HasRound(const std::string& model_id, uint64_t round_id) const {
  absl::MutexLock lock(&mu_);
  return std::find(rounds_.begin(), rounds_.end(), std::make_pair(model_id, round_id)) != rounds_.end();
}

}  // namespace edgellm::federated
