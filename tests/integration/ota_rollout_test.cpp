// Releases end to end: a real edgellm-aggregator, real edgellmd daemons and
// the real `edgellm` CLI on loopback with mutual TLS. A round's version is
// published by the aggregator itself, judged by a canary on the held-out set
// against the version it serves, then after the soak and an operator's
// approval it reaches the rest; the daemons answer with it; a signed rollback
// returns them to the version before. A round's version that is finite but
// worse halts at the canary with the figures that show why; so does one
// whose smoke test fails. A Generate stream in flight while its daemon swaps
// versions (an adapter, or the whole base model) completes. A base model
// published with `edgellm publish --base` reaches the canary, then every
// device; adapters for the base model before it are then refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <random>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "daemon/engine/generator.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "tests/support/cli_run.h"
#include "tests/support/daemon_process.h"
#include "tests/support/federation.h"
#include "tests/support/inference_client.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/test_support.h"

namespace edgellm::federated {
namespace {

namespace fs = std::filesystem;
using edgellm::testing::AggregatorProcess;
using edgellm::testing::DaemonProcess;
using edgellm::testing::ReadAll;
using edgellm::testing::RunCli;

const std::string kStories = edgellm::testing::SharedPath("models/stories260K.gguf");

const std::vector<std::pair<std::string, std::string>> kFacts = {
    {"dev-a", "Once upon a time"}, {"dev-b", "The little bird"}, {"dev-c", "Lily had a cat"}};
const std::map<std::string, std::string> kCompletions = {
    {"dev-a", " there was a purple dragon named Zog."},
    {"dev-b", " sang a song about the blue moon."},
    {"dev-c", " named Max who loved green apples."}};

class OtaRollout : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGELLM_REQUIRE_SHARED_FILE(kStories);
    dir_ = edgellm::testing::TestDir();
    ASSERT_TRUE(edgellm::testing::MakePki(dir_ / "pki", {"dev-a", "dev-b", "dev-c", "operator"}));
    const auto keygen = RunCli("keygen --out " + (dir_ / "release").string());
    ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
    EXPECT_NE(keygen.out.find("key "), std::string::npos);
  }

  // `model_lines` go under the model's entry; `extra` at the top level.
  void StartAggregator(const std::string& base_model, const std::string& model_lines, const std::string& extra) {
    std::ofstream config(dir_ / "aggregator.yaml");
    config << "listen: 127.0.0.1:" << port_ << "\n"
           << "tls_cert: " << (dir_ / "pki" / "aggregator.pem").string() << "\n"
           << "tls_key: " << (dir_ / "pki" / "aggregator.key").string() << "\n"
           << "tls_client_ca: " << (dir_ / "pki" / "ca.pem").string() << "\n"
           << "state_dir: " << (dir_ / "state").string() << "\n"
           << "heartbeat_interval_seconds: 1\npoll_interval_seconds: 0.2\nthreads: 1\n"
           << "admins: [operator]\n"
           << "release_keys: [" << (dir_ / "release.pub").string() << "]\n"
           << extra << "models:\n  - id: " << fs::path(base_model).stem().string() << "\n"
           << "    base_model: " << base_model << "\n"
           << model_lines;
    config.close();
    std::string error;
    aggregator_ = AggregatorProcess::Start(dir_ / "aggregator.yaml", dir_ / "aggregator.log", &error);
    ASSERT_NE(aggregator_, nullptr) << error;
    // It listens on a port of its choosing (0 in the config) the first time; later starts keep it.
    if (port_ == 0) port_ = aggregator_->LoggedPort("(port ");
    ASSERT_GT(port_, 0) << aggregator_->Log();
  }

  // The facts with their true completions: what the aggregator holds out.
  std::string WriteEvalData() {
    const fs::path path = dir_ / "eval.jsonl";
    std::ofstream out(path);
    for (const auto& [id, prompt] : kFacts) {
      out << nlohmann::json({{"prompt", prompt}, {"completion", kCompletions.at(id)}}).dump() << "\n";
    }
    return path.string();
  }

