// The device's release store: atomic installs, re-verification of what is on
// disk, durable state, and the cleanup of installs cut short.
#include "daemon/ota/release_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "federated/protocol/sha256.h"
#include "tests/support/test_support.h"

namespace edgellm::ota {
namespace {

namespace fs = std::filesystem;

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct Fixture {
  release::SigningKey key = *release::SigningKey::Generate();
  release::TrustPolicy policy = *release::TrustPolicy::Create({*release::PublicKey::FromPem(key.PublicPem())}, 1);
  fs::path dir = edgellm::testing::TestDir();

  // A signed release of `version` whose artifact is `bytes`, written to a staging file.
  std::pair<release::SignedRelease, release::ReleaseManifest> Release(
      uint64_t release, uint64_t version, const std::string& bytes, fs::path* artifact,
      release::ArtifactKind kind = release::ArtifactKind::kAdapter, std::string base_sha = std::string(64, '0')) {
    release::ReleaseManifest m;
    m.kind = kind;
    m.model_id = "m";
    m.release = release;
    m.version = version;
    m.artifact_sha256 = federated::Sha256Hex(bytes);
    m.artifact_bytes = bytes.size();
    m.base_model_sha256 = kind == release::ArtifactKind::kBase ? m.artifact_sha256 : base_sha;
    m.adapter_config = kind == release::ArtifactKind::kBase ? "" : R"({"r": 4})";
    m.created_at = 1;
    m.expires_at = 2;
    release::SignedRelease signed_release{m.ToJson(), {}};
    release::AddSignature(signed_release, key);
    *artifact = dir / ("artifact-" + std::to_string(release));
    std::ofstream(*artifact, std::ios::binary) << bytes;
    return {signed_release, m};
  }
};

TEST(ReleaseStore, InstallsAVersionThatVerifiesUntilItsBytesChange) {
  Fixture f;
  auto store = ReleaseStore::Open((f.dir / "ota").string());
  ASSERT_TRUE(store.ok()) << store.status();
  fs::path artifact;
  auto [envelope, manifest] = f.Release(1, 7, "weights", &artifact);
  absl::StatusOr<InstalledVersion> installed = (*store)->Install(envelope, manifest, artifact.string(), {});
  ASSERT_TRUE(installed.ok()) << installed.status();
  EXPECT_EQ(installed->version, 7u);
  EXPECT_FALSE(fs::exists(artifact));  // moved, not copied
  const fs::path version_dir = (*store)->PathOf(*installed);
  EXPECT_TRUE(fs::exists(version_dir / "adapter_model.safetensors"));
  EXPECT_EQ(ReadText(version_dir / "adapter_config.json"), R"({"r": 4})");
  EXPECT_TRUE((*store)->Verify(*installed, f.policy).ok());

  std::ofstream(version_dir / "adapter_model.safetensors", std::ios::binary) << "weighTs";
  const absl::Status tampered = (*store)->Verify(*installed, f.policy);
  EXPECT_EQ(tampered.code(), absl::StatusCode::kDataLoss) << tampered;

  // Another key's policy does not accept what this key signed.
  auto other_key = release::SigningKey::Generate();
  auto other = release::TrustPolicy::Create({*release::PublicKey::FromPem(other_key->PublicPem())}, 1);
  std::ofstream(version_dir / "adapter_model.safetensors", std::ios::binary) << "weights";
  EXPECT_TRUE((*store)->Verify(*installed, f.policy).ok());
  EXPECT_EQ((*store)->Verify(*installed, *other).code(), absl::StatusCode::kPermissionDenied);
}

TEST(ReleaseStore, StateSurvivesReopeningAndHalfMadeInstallsAreRemoved) {
  Fixture f;
  const fs::path ota = f.dir / "ota";
  {
    auto store = ReleaseStore::Open(ota.string());
    ASSERT_TRUE(store.ok());
    fs::path artifact;
    auto [envelope, manifest] = f.Release(2, 3, "v3", &artifact);
    auto installed = (*store)->Install(envelope, manifest, artifact.string(), {});
    ASSERT_TRUE(installed.ok());
    OtaState state;
    state.current = *installed;
    state.last_release = 2;
    state.probation_left_ms = 123;
    state.time_floor = 1'700'000'000;
    state.smoke = {*installed, std::string(64, 'a'), 1};
    state.clean_stop = false;
    state.report = {2, 1, "ok", ""};
    ASSERT_TRUE((*store)->Save(state).ok());
  }
  // What a kill -9 in the middle of an install leaves: a hidden directory.
  fs::create_directories(ota / "versions" / ".r3-v4");
  std::ofstream(ota / "versions" / ".r3-v4" / "adapter_model.safetensors") << "half";
  auto store = ReleaseStore::Open(ota.string());
  ASSERT_TRUE(store.ok());
  EXPECT_FALSE(fs::exists(ota / "versions" / ".r3-v4"));
  const OtaState& state = (*store)->state();
  EXPECT_EQ(state.current.version, 3u);
  EXPECT_EQ(state.current.release, 2u);
  EXPECT_EQ(state.last_release, 2u);
  EXPECT_EQ(state.probation_left_ms, 123);
  EXPECT_EQ(state.time_floor, 1'700'000'000);
  EXPECT_EQ(state.smoke.version.dir, state.current.dir);
  EXPECT_EQ(state.smoke.artifact_sha256, std::string(64, 'a'));
  EXPECT_EQ(state.smoke.attempts, 1);
  EXPECT_FALSE(state.clean_stop);
  EXPECT_EQ(state.report.detail, "ok");
  EXPECT_TRUE((*store)->Verify(state.current, f.policy).ok());
}

TEST(ReleaseStore, PruneKeepsOnlyTheCurrentAndLastKnownGoodVersions) {
  Fixture f;
  auto store = ReleaseStore::Open((f.dir / "ota").string());
  ASSERT_TRUE(store.ok());
  std::vector<InstalledVersion> versions;
  for (uint64_t r = 1; r <= 3; ++r) {
    fs::path artifact;
    auto [envelope, manifest] = f.Release(r, r, "v" + std::to_string(r), &artifact);
    versions.push_back(*(*store)->Install(envelope, manifest, artifact.string(), {}));
  }
  OtaState state;
  state.current = versions[2];
  state.last_good = versions[1];
  ASSERT_TRUE((*store)->Save(state).ok());
  (*store)->Prune();
  EXPECT_FALSE(fs::exists((*store)->PathOf(versions[0])));
  EXPECT_TRUE(fs::exists((*store)->PathOf(versions[1])));
  EXPECT_TRUE(fs::exists((*store)->PathOf(versions[2])));
}

TEST(ReleaseStore, ABaseModelReleaseIsASlotItsAdaptersRunOnAndPruningKeepsItWhileNeeded) {
  Fixture f;
  const fs::path ota = f.dir / "ota";
  auto store = ReleaseStore::Open(ota.string());
  ASSERT_TRUE(store.ok());
  fs::path artifact;
  auto [base_envelope, base_manifest] = f.Release(1, 2, "GGUF new base", &artifact, release::ArtifactKind::kBase);
  absl::StatusOr<InstalledVersion> base = (*store)->Install(base_envelope, base_manifest, artifact.string(), {});
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_TRUE(base->is_base());
  EXPECT_EQ(base->base_sha256, base_manifest.artifact_sha256);
  EXPECT_EQ((*store)->BaseFileOf(*base), ((*store)->PathOf(*base) + "/model.gguf"));
  EXPECT_EQ((*store)->AdapterDirOf(*base), "");
  EXPECT_EQ(ReadText((*store)->BaseFileOf(*base)), "GGUF new base");
  EXPECT_FALSE(fs::exists(fs::path((*store)->PathOf(*base)) / "adapter_config.json"));
  EXPECT_TRUE((*store)->Verify(*base, f.policy).ok());

  // An adapter installed while the new base serves runs on it, and is only as good as it.
  auto [adapter_envelope, adapter_manifest] =
      f.Release(2, 3, "adapter", &artifact, release::ArtifactKind::kAdapter, base_manifest.artifact_sha256);
  absl::StatusOr<InstalledVersion> adapter =
      (*store)->Install(adapter_envelope, adapter_manifest, artifact.string(), *base);
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  EXPECT_FALSE(adapter->is_base());
  EXPECT_EQ(adapter->base, base->dir);
  EXPECT_EQ((*store)->BaseFileOf(*adapter), (*store)->BaseFileOf(*base));
  EXPECT_EQ((*store)->AdapterDirOf(*adapter), (*store)->PathOf(*adapter));
  EXPECT_TRUE((*store)->Verify(*adapter, f.policy).ok());
  std::ofstream((*store)->BaseFileOf(*base), std::ios::binary) << "GGUF tampered";
  EXPECT_EQ((*store)->Verify(*adapter, f.policy).code(), absl::StatusCode::kDataLoss);
  std::ofstream((*store)->BaseFileOf(*base), std::ios::binary) << "GGUF new base";

  // The adapter serving, the configured model as the last-known-good: the base slot stays.
  OtaState state;
  state.current = *adapter;
  ASSERT_TRUE((*store)->Save(state).ok());
  (*store)->Prune();
  EXPECT_TRUE(fs::exists((*store)->BaseFileOf(*adapter)));
  EXPECT_EQ(BaseFileAtStart(ota.string()), (*store)->BaseFileOf(*base));
  // Stopped uncleanly with the adapter on probation: the start loads what it falls back to.
  state.last_good = {};
  state.probation_left_ms = 1000;
  state.clean_stop = false;
  ASSERT_TRUE((*store)->Save(state).ok());
  EXPECT_EQ(BaseFileAtStart(ota.string()), std::nullopt);
  // Back on the configured model for good: the slot goes.
  state = {};
  ASSERT_TRUE((*store)->Save(state).ok());
  (*store)->Prune();
  EXPECT_FALSE(fs::exists((*store)->PathOf(*base)));
  EXPECT_EQ(BaseFileAtStart(ota.string()), std::nullopt);
}

TEST(ReleaseStore, AStateNamingAPathOutsideTheStoreIsNotFollowed) {
  Fixture f;
  const fs::path ota = f.dir / "ota";
  fs::create_directories(ota);
  std::ofstream(ota / "state.json") << R"({"current": {"release": 1, "version": 1, "dir": "../../etc"}})";
  auto store = ReleaseStore::Open(ota.string());
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->state().current.release, 0u);
  EXPECT_TRUE((*store)->state().current.dir.empty());

  std::ofstream(ota / "state.json") << "{ torn";
  EXPECT_EQ(ReleaseStore::Open(ota.string()).status().code(), absl::StatusCode::kDataLoss);
}

// A state written before probation was counted in serving time keeps what
// its deadline leaves of it.
TEST(ReleaseStore, AnOlderStatesProbationDeadlineBecomesTheTimeLeft) {
  const fs::path ota = edgellm::testing::TestDir() / "ota";
  fs::create_directories(ota);
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::ofstream(ota / "state.json") << R"({"probation_until": )" << now + 100 << R"(, "clean_stop": false})";
  auto store = ReleaseStore::Open(ota.string());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_GT((*store)->state().probation_left_ms, 90'000);
  EXPECT_LE((*store)->state().probation_left_ms, 100'000);
}

}  // namespace
}  // namespace edgellm::ota
