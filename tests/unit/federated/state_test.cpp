// The aggregator's durable state: SQLite rows across reopening, the audit
// chain, and the config's checks.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "federated/aggregator/aggregator_config.h"
#include "federated/aggregator/artifact_store.h"
#include "federated/aggregator/audit_log.h"
#include "federated/aggregator/state_store.h"
#include "federated/protocol/sha256.h"
#include "federated/release/signing_key.h"
#include "tests/support/test_support.h"

namespace edgellm::federated {
namespace {

TEST(StateStore, KeepsRoundsUpdatesAndVersionsAcrossReopening) {
  const auto dir = edgellm::testing::TestDir();
  const std::string path = (dir / "state.db").string();
  {
    auto store = StateStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->PutDevice({"dev-a", "m", "0.1", "{}", 5}).ok());
    RoundRecord round{"m", 1, 1, RoundState::kOpen, 10, 20, 0, {"dev-a", "dev-b"}, ""};
    ASSERT_TRUE((*store)->PutRound(round).ok());
    ASSERT_TRUE((*store)->AddUpdate({"m", 1, "dev-a", "k", "aa", 3, "{}", 100, 11}).ok());
    const absl::Status twice = (*store)->AddUpdate({"m", 1, "dev-a", "k2", "bb", 3, "{}", 100, 12});
    EXPECT_EQ(twice.code(), absl::StatusCode::kAlreadyExists);
    ASSERT_TRUE((*store)->AddUpdate({"m", 1, "dev-b", "k", "cc", 1, "{}", 90, 13}).ok());
    round.state = RoundState::kClosed;
    ASSERT_TRUE((*store)->CloseRound(round, VersionRecord{"m", 2, 1, 1, "dd", 500, 14, "{}", ""}).ok());
  }
  auto store = StateStore::Open(path);
  ASSERT_TRUE(store.ok());
  auto round = (*store)->LatestRound("m");
  ASSERT_TRUE(round.ok() && round->has_value());
  EXPECT_EQ((*round)->state, RoundState::kClosed);
  EXPECT_EQ((*round)->selected, (std::vector<std::string>{"dev-a", "dev-b"}));
  auto updates = (*store)->Updates("m", 1);
  ASSERT_TRUE(updates.ok());
  ASSERT_EQ(updates->size(), 2u);
  EXPECT_EQ((*updates)[0].sha256, "aa");
  EXPECT_EQ((*updates)[1].device_id, "dev-b");
  auto version = (*store)->LatestVersion("m");
  ASSERT_TRUE(version.ok() && version->has_value());
  EXPECT_EQ((*version)->version, 2u);
  EXPECT_EQ((*version)->parent, 1u);
  auto by_sha = (*store)->UpdateBySha("cc");
  ASSERT_TRUE(by_sha.ok() && by_sha->has_value());
  EXPECT_EQ((*by_sha)->device_id, "dev-b");
  EXPECT_EQ(*(*store)->CountRounds("m", RoundState::kClosed), 1);
}

TEST(ArtifactStore, AddressesBytesByTheirHashAndNoticesDamage) {
  const auto dir = edgellm::testing::TestDir();
  ArtifactStore store(dir.string());
  auto sha = store.Put("some bytes");
  ASSERT_TRUE(sha.ok());
  EXPECT_EQ(*store.Get(*sha), "some bytes");
  std::ofstream(store.PathOf(*sha), std::ios::trunc) << "other bytes";
  EXPECT_EQ(store.Get(*sha).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(store.Get(std::string(64, '0')).status().code(), absl::StatusCode::kNotFound);
}

TEST(AuditLog, ChainsItsLinesAndFindsAnEditedOne) {
  const auto dir = edgellm::testing::TestDir();
  const std::string path = (dir / "audit.log").string();
  {
    auto log = AuditLog::Open(path);
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append({{"model", "m"}, {"round", 1}, {"updates", {"aa"}}}).ok());
    ASSERT_TRUE((*log)->Append({{"model", "m"}, {"round", 2}, {"updates", {"bb"}}}).ok());
    EXPECT_TRUE((*log)->HasRound("m", 2));
    EXPECT_FALSE((*log)->HasRound("m", 3));
  }
  ASSERT_TRUE(AuditLog::Verify(path).ok());
  // A torn last line (a crash mid-append) is cut when the log is opened again.
  std::ofstream(path, std::ios::app) << R"({"model":"m","rou)";
  auto reopened = AuditLog::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_TRUE((*reopened)->HasRound("m", 1));
  ASSERT_TRUE((*reopened)->Append({{"model", "m"}, {"round", 3}}).ok());
  ASSERT_TRUE(AuditLog::Verify(path).ok());
  // Editing an earlier line breaks the chain at the line after it.
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  text.replace(text.find("\"aa\""), 4, "\"zz\"");
  std::ofstream(path, std::ios::trunc) << text;
  const absl::Status broken = AuditLog::Verify(path);
  EXPECT_EQ(broken.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(broken.message().find(":2:"), std::string::npos) << broken;
}

// A full disk lets an append write part of its line. The record is refused,
// and the part is cut off: the next record, once there is room again, must
// not be glued to it (a chain broken for good, an aggregator that cannot
// start). The process's file size limit stands in for the full disk.
TEST(AuditLog, AnAppendCutShortByAFullDiskLeavesNoPartOfItsLine) {
  const auto dir = edgellm::testing::TestDir();
  const std::string path = (dir / "audit.log").string();
  auto log = AuditLog::Open(path);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Append({{"model", "m"}, {"round", 1}}).ok());
  const auto size = std::filesystem::file_size(path);
  rlimit previous{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &previous), 0);
  const auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit full = previous;
  full.rlim_cur = size + 10;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &full), 0);
  const absl::Status refused = (*log)->Append({{"model", "m"}, {"round", 2}, {"detail", std::string(100, 'x')}});
  ::setrlimit(RLIMIT_FSIZE, &previous);
  std::signal(SIGXFSZ, previous_handler);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(std::filesystem::file_size(path), size);
  ASSERT_TRUE((*log)->Append({{"model", "m"}, {"round", 3}}).ok());
  EXPECT_TRUE(AuditLog::Verify(path).ok()) << AuditLog::Verify(path);
  auto reopened = AuditLog::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_TRUE((*reopened)->HasRound("m", 3));
  EXPECT_FALSE((*reopened)->HasRound("m", 2));
}