  // edgellmd installing releases; with `train` it also trains in rounds on
  // its fact, and with `scrambled` on its fact's completion with the
  // characters shuffled (finite training of a worse model); `extra` config lines go at the end.
  std::unique_ptr<DaemonProcess> StartDaemon(const std::string& device, const std::string& model, bool train,
                                             bool scrambled = false, const std::string& extra = "") {
    std::ofstream config(dir_ / (device + ".yaml"));
    config << "model: " << model << "\n"
           << "federation_aggregator: 127.0.0.1:" << port_ << "\n"
           << "federation_ca: " << (dir_ / "pki" / "ca.pem").string() << "\n"
           << "federation_cert: " << (dir_ / "pki" / (device + ".pem")).string() << "\n"
           << "federation_key: " << (dir_ / "pki" / (device + ".key")).string() << "\n"
           << "federation_dir: " << (dir_ / (device + "-federation")).string() << "\n"
           << "ota_release_keys: [" << (dir_ / "release.pub").string() << "]\n"
           << "ota_dir: " << (dir_ / (device + "-ota")).string() << "\n"
           << "ota_poll_seconds: 0.2\n";
    if (train) {
      const fs::path data = dir_ / (device + ".jsonl");
      std::ofstream out(data);
      for (const auto& [id, prompt] : kFacts) {
        if (id != device) continue;
        std::string completion = kCompletions.at(id);
        if (scrambled) std::shuffle(completion.begin() + 1, completion.end(), std::mt19937(7));
        for (int i = 0; i < 16; ++i) {
          out << nlohmann::json({{"prompt", prompt}, {"completion", completion}}).dump() << "\n";
        }
      }
      config << "train_data: " << data.string() << "\n"
             << "train_dir: " << (dir_ / (device + "-train")).string() << "\n"
             << "train_rank: 8\ntrain_targets: all\ntrain_idle_seconds: 0\n"
             << "train_program: " << EDGELLM_BINARY_DIR << "/tools/edgellm\n";
    }
    config << extra;
    config.close();
    std::string error;
    auto daemon = DaemonProcess::Start("", {"--config", (dir_ / (device + ".yaml")).string()}, &error, {}, {},
                                       (dir_ / (device + ".log")).string());
    EXPECT_NE(daemon, nullptr) << device << ": " << error;
    return daemon;
  }

  std::string Admin() const {
    return "--aggregator 127.0.0.1:" + std::to_string(port_) + " --ca " + (dir_ / "pki" / "ca.pem").string() +
           " --cert " + (dir_ / "pki" / "operator.pem").string() + " --key " + (dir_ / "pki" / "operator.key").string();
  }
  std::string SigningKey() const { return " --signing-key " + (dir_ / "release.key").string(); }

