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
  std::pair<release::SignedRelease, release::ReleaseManifest> Release(uint64_t release, uint64_t version,
                                                                      const std::string& bytes, fs::path* artifact) {
    release::ReleaseManifest m;
    m.model_id = "m";
    m.release = release;
    m.version = version;
    m.artifact_sha256 = federated::Sha256Hex(bytes);
    m.artifact_bytes = bytes.size();
    m.base_model_sha256 = std::string(64, '0');
    m.adapter_config = R"({"r": 4})";
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
  absl::StatusOr<InstalledVersion> installed = (*store)->Install(envelope, manifest, artifact.string());
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
    auto installed = (*store)->Install(envelope, manifest, artifact.string());
    ASSERT_TRUE(installed.ok());
    OtaState state;
    state.current = *installed;
    state.last_release = 2;
    state.probation_left_ms = 123;
    state.time_floor = 1'700'000'000;
    state.smoke = {*installed, std::string(64, 'a'), 1};
    state.clean_stop = false;
    state.report = {2, 1, "ok"};
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
    versions.push_back(*(*store)->Install(envelope, manifest, artifact.string()));
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
