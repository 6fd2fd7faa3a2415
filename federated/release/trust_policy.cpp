#include "federated/release/trust_policy.h"

#include <set>

#include "common/status_macros.h"
#include "common/str_cat.h"

namespace edgellm::release {

absl::StatusOr<TrustPolicy> TrustPolicy::Create(std::vector<PublicKey> keys, int threshold) {
  if (keys.empty()) return absl::InvalidArgumentError("no trusted release keys");
  if (threshold < 1 || threshold > static_cast<int>(keys.size())) {
    return absl::InvalidArgumentError(
        StrCat("release key threshold ", threshold, " is not between 1 and the ", keys.size(), " trusted keys"));
  }
  std::set<std::string> ids;
  for (const PublicKey& key : keys) {
    if (!ids.insert(key.key_id()).second) {
      return absl::InvalidArgumentError(StrCat("release key ", key.key_id(), " is trusted twice"));
    }
  }
  return TrustPolicy(std::move(keys), threshold);
}

absl::StatusOr<TrustPolicy> TrustPolicy::Load(const std::vector<std::string>& paths, int threshold) {
  std::vector<PublicKey> keys;
  for (const std::string& path : paths) {
    EDGELLM_ASSIGN_OR_RETURN(PublicKey key, PublicKey::Load(path));
    keys.push_back(std::move(key));
  }
  return Create(std::move(keys), threshold);
}

absl::StatusOr<ReleaseManifest> TrustPolicy::Verify(const SignedRelease& release, int64_t now_unix) const {
  EDGELLM_ASSIGN_OR_RETURN(ReleaseManifest manifest, VerifySignatures(release));
  if (now_unix >= manifest.expires_at) {
    return absl::FailedPreconditionError(StrCat("release ", manifest.release, " of ", manifest.model_id,
                                                " expired at ", manifest.expires_at, " (now ", now_unix,
                                                "): a stale or replayed feed"));
  }
  return manifest;
}

absl::StatusOr<ReleaseManifest> TrustPolicy::VerifySignatures(const SignedRelease& release) const {
  const std::string signed_bytes = SignedBytes(release.manifest_json);
  std::set<std::string> valid;
  for (const Signature& signature : release.signatures) {
    for (const PublicKey& key : keys_) {
      if (key.key_id() == signature.key_id && key.Verify(signed_bytes, signature.signature)) valid.insert(key.key_id());
    }
  }
  if (static_cast<int>(valid.size()) < threshold_) {
    return absl::PermissionDeniedError(StrCat("release signed by ", valid.size(), " of the ", threshold_,
                                              " trusted keys needed (", keys_.size(), " trusted)"));
  }
  return ReleaseManifest::FromJson(release.manifest_json);
}

absl::Status CheckInstallable(const ReleaseManifest& manifest, const std::string& model_id,
                              const InstalledState& installed) {
  if (manifest.model_id != model_id) {
    return absl::FailedPreconditionError(
        StrCat("release is for model ", manifest.model_id, ", this device serves ", model_id));
  }
  if (manifest.release <= installed.last_release) {
    return absl::FailedPreconditionError(StrCat("release ", manifest.release, " is not after release ",
                                                installed.last_release, ", already seen: a replay"));
  }
  if (manifest.version <= installed.version && !manifest.rollback) {
    return absl::FailedPreconditionError(StrCat("version ", manifest.version, " is not newer than the installed ",
                                                installed.version, " and the release is not a rollback"));
  }
  return absl::OkStatus();
}

}  // namespace edgellm::release