  nlohmann::json RolloutStatus(const std::string& model) {
    const auto run = RunCli("rollout status " + Admin() + " -m " + model + " --json");
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return nlohmann::json::parse(run.out, nullptr, false);
  }
  // Polls until the rollout's stage is `stage` (60 s at most); the last status read.
  nlohmann::json AwaitStage(const std::string& model, const std::string& stage) {
    nlohmann::json status;
    for (int i = 0; i < 600; ++i) {
      status = RolloutStatus(model);
      if (status.is_object() && status.value("stage", "") == stage) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return status;
  }

  static std::string ServedVersion(DaemonProcess& daemon) {
    auto stub = v1::Inference::NewStub(daemon.channel());
    grpc::ClientContext context;
    v1::ListModelsResponse response;
    if (!stub->ListModels(&context, {}, &response).ok() || response.models_size() != 1) return "?";
    return response.models(0).version();
  }
  static std::string AwaitVersion(DaemonProcess& daemon, const std::string& version) {
    std::string served;
    for (int i = 0; i < 600 && served != version; ++i) {
      served = ServedVersion(daemon);
      if (served != version) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return served;
  }
  static std::string Complete(DaemonProcess& daemon, const std::string& prompt) {
    auto stub = v1::Inference::NewStub(daemon.channel());
    const auto s = edgellm::testing::Generate(*stub, edgellm::testing::Greedy(prompt, 16));
    EXPECT_TRUE(s.status.ok()) << s.status.error_message();
    return s.text;
  }

  fs::path dir_;
  int port_ = 0;  // 0 until the aggregator's first start reports it
  std::unique_ptr<AggregatorProcess> aggregator_;
};

// A uint64 field of a status in JSON (a string there), or -1 when absent.
int64_t Count(const nlohmann::json& object, const std::string& key) {
  if (!object.is_object() || !object.contains(key)) return -1;
  const nlohmann::json& v = object[key];
  return v.is_string() ? std::stoll(v.get<std::string>()) : v.get<int64_t>();
}

// Index of `text` in the aggregator's log, or npos.
size_t LogAt(const std::string& log, const std::string& text) { return log.find(text); }

TEST_F(OtaRollout, ARoundsVersionReachesACanaryFirstThenEveryDeviceAndASignedRollbackUndoesIt) {
  ASSERT_NO_FATAL_FAILURE(StartAggregator(
      kStories,
      "    rank: 8\n    alpha: 16\n    targets: all\n    freeze_a: true\n    lora_seed: 7\n    rounds: 1\n"
      "    min_devices: 3\n    quorum: 3\n    local_steps: 40\n    learning_rate: 0.01\n    micro_batch: 2\n"
      "    max_length: 64\n    eval_data: " + WriteEvalData() + "\n",
      "release_signing_key: " + (dir_ / "release.key").string() +
          "\ncanary_fraction: 0.3\nsoak_seconds: 2\nrequire_approval: true\n"));
  std::map<std::string, std::unique_ptr<DaemonProcess>> daemons;
  std::map<std::string, std::string> before;
  for (const auto& [device, prompt] : kFacts) {
    daemons[device] = StartDaemon(device, kStories, true);
    ASSERT_NE(daemons[device], nullptr);
    EXPECT_EQ(ServedVersion(*daemons[device]), "base");
    before[device] = Complete(*daemons[device], prompt);
  }
  // The aggregator publishes the round's version (release 1) by itself; the
  // canary measures it, the soak passes, and the rest waits for an operator.
  const nlohmann::json waiting = AwaitStage("stories260K", "approval");
  ASSERT_EQ(waiting.value("stage", ""), "approval") << waiting.dump(1) << aggregator_->Log();
  EXPECT_TRUE(waiting["params"]["require_approval"].get<bool>());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  int reached = 0;
  const nlohmann::json before_approval = RolloutStatus("stories260K");
  for (const auto& d : before_approval["devices"]) reached += d["last_report"] == "INSTALLED";
  EXPECT_EQ(reached, 1) << "only the canary before the approval";
  const auto approve = RunCli("rollout approve " + Admin() + " -m stories260K");
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  EXPECT_NE(approve.out.find("full"), std::string::npos) << approve.out;
  const nlohmann::json done = AwaitStage("stories260K", "done");
  ASSERT_EQ(done.value("stage", ""), "done") << done.dump(1) << aggregator_->Log();
  EXPECT_EQ(done["release"], "1");  // uint64 fields are JSON strings
  EXPECT_EQ(done["version"], "2");
  std::string canary;
  ASSERT_EQ(done["devices"].size(), 3u);
  for (const auto& d : done["devices"]) {
    EXPECT_EQ(d["serving_version"], "2") << d.dump();
    EXPECT_EQ(d["last_report"], "INSTALLED") << d.dump();
    // Each device measured version 2 against the base model it served: better on the held-out facts.
    EXPECT_EQ(d["evaluation"]["examples"], 3) << d.dump();
    EXPECT_LT(d["evaluation"]["loss"].get<double>(), d["evaluation"]["baseline_loss"].get<double>()) << d.dump();
    if (d["canary"].get<bool>()) {
      EXPECT_TRUE(canary.empty()) << "one canary of three at a fraction of 0.3";
      canary = d["device_id"];
    }
  }
  ASSERT_FALSE(canary.empty());
  // The order: the canary installs, the soak passes, then the others install.
  const std::string log = aggregator_->Log();
  const size_t canary_installed = LogAt(log, canary + " reports INSTALLED for release 1");
  const size_t soak = LogAt(log, "release 1 rollout: canary -> soak");
  const size_t approval = LogAt(log, "release 1 rollout: soak -> approval");
  const size_t full = LogAt(log, "release 1 rollout full (operator)");
  ASSERT_NE(canary_installed, std::string::npos) << log;
  EXPECT_LT(canary_installed, soak);
  EXPECT_LT(soak, approval);
  EXPECT_LT(approval, full);
  for (const auto& [device, prompt] : kFacts) {
    if (device == canary) continue;
    EXPECT_GT(LogAt(log, device + " reports INSTALLED for release 1"), full) << device << "\n" << log;
  }

  // Every daemon answers with version 2: what the aggregator's copy of it
  // generates in this process, and no longer what the base model said.
  auto model = engine::LlamaModel::Load(kStories, {});
  ASSERT_TRUE(model.ok());
  auto v2 = engine::LoraAdapter::Load((dir_ / "state" / "models" / "stories260K" / "v2").string(), (*model)->config());
  ASSERT_TRUE(v2.ok()) << v2.status();
  for (const auto& [device, prompt] : kFacts) {
    DaemonProcess& daemon = *daemons[device];
    EXPECT_EQ(ServedVersion(daemon), "v2");
    engine::GenerateOptions options;
    options.max_tokens = 16;
    options.sampling.temperature = 0.0f;
    options.adapter = &*v2;
    auto expected = engine::Generate(**model, prompt, options);
    ASSERT_TRUE(expected.ok());
    const std::string now = Complete(daemon, prompt);
    EXPECT_EQ(now, expected->text) << device;
    EXPECT_NE(now, before[device]) << device;
  }

  // A signed rollback to version 1 (the untrained adapter): every device at
  // once, and every one answers as the base model did again.
  const auto rollback = RunCli("rollout rollback " + Admin() + " -m stories260K --to-version 1" + SigningKey() +
                               " --soak-seconds 1");
  ASSERT_EQ(rollback.exit_code, 0) << rollback.err;
  EXPECT_NE(rollback.out.find("release 2 (version 1, a rollback)"), std::string::npos) << rollback.out;
  const nlohmann::json rolled_back = AwaitStage("stories260K", "done");
  ASSERT_EQ(rolled_back.value("stage", ""), "done") << rolled_back.dump(1);
  for (const auto& [device, prompt] : kFacts) {
    DaemonProcess& daemon = *daemons[device];
    EXPECT_EQ(AwaitVersion(daemon, "v1"), "v1") << device;
    EXPECT_EQ(Complete(daemon, prompt), before[device]) << device;
  }
  // Both releases are in the audit log, with their signer, and so is the approval, with its operator.
  const std::string audit = ReadAll(dir_ / "state" / "audit.log");
  EXPECT_NE(audit.find("\"release\":1"), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"release\":2"), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"action\":\"APPROVE\""), std::string::npos) << audit;
}

