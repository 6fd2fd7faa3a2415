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
  EXPECT_EQ(c->kv_cache_mib, 0);
  EXPECT_EQ(c->kv_block_size, 16);
  EXPECT_EQ(c->kv_type, "f16");
  EXPECT_TRUE(c->prefix_caching);
  EXPECT_EQ(c->memory_low_mib, 256);
  EXPECT_EQ(c->memory_critical_mib, 64);
  EXPECT_TRUE(c->tls_cert.empty());
}

TEST(DaemonConfig, ReadsEveryKey) {
  auto c = DaemonConfig::FromYaml(
      "model: /m.gguf\nlisten: unix:/tmp/s.sock\nmetrics_listen: 127.0.0.1:9000\nthreads: 2\n"
      "context_length: 512\nmax_active: 4\nmax_waiting: 0\nprefill_chunk: 64\ndrain_timeout_seconds: 2.5\n"
      "tls_cert: /c.pem\ntls_key: /k.pem\ntls_client_ca: /ca.pem\nkv_cache_mib: 64\nkv_block_size: 32\nkv_type: f32\n"
      "prefix_caching: false\nmax_sessions: 9\nsession_ttl_seconds: 30\nmemory_low_mib: 512\n"
      "memory_critical_mib: 128\ndraft_tokens: 5\ndraft_model: /d.gguf\n"
      "http_listen: 127.0.0.1:8080\nhttp_api_keys_file: /keys\nhttp_max_body_kib: 64\n"
      "http_request_timeout_seconds: 2.5\nhttp_idle_timeout_seconds: 7\nchat_template_file: /t.jinja\n"
      "adapters:\n  support-v2: /var/lib/edgellm/adapters/support\n  fr: /a/fr\n",
      "full.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model, "/m.gguf");
  EXPECT_EQ(c->adapters, (std::map<std::string, std::string>{{"fr", "/a/fr"},
                                                             {"support-v2", "/var/lib/edgellm/adapters/support"}}));
  EXPECT_EQ(c->draft_tokens, 5);
  EXPECT_EQ(c->draft_model, "/d.gguf");
  EXPECT_EQ(c->listen, "unix:/tmp/s.sock");
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9000");
  EXPECT_EQ(c->threads, 2);
  EXPECT_EQ(c->context_length, 512);
  EXPECT_EQ(c->max_active, 4);
  EXPECT_EQ(c->max_waiting, 0);
  EXPECT_EQ(c->prefill_chunk, 64);
  EXPECT_EQ(c->drain_timeout_seconds, 2.5);
  EXPECT_EQ(c->tls_cert, "/c.pem");
  EXPECT_EQ(c->tls_key, "/k.pem");
  EXPECT_EQ(c->tls_client_ca, "/ca.pem");
  EXPECT_EQ(c->kv_cache_mib, 64);
  EXPECT_EQ(c->kv_block_size, 32);
  EXPECT_EQ(c->kv_type, "f32");
  EXPECT_FALSE(c->prefix_caching);
  EXPECT_EQ(c->max_sessions, 9);
  EXPECT_EQ(c->session_ttl_seconds, 30.0);
  EXPECT_EQ(c->memory_low_mib, 512);
  EXPECT_EQ(c->memory_critical_mib, 128);
  EXPECT_EQ(c->http_listen, "127.0.0.1:8080");
  EXPECT_EQ(c->http_api_keys_file, "/keys");
  EXPECT_EQ(c->http_max_body_kib, 64);
  EXPECT_EQ(c->http_request_timeout_seconds, 2.5);
  EXPECT_EQ(c->http_idle_timeout_seconds, 7.0);
  EXPECT_EQ(c->chat_template_file, "/t.jinja");
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
  ExpectRefused("http_max_body_kib: 0\n", "http_max_body_kib 0 must be at least 1");
  ExpectRefused("http_request_timeout_seconds: 0\n", "http_request_timeout_seconds must be positive");
  ExpectRefused("chat_template: x\nchat_template_file: /t\n", "chat_template and chat_template_file are exclusive");
  ExpectRefused("drain_timeout_seconds: -1\n", "drain_timeout_seconds");
  ExpectRefused("- a list\n", "expected a mapping");
  ExpectRefused("model: [unclosed\n", "bad.yaml:");
  ExpectRefused("prefix_caching: maybe\n", "prefix_caching: expected true or false");
  ExpectRefused("tls_cert: /c.pem\n", "tls_cert and tls_key go together");
  ExpectRefused("tls_client_ca: /ca.pem\n", "tls_client_ca needs tls_cert");
  ExpectRefused("memory_low_mib: 10\nmemory_critical_mib: 20\n", "memory_critical_mib must not exceed");
  ExpectRefused("kv_block_size: 0\n", "kv_block_size 0 must be at least 1");
  ExpectRefused("kv_type: q4_0\n", "kv_type \"q4_0\" must be f16, f32 or q8_0");
  EXPECT_EQ(DaemonConfig::FromYaml("kv_type: q8_0\n", "q8.yaml").value().kv_type, "q8_0");
  ExpectRefused("adapters: /a/dir\n", "bad.yaml:1: adapters: expected a mapping of names to adapter directories");
  ExpectRefused("adapters:\n  a: [x]\n", "adapters.a: expected a directory");
  ExpectRefused("adapters:\n  'bad name': /a\n", "adapter name 'bad name' must be 1-64 of [A-Za-z0-9._-]");
}

TEST(DaemonConfig, OverTheAirReleasesNeedTheAggregatorAndAReachableThreshold) {
  const std::string federation =
      "federation_aggregator: agg:7443\nfederation_ca: ca.pem\nfederation_cert: d.pem\nfederation_key: d.key\n";
  auto c = DaemonConfig::FromYaml(federation + "ota_release_keys: [a.pub, b.pub]\nota_key_threshold: 2\n"
                                               "ota_probation_seconds: 60\nhealth_listen: 0.0.0.0:50052\n",
                                  "ok.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ota_release_keys, (std::vector<std::string>{"a.pub", "b.pub"}));
  EXPECT_EQ(c->ota_key_threshold, 2);
  EXPECT_EQ(c->ota_probation_seconds, 60.0);
  EXPECT_EQ(c->health_listen, "0.0.0.0:50052");
  EXPECT_TRUE(c->train_data.empty());  // releases alone, no rounds
  ExpectRefused("ota_release_keys: [a.pub]\n", "ota_release_keys needs federation_aggregator");
  ExpectRefused(federation + "ota_release_keys: [a.pub]\nota_key_threshold: 2\n",
                "ota_key_threshold 2 must be between 1 and the 1 ota_release_keys");
  ExpectRefused(federation + "ota_release_keys: a.pub\n", "ota_release_keys: expected a list");
  ExpectRefused(federation, "needs train_data (to train in rounds) or ota_release_keys");
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
