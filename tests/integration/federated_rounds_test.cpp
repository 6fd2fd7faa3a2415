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
#include <thread>

#include <nlohmann/json.hpp>

#include "daemon/engine/generator.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "federated/adapter/adapter_tensors.h"
#include "federated/aggregator/state_store.h"
#include "federated/protocol/tensor_set.h"
#include "tests/support/daemon_process.h"
#include "tests/support/federation.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/process_state.h"
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

class FederatedRounds : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGELLM_REQUIRE_SHARED_FILE(kModel);
    dir_ = edgellm::testing::TestDir();
    ASSERT_TRUE(edgellm::testing::MakePki(dir_ / "pki", {"dev-a", "dev-b", "dev-c"}));
  }

  // The aggregator for `rounds` rounds of `local_steps` each, all three devices in each.
  void StartAggregator(int rounds, int local_steps, int quorum = 3, int liveness_seconds = 60) {
    {
      std::ofstream eval(dir_ / "eval.jsonl");
      for (const Fact& f : kFacts) {
        eval << nlohmann::json({{"prompt", f.prompt}, {"completion", f.completion}}).dump() << "\n";
      }
    }
    std::ofstream config(dir_ / "aggregator.yaml");
    config << "listen: 127.0.0.1:" << port_ << "\n"
           << "tls_cert: " << (dir_ / "pki" / "aggregator.pem").string() << "\n"
           << "tls_key: " << (dir_ / "pki" / "aggregator.key").string() << "\n"
           << "tls_client_ca: " << (dir_ / "pki" / "ca.pem").string() << "\n"
           << "state_dir: " << (dir_ / "state").string() << "\n"
           << "heartbeat_interval_seconds: 1\npoll_interval_seconds: 0.2\n"
           << "liveness_timeout_seconds: " << liveness_seconds << "\n"
           << "threads: 1\n"
           << "models:\n  - id: " << model_id_ << "\n    base_model: " << model_ << "\n"
           << "    rank: 8\n    alpha: 16\n    targets: all\n    freeze_a: true\n    lora_seed: 7\n"
           << "    rounds: " << rounds << "\n    min_devices: 3\n    quorum: " << quorum
           << "\n    round_timeout_seconds: 600\n"
           << "    local_steps: " << local_steps << "\n    learning_rate: 0.01\n    micro_batch: 2\n"
           << "    max_length: 64\n    encoding: int8\n    eval_data: " << (dir_ / "eval.jsonl").string() << "\n";
    config.close();
    RestartAggregator();
  }
  // The first start listens on a port the aggregator picks, pinned in its
  // config then, so that a restart keeps the address the daemons were given.
  void RestartAggregator() {
    std::string error;
    aggregator_ = AggregatorProcess::Start(dir_ / "aggregator.yaml", dir_ / "aggregator.log", &error);
    ASSERT_NE(aggregator_, nullptr) << error;
    if (port_ == 0) {
      port_ = aggregator_->LoggedPort("(port ");
      ASSERT_GT(port_, 0) << aggregator_->Log();
      ASSERT_TRUE(edgellm::testing::PinPort(dir_ / "aggregator.yaml", "listen", port_));
    }
  }

  // edgellmd holding `f`'s fact as its local data; its stderr in DEVICE.log.
  std::unique_ptr<DaemonProcess> StartDaemon(const Fact& f) {
    const fs::path data = dir_ / (f.device + ".jsonl");
    if (!fs::exists(data)) {
      std::ofstream out(data);
      for (int i = 0; i < 16; ++i) {
        out << nlohmann::json({{"prompt", f.prompt}, {"completion", f.completion}}).dump() << "\n";
      }
      out << R"({"text": "Lily and Ben went to the park. They played on the swings."})" << "\n";
      out << R"({"text": "The cat sat in the sun. It was warm and happy."})" << "\n";
    }
    const fs::path config = dir_ / (f.device + ".yaml");
    std::ofstream(config) << "model: " << model_ << "\n"
                          << "metrics_listen: 127.0.0.1:0\n"
                          << "train_data: " << data.string() << "\n"
                          << "train_dir: " << (dir_ / (f.device + "-train")).string() << "\n"
                          << "train_rank: 8\ntrain_targets: all\ntrain_idle_seconds: 0\n"
                          << "train_program: " << EDGELLM_BINARY_DIR << "/tools/edgellm\n"
                          << "federation_aggregator: 127.0.0.1:" << port_ << "\n"
                          << "federation_ca: " << (dir_ / "pki" / "ca.pem").string() << "\n"
                          << "federation_cert: " << (dir_ / "pki" / (f.device + ".pem")).string() << "\n"
                          << "federation_key: " << (dir_ / "pki" / (f.device + ".key")).string() << "\n"
                          << "federation_dir: " << FederationDir(f.device).string() << "\n";
    std::string error;
    auto daemon =
        DaemonProcess::Start("", {"--config", config.string()}, &error, {}, {}, (dir_ / (f.device + ".log")).string());
    EXPECT_NE(daemon, nullptr) << f.device << ": " << error;
    if (daemon != nullptr) metrics_ports_[f.device] = daemon->LoggedPort("metrics on port ");
    return daemon;
  }
  fs::path FederationDir(const std::string& device) const { return dir_ / (device + "-federation"); }
  std::string Metrics(const std::string& device) {
    return edgellm::testing::HttpGet(metrics_ports_[device], "/metrics").body;
  }

  // The base model every program runs, and its id in the aggregator.
  std::string model_ = kModel;
  std::string model_id_ = "stories260K";
  fs::path dir_;
  int port_ = 0;  // 0 until the aggregator's first start reports it
  std::unique_ptr<AggregatorProcess> aggregator_;
  std::map<std::string, int> metrics_ports_;  // each device's, as its last start reported it
};

