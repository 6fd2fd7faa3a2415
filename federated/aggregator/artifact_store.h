// federated/aggregator/artifact_store.h — content-addressed files: each is
// stored under its SHA-256 (dir/ab/abcdef…), written atomically, so a name
// always holds exactly the bytes that hash to it.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_ARTIFACT_STORE_H_
#define EDGELLM_FEDERATED_AGGREGATOR_ARTIFACT_STORE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace edgellm::federated {

class ArtifactStore {
 public:
  explicit ArtifactStore(std::string dir) : dir_(std::move(dir)) {}

  // Stores `bytes` (once; storing the same bytes again is a no-op) and
  // returns their sha256.
  absl::StatusOr<std::string> Put(std::string_view bytes) const;
  // Moves the file at `path` in under `sha256`, which the caller computed.
  absl::Status Adopt(const std::string& path, const std::string& sha256) const;
  // The bytes stored under `sha256`. NotFound when absent; DataLoss when
  // they no longer hash to their name.
  absl::StatusOr<std::string> Get(const std::string& sha256) const;
  std::string PathOf(const std::string& sha256) const;

 private:
  std::string dir_;
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_ARTIFACT_STORE_H_
