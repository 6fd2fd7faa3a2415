// edgellmd end to end: real daemon processes on temporary unix sockets, the
// real stories260K model, a real gRPC client.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "edgellm/v1/inference.grpc.pb.h"
#include "tests/support/daemon_process.h"
#include "tests/support/http_get.h"
#include "tests/support/inference_client.h"
#include "tests/support/test_support.h"

namespace edgellm {
namespace {

using testing::AwaitMetric;
using testing::DaemonProcess;
using testing::Generate;
using testing::Greedy;
using testing::MetricValue;
using testing::Stream;

const std::string kModel = testing::SharedPath("models/stories260K.gguf");

nlohmann::json References() {
  std::ifstream in(testing::SharedPath("models/stories260K.reference.json"));
  return nlohmann::json::parse(in)["references"];
}

class DaemonTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::vector<std::string>& args = {}) {
    EDGELLM_REQUIRE_SHARED_FILE(kModel);
    std::string error;
    daemon_ = DaemonProcess::Start(kModel, args, &error);
    ASSERT_NE(daemon_, nullptr) << error;
    stub_ = v1::Inference::NewStub(daemon_->channel());
  }
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

TEST_F(DaemonTest, ConcurrentGreedyStreamsEqualLlamaCppsTokens) {
  StartDaemon();
  if (HasFatalFailure() || IsSkipped()) return;
  const nlohmann::json refs = References();
  // Two streams per reference prompt, all at once: they share batched steps.
  // The second round starts from the prefix cache the first one left behind.
  for (int round = 0; round < 2; ++round) {
    std::vector<Stream> streams(2 * refs.size());
    std::vector<std::thread> clients;
    for (size_t i = 0; i < streams.size(); ++i) {
      clients.emplace_back([&, i] {
        const nlohmann::json& ref = refs[i % refs.size()];
        streams[i] = Generate(*stub_, Greedy(ref["prompt"], ref["n_predict"]));
      });
    }
    for (std::thread& t : clients) t.join();
    for (size_t i = 0; i < streams.size(); ++i) {
      const nlohmann::json& ref = refs[i % refs.size()];
      ASSERT_TRUE(streams[i].status.ok()) << streams[i].status.error_message();
      EXPECT_EQ(streams[i].token_ids, ref["generated_token_ids"].get<std::vector<uint32_t>>()) << ref["prompt"];
      EXPECT_EQ(streams[i].text, ref["generated_text"].get<std::string>());
      EXPECT_EQ(streams[i].last.finish_reason(), v1::FINISH_REASON_LENGTH);
      EXPECT_EQ(streams[i].last.usage().prompt_tokens(), ref["prompt_token_ids"].size());
      EXPECT_EQ(streams[i].last.usage().completion_tokens(), 64u);
      EXPECT_GT(streams[i].last.timings().time_to_first_token_seconds(), 0.0);
    }
  }
}

TEST_F(DaemonTest, BadRequestsAreInvalidArgumentWithAReason) {
  StartDaemon();
  if (HasFatalFailure() || IsSkipped()) return;
  auto expect_invalid = [&](v1::GenerateRequest request, const std::string& message_part) {
    const Stream s = Generate(*stub_, request);
    EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << message_part;
    EXPECT_NE(s.status.error_message().find(message_part), std::string::npos) << s.status.error_message();
    EXPECT_EQ(s.responses, 0);
  };
  v1::GenerateRequest r = Greedy("hi", 8);
  r.set_model("gpt-9");
  expect_invalid(r, "unknown model 'gpt-9'");
  expect_invalid(Greedy("hi", 0), "max_tokens");
  expect_invalid(Greedy("hi", 1000000), "does not fit the context");
  std::string long_prompt;
  for (int i = 0; i < 3000; ++i) long_prompt += "Lily ";
  expect_invalid(Greedy(long_prompt, 8), "the context holds");
  r = Greedy("hi", 8);
  r.mutable_sampling()->set_top_p(2.0f);
  expect_invalid(r, "top_p");
  r = Greedy("hi", 8);
  r.set_adapter("pirate");
  expect_invalid(r, "unknown adapter 'pirate'");
}

TEST_F(DaemonTest, AFullQueueRefusesAtOnce) {
  StartDaemon({"--max-active", "1", "--max-waiting", "1", "--metrics-listen", "127.0.0.1:0"});
  if (HasFatalFailure() || IsSkipped()) return;
  const int port = daemon_->LoggedPort("metrics on port ");
  // One running (its first token seen), one waiting (seen in the daemon's gauge): the next is refused.
  grpc::ClientContext running_context;
  auto running = stub_->Generate(&running_context, Greedy("Once upon a time", 1900));
  v1::GenerateResponse first;
  ASSERT_TRUE(running->Read(&first));
  grpc::ClientContext waiting_context;
  auto waiting = stub_->Generate(&waiting_context, Greedy("The cat", 1900));
  ASSERT_EQ(AwaitMetric(port, "edgellm_num_requests_waiting{model=\"stories260K\"}", 1), 1);
  const Stream refused = Generate(*stub_, Greedy("Lily", 4));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.status.error_message().find("queue is full"), std::string::npos) << refused.status.error_message();
  running_context.TryCancel();
  waiting_context.TryCancel();
  EXPECT_EQ(running->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(waiting->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // Both slots are freed at the scheduler's next step: a request soon goes through.
  Stream after;
  for (int attempt = 0; attempt < 100; ++attempt) {
    after = Generate(*stub_, Greedy("Lily", 4));
    if (after.status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(after.status.ok()) << after.status.error_message();
  EXPECT_EQ(after.token_ids.size(), 4u);
}

TEST_F(DaemonTest, TheClientsDeadlineEndsTheStream) {
  StartDaemon();
  if (HasFatalFailure() || IsSkipped()) return;
  // The deadline must cut the stream, not race it: with 300 ms, stories260K's
  // 1,900 tokens (one stream write each) all arrived first once decode got
  // faster, on every run in a quick spell of this machine.
  const Stream s = Generate(*stub_, Greedy("Once upon a time", 1900), std::chrono::milliseconds(40));
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(s.token_ids.size(), 1900u);
  const Stream after = Generate(*stub_, Greedy("Lily", 4));
  EXPECT_TRUE(after.status.ok()) << after.status.error_message();
}

TEST_F(DaemonTest, TokenizeDetokenizeAndListModels) {
  StartDaemon();
  if (HasFatalFailure() || IsSkipped()) return;
  grpc::ClientContext c1;
  v1::TokenizeRequest tokenize;
  tokenize.set_text("Hello world");
  v1::TokenizeResponse tokens;
  ASSERT_TRUE(stub_->Tokenize(&c1, tokenize, &tokens).ok());
  EXPECT_EQ(std::vector<uint32_t>(tokens.token_ids().begin(), tokens.token_ids().end()),
            (std::vector<uint32_t>{1, 346, 306, 414, 263, 304, 341}));

  grpc::ClientContext c2;
  v1::DetokenizeRequest detokenize;
  for (uint32_t id : {403u, 407u, 261u, 378u}) detokenize.add_token_ids(id);
  v1::DetokenizeResponse text;
  ASSERT_TRUE(stub_->Detokenize(&c2, detokenize, &text).ok());
  EXPECT_EQ(text.text(), " Once upon a time");

  // Byte 0xFF alone (token 3 + 0xFF) is not UTF-8: it comes back as U+FFFD.
  grpc::ClientContext c_bytes;
  v1::DetokenizeRequest raw_byte;
  raw_byte.add_token_ids(258);
  ASSERT_TRUE(stub_->Detokenize(&c_bytes, raw_byte, &text).ok());
  EXPECT_EQ(text.text(), "\xef\xbf\xbd");

  grpc::ClientContext c3;
  detokenize.add_token_ids(512);
  EXPECT_EQ(stub_->Detokenize(&c3, detokenize, &text).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  grpc::ClientContext c4;
  v1::ListModelsResponse models;
  ASSERT_TRUE(stub_->ListModels(&c4, v1::ListModelsRequest(), &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_EQ(models.models(0).name(), "stories260K");
  EXPECT_EQ(models.models(0).architecture(), "llama");
  EXPECT_EQ(models.models(0).quantization(), "F32");
  EXPECT_EQ(models.models(0).context_length(), 2048u);
  EXPECT_GT(models.models(0).parameters(), 250000u);
}

TEST_F(DaemonTest, SigtermDrainsInFlightStreamsAndExitsZero) {
  StartDaemon();
  if (HasFatalFailure() || IsSkipped()) return;
  EXPECT_EQ(daemon_->HealthStatus(), grpc::health::v1::HealthCheckResponse::SERVING);
  grpc::ClientContext context;
  auto stream = stub_->Generate(&context, Greedy("Once upon a time", 400));
  v1::GenerateResponse response;
  ASSERT_TRUE(stream->Read(&response));
  size_t tokens = response.token_ids_size();
  daemon_->SendSigterm();
  while (stream->Read(&response)) tokens += response.token_ids_size();
  const grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(tokens, 400u);  // the in-flight stream ran to its end
  EXPECT_EQ(response.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(daemon_->Wait(), 0);
}

TEST_F(DaemonTest, MetricsFollowRequestsAndCancellationFreesTheSlotAndItsKvBlocks) {
  StartDaemon({"--metrics-listen", "127.0.0.1:0"});
  if (HasFatalFailure() || IsSkipped()) return;
  const int port = daemon_->LoggedPort("metrics on port ");
  EXPECT_EQ(testing::HttpGet(port, "/healthz").status, 200);
  ASSERT_TRUE(Generate(*stub_, Greedy("Once upon a time", 16)).status.ok());
  EXPECT_EQ(Generate(*stub_, Greedy("hi", 0)).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  std::string text = testing::HttpGet(port, "/metrics").body;
  const std::string m = "model=\"stories260K\"";
  EXPECT_EQ(MetricValue(text, "edgellm_generation_tokens_total{" + m + "}"), 16) << text;
  EXPECT_EQ(MetricValue(text, "edgellm_prompt_tokens_total{" + m + "}"), 5);
  EXPECT_EQ(MetricValue(text, "edgellm_request_success_total{finished_reason=\"length\"," + m + "}"), 1);
  EXPECT_EQ(MetricValue(text, "edgellm_requests_total{code=\"OK\"," + m + "}"), 1);
  EXPECT_EQ(MetricValue(text, "edgellm_requests_total{code=\"INVALID_ARGUMENT\"," + m + "}"), 1);
  EXPECT_EQ(MetricValue(text, "edgellm_time_to_first_token_seconds_count{" + m + "}"), 1);
  EXPECT_EQ(MetricValue(text, "edgellm_inter_token_latency_seconds_count{" + m + "}"), 15);
  EXPECT_GT(MetricValue(text, "process_resident_memory_bytes"), 1e6);
  // The finished request's blocks are returned and the gauge published at
  // the scheduler's next step, which may come after its last response.
  double kv_usage = -1;
  for (int attempt = 0; attempt < 200 && kv_usage != 0; ++attempt) {
    kv_usage = MetricValue(testing::HttpGet(port, "/metrics").body, "edgellm_kv_cache_usage_perc{" + m + "}");
    if (kv_usage != 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(kv_usage, 0);
  EXPECT_EQ(MetricValue(text, "edgellm_memory_pressure{" + m + "}"), 0);
  EXPECT_GT(MetricValue(text, "edgellm_memory_available_bytes"), 1e6);

  // A long stream is running (seen in the gauges); cancelling it frees its slot and KV blocks.
  grpc::ClientContext context;
  auto stream = stub_->Generate(&context, Greedy("The cat", 1900));
  v1::GenerateResponse response;
  ASSERT_TRUE(stream->Read(&response));
  text = testing::HttpGet(port, "/metrics").body;
  EXPECT_EQ(MetricValue(text, "edgellm_num_requests_running{" + m + "}"), 1);
  EXPECT_GT(MetricValue(text, "edgellm_kv_cache_usage_perc{" + m + "}"), 0);
  context.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The slot is freed and the request counted as aborted at the scheduler's next step.
  double running = -1, aborted = -1;
  for (int attempt = 0; attempt < 200 && (running != 0 || aborted != 1); ++attempt) {
    text = testing::HttpGet(port, "/metrics").body;
    running = MetricValue(text, "edgellm_num_requests_running{" + m + "}");
    aborted = MetricValue(text, "edgellm_request_success_total{finished_reason=\"abort\"," + m + "}");
    if (running != 0 || aborted != 1) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(running, 0);
  EXPECT_EQ(aborted, 1) << text;
  EXPECT_EQ(MetricValue(text, "edgellm_kv_cache_usage_perc{" + m + "}"), 0);
  EXPECT_EQ(testing::HttpGet(port, "/nothing").status, 404);
}

TEST(DaemonConfigFile, TheFileConfiguresAndFlagsOverride) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const std::string path = (testing::TestDir() / "edgellmd.yaml").string();
  std::ofstream(path) << "model: " << kModel << "\nmax_active: 1\nmax_waiting: 0\nmetrics_listen: 127.0.0.1:0\n";
  std::string error;
  // The file allows no waiting request; the flag allows one.
  auto daemon = DaemonProcess::Start("", {"--config", path, "--max-waiting", "1"}, &error);
  ASSERT_NE(daemon, nullptr) << error;
  const int port = daemon->LoggedPort("metrics on port ");
  auto stub = v1::Inference::NewStub(daemon->channel());
  grpc::ClientContext running_context, waiting_context;
  auto running = stub->Generate(&running_context, Greedy("Once upon a time", 1900));
  v1::GenerateResponse first;
  ASSERT_TRUE(running->Read(&first));
  auto waiting = stub->Generate(&waiting_context, Greedy("The cat", 8));
  // The metrics endpoint came from the file: it shows the waiting request.
  EXPECT_EQ(AwaitMetric(port, "edgellm_num_requests_waiting{model=\"stories260K\"}", 1), 1);
  running_context.TryCancel();
  (void)running->Finish();
  v1::GenerateResponse response;
  size_t tokens = 0;
  while (waiting->Read(&response)) tokens += response.token_ids_size();
  EXPECT_TRUE(waiting->Finish().ok());
  EXPECT_EQ(tokens, 8u);
}

TEST(DaemonConfigFile, ABadFileStopsStartUpWithTheReason) {
  const std::string path = (testing::TestDir() / "edgellmd.yaml").string();
  std::ofstream(path) << "max_actve: 3\n";
  std::string error;
  EXPECT_EQ(DaemonProcess::Start("", {"--config", path}, &error), nullptr);
  EXPECT_NE(error.find("exited during start-up with status 2"), std::string::npos) << error;
}

// Plays systemd's side of the sd_notify protocol: a datagram socket named by
// NOTIFY_SOCKET, and a watchdog interval in WATCHDOG_USEC.
TEST(DaemonSystemd, NotifiesReadyPingsTheWatchdogAndNotifiesStopping) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("edgellm-notify-" + std::to_string(::getpid()) + ".sock")).string();
  std::filesystem::remove(path);
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));

  std::string error;
  auto daemon = DaemonProcess::Start(kModel, {}, &error, {"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=200000"});
  ASSERT_NE(daemon, nullptr) << error;
  auto receive = [&] {
    char buffer[512];
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    return n > 0 ? std::string(buffer, n) : std::string();
  };
  std::vector<std::string> messages;
  while (messages.size() < 3) messages.push_back(receive());  // READY, then watchdog pings
  EXPECT_EQ(messages[0].rfind("READY=1", 0), 0u) << messages[0];
  EXPECT_EQ(messages[1], "WATCHDOG=1");
  EXPECT_EQ(messages[2], "WATCHDOG=1");
  daemon->SendSigterm();
  std::string message;
  do {
    message = receive();
  } while (message == "WATCHDOG=1");
  EXPECT_EQ(message.rfind("STOPPING=1", 0), 0u) << message;
  EXPECT_EQ(daemon->Wait(), 0);
  ::close(fd);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace edgellm
