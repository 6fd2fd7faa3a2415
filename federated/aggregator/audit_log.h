// federated/aggregator/audit_log.h — an append-only record of every closed
// round: who sent which update (by sha256) and how they were aggregated.
//
// One JSON object per line, each carrying the sha256 of the line before it
// ("prev"), so an edited or removed line breaks the chain from there on
// (Verify finds where). Every append is fsynced before it returns.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_AUDIT_LOG_H_
#define EDGELLM_FEDERATED_AGGREGATOR_AUDIT_LOG_H_

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace edgellm::federated {

class AuditLog {
 public:
  // Opens (or creates) the log at `path` and checks its chain.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path);

  // Appends `record` with "prev" set; durable when it returns.
  absl::Status Append(nlohmann::json record);
  // True when a record for this model and round is in the log.
  bool HasRound(const std::string& model_id, uint64_t round_id) const;

  // OK when every line's "prev" is the hash of the line before; else
  // DataLoss naming the first line that breaks the chain.
  static absl::Status Verify(const std::string& path);

 private:
  explicit AuditLog(std::string path) : path_(std::move(path)) {}

  const std::string path_;
  mutable absl::Mutex mu_;
  std::string last_hash_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, uint64_t>> rounds_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_AUDIT_LOG_H_
