// edgellmd's KV memory end to end: prefix reuse, multi-turn sessions and
// shedding under memory pressure, on real daemons serving stories260K.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "edgellm/v1/inference.grpc.pb.h"
#include "tests/support/daemon_process.h"
#include "tests/support/inference_client.h"
#include "tests/support/test_support.h"

namespace edgellm {
namespace {

using testing::DaemonProcess;
using testing::Generate;
using testing::Greedy;
using testing::ScrapeMetric;
using testing::Stream;

const std::string kModel = testing::SharedPath("models/stories260K.gguf");
const std::string kHits = "edgellm_prefix_cache_hits_total{model=\"stories260K\"}";

v1::GenerateRequest Turn(const std::string& session, const std::string& prompt, uint32_t max_tokens) {
  v1::GenerateRequest request = Greedy(prompt, max_tokens);
  request.set_session_id(session);
  return request;
}

// A daemon that reuses KV (with its metrics on `port`) and one that computes
// everything afresh, to compare against.
class DaemonKvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGELLM_REQUIRE_SHARED_FILE(kModel);
    std::string error;
    cached_ = DaemonProcess::Start(kModel, {"--metrics-listen", "127.0.0.1:0"}, &error);
    ASSERT_NE(cached_, nullptr) << error;
    port_ = cached_->LoggedPort("metrics on port ");
    fresh_ = DaemonProcess::Start(kModel, {"--prefix-caching", "false"}, &error);
    ASSERT_NE(fresh_, nullptr) << error;
    cached_stub_ = v1::Inference::NewStub(cached_->channel());
    fresh_stub_ = v1::Inference::NewStub(fresh_->channel());
  }
  double Hits() const { return ScrapeMetric(port_, kHits); }

  int port_ = -1;
  std::unique_ptr<DaemonProcess> cached_, fresh_;
  std::unique_ptr<v1::Inference::Stub> cached_stub_, fresh_stub_;
};

// A client that resends the conversation: its first turn's KV is reused (the
// hit counter rises) and the text is what the daemon without reuse gives.
TEST_F(DaemonKvTest, AResentConversationReusesItsKvAndGivesTheSameText) {
  const std::string turn1 = "Lily and Ben went to the park";
  const Stream first = Generate(*cached_stub_, Greedy(turn1, 32));
  ASSERT_TRUE(first.status.ok());
  EXPECT_EQ(Hits(), 0);

  const std::string turn2 = turn1 + first.text + " Then";
  const Stream second = Generate(*cached_stub_, Greedy(turn2, 32));
  const Stream reference = Generate(*fresh_stub_, Greedy(turn2, 32));
  ASSERT_TRUE(second.status.ok() && reference.status.ok());
  EXPECT_EQ(second.token_ids, reference.token_ids);
  EXPECT_EQ(second.text, reference.text);
  // Whole blocks of the first turn, its reply included, came from the pool.
  EXPECT_GE(Hits(), 32);
}

TEST_F(DaemonKvTest, ASessionsSecondTurnReusesTheFirstAndEqualsTheWholeConversation) {
  const std::string prompt1 = "Once upon a time, there was a little dog";
  const Stream first = Generate(*cached_stub_, Turn("chat-1", prompt1, 40));
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  const double hits_before = Hits();

  const std::string prompt2 = " One day, the dog";
  const Stream second = Generate(*cached_stub_, Turn("chat-1", prompt2, 40));
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  const Stream whole = Generate(*fresh_stub_, Greedy(prompt1 + first.text + prompt2, 40));
  ASSERT_TRUE(whole.status.ok());
  EXPECT_EQ(second.text, whole.text);
  EXPECT_EQ(second.token_ids, whole.token_ids);
  EXPECT_EQ(second.last.usage().prompt_tokens(), whole.last.usage().prompt_tokens());
  // The first turn's prompt and most of its reply: every whole block of it.
  const double reused = Hits() - hits_before;
  EXPECT_GE(reused, 48) << "of " << second.last.usage().prompt_tokens() << " prompt tokens";
}