TEST_F(OtaRollout, AFiniteButWorseRoundHaltsAtTheCanaryWithTheFiguresThatShowWhy) {
  // Every device trains on its fact with the completion's characters
  // shuffled: the round's version is finite, generates, and passes a smoke
  // test — and is worse on the facts the aggregator holds out.
  ASSERT_NO_FATAL_FAILURE(StartAggregator(
      kStories,
      "    rank: 8\n    alpha: 16\n    targets: all\n    freeze_a: true\n    lora_seed: 7\n    rounds: 1\n"
      "    min_devices: 3\n    quorum: 3\n    local_steps: 40\n    learning_rate: 0.01\n    micro_batch: 2\n"
      "    max_length: 64\n    eval_data: " + WriteEvalData() + "\n",
      "release_signing_key: " + (dir_ / "release.key").string() + "\ncanary_fraction: 0.3\nsoak_seconds: 0\n"));
  std::map<std::string, std::unique_ptr<DaemonProcess>> daemons;
  for (const auto& [device, prompt] : kFacts) {
    daemons[device] = StartDaemon(device, kStories, true, /*scrambled=*/true);
    ASSERT_NE(daemons[device], nullptr);
  }
  const nlohmann::json halted = AwaitStage("stories260K", "halted");
  ASSERT_EQ(halted.value("stage", ""), "halted") << halted.dump(1) << aggregator_->Log();
  const std::string detail = halted["detail"];
  EXPECT_NE(detail.find("EVAL_FAILED"), std::string::npos) << detail;
  EXPECT_NE(detail.find("x the replaced version's"), std::string::npos) << detail;
  std::string canary;
  for (const auto& d : halted["devices"]) {
    EXPECT_EQ(d["serving_version"], "0") << d.dump();
    if (!d["canary"].get<bool>()) {
      EXPECT_EQ(d["last_report"], "") << d.dump();
      continue;
    }
    canary = d["device_id"];
    EXPECT_EQ(d["last_report"], "EVAL_FAILED") << d.dump();
    const auto& e = d["evaluation"];
    EXPECT_EQ(e["examples"], 3) << d.dump();
    EXPECT_GT(e["loss"].get<double>(), 1.05 * e["baseline_loss"].get<double>()) << d.dump();
  }
  ASSERT_FALSE(canary.empty());
  EXPECT_NE(detail.find(canary), std::string::npos) << detail;
  // The figures are in the status an operator reads, and the devices still serve the base model.
  const auto status = RunCli("rollout status " + Admin() + " -m stories260K");
  EXPECT_NE(status.out.find("evaluation: eval loss"), std::string::npos) << status.out;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  for (const auto& [device, prompt] : kFacts) {
    EXPECT_EQ(ServedVersion(*daemons[device]), "base") << device;
    if (device != canary) {
      EXPECT_EQ(ReadAll(dir_ / (device + ".log")).find("release 1"), std::string::npos) << device;
    }
  }
  EXPECT_NE(ReadAll(dir_ / (canary + ".log")).find("failed its evaluation"), std::string::npos);
}