TEST_F(FederatedRounds, ThreeDaemonsTeachTheGlobalAdapterWhatEachKnows) {
  ASSERT_NO_FATAL_FAILURE(StartAggregator(3, 30));
  std::vector<std::unique_ptr<DaemonProcess>> daemons;
  for (const Fact& f : kFacts) {
    daemons.push_back(StartDaemon(f));
    ASSERT_NE(daemons.back(), nullptr);
  }
  // kill -9 the aggregator in the middle of round 2, after it accepted an
  // update: the restarted one continues the round with it, and the daemons
  // (polling, uploading, retrying) finish the rounds against it.
  ASSERT_TRUE(aggregator_->WaitForLog("round 2: accepted", std::chrono::minutes(10))) << aggregator_->Log();
  aggregator_->Kill9();
  ASSERT_NO_FATAL_FAILURE(RestartAggregator());
  const std::string restart_log = aggregator_->Log();
  EXPECT_TRUE(std::regex_search(restart_log, std::regex("round 2 continues with its [123] accepted updates")) ||
              restart_log.find("round 2 closed") != std::string::npos)
      << restart_log;
  ASSERT_TRUE(aggregator_->WaitForLog("round 3 closed", std::chrono::minutes(15))) << aggregator_->Log();

  // The held-out loss of the global adapter fell round after round.
  auto store = StateStore::Open((dir_ / "state" / "state.db").string());
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
  auto adapter = engine::LoraAdapter::Load((dir_ / "state" / "models" / "stories260K" / "v4").string(),
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
    const std::string metrics = Metrics(f.device);
    const double sent = MetricValue(metrics, "edgellm_federation_sent_bytes");
    EXPECT_GE(sent, static_cast<double>(update_bytes[f.device])) << f.device;
    EXPECT_LE(sent, static_cast<double>(update_bytes[f.device]) * 4 / 3) << f.device;
    EXPECT_EQ(MetricValue(metrics, "edgellm_federation_rounds_submitted"), 3.0) << f.device;
  }
}

