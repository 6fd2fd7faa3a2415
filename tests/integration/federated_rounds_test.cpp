// Federated rounds end to end: a real edgellm-aggregator and three real
// edgellmd processes on loopback, mutual TLS on. Each daemon holds its own
// fact about stories260K's little world (non-IID: no daemon sees another's
// data); three rounds of FFA-LoRA FedAvg later, the global adapter knows all
// three, its held-out loss fell every round — across a kill -9 of the
// aggregator in round 2 — and every daemon sent only the bytes of its
// encoded deltas.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include <nlohmann/json.hpp>

#include "daemon/engine/generator.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "federated/aggregator/state_store.h"
#include "federated/protocol/tensor_set.h"
#include "tests/support/daemon_process.h"
#include "tests/support/federation.h"
#include "tests/support/test_support.h"

namespace edgellm::federated {
namespace {

namespace fs = std::filesystem;
using edgellm::testing::AggregatorProcess;
using edgellm::testing::DaemonProcess;

const std::string kModel = edgellm::testing::SharedPath("models/stories260K.gguf");

struct Fact {
  std::string device;
  std::string prompt;
  std::string completion;
};
const std::vector<Fact> kFacts = {
    {"dev-a", "Once upon a time", " there was a purple dragon named Zog."},
    {"dev-b", "The little bird", " sang a song about the blue moon."},
    {"dev-c", "Lily had a cat", " named Max who loved green apples."},
};

double MetricValue(const std::string& text, const std::string& name) {
  std::smatch match;
  if (!std::regex_search(text, match, std::regex("\n" + name + " ([0-9.e+-]+)"))) return -1;
  return std::stod(match[1]);
}

std::string Greedy(const engine::LlamaModel& model, const engine::LoraAdapter& adapter, const std::string& prompt) {
  engine::GenerateOptions options;
  options.max_tokens = 16;
  options.sampling.temperature = 0.0f;
  options.adapter = &adapter;
  auto result = engine::Generate(model, prompt, options);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->text : "";
}

TEST(FederatedRounds, ThreeDaemonsTeachTheGlobalAdapterWhatEachKnows) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const fs::path dir = edgellm::testing::TestDir();
  ASSERT_TRUE(edgellm::testing::MakePki(dir / "pki", {"dev-a", "dev-b", "dev-c"}));
  const int port = edgellm::testing::FreePort();
  {
    std::ofstream eval(dir / "eval.jsonl");
    for (const Fact& f : kFacts) {
      eval << nlohmann::json({{"prompt", f.prompt}, {"completion", f.completion}}).dump() << "\n";
    }
    std::ofstream config(dir / "aggregator.yaml");
    config << "listen: 127.0.0.1:" << port << "\n"
           << "tls_cert: " << (dir / "pki" / "aggregator.pem").string() << "\n"
           << "tls_key: " << (dir / "pki" / "aggregator.key").string() << "\n"
           << "tls_client_ca: " << (dir / "pki" / "ca.pem").string() << "\n"
           << "state_dir: " << (dir / "state").string() << "\n"
           << "heartbeat_interval_seconds: 1\npoll_interval_seconds: 0.2\nliveness_timeout_seconds: 60\n"
           << "threads: 1\n"
           << "models:\n  - id: stories260K\n    base_model: " << kModel << "\n"
           << "    rank: 8\n    alpha: 16\n    targets: all\n    freeze_a: true\n    lora_seed: 7\n"
           << "    rounds: 3\n    min_devices: 3\n    quorum: 3\n    round_timeout_seconds: 600\n"
           << "    local_steps: 30\n    learning_rate: 0.01\n    micro_batch: 2\n    max_length: 64\n"
           << "    encoding: int8\n    eval_data: " << (dir / "eval.jsonl").string() << "\n";
  }
  std::string error;
  auto aggregator = AggregatorProcess::Start(dir / "aggregator.yaml", dir / "aggregator.log", &error);
  ASSERT_NE(aggregator, nullptr) << error;