// A tail rewritten whole, every hash recomputed, still makes a chain; the
// signed head is what finds it.
TEST(AuditLog, ASignedHeadFindsATailRewrittenWithItsHashes) {
  const auto dir = edgellm::testing::TestDir();
  const std::string path = (dir / "audit.log").string();
  auto key = release::SigningKey::Generate();
  ASSERT_TRUE(key.ok());
  auto public_key = release::PublicKey::FromPem(key->PublicPem());
  ASSERT_TRUE(public_key.ok());
  {
    auto log = AuditLog::Open(path, *std::move(key));
    ASSERT_TRUE(log.ok()) << log.status();
    ASSERT_TRUE((*log)->Append({{"model", "m"}, {"round", 1}, {"updates", {"aa"}}}).ok());
    ASSERT_TRUE((*log)->Append({{"model", "m"}, {"round", 2}, {"updates", {"bb"}}}).ok());
  }
  ASSERT_TRUE(AuditLog::VerifyHead(path, *public_key).ok()) << AuditLog::VerifyHead(path, *public_key);
  // The attacker drops round 2 and writes another in its place, chained properly.
  std::string first;
  {
    std::ifstream in(path);
    std::getline(in, first);
  }
  const nlohmann::json forged = {{"model", "m"}, {"round", 2}, {"updates", {"cc"}}, {"prev", Sha256Hex(first)}};
  std::ofstream(path, std::ios::trunc) << first << "\n" << forged.dump() << "\n";
  EXPECT_TRUE(AuditLog::Verify(path).ok()) << "the chain alone cannot tell";
  const absl::Status head = AuditLog::VerifyHead(path, *public_key);
  EXPECT_EQ(head.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(head.message().find("rewritten"), std::string::npos) << head;
  // So does cutting the last line, and a head signed by another key.
  std::ofstream(path, std::ios::trunc) << first << "\n";
  EXPECT_NE(AuditLog::VerifyHead(path, *public_key).message().find("cut"), std::string::npos);
  auto other = release::SigningKey::Generate();
  auto other_public = release::PublicKey::FromPem(other->PublicPem());
  EXPECT_EQ(AuditLog::VerifyHead(path, *other_public).code(), absl::StatusCode::kDataLoss);
}

TEST(AggregatorConfig, TheExampleFileIsValid) {
  auto config = AggregatorConfig::Load(std::string(EDGELLM_SOURCE_DIR) + "/deploy/aggregator.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->models.size(), 1u);
  EXPECT_EQ(config->models[0].strategy.name, "fedavg");
}

TEST(AggregatorConfig, RefusesWhatCannotWork) {
  const std::string base =
      "tls_cert: c.pem\ntls_key: k.pem\ntls_client_ca: ca.pem\nmodels:\n  - id: m\n    base_model: m.gguf\n";
  auto refused = [](const std::string& yaml, const std::string& words) {
    auto config = AggregatorConfig::FromYaml(yaml, "a.yaml");
    ASSERT_FALSE(config.ok()) << yaml;
    EXPECT_NE(config.status().message().find(words), std::string::npos) << config.status();
  };
  ASSERT_TRUE(AggregatorConfig::FromYaml(base, "a.yaml").ok());
  refused("models:\n  - id: m\n    base_model: m.gguf\n", "only mutual TLS");
  refused(base + "    strategy: fedsgd\n", "'fedsgd' is not one of");
  refused(base + "    strategy: dp_fedavg\n    norm_bound: 0\n", "dp_fedavg clips every update");
  refused(base + "    norm_bound: lots\n", "expected a number or auto");
  refused(base + "    strategy: krum\n    krum_byzantine: 1\n", "needs a quorum above 4");
  refused(base + "    quorum: 5\n    min_devices: 3\n", "quorum must be within");
  refused(base + "    encoding: f32\n", "encoding must be int8 or f16");
  refused(base + "    rounds: many\n", "a.yaml:7: rounds: expected an integer");
  refused(base + "    colour: blue\n", "colour: unknown key");
  refused(base + "  - id: m\n    base_model: n.gguf\n", "listed twice");
  const std::string releases = "release_keys: [a.pub, b.pub]\nadmins: [operator]\n";
  auto with_releases = AggregatorConfig::FromYaml(releases + "release_key_threshold: 2\n" + base, "a.yaml");
  ASSERT_TRUE(with_releases.ok()) << with_releases.status();
  EXPECT_EQ(with_releases->admins, std::vector<std::string>{"operator"});
  EXPECT_EQ(with_releases->release_key_threshold, 2);
  refused(releases + "release_key_threshold: 3\n" + base, "release_key_threshold 3 must be between 1 and the 2");
  refused("release_signing_key: k.key\n" + base, "release_signing_key needs release_keys");
  refused(releases + "canary_fraction: 0\n" + base, "canary_fraction and success_threshold must be within (0, 1]");
}

TEST(AggregatorConfig, NormBoundsDefaultToWhatLocalTrainingCanMove) {
  const std::string base = "tls_cert: c.pem\ntls_key: k.pem\ntls_client_ca: ca.pem\nmodels:\n  - id: m\n"
                           "    base_model: m.gguf\n    local_steps: 10\n    learning_rate: 0.01\n";
  auto config = AggregatorConfig::FromYaml(base, "a.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  ModelConfig model = config->models[0];
  EXPECT_EQ(model.strategy.norm_bound, kAutoNormBound);
  model.ResolveNormBounds(400);  // 10 steps × 0.01 × √400 = 2
  EXPECT_DOUBLE_EQ(model.strategy.norm_bound, 2.0);
  EXPECT_DOUBLE_EQ(model.max_update_norm, 6.0);
  auto explicit_bounds = AggregatorConfig::FromYaml(base + "    norm_bound: 0\n    max_update_norm: auto\n", "a.yaml");
  ASSERT_TRUE(explicit_bounds.ok()) << explicit_bounds.status();
  model = explicit_bounds->models[0];
  model.ResolveNormBounds(400);
  EXPECT_EQ(model.strategy.norm_bound, 0.0);  // off, as written
  EXPECT_DOUBLE_EQ(model.max_update_norm, 6.0);
}

TEST(StateStore, KeepsEachRoundsSecretSeedAndWeightCapEnrollmentsAndOffers) {
  const auto dir = edgellm::testing::TestDir();
  const std::string path = (dir / "state.db").string();
  RoundRecord round{"m", 1, 1, RoundState::kOpen, 10, 20, 0, {"dev-a"}, "", 0xfedcba9876543210ull, 400};
  {
    auto store = StateStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->PutRound(round).ok());
    ASSERT_TRUE((*store)->PutEnrollment("dev-a", "m").ok());
    ASSERT_TRUE((*store)->PutOffer("m", 3, "dev-a").ok());
    ReleaseRecord release;
    release.model_id = "m";
    release.release = 3;
    release.canaries = {"dev-a", "dev-c"};
    ASSERT_TRUE((*store)->PutRelease(release).ok());
  }
  auto store = StateStore::Open(path);
  ASSERT_TRUE(store.ok());
  auto latest = (*store)->LatestRound("m");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->noise_seed, round.noise_seed);
  EXPECT_EQ((*latest)->weight_cap, 400);
  EXPECT_EQ((*(*store)->Enrollments()).at("dev-a"), "m");
  EXPECT_TRUE(*(*store)->WasOffered("m", 3, "dev-a"));
  EXPECT_FALSE(*(*store)->WasOffered("m", 3, "dev-b"));
  EXPECT_FALSE(*(*store)->WasOffered("m", 2, "dev-a"));
  auto release = (*store)->LatestRelease("m");
  ASSERT_TRUE(release.ok() && release->has_value());
  EXPECT_EQ((*release)->canaries, (std::vector<std::string>{"dev-a", "dev-c"}));
}

// A database written by an aggregator from before seeds, caps and canaries
// were kept opens with those columns added, its rows intact.
TEST(StateStore, MigratesADatabaseOfTheFirstSchema) {
  const auto dir = edgellm::testing::TestDir();
  const std::string path = (dir / "state.db").string();
  const std::string sql =
      "CREATE TABLE rounds(model_id TEXT NOT NULL, round_id INTEGER NOT NULL, base_version INTEGER NOT NULL, "
      "state TEXT NOT NULL, opened_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL, closed_ms INTEGER NOT NULL, "
      "selected TEXT NOT NULL, outcome TEXT NOT NULL, PRIMARY KEY(model_id, round_id));"
      "INSERT INTO rounds VALUES('m', 7, 3, 'open', 1, 2, 0, '[\"dev-a\"]', '');"
      "CREATE TABLE releases(model_id TEXT NOT NULL, release INTEGER NOT NULL, version INTEGER NOT NULL, "
      "rollback INTEGER NOT NULL, artifact_sha256 TEXT NOT NULL, signed_release TEXT NOT NULL, "
      "canary_fraction REAL NOT NULL, success_threshold REAL NOT NULL, soak_seconds INTEGER NOT NULL, "
      "stage TEXT NOT NULL, resume_stage TEXT NOT NULL, detail TEXT NOT NULL, published_ms INTEGER NOT NULL, "
      "stage_ms INTEGER NOT NULL, PRIMARY KEY(model_id, release));"
      "INSERT INTO releases VALUES('m', 2, 5, 0, 'aa', '{}', 0.25, 1.0, 0, 'canary', '', '', 1, 1);";
  {
    std::ofstream(dir / "first.sql") << sql;
  }
  ASSERT_EQ(std::system(("/usr/bin/sqlite3 " + path + " < " + (dir / "first.sql").string()).c_str()), 0);
  auto store = StateStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  auto round = (*store)->LatestRound("m");
  ASSERT_TRUE(round.ok() && round->has_value()) << round.status();
  EXPECT_EQ((*round)->round_id, 7u);
  EXPECT_EQ((*round)->noise_seed, 0u);  // the coordinator draws one when it takes the round up
  auto release = (*store)->LatestRelease("m");
  ASSERT_TRUE(release.ok() && release->has_value()) << release.status();
  EXPECT_EQ((*release)->version, 5u);
  EXPECT_TRUE((*release)->canaries.empty());
}

}  // namespace
}  // namespace edgellm::federated
