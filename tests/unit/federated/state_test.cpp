// The aggregator's durable state: SQLite rows across reopening, the audit
// chain, and the config's checks.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "federated/aggregator/aggregator_config.h"
#include "federated/aggregator/artifact_store.h"
#include "federated/aggregator/audit_log.h"
#include "federated/aggregator/state_store.h"
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
  refused(base + "    strategy: dp_fedavg\n", "dp_fedavg clips every update");
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

}  // namespace
}  // namespace edgellm::federated