  std::vector<std::unique_ptr<DaemonProcess>> daemons;
  std::map<std::string, int> metrics_ports;
  for (const Fact& f : kFacts) {
    const fs::path data = dir / (f.device + ".jsonl");
    {
      std::ofstream out(data);
      for (int i = 0; i < 16; ++i) {
        out << nlohmann::json({{"prompt", f.prompt}, {"completion", f.completion}}).dump() << "\n";
      }
      out << R"({"text": "Lily and Ben went to the park. They played on the swings."})" << "\n";
      out << R"({"text": "The cat sat in the sun. It was warm and happy."})" << "\n";
    }
    metrics_ports[f.device] = edgellm::testing::FreePort();
    const fs::path config = dir / (f.device + ".yaml");
    std::ofstream(config) << "model: " << kModel << "\n"
                          << "metrics_listen: 127.0.0.1:" << metrics_ports[f.device] << "\n"
                          << "train_data: " << data.string() << "\n"
                          << "train_dir: " << (dir / (f.device + "-train")).string() << "\n"
                          << "train_rank: 8\ntrain_targets: all\ntrain_idle_seconds: 0\n"
                          << "train_program: " << EDGELLM_BINARY_DIR << "/tools/edgellm\n"
                          << "federation_aggregator: 127.0.0.1:" << port << "\n"
                          << "federation_ca: " << (dir / "pki" / "ca.pem").string() << "\n"
                          << "federation_cert: " << (dir / "pki" / (f.device + ".pem")).string() << "\n"
                          << "federation_key: " << (dir / "pki" / (f.device + ".key")).string() << "\n"
                          << "federation_dir: " << (dir / (f.device + "-federation")).string() << "\n";
    auto daemon = DaemonProcess::Start("", {"--config", config.string()}, &error);
    ASSERT_NE(daemon, nullptr) << f.device << ": " << error;
    daemons.push_back(std::move(daemon));
  }
  // kill -9 the aggregator in the middle of round 2, after it accepted an
  // update: the restarted one continues the round with it, and the daemons
  // (polling, uploading, retrying) finish the rounds against it.
  ASSERT_TRUE(aggregator->WaitForLog("round 2: accepted", std::chrono::minutes(10))) << aggregator->Log();
  aggregator->Kill9();
  aggregator = AggregatorProcess::Start(dir / "aggregator.yaml", dir / "aggregator.log", &error);
  ASSERT_NE(aggregator, nullptr) << error;
  const std::string restart_log = aggregator->Log();
  EXPECT_TRUE(std::regex_search(restart_log, std::regex("round 2 continues with its [123] accepted updates")) ||
              restart_log.find("round 2 closed") != std::string::npos)
      << restart_log;
  ASSERT_TRUE(aggregator->WaitForLog("round 3 closed", std::chrono::minutes(15))) << aggregator->Log();

  // The held-out loss of the global adapter fell round after round.
  auto store = StateStore::Open((dir / "state" / "state.db").string());
  ASSERT_TRUE(store.ok()) << store.status();
  auto versions = (*store)->Versions("stories260K");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 4u);
  double previous = 1e9;
  for (const VersionRecord& v : *versions) {
    const double loss = nlohmann::json::parse(v.metrics)["eval_loss"].get<double>();
    EXPECT_LT(loss, previous) << "version " << v.version;
    previous = loss;
  }
  EXPECT_LT(previous, 0.5 * nlohmann::json::parse(versions->front().metrics)["eval_loss"].get<double>());

  // The model with the last version says what each device taught it.
  auto model = engine::LlamaModel::Load(kModel, {});
  ASSERT_TRUE(model.ok());
  auto adapter = engine::LoraAdapter::Load((dir / "state" / "models" / "stories260K" / "v4").string(),
                                           (*model)->config());
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  for (const Fact& f : kFacts) {
    const std::string text = Greedy(**model, *adapter, f.prompt);
    EXPECT_EQ(text.substr(0, 20), f.completion.substr(0, 20)) << f.device << ": " << f.prompt << text;
  }

  // Each daemon sent exactly its encoded updates: B of every projection as
  // int8 with a scale per 32 values, compressed — never more than that.
  const double int8_bytes = 1.125 * static_cast<double>(ValueCount(AdapterTensors(*adapter, false)));
  std::map<std::string, uint64_t> update_bytes;
  for (uint64_t round = 1; round <= 3; ++round) {
    auto updates = (*store)->Updates("stories260K", round);
    ASSERT_TRUE(updates.ok());
    ASSERT_EQ(updates->size(), 3u);
    for (const UpdateRecord& u : *updates) {
      update_bytes[u.device_id] += u.bytes;
      EXPECT_LT(static_cast<double>(u.bytes), int8_bytes + 4096) << u.device_id << " round " << round;
      EXPECT_GT(static_cast<double>(u.bytes), 0.25 * int8_bytes) << u.device_id << " round " << round;
    }
  }
  for (const Fact& f : kFacts) {
    // An upload cut by the kill may have sent some bytes twice, never more than one update's worth.
    const std::string metrics = edgellm::testing::HttpGet(metrics_ports[f.device], "/metrics").body;
    const double sent = MetricValue(metrics, "edgellm_federation_sent_bytes");
    EXPECT_GE(sent, static_cast<double>(update_bytes[f.device])) << f.device;
    EXPECT_LE(sent, static_cast<double>(update_bytes[f.device]) * 4 / 3) << f.device;
    EXPECT_EQ(MetricValue(metrics, "edgellm_federation_rounds_submitted"), 3.0) << f.device;
  }
}

}  // namespace
}  // namespace edgellm::federated
