#include "federated/release/manifest.h"

#include <nlohmann/json.hpp>

#include "common/str_cat.h"
#include "federated/protocol/sha256.h"

namespace edgellm::release {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kSignatureContext = "edgellm-release-v1\n";
constexpr size_t kMaxSignatures = 16;

// The field `name` of `object` as T, or InvalidArgument naming it.
template <typename T>
absl::StatusOr<T> Field(const Json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end()) return absl::InvalidArgumentError(StrCat("release manifest: no \"", name, "\""));
  try {
    return it->get<T>();
  } catch (const Json::exception&) {
    return absl::InvalidArgumentError(StrCat("release manifest: \"", name, "\" has the wrong type"));
  }
}

bool IsModelId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

}  // namespace

std::string_view ArtifactKindName(ArtifactKind kind) { return kind == ArtifactKind::kAdapter ? "adapter" : "base"; }

std::string ReleaseManifest::ToJson() const {
  Json json = {{"model_id", model_id},
               {"release", release},
               {"version", version},
               {"parent_version", parent_version},
               {"kind", ArtifactKindName(kind)},
               {"artifact_sha256", artifact_sha256},
               {"artifact_bytes", artifact_bytes},
               {"base_model_sha256", base_model_sha256},
               {"adapter_config", adapter_config},
               {"rollback", rollback},
               {"created_at", created_at},
               {"expires_at", expires_at}};
  // Absent when there is none, so that manifests without one read as they always did.
  if (evaluation) json["evaluation"] = Json::parse(evaluation->ToJson());
  return json.dump();
}

absl::StatusOr<ReleaseManifest> ReleaseManifest::FromJson(std::string_view text) {
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return absl::InvalidArgumentError("release manifest: not a JSON object");
  ReleaseManifest m;
#define EDGELLM_MANIFEST_FIELD(member, type)             \
  {                                                      \
    auto value = Field<type>(json, #member);             \
    if (!value.ok()) return value.status();              \
    m.member = *std::move(value);                        \
  }
  EDGELLM_MANIFEST_FIELD(model_id, std::string)
  EDGELLM_MANIFEST_FIELD(release, uint64_t)
  EDGELLM_MANIFEST_FIELD(version, uint64_t)
  EDGELLM_MANIFEST_FIELD(parent_version, uint64_t)
  EDGELLM_MANIFEST_FIELD(artifact_sha256, std::string)
  EDGELLM_MANIFEST_FIELD(artifact_bytes, uint64_t)
  EDGELLM_MANIFEST_FIELD(base_model_sha256, std::string)
  EDGELLM_MANIFEST_FIELD(adapter_config, std::string)
  EDGELLM_MANIFEST_FIELD(rollback, bool)
  EDGELLM_MANIFEST_FIELD(created_at, int64_t)
  EDGELLM_MANIFEST_FIELD(expires_at, int64_t)
#undef EDGELLM_MANIFEST_FIELD
  auto kind = Field<std::string>(json, "kind");
  if (!kind.ok()) return kind.status();
  if (*kind == "adapter") {
    m.kind = ArtifactKind::kAdapter;
  } else if (*kind == "base") {
    m.kind = ArtifactKind::kBase;
  } else {
    return absl::InvalidArgumentError(StrCat("release manifest: kind \"", *kind, "\" is neither adapter nor base"));
  }
  if (auto it = json.find("evaluation"); it != json.end()) {
    absl::StatusOr<EvaluationSpec> spec = EvaluationSpec::FromJson(it->dump());
    if (!spec.ok()) return absl::InvalidArgumentError(StrCat("release manifest: ", spec.status().message()));
    m.evaluation = *std::move(spec);
  }
  if (!IsModelId(m.model_id)) return absl::InvalidArgumentError("release manifest: malformed model_id");
  if (m.release == 0 || m.version == 0) {
    return absl::InvalidArgumentError("release manifest: release and version start at 1");
  }
  if (!federated::IsSha256Hex(m.artifact_sha256) || !federated::IsSha256Hex(m.base_model_sha256)) {
    return absl::InvalidArgumentError("release manifest: a sha256 that is not 64 lower-case hex digits");
  }
  if (m.kind == ArtifactKind::kAdapter && m.adapter_config.empty()) {
    return absl::InvalidArgumentError("release manifest: an adapter release without its adapter_config");
  }
  // A base model is the base model of its own release.
  if (m.kind == ArtifactKind::kBase && (m.base_model_sha256 != m.artifact_sha256 || !m.adapter_config.empty())) {
    return absl::InvalidArgumentError(
        "release manifest: a base-model release names its own file as base_model_sha256 and has no adapter_config");
  }
  if (m.expires_at <= m.created_at) {
    return absl::InvalidArgumentError("release manifest: expires_at is not after created_at");
  }
  return m;
}

std::string SignedRelease::ToJson() const {
  Json sigs = Json::array();
  for (const Signature& s : signatures) sigs.push_back({{"keyid", s.key_id}, {"sig", Base64Encode(s.signature)}});
  return Json{{"manifest", manifest_json}, {"signatures", sigs}}.dump();
}

absl::StatusOr<SignedRelease> SignedRelease::FromJson(std::string_view text) {
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("manifest") || !json["manifest"].is_string() ||
      !json.contains("signatures") || !json["signatures"].is_array()) {
    return absl::InvalidArgumentError("signed release: not an object with \"manifest\" text and \"signatures\"");
  }
  if (json["signatures"].size() > kMaxSignatures) {
    return absl::InvalidArgumentError(StrCat("signed release: more than ", kMaxSignatures, " signatures"));
  }
  SignedRelease release;
  release.manifest_json = json["manifest"].get<std::string>();
  for (const Json& entry : json["signatures"]) {
    if (!entry.is_object() || !entry.contains("keyid") || !entry["keyid"].is_string() || !entry.contains("sig") ||
        !entry["sig"].is_string()) {
      return absl::InvalidArgumentError("signed release: a signature without \"keyid\" and \"sig\" text");
    }
    absl::StatusOr<std::string> raw = Base64Decode(entry["sig"].get<std::string>());
    if (!raw.ok()) return absl::InvalidArgumentError(StrCat("signed release: signature: ", raw.status().message()));
    release.signatures.push_back({entry["keyid"].get<std::string>(), *std::move(raw)});
  }
  return release;
}

std::string SignedBytes(std::string_view manifest_json) { return StrCat(kSignatureContext, manifest_json); }

void AddSignature(SignedRelease& release, const SigningKey& key) {
  std::erase_if(release.signatures, [&](const Signature& s) { return s.key_id == key.key_id(); });
  release.signatures.push_back({key.key_id(), key.Sign(SignedBytes(release.manifest_json))});
}

}  // namespace edgellm::release
