// On-device training in edgellmd (train_data): the trainer runs as a child
// process while no request is served and is stopped the moment one arrives;
// generations under it stay exactly the plain ones; the finished adapter is
// served under train_adapter, and a restarted daemon serves it again from
// its checkpoint without training anew.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "edgellm/v1/inference.grpc.pb.h"
#include "tests/support/daemon_process.h"
#include "tests/support/inference_client.h"
#include "tests/support/process_state.h"
#include "tests/support/test_support.h"

namespace edgellm {
namespace {

using testing::DaemonProcess;
using testing::Generate;
using testing::Greedy;
using testing::Stream;

const std::string kModel = testing::SharedPath("models/stories260K.gguf");
const std::string kFact = " there was a purple dragon named Zog.";

// Its metrics are on a port the daemon picks (LoggedPort).
std::string Config(const std::filesystem::path& dir) {
  const std::string data = (dir / "facts.jsonl").string();
  {
    std::ofstream out(data);
    for (int i = 0; i < 16; ++i) {
      out << R"({"prompt": "Once upon a time", "completion": ")" << kFact << "\"}\n";
    }
  }
  const std::string path = (dir / "edgellmd.yaml").string();
  std::ofstream(path) << "model: " << kModel << "\n"
                      << "metrics_listen: 127.0.0.1:0\n"
                      << "train_data: " << data << "\n"
                      << "train_dir: " << (dir / "train").string() << "\n"
                      << "train_adapter: facts\n"
                      << "train_steps: 100\n"
                      << "train_learning_rate: 0.01\n"
                      << "train_targets: all\n"
                      << "train_max_length: 64\n"
                      << "train_micro_batch: 2\n"
                      << "train_idle_seconds: 0.3\n"
                      << "train_program: " << EDGELLM_BINARY_DIR << "/tools/edgellm\n";
  return path;
}

double AwaitAtLeast(int port, const std::string& series, double want) {
  double value = -1;
  for (int attempt = 0; attempt < 1500 && !(value >= want); ++attempt) {
    value = testing::ScrapeMetric(port, series);
    if (!(value >= want)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return value;
}

TEST(DaemonTraining, TrainsWhileIdlePausesForRequestsAndServesTheResult) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const std::filesystem::path dir = testing::TestDir();
  std::ifstream reference_file(testing::SharedPath("models/stories260K.reference.json"));
  const nlohmann::json reference = nlohmann::json::parse(reference_file)["references"][0];
  const std::vector<uint32_t> expected = reference["generated_token_ids"].get<std::vector<uint32_t>>();
  const std::string config = Config(dir);

  std::string error;
  auto daemon = DaemonProcess::Start("", {"--config", config}, &error);
  ASSERT_NE(daemon, nullptr) << error;
  const int port = daemon->LoggedPort("metrics on port ");
  auto stub = v1::Inference::NewStub(daemon->channel());
  ASSERT_GE(AwaitAtLeast(port, "edgellm_train_step", 1), 1) << "training starts while the daemon is idle";

  // A long stream: while it is in flight, the trainer is stopped. SIGSTOP is
  // sent before Submit returns; a trainer thread that waits for a CPU shows
  // as running until it is scheduled and stops, so look again as tokens come.
  grpc::ClientContext context;
  auto reader = stub->Generate(&context, Greedy("Once upon a time", 2000));
  v1::GenerateResponse response;
  std::vector<std::pair<pid_t, char>> children;
  bool stopped = false;
  while (!stopped && reader->Read(&response)) {
    children = testing::ChildrenOf(daemon->pid());
    ASSERT_EQ(children.size(), 1u) << "one trainer process";
    stopped = children[0].second == 'T';
  }
  EXPECT_TRUE(stopped) << "the trainer must be stopped while a request is served; it was '" << children[0].second
                       << "' to the end of the stream";
  const double step_during = testing::ScrapeMetric(port, "edgellm_train_step");
  while (reader->Read(&response)) {
  }
  ASSERT_TRUE(reader->Finish().ok());

  // Generations interleaved with training are the plain ones, token for token.
  for (int round = 0; round < 4; ++round) {
    const Stream s = Generate(*stub, Greedy("Once upon a time", 64));
    ASSERT_TRUE(s.status.ok()) << s.status.error_message();
    EXPECT_EQ(s.token_ids, expected) << "round " << round;
    std::this_thread::sleep_for(std::chrono::milliseconds(400));  // idle long enough for training to go on
  }
  EXPECT_GT(AwaitAtLeast(port, "edgellm_train_step", step_during + 1), step_during) << "training resumes when idle";

  ASSERT_EQ(AwaitAtLeast(port, "edgellm_train_state", 3), 3.0) << "training finishes";
  EXPECT_LT(testing::ScrapeMetric(port, "edgellm_train_eval_loss"), 1.0);
  v1::GenerateRequest tuned = Greedy("Once upon a time", 20);
  tuned.set_adapter("facts");
  // The adapter is added just after the state turns done.
  Stream taught = Generate(*stub, tuned);
  for (int attempt = 0; attempt < 100 && !taught.status.ok(); ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    taught = Generate(*stub, tuned);
  }
  ASSERT_TRUE(taught.status.ok()) << taught.status.error_message();
  EXPECT_EQ(taught.text.rfind(kFact, 0), 0u) << taught.text;
  EXPECT_EQ(daemon->Terminate(), 0);

  // Restarted on the same directory: nothing to train, the adapter is served again.
  auto again = DaemonProcess::Start("", {"--config", config}, &error);
  ASSERT_NE(again, nullptr) << error;
  const int port_again = again->LoggedPort("metrics on port ");
  ASSERT_EQ(AwaitAtLeast(port_again, "edgellm_train_state", 3), 3.0);
  EXPECT_EQ(testing::ScrapeMetric(port_again, "edgellm_train_step"), 0.0) << "no step was trained again";
  auto stub2 = v1::Inference::NewStub(again->channel());
  Stream served = Generate(*stub2, tuned);
  for (int attempt = 0; attempt < 100 && !served.status.ok(); ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    served = Generate(*stub2, tuned);
  }
  ASSERT_TRUE(served.status.ok()) << served.status.error_message();
  EXPECT_EQ(served.text, taught.text);
}

}  // namespace
}  // namespace edgellm