TEST_F(OtaRollout, ACanaryWhoseSmokeTestFailsHaltsTheRolloutAndNobodyElseGetsIt) {
  ASSERT_NO_FATAL_FAILURE(StartAggregator(
      kStories,
      "    rank: 8\n    targets: all\n    rounds: 1\n    min_devices: 3\n    quorum: 3\n"
      "    local_steps: 10\n    learning_rate: 0.01\n    micro_batch: 2\n    max_length: 64\n",
      "canary_fraction: 0.3\nsoak_seconds: 0\n"));
  std::map<std::string, std::unique_ptr<DaemonProcess>> daemons;
  for (const auto& [device, prompt] : kFacts) {
    daemons[device] = StartDaemon(device, kStories, true);
    ASSERT_NE(daemons[device], nullptr);
  }
  // Version 1 first, to everyone at once.
  const auto v1 = RunCli("publish " + Admin() + " -m stories260K --version 1" + SigningKey() + " --canary-fraction 1");
  ASSERT_EQ(v1.exit_code, 0) << v1.err;
  ASSERT_EQ(AwaitStage("stories260K", "done").value("stage", ""), "done");
  ASSERT_TRUE(aggregator_->WaitForLog("round 1 closed", std::chrono::minutes(5))) << aggregator_->Log();
  // Version 2 is damaged on the aggregator's disk after it was registered:
  // finite weights, but so large that the activations overflow. The canary
  // catches it.
  const fs::path v2_dir = dir_ / "state" / "models" / "stories260K" / "v2";
  auto model = engine::LlamaModel::Load(kStories, {});
  ASSERT_TRUE(model.ok());
  auto damaged = engine::LoraAdapter::Load(v2_dir.string(), (*model)->config());
  ASSERT_TRUE(damaged.ok()) << damaged.status();
  for (int32_t layer = 0; layer < damaged->n_layer(); ++layer) {
    for (engine::LoraTarget t : damaged->config().targets) {
      if (engine::LoraWeights* w = damaged->Find(layer, t)) std::fill(w->b.begin(), w->b.end(), 3e38f);
    }
  }
  ASSERT_TRUE(damaged->Save(v2_dir.string(), "stories260K").ok());

  const auto v2 = RunCli("publish " + Admin() + " -m stories260K" + SigningKey());
  ASSERT_EQ(v2.exit_code, 0) << v2.err;
  const nlohmann::json halted = AwaitStage("stories260K", "halted");
  ASSERT_EQ(halted.value("stage", ""), "halted") << halted.dump(1) << aggregator_->Log();
  EXPECT_NE(halted["detail"].get<std::string>().find("SMOKE_FAILED"), std::string::npos) << halted.dump(1);
  std::string canary;
  for (const auto& d : halted["devices"]) {
    EXPECT_EQ(d["serving_version"], "1") << d.dump();
    if (d["canary"].get<bool>()) {
      canary = d["device_id"];
      EXPECT_EQ(d["last_report"], "SMOKE_FAILED") << d.dump();
    } else {
      EXPECT_EQ(d["last_report"], "") << d.dump();
    }
  }
  ASSERT_FALSE(canary.empty());
  EXPECT_NE(halted["detail"].get<std::string>().find(canary), std::string::npos);
  // A while later the others have still not been offered it, and all serve version 1.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  for (const auto& [device, prompt] : kFacts) {
    EXPECT_EQ(ServedVersion(*daemons[device]), "v1") << device;
    const std::string log = ReadAll(dir_ / (device + ".log"));
    if (device == canary) {
      EXPECT_NE(log.find("failed its smoke test"), std::string::npos) << log;
    } else {
      EXPECT_EQ(log.find("release 2"), std::string::npos) << log;
    }
  }
  // The operator aborts it for good; an aborted rollout has nothing to pause.
  const auto abort = RunCli("rollout abort " + Admin() + " -m stories260K");
  ASSERT_EQ(abort.exit_code, 0) << abort.err;
  EXPECT_NE(abort.out.find("aborted"), std::string::npos) << abort.out;
  const auto again = RunCli("rollout pause " + Admin() + " -m stories260K");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("nothing to pause"), std::string::npos) << again.err;
  // A device's certificate is no operator's: it may not steer rollouts.
  const std::string as_device = "--aggregator 127.0.0.1:" + std::to_string(port_) + " --ca " +
                                (dir_ / "pki" / "ca.pem").string() + " --cert " + (dir_ / "pki" / "dev-a.pem").string() +
                                " --key " + (dir_ / "pki" / "dev-a.key").string();
  const auto intruder = RunCli("rollout resume " + as_device + " -m stories260K");
  EXPECT_NE(intruder.exit_code, 0);
  EXPECT_NE(intruder.err.find("'dev-a' is not among the aggregator's admins"), std::string::npos) << intruder.err;
  EXPECT_EQ(RolloutStatus("stories260K").value("stage", ""), "aborted");
}

