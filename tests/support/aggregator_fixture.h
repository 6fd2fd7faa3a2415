// tests/support/aggregator_fixture.h — a test fixture around a real
// edgellm-aggregator for the stories260K model, with three device
// certificates (dev-a, dev-b, dev-c) and helpers that make known deltas,
// upload them and read back the versions they made.
#ifndef EDGELLM_TESTS_SUPPORT_AGGREGATOR_FIXTURE_H_
#define EDGELLM_TESTS_SUPPORT_AGGREGATOR_FIXTURE_H_

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "federated/adapter/adapter_tensors.h"
#include "federated/protocol/sha256.h"
#include "federated/protocol/tensor_set.h"
#include "federated/protocol/update_codec.h"
#include "tests/support/federation.h"
#include "tests/support/http_get.h"
#include "tests/support/test_support.h"

namespace edgellm::federated::testing {

namespace fs = std::filesystem;
using edgellm::testing::AggregatorProcess;
using edgellm::testing::FederationTestClient;

const std::string kModel = edgellm::testing::SharedPath("models/stories260K.gguf");
const std::string kModelId = "stories";
const std::vector<std::string> kTargets = {"q_proj", "v_proj"};
constexpr int32_t kRank = 4;

struct Settings {
  int32_t min_devices = 3;
  int32_t quorum = 3;
  double round_timeout_seconds = 120;
  double liveness_timeout_seconds = 60;
  uint64_t max_update_bytes = 1 << 20;
  std::string strategy = "fedavg";
  // Lines added under the model's entry (two-space indented keys) and at the top level.
  std::string model_lines;
  std::string top_lines;
};

class AggregatorFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGELLM_REQUIRE_SHARED_FILE(kModel);
    dir_ = edgellm::testing::TestDir();
    ASSERT_TRUE(edgellm::testing::MakePki(dir_ / "pki", {"dev-a", "dev-b", "dev-c", "dev-d", "operator"}));
    auto sha = Sha256OfFile(kModel);
    ASSERT_TRUE(sha.ok());
    base_sha_ = *sha;
    // The layout of an update: B of q_proj and v_proj (FFA-LoRA), from the model's shapes.
    auto model = engine::LlamaModel::Load(kModel, {});
    ASSERT_TRUE(model.ok()) << model.status();
    engine::LoraConfig lora;
    lora.rank = kRank;
    lora.targets = {engine::LoraTarget::kQ, engine::LoraTarget::kV};
    auto adapter = engine::LoraAdapter::Create(lora, (*model)->config());
    ASSERT_TRUE(adapter.ok());
    layout_ = ZerosLike(AdapterTensors(*adapter, false));
  }

  void WriteConfig(const Settings& s) {
    std::ofstream out(dir_ / "aggregator.yaml");
    const fs::path pki = dir_ / "pki";
    out << "listen: 127.0.0.1:" << port_ << "\n"
        << "tls_cert: " << (pki / "aggregator.pem").string() << "\n"
        << "tls_key: " << (pki / "aggregator.key").string() << "\n"
        << "tls_client_ca: " << (pki / "ca.pem").string() << "\n"
        << "metrics_listen: 127.0.0.1:" << metrics_port_ << "\n"
        << "state_dir: " << (dir_ / "state").string() << "\n"
        << "heartbeat_interval_seconds: 1\npoll_interval_seconds: 0.2\n"
        << "liveness_timeout_seconds: " << s.liveness_timeout_seconds << "\n"
        << "threads: 1\n"
        << s.top_lines
        << "models:\n"
        << "  - id: " << kModelId << "\n"
        << "    base_model: " << kModel << "\n"
        << "    rank: " << kRank << "\n    targets: q_proj,v_proj\n    freeze_a: true\n"
        << "    min_devices: " << s.min_devices << "\n    quorum: " << s.quorum << "\n"
        << "    round_timeout_seconds: " << s.round_timeout_seconds << "\n"
        << "    max_update_bytes: " << s.max_update_bytes << "\n"
        << "    strategy: " << s.strategy << "\n"
        // Updates' norm bounds follow the training settings: deltas of up to
        // ~0.1 per value, as the tests send, are within them.
        << "    learning_rate: 0.01\n"
        << s.model_lines;
  }

  // The first start listens on ports the aggregator picks (0 in the config);
  // they are pinned in the config then, so a restart keeps the address.
  void StartAggregator() {
    std::string error;
    aggregator_ = AggregatorProcess::Start(dir_ / "aggregator.yaml", dir_ / "aggregator.log", &error);
    ASSERT_NE(aggregator_, nullptr) << error;
    if (port_ == 0) {
      port_ = aggregator_->LoggedPort("(port ");
      metrics_port_ = aggregator_->LoggedPort("metrics on port ");
      ASSERT_GT(port_, 0) << aggregator_->Log();
      ASSERT_GT(metrics_port_, 0) << aggregator_->Log();
      ASSERT_TRUE(edgellm::testing::PinPort(dir_ / "aggregator.yaml", "listen", port_));
      ASSERT_TRUE(edgellm::testing::PinPort(dir_ / "aggregator.yaml", "metrics_listen", metrics_port_));
    }
  }

  std::unique_ptr<FederationTestClient> Device(const std::string& id, const fs::path& pki_dir = {}) {
    const fs::path pki = pki_dir.empty() ? dir_ / "pki" : pki_dir;
    return std::make_unique<FederationTestClient>(
        "127.0.0.1:" + std::to_string(port_),
        edgellm::testing::DeviceCredentials(dir_ / "pki" / "ca.pem", pki / (id + ".pem"), pki / (id + ".key")), id);
  }

  // A delta whose values are `seed`-dependent and known to the test.
  TensorSet Delta(float seed) const {
    TensorSet delta = layout_;
    for (size_t t = 0; t < delta.size(); ++t) {
      for (size_t i = 0; i < delta[t].values.size(); ++i) {
        delta[t].values[i] = seed * 0.01f * std::sin(static_cast<float>(i + 7 * t) * seed);
      }
    }
    return delta;
  }

  FederationTestClient::Upload UploadOf(const TensorSet& delta, uint64_t round, uint64_t base_version,
                                        const std::string& key, int64_t examples) const {
    FederationTestClient::Upload u;
    u.model_id = kModelId;
    u.round_id = round;
    u.key = key;
    u.examples = examples;
    u.bytes = EncodeTensors({kModelId, round, base_version, delta}, TensorEncoding::kF32);
    u.sha256 = Sha256Hex(u.bytes);
    return u;
  }

  // dev-a, dev-b and dev-c, registered.
  std::tuple<std::unique_ptr<FederationTestClient>, std::unique_ptr<FederationTestClient>,
             std::unique_ptr<FederationTestClient>>
  ThreeDevices() {
    auto a = Device("dev-a");
    auto b = Device("dev-b");
    auto c = Device("dev-c");
    for (FederationTestClient* d : {a.get(), b.get(), c.get()}) {
      grpc::Status s = d->Register(kModelId, base_sha_, kRank, kTargets);
      EXPECT_TRUE(s.ok()) << d->device_id() << ": " << s.error_message();
    }
    return {std::move(a), std::move(b), std::move(c)};
  }

  // The adapter tensors (B only) of a version, fetched over the protocol.
  TensorSet FetchB(FederationTestClient& device, uint64_t version) {
    std::string bytes;
    grpc::Status s = device.Fetch(kModelId, version, &bytes);
    EXPECT_TRUE(s.ok()) << s.error_message();
    auto decoded = DecodeTensors(bytes);
    EXPECT_TRUE(decoded.ok()) << decoded.status();
    TensorSet b;
    if (!decoded.ok()) return b;
    for (NamedTensor& t : decoded->tensors) {
      if (t.name.ends_with("lora_B")) b.push_back(std::move(t));
    }
    return b;
  }

  // Expects `got` to be the example-weighted mean of the deltas (B started at zero).
  static void ExpectWeightedMean(const TensorSet& got, const std::vector<std::pair<TensorSet, double>>& deltas) {
    ASSERT_EQ(got.size(), deltas.front().first.size());
    double total = 0;
    for (const auto& [d, w] : deltas) total += w;
    for (size_t t = 0; t < got.size(); ++t) {
      for (size_t i = 0; i < got[t].values.size(); i += 13) {
        double mean = 0;
        for (const auto& [d, w] : deltas) mean += w * d[t].values[i];
        mean /= total;
        ASSERT_NEAR(got[t].values[i], mean, 1e-6 + 1e-5 * std::fabs(mean)) << got[t].name << "[" << i << "]";
      }
    }
  }

  std::string Metrics() { return edgellm::testing::HttpRequest(metrics_port_, "GET /metrics").body; }

  fs::path dir_;
  int port_ = 0;          // 0 until the first start reports it
  int metrics_port_ = 0;  // likewise
  std::string base_sha_;
  TensorSet layout_;
  std::unique_ptr<AggregatorProcess> aggregator_;
};

}  // namespace edgellm::federated::testing

#endif  // EDGELLM_TESTS_SUPPORT_AGGREGATOR_FIXTURE_H_
