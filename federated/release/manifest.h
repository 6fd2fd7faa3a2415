// federated/release/manifest.h — what a release says and how it is signed.
//
// A release manifest names one model version and the artifact that carries
// it: an adapter (a PEFT adapter_model.safetensors, its config inside the
// manifest) or a base model (a GGUF). Its `release` number rises by one with
// every release of the model, rollbacks included, so a device that has seen
// release N refuses any release ≤ N: a replayed or frozen feed gets nowhere,
// and so does one past `expires_at`. A rollback is a release whose version
// is older than the installed one and that says so (`rollback`), signed like
// any other.
//
// The signed form is an envelope: the manifest's JSON text as it was signed
// (never re-serialised before checking) and any number of Ed25519
// signatures of "edgellm-release-v1\n" + that text, each naming its key id.
#ifndef EDGELLM_FEDERATED_RELEASE_MANIFEST_H_
#define EDGELLM_FEDERATED_RELEASE_MANIFEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "federated/release/evaluation.h"
#include "federated/release/signing_key.h"

namespace edgellm::release {

enum class ArtifactKind { kAdapter, kBase };
std::string_view ArtifactKindName(ArtifactKind kind);

struct ReleaseManifest {
  std::string model_id;
  uint64_t release = 0;  // 1, 2, ... per model, never reused
  uint64_t version = 0;  // the model version it installs
  uint64_t parent_version = 0;
  ArtifactKind kind = ArtifactKind::kAdapter;
  std::string artifact_sha256;
  uint64_t artifact_bytes = 0;
  std::string base_model_sha256;
  std::string adapter_config;  // adapter_config.json of an adapter release; "" for a base
  bool rollback = false;       // may install over a newer version
  int64_t created_at = 0;      // Unix seconds
  int64_t expires_at = 0;
  // What the canaries judge it by before serving it; none: a smoke test only.
  std::optional<EvaluationSpec> evaluation;

  // Compact JSON with sorted keys: the text that is signed.
  std::string ToJson() const;
  // InvalidArgument naming the missing or malformed field.
  static absl::StatusOr<ReleaseManifest> FromJson(std::string_view json);
};

struct Signature {
  std::string key_id;
  std::string signature;  // 64 raw bytes
};

struct SignedRelease {
  std::string manifest_json;
  std::vector<Signature> signatures;

  std::string ToJson() const;
  // InvalidArgument for a malformed envelope; the manifest is not parsed.
  static absl::StatusOr<SignedRelease> FromJson(std::string_view json);
};

// The bytes a signature covers.
std::string SignedBytes(std::string_view manifest_json);
// Adds `key`'s signature (replacing an earlier one by the same key).
void AddSignature(SignedRelease& release, const SigningKey& key);

}  // namespace edgellm::release

#endif  // EDGELLM_FEDERATED_RELEASE_MANIFEST_H_
