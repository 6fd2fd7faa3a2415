// federated/aggregator/audit_log.h — an append-only record of every closed
// round (who sent which update, by sha256, and how they were aggregated),
// every release published, every rollout control and install report, each
// with who did it.
//
// One JSON object per line, each carrying the sha256 of the line before it
// ("prev"), so an edited or removed line breaks the chain from there on
// (Verify finds where). Every append is fsynced before it returns. A chain
// whose tail was rewritten whole (every hash recomputed) still verifies; with
// a head key, the head (line count and last hash) is signed after every
// append into PATH.head, and VerifyHead finds such a rewrite — as long as the
// key is out of reach of whoever rewrote the log.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_AUDIT_LOG_H_
#define EDGELLM_FEDERATED_AGGREGATOR_AUDIT_LOG_H_

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "federated/release/signing_key.h"

namespace edgellm::federated {

class AuditLog {
 public:
  // Opens (or creates) the log at `path` and checks its chain; with
  // `head_key`, also its signed head (DataLoss when it does not match), which
  // it signs again.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path,
                                                        std::optional<release::SigningKey> head_key = std::nullopt);

  // Appends `record` with "prev" set; durable when it returns.
  absl::Status Append(nlohmann::json record);
  // True when a record for this model and round is in the log.
  bool HasRound(const std::string& model_id, uint64_t round_id) const;

  // OK when every line's "prev" is the hash of the line before; else
  // DataLoss naming the first line that breaks the chain.
  static absl::Status Verify(const std::string& path);
  // Verify, then the head in PATH.head: signed by `key`, naming a line of the
  // log with its hash, with at most one line after it (an append whose head
  // was not yet signed when it stopped). DataLoss saying what does not match.
  static absl::Status VerifyHead(const std::string& path, const release::PublicKey& key);

 private:
  AuditLog(std::string path, std::optional<release::SigningKey> head_key)
      : path_(std::move(path)), head_key_(std::move(head_key)) {}
  absl::Status SignHead() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const std::optional<release::SigningKey> head_key_;
  mutable Mutex mu_;
  std::string last_hash_ ABSL_GUARDED_BY(mu_);
  int64_t lines_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::pair<std::string, uint64_t>> rounds_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_AUDIT_LOG_H_