// A daemon killed with -9 in the middle of its training comes back and
// finishes the same round: its download is not fetched again, its trainer
// (which died with it) resumes from the checkpoint, and the round closes with
// all three updates. The quorum is two and a device silent for 4 s counts as
// gone, so the round waits for the third only because heartbeats keep every
// training device alive for the many seconds its training takes.
TEST_F(FederatedRounds, ADaemonKilledMidTrainingFinishesItsRoundAfterRestart) {
  ASSERT_NO_FATAL_FAILURE(StartAggregator(1, 400, 2, 4));
  std::vector<std::unique_ptr<DaemonProcess>> daemons;
  for (const Fact& f : kFacts) {
    daemons.push_back(StartDaemon(f));
    ASSERT_NE(daemons.back(), nullptr);
  }
  const fs::path checkpoint = FederationDir("dev-a") / "stories260K-round-1" / "trained" / "checkpoint.safetensors";
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (!fs::exists(checkpoint) && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(fs::exists(checkpoint));
  const std::string log_before = edgellm::testing::ReadAll(dir_ / "dev-a.log");
  const auto trainers = edgellm::testing::ChildrenOf(daemons[0]->pid());
  ASSERT_EQ(trainers.size(), 1u);
  daemons[0]->Kill9();
  // Its trainer goes with it: no orphan keeps writing the checkpoint.
  char state = 'R';
  for (int i = 0; i < 100 && state != 0 && state != 'Z'; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    state = edgellm::testing::ReadProcessStat(trainers.front().first).state;
  }
  EXPECT_TRUE(state == 0 || state == 'Z') << "the trainer is still in state " << state;
  daemons[0] = StartDaemon(kFacts[0]);
  ASSERT_NE(daemons[0], nullptr);
  ASSERT_TRUE(aggregator_->WaitForLog("round 1 closed", std::chrono::minutes(10))) << aggregator_->Log();
  EXPECT_NE(aggregator_->Log().find("round 1 closed (every selected device sent its update): version 2 from 3 updates"),
            std::string::npos)
      << aggregator_->Log();
  const std::string log = edgellm::testing::ReadAll(dir_ / "dev-a.log").substr(log_before.size());
  EXPECT_TRUE(std::regex_search(log, std::regex("from step [1-9][0-9]* of 400"))) << log;
  EXPECT_NE(log.find("update accepted"), std::string::npos) << log;
  // The restarted daemon fetched nothing: the round's adapter was on disk.
  EXPECT_EQ(MetricValue(Metrics("dev-a"), "edgellm_federation_fetched_bytes"), 0.0);
}

// Rounds do not depend on the architecture: three daemons serving a Qwen2
// model (biases, halves rotation, untied output) train it, the aggregator
// averages their updates into a version that lowers its held-out loss, and
// that version loads back onto the Qwen2 model as a PEFT adapter.
TEST_F(FederatedRounds, ARoundOnAQwen2ModelPublishesAVersionThatFitsIt) {
  model_ = edgellm::testing::SyntheticModel("test-qwen2", engine::GgmlType::kQ8_0);
  model_id_ = fs::path(model_).stem().string();  // a daemon names its model by the file
  ASSERT_NO_FATAL_FAILURE(StartAggregator(1, 20));
  std::vector<std::unique_ptr<DaemonProcess>> daemons;
  for (const Fact& f : kFacts) {
    daemons.push_back(StartDaemon(f));
    ASSERT_NE(daemons.back(), nullptr);
  }
  ASSERT_TRUE(aggregator_->WaitForLog("round 1 closed", std::chrono::minutes(10))) << aggregator_->Log();
  auto store = StateStore::Open((dir_ / "state" / "state.db").string());
  ASSERT_TRUE(store.ok()) << store.status();
  auto versions = (*store)->Versions(model_id_);
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_LT(nlohmann::json::parse(versions->back().metrics)["eval_loss"].get<double>(),
            nlohmann::json::parse(versions->front().metrics)["eval_loss"].get<double>());
  auto model = engine::LlamaModel::Load(model_, {});
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->config().architecture, "qwen2");
  auto adapter = engine::LoraAdapter::Load((dir_ / "state" / "models" / model_id_ / "v2").string(),
                                           (*model)->config());
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  std::vector<float> base, adapted;
  const std::vector<engine::TokenId> tokens = (*model)->tokenizer().Encode(kFacts[0].prompt);
  ASSERT_TRUE((*model)->ForwardNoCache(tokens, &base).ok());
  auto cache = (*model)->NewCache();
  ASSERT_TRUE(cache.ok());
  ASSERT_TRUE((*model)->Forward(tokens, cache->get(), true, &adapted, &*adapter).ok());
  EXPECT_NE(base, adapted) << "the version changes what the model computes";
}

}  // namespace
}  // namespace edgellm::federated
