// Speculative decoding in edgellmd: a daemon that drafts by default
// (--draft-tokens), by prompt lookup or with a draft model (--draft-model),
// gives every greedy request exactly the tokens it gives with drafting turned
// off per request, also when several run in one batch, and reports drafts and
// acceptances per request and in /metrics.
#include <gtest/gtest.h>

#include <thread>

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
using testing::ScrapeMetric;
using testing::Stream;

const std::string kModel = testing::SharedPath("models/stories260K.gguf");

v1::GenerateRequest WithDrafts(v1::GenerateRequest request, uint32_t draft_tokens) {
  request.set_draft_tokens(draft_tokens);
  return request;
}

TEST(DaemonSpeculative, DraftedOutputEqualsPlainOutputInABatchAndIsCounted) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  std::string error;
  auto daemon = DaemonProcess::Start(kModel, {"--draft-tokens", "6", "--metrics-listen", "127.0.0.1:0"}, &error);
  ASSERT_NE(daemon, nullptr) << error;
  const int port = daemon->LoggedPort("metrics on port ");
  auto stub = v1::Inference::NewStub(daemon->channel());

  const std::vector<std::string> prompts = {"Once upon a time", "Lily and Ben went to the park",
                                            "The little dog said", "Tom had a big red ball"};
  std::vector<Stream> drafted(prompts.size()), plain(prompts.size());
  {
    std::vector<std::thread> clients;  // all four decode in the same batched steps
    for (size_t i = 0; i < prompts.size(); ++i) {
      clients.emplace_back([&, i] { drafted[i] = Generate(*stub, Greedy(prompts[i], 200)); });
    }
    for (std::thread& t : clients) t.join();
  }
  int64_t draft_sum = 0, accepted_sum = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    plain[i] = Generate(*stub, WithDrafts(Greedy(prompts[i], 200), 0));
    ASSERT_TRUE(drafted[i].status.ok() && plain[i].status.ok()) << drafted[i].status.error_message();
    EXPECT_EQ(drafted[i].token_ids, plain[i].token_ids) << prompts[i];
    EXPECT_EQ(drafted[i].text, plain[i].text) << prompts[i];
    const v1::Usage& usage = drafted[i].last.usage();
    EXPECT_EQ(usage.completion_tokens(), drafted[i].token_ids.size());
    EXPECT_LE(usage.accepted_tokens(), usage.draft_tokens());
    EXPECT_EQ(plain[i].last.usage().draft_tokens(), 0u);
    draft_sum += usage.draft_tokens();
    accepted_sum += usage.accepted_tokens();
  }
  EXPECT_GT(draft_sum, 0);
  EXPECT_GT(accepted_sum, 0);
  EXPECT_EQ(ScrapeMetric(port, "edgellm_spec_decode_num_draft_tokens_total{model=\"stories260K\"}"), draft_sum);
  EXPECT_EQ(ScrapeMetric(port, "edgellm_spec_decode_num_accepted_tokens_total{model=\"stories260K\"}"),
            accepted_sum);

  // Sampled requests speculate too, and a request may not ask for more than 64 drafts.
  v1::GenerateRequest sampled = Greedy("Once upon a time", 64);
  sampled.mutable_sampling()->set_temperature(0.8f);
  sampled.mutable_sampling()->set_seed(3);
  const Stream s = Generate(*stub, sampled);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(s.last.usage().completion_tokens(), s.token_ids.size());
  const Stream refused = Generate(*stub, WithDrafts(Greedy("Once", 4), 65));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(refused.status.error_message().find("draft_tokens"), std::string::npos);
}

// stories260K drafting for itself: greedy drafts nearly always stand, and the
// output is the plain output all the same.
TEST(DaemonSpeculative, ADraftModelsDraftsGiveThePlainOutput) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  std::string error;
  auto daemon = DaemonProcess::Start(kModel, {"--draft-model", kModel, "--draft-tokens", "4"}, &error);
  ASSERT_NE(daemon, nullptr) << error;
  auto stub = v1::Inference::NewStub(daemon->channel());

  const std::vector<std::string> prompts = {"Once upon a time", "The little dog said"};
  std::vector<Stream> drafted(prompts.size());
  {
    std::vector<std::thread> clients;  // both draft in the same batched steps
    for (size_t i = 0; i < prompts.size(); ++i) {
      clients.emplace_back([&, i] { drafted[i] = Generate(*stub, Greedy(prompts[i], 150)); });
    }
    for (std::thread& t : clients) t.join();
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Stream plain = Generate(*stub, WithDrafts(Greedy(prompts[i], 150), 0));
    ASSERT_TRUE(drafted[i].status.ok() && plain.status.ok()) << drafted[i].status.error_message();
    EXPECT_EQ(drafted[i].token_ids, plain.token_ids) << prompts[i];
    const v1::Usage& usage = drafted[i].last.usage();
    EXPECT_GT(usage.draft_tokens(), 0u);
    EXPECT_GE(usage.accepted_tokens() * 10, usage.draft_tokens() * 9) << usage.ShortDebugString();
  }

  // A sampled request drafts by sampling the draft model, and keeps only what the rule lets stand.
  v1::GenerateRequest sampled = Greedy("Once upon a time", 64);
  sampled.mutable_sampling()->set_temperature(0.8f);
  sampled.mutable_sampling()->set_seed(5);
  const Stream s = Generate(*stub, sampled);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_GT(s.last.usage().draft_tokens(), 0u);
  EXPECT_EQ(s.last.usage().completion_tokens(), s.token_ids.size());
}

TEST(DaemonSpeculative, ADraftModelWithAnotherVocabularyStopsStartUp) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  std::string error;
  const std::string other = testing::SyntheticModel("test-spm", engine::GgmlType::kF32);  // 384 tokens, not 512
  auto daemon = DaemonProcess::Start(kModel, {"--draft-model", other}, &error);
  EXPECT_EQ(daemon, nullptr);
  EXPECT_NE(error.find("exited during start-up with status 2"), std::string::npos) << error;
}

}  // namespace
}  // namespace edgellm
