// LoRA adapters in edgellmd: loaded by name at start-up (--adapter NAME=DIR),
// chosen per request by GenerateRequest.adapter, applied unmerged in the same
// batch as requests on the base model, never sharing prompt KV blocks with
// them, and listed in ListModels.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <random>
#include <thread>

#include "daemon/engine/generator.h"
#include "daemon/engine/lora_adapter.h"
#include "edgellm/v1/inference.grpc.pb.h"
#include "tests/support/daemon_process.h"
#include "tests/support/inference_client.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/test_support.h"

namespace edgellm {
namespace {

using testing::DaemonProcess;
using testing::Generate;
using testing::Greedy;
using testing::Stream;

const std::string kModel = testing::SharedPath("models/stories260K.gguf");

// An adapter on every projection with random B: it changes the output.
engine::LoraAdapter MakeAdapter(const engine::LlamaConfig& config, uint32_t seed) {
  engine::LoraConfig lora;
  lora.rank = 4;
  lora.alpha = 8.0f;
  lora.seed = seed;
  lora.targets = engine::AllLoraTargets();
  engine::LoraAdapter adapter = *engine::LoraAdapter::Create(lora, config);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  for (int32_t layer = 0; layer < config.n_layer; ++layer) {
    for (engine::LoraTarget t : lora.targets) {
      for (float& v : adapter.Find(layer, t)->b) v = normal(rng);
    }
  }
  return adapter;
}

std::vector<uint32_t> LocalGreedy(const engine::LlamaModel& model, const std::string& prompt, int max_tokens,
                                  const engine::LoraAdapter* adapter) {
  engine::GenerateOptions options;
  options.max_tokens = max_tokens;
  options.sampling.temperature = 0.0f;
  options.adapter = adapter;
  auto result = engine::Generate(model, prompt, options);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? std::vector<uint32_t>(result->token_ids.begin(), result->token_ids.end())
                     : std::vector<uint32_t>();
}

v1::GenerateRequest WithAdapter(v1::GenerateRequest request, const std::string& adapter) {
  request.set_adapter(adapter);
  return request;
}

TEST(DaemonAdapters, EachRequestRunsWithTheAdapterItNames) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const std::filesystem::path dir = testing::TestDir();
  auto model = engine::LlamaModel::Load(kModel, {});
  ASSERT_TRUE(model.ok());
  const engine::LoraAdapter red = MakeAdapter((*model)->config(), 1), blue = MakeAdapter((*model)->config(), 2);
  ASSERT_TRUE(red.Save((dir / "red").string(), "stories260K").ok());
  ASSERT_TRUE(blue.Save((dir / "blue").string(), "stories260K").ok());

  std::string error;
  auto daemon = DaemonProcess::Start(
      kModel, {"--adapter", "red=" + (dir / "red").string(), "--adapter", "blue=" + (dir / "blue").string()}, &error);
  ASSERT_NE(daemon, nullptr) << error;
  auto stub = v1::Inference::NewStub(daemon->channel());

  const std::string prompt = "Once upon a time, there was a little girl named Lily. She loved to play";
  const std::vector<uint32_t> base = LocalGreedy(**model, prompt, 40, nullptr);
  const std::vector<uint32_t> with_red = LocalGreedy(**model, prompt, 40, &red);
  const std::vector<uint32_t> with_blue = LocalGreedy(**model, prompt, 40, &blue);
  ASSERT_NE(base, with_red);
  ASSERT_NE(with_red, with_blue);

  // The base first, so its prompt blocks are cached; then all three at once,
  // in the same batched steps.
  ASSERT_EQ(Generate(*stub, Greedy(prompt, 40)).token_ids, base);
  std::vector<Stream> streams(3);
  const std::vector<std::string> names = {"", "red", "blue"};
  {
    std::vector<std::thread> clients;
    for (size_t i = 0; i < names.size(); ++i) {
      clients.emplace_back([&, i] { streams[i] = Generate(*stub, WithAdapter(Greedy(prompt, 40), names[i])); });
    }
    for (std::thread& t : clients) t.join();
  }
  for (const Stream& s : streams) ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(streams[0].token_ids, base);
  EXPECT_EQ(streams[1].token_ids, with_red) << "the adapter's request must not reuse the base's KV blocks";
  EXPECT_EQ(streams[2].token_ids, with_blue);

  const Stream unknown = Generate(*stub, WithAdapter(Greedy(prompt, 4), "green"));
  EXPECT_EQ(unknown.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(unknown.status.error_message().find("unknown adapter 'green'; loaded: blue, red"), std::string::npos)
      << unknown.status.error_message();

  grpc::ClientContext context;
  v1::ListModelsResponse models;
  ASSERT_TRUE(stub->ListModels(&context, v1::ListModelsRequest(), &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_EQ(std::vector<std::string>(models.models(0).adapters().begin(), models.models(0).adapters().end()),
            (std::vector<std::string>{"blue", "red"}));
}

TEST(DaemonAdapters, AnAdapterThatDoesNotFitStopsStartUp) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const std::filesystem::path dir = testing::TestDir();
  auto other = testing::LoadModel(testing::SyntheticModel("test-spm", engine::GgmlType::kF32));
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(MakeAdapter(other->config(), 1).Save((dir / "other").string(), "other").ok());
  // Run in the foreground to read its log: it must exit 2 and say why.
  const std::string command = std::string(EDGELLM_BINARY_DIR) + "/daemon/edgellmd --model " + kModel +
                              " --listen unix:" + (dir / "sock").string() + " --adapter other=" +
                              (dir / "other").string() + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string log;
  char buffer[512];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) log.append(buffer, n);
  const int status = ::pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << log;
  EXPECT_NE(log.find("adapter other: "), std::string::npos) << log;
  EXPECT_NE(log.find("gate_proj.lora_B.weight has shape [128, 4], the model needs [172, 4]"), std::string::npos) << log;
}

}  // namespace
}  // namespace edgellm
