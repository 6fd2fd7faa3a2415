#include "daemon/ops/config.h"

#include <gtest/gtest.h>

namespace edgellm::ops {
namespace {

TEST(DaemonConfig, AnEmptyFileGivesTheDefaults) {
  auto c = DaemonConfig::FromYaml("", "empty.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "unix:/run/edgellmd/edgellmd.sock");
  EXPECT_EQ(c->max_active, 8);
  EXPECT_EQ(c->max_waiting, 32);
  EXPECT_EQ(c->prefill_chunk, 128);
  EXPECT_EQ(c->drain_timeout_seconds, 30.0);
  EXPECT_TRUE(c->metrics_listen.empty());
}

TEST(DaemonConfig, ReadsEveryKey) {
  auto c = DaemonConfig::FromYaml(
      "model: /m.gguf\nlisten: unix:/tmp/s.sock\nmetrics_listen: 127.0.0.1:9000\nthreads: 2\n"
      "context_length: 512\nmax_active: 4\nmax_waiting: 0\nprefill_chunk: 64\ndrain_timeout_seconds: 2.5\n",
      "full.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model, "/m.gguf");
  EXPECT_EQ(c->listen, "unix:/tmp/s.sock");
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9000");
  EXPECT_EQ(c->threads, 2);
  EXPECT_EQ(c->context_length, 512);
  EXPECT_EQ(c->max_active, 4);
  EXPECT_EQ(c->max_waiting, 0);
  EXPECT_EQ(c->prefill_chunk, 64);
  EXPECT_EQ(c->drain_timeout_seconds, 2.5);
}

void ExpectRefused(const std::string& yaml, const std::string& message_part) {
  const absl::Status s = DaemonConfig::FromYaml(yaml, "bad.yaml").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << yaml;
  EXPECT_NE(s.message().find(message_part), absl::string_view::npos) << s;
}

TEST(DaemonConfig, MistakesAreNamedWithTheirLine) {
  ExpectRefused("model: m.gguf\nmax_actve: 3\n", "bad.yaml:2: max_actve: unknown key");
  ExpectRefused("max_active: lots\n", "bad.yaml:1: max_active: expected an integer, found 'lots'");
  ExpectRefused("listen: [a, b]\n", "listen: expected text");
  ExpectRefused("max_active: 0\n", "max_active 0 must be at least 1");
  ExpectRefused("drain_timeout_seconds: -1\n", "drain_timeout_seconds");
  ExpectRefused("- a list\n", "expected a mapping");
  ExpectRefused("model: [unclosed\n", "bad.yaml:");
}

TEST(DaemonConfig, TheShippedExampleParses) {
  auto c = DaemonConfig::Load(std::string(EDGELLM_SOURCE_DIR) + "/deploy/edgellmd.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model, "/var/lib/edgellm/models/model.gguf");
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(DaemonConfig::Load("/nonexistent.yaml").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace edgellm::ops
