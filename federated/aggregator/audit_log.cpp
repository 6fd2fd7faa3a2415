#include "federated/aggregator/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "federated/protocol/sha256.h"

namespace edgellm::federated {
namespace {

constexpr const char* kGenesis = "0000000000000000000000000000000000000000000000000000000000000000";

// What the head's signature covers.
std::string HeadMessage(int64_t lines, const std::string& sha256) {
  return StrCat("edgellm audit head\n", lines, "\n", sha256);
}

// The hash of each line of the log, in order.
std::vector<std::string> LineHashes(const std::string& path) {
  std::vector<std::string> hashes;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) hashes.push_back(Sha256Hex(line));
  return hashes;
}

}  // namespace

absl::Status AuditLog::VerifyHead(const std::string& path, const release::PublicKey& key) {
  EDGELLM_RETURN_IF_ERROR(Verify(path));
  EDGELLM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path + ".head", "audit head"));
  const nlohmann::json head = nlohmann::json::parse(text, nullptr, false);
  if (!head.is_object() || !head["lines"].is_number_integer() || !head["sha256"].is_string() ||
      !head["signature"].is_string()) {
    return absl::DataLossError(StrCat(path, ".head: not an audit head"));
  }
  const int64_t lines = head["lines"].get<int64_t>();
  const std::string sha = head["sha256"].get<std::string>();
  absl::StatusOr<std::string> signature = release::Base64Decode(head["signature"].get<std::string>());
  if (!signature.ok() || !key.Verify(HeadMessage(lines, sha), *signature)) {
    return absl::DataLossError(StrCat(path, ".head: the signature does not verify with key ", key.key_id()));
  }
  const std::vector<std::string> hashes = LineHashes(path);
  const int64_t have = static_cast<int64_t>(hashes.size());
  const std::string at_head = lines == 0 ? kGenesis : lines <= have ? hashes[static_cast<size_t>(lines - 1)] : "";
  if (at_head != sha) {
    return absl::DataLossError(StrCat(path, ": line ", lines, " is not the one the signed head names: the log was ",
                                      lines > have ? "cut" : "rewritten"));
  }
  if (have > lines + 1) {
    return absl::DataLossError(StrCat(path, ": ", have - lines, " lines after the signed head (line ", lines, ")"));
  }
  return absl::OkStatus();
}

absl::Status AuditLog::SignHead() {
  const nlohmann::json head = {{"lines", lines_},
                               {"sha256", last_hash_},
                               {"key_id", head_key_->key_id()},
                               {"signature", release::Base64Encode(head_key_->Sign(HeadMessage(lines_, last_hash_)))}};
  return WriteFileAtomically(path_ + ".head", head.dump() + "\n");
}

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

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path,
                                                         std::optional<release::SigningKey> head_key) {
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
  if (head_key && std::filesystem::exists(path + ".head", ec)) {
    EDGELLM_ASSIGN_OR_RETURN(release::PublicKey public_key, release::PublicKey::FromPem(head_key->PublicPem()));
    EDGELLM_RETURN_IF_ERROR(VerifyHead(path, public_key));
  }
  std::unique_ptr<AuditLog> log(new AuditLog(path, std::move(head_key)));
  MutexLock lock(&log->mu_);
  log->last_hash_ = kGenesis;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    log->last_hash_ = Sha256Hex(line);
    ++log->lines_;
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    if (record.contains("model") && record.contains("round")) {
      log->rounds_.emplace_back(record["model"].get<std::string>(), record["round"].get<uint64_t>());
    }
  }
  if (log->head_key_) EDGELLM_RETURN_IF_ERROR(log->SignHead());
  return log;
}

absl::Status AuditLog::Append(nlohmann::json record) {
  MutexLock lock(&mu_);
  record["prev"] = last_hash_;
  const std::string line = record.dump();
  const std::string with_newline = line + "\n";
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return absl::InternalError(StrCat(path_, ": cannot be opened for appending"));
  const off_t end = ::lseek(fd, 0, SEEK_END);
  const bool written = ::write(fd, with_newline.data(), with_newline.size()) == static_cast<ssize_t>(with_newline.size());
  const bool synced = written && ::fsync(fd) == 0;
  const int error = errno;
  // A full disk writes part of the line: cut it off, or the next record
  // would be glued to it and break the chain for good.
  if (!synced && end >= 0 && ::ftruncate(fd, end) == 0) ::fsync(fd);
  ::close(fd);
  if (!synced) return absl::InternalError(StrCat(path_, ": append failed (", std::strerror(error), ")"));
  last_hash_ = Sha256Hex(line);
  ++lines_;
  if (record.contains("model") && record.contains("round")) {
    rounds_.emplace_back(record["model"].get<std::string>(), record["round"].get<uint64_t>());
  }
  return head_key_ ? SignHead() : absl::OkStatus();
}

bool AuditLog::HasRound(const std::string& model_id, uint64_t round_id) const {
  MutexLock lock(&mu_);
  return std::find(rounds_.begin(), rounds_.end(), std::make_pair(model_id, round_id)) != rounds_.end();
}

}  // namespace edgellm::federated
