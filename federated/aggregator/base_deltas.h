// federated/aggregator/base_deltas.h — the deltas base-model releases ship
// as: for each released base model, its delta (release::WriteBaseDelta)
// against the base model the fleet held before it — the previous base-model
// release of the model, or its configured base_model — made once when the
// release is published and kept in the artifact store. Devices that hold
// that file download the delta; the others, or any whose rebuild fails, the
// whole file.
//
// Under state_dir/deltas: <to_sha256>.json ({"from", "sha256", "bytes"}) per
// delta made, and <model>.base naming the model's latest base-model release.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_BASE_DELTAS_H_
#define EDGELLM_FEDERATED_AGGREGATOR_BASE_DELTAS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "federated/aggregator/artifact_store.h"

namespace edgellm::federated {

struct BaseDelta {
  std::string from_sha256;  // the file it applies to
  std::string sha256;       // of the delta itself
  uint64_t bytes = 0;
};

// Thread-safe.
class BaseDeltas {
 public:
  using Log = std::function<void(const std::string&)>;
  BaseDeltas(const ArtifactStore& artifacts, std::string dir, Log log)
      : artifacts_(artifacts), dir_(std::move(dir)), log_(std::move(log)) {}

  // Makes the delta of the stored base model `to_sha256` of `model_id`
  // against the base model its fleet holds now (the model's latest base
  // release, or `configured_base`, whose sha256 the caller knows). No delta (nullopt) when it would save
  // less than a tenth of the file, or the files cannot be compared; an error
  // only when the state cannot be written.
  absl::StatusOr<std::optional<BaseDelta>> Make(const std::string& model_id, const std::string& to_sha256,
                                                const std::string& configured_base,
                                                const std::string& configured_sha256);
  // Records `to_sha256` as the model's base model from now on: it has been published.
  absl::Status Released(const std::string& model_id, const std::string& to_sha256);
  // The delta made for the base model `to_sha256`, if any.
  std::optional<BaseDelta> For(const std::string& to_sha256);
  // True when `sha256` is a delta of the base model `to_sha256`.
  bool IsDeltaOf(const std::string& to_sha256, const std::string& sha256);

 private:
  const ArtifactStore& artifacts_;
  const std::string dir_;
  const Log log_;
  Mutex mu_;
  std::map<std::string, std::optional<BaseDelta>> known_ ABSL_GUARDED_BY(mu_);  // to_sha256 → its delta, as read
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_BASE_DELTAS_H_
