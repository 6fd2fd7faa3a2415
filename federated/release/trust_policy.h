// federated/release/trust_policy.h — which releases a device believes.
//
// A device trusts a set of public keys and a threshold: a release counts as
// signed when at least `threshold` distinct trusted keys signed it (k of n,
// default 1 of 1). Rotating a key is a release signed by the old and new
// keys while devices are told to trust both; revoking one is dropping it from
// the set. Signatures by unknown keys are ignored, never counted.
#ifndef EDGELLM_FEDERATED_RELEASE_TRUST_POLICY_H_
#define EDGELLM_FEDERATED_RELEASE_TRUST_POLICY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "federated/release/manifest.h"
#include "federated/release/signing_key.h"

namespace edgellm::release {

// What the device has installed and seen, against which a release is judged.
struct InstalledState {
  uint64_t version = 0;       // 0: nothing installed from a release yet
  uint64_t last_release = 0;  // the highest release number accepted
};

class TrustPolicy {
 public:
  // InvalidArgument for no keys, a threshold outside 1..keys, or a key that
  // appears twice.
  static absl::StatusOr<TrustPolicy> Create(std::vector<PublicKey> keys, int threshold);
  // Reads PEM public keys from `paths`.
  static absl::StatusOr<TrustPolicy> Load(const std::vector<std::string>& paths, int threshold);

  // The manifest of `release` when enough trusted keys signed it and it has
  // not expired at `now_unix`: PermissionDenied "signed by 0 of the 1
  // trusted keys needed", FailedPrecondition "expired at …", InvalidArgument
  // for a malformed manifest.
  absl::StatusOr<ReleaseManifest> Verify(const SignedRelease& release, int64_t now_unix) const;
  // The same without the expiry check: for a release installed earlier.
  absl::StatusOr<ReleaseManifest> VerifySignatures(const SignedRelease& release) const;

  int threshold() const { return threshold_; }
  const std::vector<PublicKey>& keys() const { return keys_; }

 private:
  TrustPolicy(std::vector<PublicKey> keys, int threshold) : keys_(std::move(keys)), threshold_(threshold) {}
  std::vector<PublicKey> keys_;
  int threshold_;
};

// OK when a verified `manifest` for `model_id` may replace `installed`:
// FailedPrecondition when it is for another model, when its release number
// is not above the last one seen (a replay), or when its version is not newer
// than the installed one and it is not a rollback.
absl::Status CheckInstallable(const ReleaseManifest& manifest, const std::string& model_id,
                              const InstalledState& installed);

}  // namespace edgellm::release

#endif  // EDGELLM_FEDERATED_RELEASE_TRUST_POLICY_H_
