#include "daemon/ota/release_store.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "federated/protocol/sha256.h"

namespace edgellm::ota {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr const char* kArtifactFile = "adapter_model.safetensors";
constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kEnvelopeFile = "release.json";

Json ToJson(const InstalledVersion& v) {
  return {{"release", v.release}, {"version", v.version}, {"dir", v.dir}, {"base", v.base},
          {"base_sha256", v.base_sha256}};
}

// Only names this store made: never a path out of versions/.
bool IsVersionDirName(const std::string& name) {
  return name.find('/') == std::string::npos && !name.starts_with(".");
}

InstalledVersion VersionFromJson(const Json& j) {
  InstalledVersion v;
  if (!j.is_object()) return v;
  const auto text = [&j](const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const auto number = [&j](const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : uint64_t{0};
  };
  v.release = number("release");
  v.version = number("version");
  v.dir = text("dir");
  v.base = text("base");
  v.base_sha256 = text("base_sha256");
  if (!IsVersionDirName(v.dir) || !IsVersionDirName(v.base) ||
      (!v.base_sha256.empty() && !federated::IsSha256Hex(v.base_sha256))) {
    v = {};
  }
  return v;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ReleaseStore>> ReleaseStore::Open(const std::string& dir) {
  std::error_code ec;
  for (const char* sub : {"staging", "versions"}) {
    fs::create_directories(fs::path(dir) / sub, ec);
    if (ec) return absl::InternalError(StrCat("OTA directory ", dir, ": ", ec.message()));
  }
  // A hidden directory under versions/ is an install cut short.
  for (const auto& entry : fs::directory_iterator(fs::path(dir) / "versions", ec)) {
    if (entry.path().filename().string().starts_with(".")) fs::remove_all(entry.path(), ec);
  }
  std::unique_ptr<ReleaseStore> store(new ReleaseStore(dir));
  const fs::path state_path = fs::path(dir) / "state.json";
  if (fs::exists(state_path)) {
    EDGELLM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(state_path.string(), "OTA state"));
    Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return absl::DataLossError(StrCat(state_path.string(), ": not a JSON object"));
    OtaState& s = store->state_;
    s.current = VersionFromJson(j.value("current", Json()));
    s.last_good = VersionFromJson(j.value("last_good", Json()));
    s.last_release = j.value("last_release", uint64_t{0});
    s.probation_left_ms = j.value("probation_left_ms", int64_t{0});
    // A state from before probation was counted in serving time: what its
    // deadline leaves.
    if (!j.contains("probation_left_ms") && j.value("probation_until", int64_t{0}) > 0) {
      const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count();
      s.probation_left_ms = std::max<int64_t>(0, j.value("probation_until", int64_t{0}) - now) * 1000;
    }
    s.time_floor = j.value("time_floor", int64_t{0});
    s.clean_stop = j.value("clean_stop", true);
    const Json smoke = j.value("smoke", Json());
    if (smoke.is_object()) {
      s.smoke = {VersionFromJson(smoke.value("version", Json())), smoke.value("artifact_sha256", ""),
                 smoke.value("attempts", 0)};
      // It names a staging file: a sha256 in hex or nothing.
      if (!federated::IsSha256Hex(s.smoke.artifact_sha256)) s.smoke = {};
    }
    const Json report = j.value("report", Json());
    if (report.is_object()) {
      s.report = {report.value("release", uint64_t{0}), report.value("outcome", 0), report.value("detail", ""),
                  report.value("evaluation", "")};
    }
  }
  return store;
}

absl::Status ReleaseStore::Save(const OtaState& state) {
  Json j = {{"current", ToJson(state.current)},
            {"last_good", ToJson(state.last_good)},
            {"last_release", state.last_release},
            {"probation_left_ms", state.probation_left_ms},
            {"time_floor", state.time_floor},
            {"clean_stop", state.clean_stop},
            {"smoke", {{"version", ToJson(state.smoke.version)},
                       {"artifact_sha256", state.smoke.artifact_sha256},
                       {"attempts", state.smoke.attempts}}},
            {"report", {{"release", state.report.release},
                        {"outcome", state.report.outcome},
                        {"detail", state.report.detail},
                        {"evaluation", state.report.evaluation}}}};
  EDGELLM_RETURN_IF_ERROR(WriteFileAtomically((fs::path(dir_) / "state.json").string(), j.dump(2) + "\n"));
  state_ = state;
  return absl::OkStatus();
}

std::string ReleaseStore::PartPath(const std::string& sha256) const {
  return (fs::path(dir_) / "staging" / (sha256 + ".part")).string();
}

absl::StatusOr<InstalledVersion> ReleaseStore::Install(const release::SignedRelease& signed_release,
                                                       const release::ReleaseManifest& manifest,
                                                       const std::string& artifact, const InstalledVersion& base) {
  const bool is_base = manifest.kind == release::ArtifactKind::kBase;
  InstalledVersion installed{manifest.release, manifest.version, StrCat("r", manifest.release, "-v", manifest.version),
                             base.base, base.base_sha256};
  if (is_base) {
    installed.base = installed.dir;
    installed.base_sha256 = manifest.artifact_sha256;
  }
  const char* artifact_file = is_base ? kBaseModelFile : kArtifactFile;
  const fs::path versions = fs::path(dir_) / "versions";
  const fs::path temporary = versions / ("." + installed.dir);
  const fs::path final_dir = versions / installed.dir;
  std::error_code ec;
  fs::remove_all(temporary, ec);
  fs::create_directories(temporary, ec);
  if (ec) return absl::InternalError(StrCat("cannot create ", temporary.string(), ": ", ec.message()));
  fs::rename(artifact, temporary / artifact_file, ec);
  if (ec) return absl::InternalError(StrCat("cannot move ", artifact, " into ", temporary.string(), ": ", ec.message()));
  EDGELLM_RETURN_IF_ERROR(SyncPath((temporary / artifact_file).string()));
  if (!is_base) {
    EDGELLM_RETURN_IF_ERROR(WriteFileAtomically((temporary / kConfigFile).string(), manifest.adapter_config));
  }
  EDGELLM_RETURN_IF_ERROR(WriteFileAtomically((temporary / kEnvelopeFile).string(), signed_release.ToJson()));
  if (manifest.evaluation && !manifest.evaluation->examples_jsonl.empty()) {
    EDGELLM_RETURN_IF_ERROR(
        WriteFileAtomically((temporary / kEvaluationExamplesFile).string(), manifest.evaluation->examples_jsonl));
  }
  fs::remove_all(final_dir, ec);
  fs::rename(temporary, final_dir, ec);
  if (ec) return absl::InternalError(StrCat("cannot rename ", temporary.string(), ": ", ec.message()));
  EDGELLM_RETURN_IF_ERROR(SyncPath(versions.string()));
  return installed;
}

absl::Status ReleaseStore::ReturnToStaging(const InstalledVersion& version, const std::string& sha256) {
  const fs::path dir = PathOf(version);
  std::error_code ec;
  fs::rename(dir / (version.is_base() ? kBaseModelFile : kArtifactFile), PartPath(sha256), ec);
  if (ec) return absl::InternalError(StrCat("cannot move the artifact of ", dir.string(), " back: ", ec.message()));
  fs::remove_all(dir, ec);
  return absl::OkStatus();
}

absl::Status ReleaseStore::Verify(const InstalledVersion& version, const release::TrustPolicy& policy) const {
  const fs::path dir = PathOf(version);
  EDGELLM_ASSIGN_OR_RETURN(std::string text, ReadFileToString((dir / kEnvelopeFile).string(), "release envelope"));
  EDGELLM_ASSIGN_OR_RETURN(release::SignedRelease envelope, release::SignedRelease::FromJson(text));
  EDGELLM_ASSIGN_OR_RETURN(release::ReleaseManifest manifest, policy.VerifySignatures(envelope));
  if (manifest.release != version.release || manifest.version != version.version) {
    return absl::DataLossError(StrCat(dir.string(), ": its envelope is for release ", manifest.release));
  }
  if ((manifest.kind == release::ArtifactKind::kBase) != version.is_base()) {
    return absl::DataLossError(StrCat(dir.string(), ": its envelope is of another kind"));
  }
  const fs::path artifact = dir / (version.is_base() ? kBaseModelFile : kArtifactFile);
  EDGELLM_ASSIGN_OR_RETURN(std::string sha, federated::Sha256OfFile(artifact.string()));
  if (sha != manifest.artifact_sha256) {
    return absl::DataLossError(StrCat(dir.string(), ": the artifact no longer matches its sha256"));
  }
  if (version.is_base()) return absl::OkStatus();
  if (!version.base.empty()) {
    // An adapter is only as good as the base model under it.
    InstalledVersion base = version;
    base.dir = version.base;
    EDGELLM_ASSIGN_OR_RETURN(std::string envelope_text,
                             ReadFileToString((PathOf(base) + "/" + kEnvelopeFile), "base release envelope"));
    EDGELLM_ASSIGN_OR_RETURN(release::SignedRelease base_envelope, release::SignedRelease::FromJson(envelope_text));
    EDGELLM_ASSIGN_OR_RETURN(release::ReleaseManifest base_manifest, policy.VerifySignatures(base_envelope));
    EDGELLM_ASSIGN_OR_RETURN(std::string base_sha, federated::Sha256OfFile(BaseFileOf(version)));
    if (base_manifest.kind != release::ArtifactKind::kBase || base_sha != base_manifest.artifact_sha256 ||
        base_sha != version.base_sha256) {
      return absl::DataLossError(StrCat(dir.string(), ": its base model in ", version.base, " fails its check"));
    }
  }
  return absl::OkStatus();
}

std::string ReleaseStore::PathOf(const InstalledVersion& version) const {
  return (fs::path(dir_) / "versions" / version.dir).string();
}

std::string ReleaseStore::BaseFileOf(const InstalledVersion& version) const {
  if (version.base.empty()) return "";
  return (fs::path(dir_) / "versions" / version.base / kBaseModelFile).string();
}

std::string ReleaseStore::AdapterDirOf(const InstalledVersion& version) const {
  if (version.release == 0 || version.is_base()) return "";
  return PathOf(version);
}

std::string ReleaseStore::BaseFileAtStart() const {
  const bool crashed_on_probation =
      !state_.clean_stop && state_.probation_left_ms > 0 && state_.smoke.version.release == 0;
  return BaseFileOf(crashed_on_probation ? state_.last_good : state_.current);
}

void ReleaseStore::Prune() const {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(dir_) / "versions", ec)) {
    const std::string name = entry.path().filename().string();
    const std::array<const std::string*, 4> kept = {&state_.current.dir, &state_.last_good.dir, &state_.current.base,
                                                    &state_.last_good.base};
    if (std::none_of(kept.begin(), kept.end(), [&](const std::string* k) { return *k == name; })) {
      fs::remove_all(entry.path(), ec);
    }
  }
}

std::optional<std::string> BaseFileAtStart(const std::string& dir) {
  if (!fs::exists(fs::path(dir) / "state.json")) return std::nullopt;
  absl::StatusOr<std::unique_ptr<ReleaseStore>> store = ReleaseStore::Open(dir);
  if (!store.ok()) return std::nullopt;
  std::string file = (*store)->BaseFileAtStart();
  std::error_code ec;
  if (file.empty() || !fs::is_regular_file(file, ec)) return std::nullopt;
  return file;
}

}  // namespace edgellm::ota