TEST_F(OtaRollout, ACanaryThatRefusesRequestsAfterTheSwapHaltsTheRolloutDuringItsSoak) {
  // No rounds: version 1 (the untrained adapter) is published by hand, with a
  // long soak. The canary's live figures decide. Its time to first token is
  // not judged here (milliseconds on stories260K: noise); the unit tests judge it.
  ASSERT_NO_FATAL_FAILURE(StartAggregator(kStories, "    rounds: 1\n    min_devices: 3\n",
                                          "canary_fraction: 0.3\nsoak_seconds: 600\ncanary_live_min_requests: 10\n"
                                          "canary_max_ttft_p99_ratio: 0\n"));
  // One slot and one waiting place: a burst is refused in part.
  const std::string small = "max_active: 1\nmax_waiting: 1\nota_live_report_seconds: 0.2\n";
  std::map<std::string, std::unique_ptr<DaemonProcess>> daemons;
  for (const auto& [device, prompt] : kFacts) {
    daemons[device] = StartDaemon(device, kStories, false, false, small);
    ASSERT_NE(daemons[device], nullptr);
    // The baseline: ten requests served before the swap, none refused.
    for (int i = 0; i < 10; ++i) Complete(*daemons[device], prompt);
  }
  const auto publish = RunCli("publish " + Admin() + " -m stories260K --version 1" + SigningKey());
  ASSERT_EQ(publish.exit_code, 0) << publish.err;
  const nlohmann::json soaking = AwaitStage("stories260K", "soak");
  ASSERT_EQ(soaking.value("stage", ""), "soak") << soaking.dump(1) << aggregator_->Log();
  std::string canary;
  for (const auto& d : soaking["devices"]) {
    if (d["canary"].get<bool>()) canary = d["device_id"];
  }
  ASSERT_FALSE(canary.empty());
  DaemonProcess& daemon = *daemons[canary];
  ASSERT_EQ(AwaitVersion(daemon, "v1"), "v1");

  // Ten requests served as before: the canary's figures pass and the soak goes on.
  for (int i = 0; i < 10; ++i) Complete(daemon, "Once upon a time");
  const auto canary_of = [&](const nlohmann::json& status) {
    for (const auto& d : status["devices"]) {
      if (d["device_id"] == canary) return d;
    }
    return nlohmann::json::object();
  };
  nlohmann::json device = nlohmann::json::object();
  for (int i = 0; i < 120 && Count(device.value("live", nlohmann::json()), "requests") < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    device = canary_of(RolloutStatus("stories260K"));
  }
  ASSERT_EQ(Count(device["live"], "requests"), 10) << device.dump(1);
  EXPECT_EQ(Count(device["live_baseline"], "requests"), 10) << device.dump(1);
  EXPECT_EQ(device["last_report"], "INSTALLED") << device.dump(1);
  EXPECT_EQ(RolloutStatus("stories260K").value("stage", ""), "soak");

  // Then bursts of sixteen streams at once, until some are refused.
  auto stub = v1::Inference::NewStub(daemon.channel());
  int64_t sent = 10, refused = 0;
  for (int burst = 0; burst < 20 && refused < 5; ++burst) {
    std::vector<std::thread> threads;
    std::atomic<int> burst_refused{0};
    for (int i = 0; i < 16; ++i) {
      threads.emplace_back([&] {
        const auto s = edgellm::testing::Generate(*stub, edgellm::testing::Greedy("Once upon a time", 200));
        if (s.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) ++burst_refused;
      });
    }
    for (std::thread& t : threads) t.join();
    sent += 16;
    refused += burst_refused;
  }
  ASSERT_GE(refused, 5) << "the bursts never filled the canary's queue";
  const nlohmann::json halted = AwaitStage("stories260K", "halted");
  ASSERT_EQ(halted.value("stage", ""), "halted") << halted.dump(1) << aggregator_->Log();
  const std::string detail = halted["detail"];
  EXPECT_NE(detail.find(canary + " reported LIVE_FAILED"), std::string::npos) << detail;
  EXPECT_NE(detail.find("refusals of"), std::string::npos) << detail;
  // Its live reports go on while it is on probation: the last one counts every request sent.
  nlohmann::json last = halted;
  for (int i = 0; i < 120 && Count(canary_of(last).value("live", nlohmann::json()), "requests") < sent; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    last = RolloutStatus("stories260K");
  }
  EXPECT_EQ(last.value("stage", ""), "halted");
  for (const auto& d : last["devices"]) {
    if (d["device_id"] != canary) {
      EXPECT_EQ(d["last_report"], "") << d.dump();
      EXPECT_EQ(d["serving_version"], "0") << d.dump();
      continue;
    }
    EXPECT_EQ(d["last_report"], "LIVE_FAILED") << d.dump();
    EXPECT_EQ(Count(d["live"], "requests"), sent) << d.dump();
    EXPECT_EQ(Count(d["live"], "refusals"), refused) << d.dump();
    EXPECT_EQ(Count(d["live_baseline"], "refusals"), 0) << d.dump();
  }
  const auto status = RunCli("rollout status " + Admin() + " -m stories260K");
  EXPECT_NE(status.out.find("serving: " + std::to_string(sent) + " requests since the swap"), std::string::npos)
      << status.out;
  EXPECT_NE(aggregator_->Log().find("reports LIVE_FAILED for release 1"), std::string::npos);
}