TEST_F(DaemonKvTest, ConcurrentSessionsNeverContinueAnotherSessionsContext) {
  // Sessions whose conversations share long beginnings, so the pool holds
  // many blocks that almost match each of them.
  const std::vector<std::string> openings = {
      "Once upon a time, there was a little girl named Lily", "Once upon a time, there was a little boy named Ben",
      "Once upon a time, there was a little dog named Max",   "Once upon a time, there was a big cat",
      "Once upon a time, there was a little girl named Sue",  "The sun was shining and the birds sang",
  };
  const std::vector<std::string> follow_ups = {" Then she said", " The next day,", " But"};
  const size_t n = openings.size();
  std::vector<std::string> conversations(n);
  for (size_t turn = 0; turn <= follow_ups.size(); ++turn) {
    std::vector<Stream> replies(n);
    std::vector<std::thread> clients;
    for (size_t i = 0; i < n; ++i) {
      const std::string prompt = turn == 0 ? openings[i] : follow_ups[turn - 1];
      clients.emplace_back([&, i, prompt] {
        replies[i] = Generate(*cached_stub_, Turn("story-" + std::to_string(i), prompt, 24));
      });
    }
    for (std::thread& t : clients) t.join();
    for (size_t i = 0; i < n; ++i) {
      const std::string prompt = turn == 0 ? openings[i] : follow_ups[turn - 1];
      ASSERT_TRUE(replies[i].status.ok()) << replies[i].status.error_message();
      const Stream reference = Generate(*fresh_stub_, Greedy(conversations[i] + prompt, 24));
      EXPECT_EQ(replies[i].text, reference.text) << "session " << i << ", turn " << turn;
      conversations[i] += prompt + replies[i].text;
    }
  }
  EXPECT_GT(Hits(), 0);
}

TEST_F(DaemonKvTest, OneTurnAtATimeAndACancelledTurnLeavesTheConversationAsItWas) {
  grpc::ClientContext context;
  auto running = cached_stub_->Generate(&context, Turn("busy", "Once upon a time", 1900));
  v1::GenerateResponse response;
  ASSERT_TRUE(running->Read(&response));
  const Stream second = Generate(*cached_stub_, Turn("busy", " Then", 8));
  EXPECT_EQ(second.status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_NE(second.status.error_message().find("turn in progress"), std::string::npos);
  context.TryCancel();
  EXPECT_EQ(running->Finish().error_code(), grpc::StatusCode::CANCELLED);

  // The cancelled turn is not part of the conversation: it is still empty.
  Stream after;
  for (int attempt = 0; attempt < 100; ++attempt) {
    after = Generate(*cached_stub_, Turn("busy", "The cat", 8));
    if (after.status.error_code() != grpc::StatusCode::ABORTED) break;  // the cancel lands at the next step
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(after.status.ok()) << after.status.error_message();
  EXPECT_EQ(after.text, Generate(*fresh_stub_, Greedy("The cat", 8)).text);
  EXPECT_EQ(Generate(*cached_stub_, Turn("not ok!", "hi", 4)).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// Starts a daemon whose memory thresholds (MiB) are above what any machine
// has, so it reads real memory figures and finds them short.
// The context is 512 positions.
// Its metrics are on a port it picks (LoggedPort).
std::unique_ptr<DaemonProcess> StartUnderPressure(int low_mib, int critical_mib) {
  const std::string path = (testing::TestDir() / "edgellmd.yaml").string();
  std::ofstream(path) << "memory_low_mib: " << low_mib << "\nmemory_critical_mib: " << critical_mib
                      << "\nmetrics_listen: 127.0.0.1:0\ncontext_length: 512\n";
  std::string error;
  auto daemon = DaemonProcess::Start(kModel, {"--config", path}, &error);
  EXPECT_NE(daemon, nullptr) << error;
  return daemon;
}

TEST(DaemonMemoryPressure, CriticalPressureRefusesNewRequests) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  auto daemon = StartUnderPressure(1 << 30, 1 << 30);
  ASSERT_NE(daemon, nullptr);
  const int port = daemon->LoggedPort("metrics on port ");
  auto stub = v1::Inference::NewStub(daemon->channel());
  const Stream refused = Generate(*stub, Greedy("Once upon a time", 8));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.status.error_message().find("memory"), std::string::npos) << refused.status.error_message();
  EXPECT_EQ(ScrapeMetric(port, "edgellm_memory_pressure{model=\"stories260K\"}"), 2);
}

TEST(DaemonMemoryPressure, LowPressureHalvesTheContext) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  auto daemon = StartUnderPressure(1 << 30, 0);
  ASSERT_NE(daemon, nullptr);
  const int port = daemon->LoggedPort("metrics on port ");
  auto stub = v1::Inference::NewStub(daemon->channel());
  EXPECT_EQ(ScrapeMetric(port, "edgellm_memory_pressure{model=\"stories260K\"}"), 1);
  // Of the 512 positions, a request under low pressure gets 256: a prompt of
  // about 400 tokens, which fits the context, is refused for now.
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "Lily and Ben ";
  const Stream refused = Generate(*stub, Greedy(long_prompt, 8));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.status.error_message().find("memory is low"), std::string::npos);
  const Stream shortened = Generate(*stub, Greedy("Once upon a time", 400));
  ASSERT_TRUE(shortened.status.ok()) << shortened.status.error_message();
  EXPECT_EQ(shortened.last.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(shortened.last.usage().prompt_tokens() + shortened.last.usage().completion_tokens(), 257u);
}

}  // namespace
}  // namespace edgellm