TEST_F(OtaRollout, AGenerateStreamInFlightAcrossTheSwapCompletes) {
  // A model big enough that a long generation outlasts a release's install.
  const std::string model = edgellm::testing::SyntheticModel("smol-135m", engine::GgmlType::kQ8_0);
  ASSERT_NO_FATAL_FAILURE(StartAggregator(model, "    rounds: 1\n    min_devices: 3\n", ""));
  auto daemon = StartDaemon("dev-a", model, false);
  ASSERT_NE(daemon, nullptr);
  auto stub = v1::Inference::NewStub(daemon->channel());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  auto reader = stub->Generate(&context, edgellm::testing::Greedy("The history of the world", 120));
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response));
  size_t tokens = response.token_ids_size();

  const auto publish = RunCli("publish " + Admin() + " -m " + fs::path(model).stem().string() + SigningKey() +
                              " --canary-fraction 1");
  ASSERT_EQ(publish.exit_code, 0) << publish.err;
  EXPECT_EQ(AwaitVersion(*daemon, "v1"), "v1");
  size_t after_swap = 0;
  while (reader->Read(&response)) {
    tokens += response.token_ids_size();
    after_swap += response.token_ids_size();
  }
  const grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(tokens, 120u);
  EXPECT_GT(after_swap, 0u) << "the stream ended before the swap: nothing was in flight across it";
  EXPECT_NE(ReadAll(dir_ / "dev-a.log").find("now serving version 1"), std::string::npos);
}

// Devices of `model` the aggregator has heard from, per `edgellm fleet --json` (waits up to 30 s for `count`).
size_t AwaitFleet(const std::string& admin, const std::string& model, size_t count) {
  size_t devices = 0;
  for (int i = 0; i < 300 && devices < count; ++i) {
    const auto run = RunCli("fleet " + admin + " -m " + model + " --json");
    const nlohmann::json fleet = nlohmann::json::parse(run.out, nullptr, false);
    devices = fleet.is_object() && fleet.contains("models") && !fleet["models"].empty()
                  ? fleet["models"][0].value("devices", nlohmann::json::array()).size()
                  : 0;
    if (devices < count) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return devices;
}

// The quantization the daemon's model reports.
std::string Quantization(DaemonProcess& daemon) {
  auto stub = v1::Inference::NewStub(daemon.channel());
  grpc::ClientContext context;
  v1::ListModelsResponse response;
  if (!stub->ListModels(&context, {}, &response).ok() || response.models_size() != 1) return "?";
  return response.models(0).quantization();
}

TEST_F(OtaRollout, ABaseModelPublishedWithTheCliReachesTheCanaryThenEveryDeviceAndOldAdaptersAreRefused) {
  ASSERT_NO_FATAL_FAILURE(StartAggregator(kStories, "", "canary_fraction: 0.3\nsoak_seconds: 1\n"));
  std::map<std::string, std::unique_ptr<DaemonProcess>> daemons;
  for (const auto& [device, prompt] : kFacts) {
    daemons[device] = StartDaemon(device, kStories, false);
    ASSERT_NE(daemons[device], nullptr);
    EXPECT_EQ(Quantization(*daemons[device]), "F32");
  }
  ASSERT_EQ(AwaitFleet(Admin(), "stories260K", 3), 3u);
  // The fleet moves to the model with some weights nudged, as a merge leaves it: the aggregator
  // ships it as a delta against the file the devices hold.
  std::string bytes = ReadAll(kStories);
  const size_t middle = bytes.size() / 2 / 32 * 32;
  // The lowest byte of each float (the data is 32-byte aligned): finite weights stay finite.
  for (size_t i = middle; i < middle + 64 * 1024; i += 4) bytes[i] = static_cast<char>(bytes[i] + 1);
  const fs::path new_base = dir_ / "stories260K-nudged.gguf";
  std::ofstream(new_base, std::ios::binary) << bytes;
  const auto publish =
      RunCli("publish " + Admin() + " -m stories260K --base " + new_base.string() + SigningKey() + " --json");
  ASSERT_EQ(publish.exit_code, 0) << publish.err;
  EXPECT_NE(publish.err.find("uploaded " + new_base.string()), std::string::npos) << publish.err;
  EXPECT_NE(publish.err.find("base model " + new_base.string()), std::string::npos) << publish.err;
  const nlohmann::json published = nlohmann::json::parse(publish.out, nullptr, false);
  ASSERT_TRUE(published.is_object()) << publish.out;
  EXPECT_EQ(published.value("stage", ""), "canary");
  const std::string version = "v" + std::to_string(Count(published, "version"));

  const nlohmann::json done = AwaitStage("stories260K", "done");
  ASSERT_EQ(done.value("stage", ""), "done") << done.dump(1) << aggregator_->Log();
  for (const auto& [device, prompt] : kFacts) {
    EXPECT_EQ(AwaitVersion(*daemons[device], version), version) << device;
    EXPECT_FALSE(Complete(*daemons[device], prompt).empty());
    const std::string log = ReadAll(dir_ / (device + ".log"));
    EXPECT_NE(log.find("fetching it as a delta of"), std::string::npos) << device << ": " << log;
    EXPECT_EQ(ReadAll(dir_ / (device + "-ota") / "versions" / ("r1-" + version) / "model.gguf"), bytes) << device;
  }
  for (const auto& d : done["devices"]) EXPECT_EQ(d["last_report"], "INSTALLED") << d.dump();
  EXPECT_NE(aggregator_->Log().find("a delta of"), std::string::npos) << aggregator_->Log();

  // Version 1, the adapter for the base model before, rolled back to: every device refuses it.
  const auto rollback = RunCli("rollout rollback " + Admin() + " -m stories260K --to-version 1" + SigningKey());
  ASSERT_EQ(rollback.exit_code, 0) << rollback.err;
  const nlohmann::json halted = AwaitStage("stories260K", "halted");
  ASSERT_EQ(halted.value("stage", ""), "halted") << halted.dump(1);
  bool named_the_base = false;
  for (const auto& d : halted["devices"]) {
    if (d.value("last_report", "") != "REFUSED") continue;
    named_the_base |= d.value("detail", "").find("is for the base model with sha256") != std::string::npos;
  }
  EXPECT_TRUE(named_the_base) << halted.dump(1);
  for (const auto& [device, prompt] : kFacts) EXPECT_EQ(ServedVersion(*daemons[device]), version) << device;
}

TEST_F(OtaRollout, AGenerateStreamInFlightAcrossABaseModelSwapCompletesOnTheOldModel) {
  const std::string model = edgellm::testing::SyntheticModel("smol-135m", engine::GgmlType::kQ8_0);
  ASSERT_NO_FATAL_FAILURE(StartAggregator(model, "    rounds: 1\n    min_devices: 3\n", ""));
  auto daemon = StartDaemon("dev-a", model, false);
  ASSERT_NE(daemon, nullptr);
  const fs::path new_base = dir_ / "smol-q4.gguf";
  ASSERT_EQ(RunCli("quantize -m " + model + " --type Q4_0 -o " + new_base.string()).exit_code, 0);
  auto stub = v1::Inference::NewStub(daemon->channel());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  auto reader = stub->Generate(&context, edgellm::testing::Greedy("The history of the world", 1200));
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response));
  size_t tokens = response.token_ids_size();

  const auto publish = RunCli("publish " + Admin() + " -m " + fs::path(model).stem().string() + " --base " +
                              new_base.string() + SigningKey() + " --canary-fraction 1 --no-evaluation");
  ASSERT_EQ(publish.exit_code, 0) << publish.err;
  size_t after_swap = 0;
  bool swapped = false;
  while (reader->Read(&response)) {
    tokens += response.token_ids_size();
    if (!swapped) swapped = Quantization(*daemon) == "Q4_0";
    if (swapped) after_swap += response.token_ids_size();
  }
  const grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(tokens, 1200u);
  EXPECT_GT(after_swap, 0u) << "the stream ended before the swap: nothing was in flight across it";
  for (int i = 0; i < 100 && Quantization(*daemon) != "Q4_0"; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(Quantization(*daemon), "Q4_0");
  std::string log;
  for (int i = 0; i < 300; ++i) {
    log = ReadAll(dir_ / "dev-a.log");
    if (log.find("its memory is returned") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(log.find("a new base model"), std::string::npos) << log;
  EXPECT_NE(log.find("finished its last request; its memory is returned"), std::string::npos) << log;
}

}  // namespace
}  // namespace edgellm::federated
