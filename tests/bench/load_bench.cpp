// edgellm-bench-load: K concurrent streaming clients against a running
// edgellmd. For each K prints aggregate tok/s and, in milliseconds, time to
// first token and inter-token latency at p50 and p99, one line per figure:
//
//   bench server=<address> clients=<K> metric=<name> value=<number> unit=<unit>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "edgellm/v1/inference.grpc.pb.h"

namespace edgellm::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string server;
  std::vector<int> clients = {1, 4, 16};
  int requests_per_client = 4;
  uint32_t max_tokens = 64;
  int pause_ms = 0;  // each client waits this long before each request
  std::string prompt = "Once upon a time, in a small town at the edge of the forest, there lived";
};

double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(p * (values.size() - 1) + 0.5));
  return values[index];
}

struct Samples {
  std::mutex mu;
  std::vector<double> ttft_ms;
  std::vector<double> inter_token_ms;
  uint64_t tokens = 0;
  int failures = 0;
  std::string first_error;
};

// One client: `requests` streams one after another, greedy, fixed length.
void RunClient(v1::Inference::Stub& stub, const Args& args, Samples& samples) {
  for (int r = 0; r < args.requests_per_client; ++r) {
    if (args.pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(args.pause_ms));
    v1::GenerateRequest request;
    request.set_prompt(args.prompt);
    request.set_max_tokens(args.max_tokens);
    request.mutable_sampling()->set_temperature(0.0f);
    grpc::ClientContext context;
    const Clock::time_point sent = Clock::now();
    auto reader = stub.Generate(&context, request);
    v1::GenerateResponse response;
    std::vector<double> gaps;
    double ttft = -1.0;
    uint64_t tokens = 0;
    Clock::time_point previous = sent;
    while (reader->Read(&response)) {
      const Clock::time_point now = Clock::now();
      if (response.token_ids_size() == 0) continue;
      if (ttft < 0) {
        ttft = Millis(now - sent);
      } else {
        gaps.push_back(Millis(now - previous));
      }
      previous = now;
      tokens += response.token_ids_size();
    }
    const grpc::Status status = reader->Finish();
    std::lock_guard<std::mutex> lock(samples.mu);
    if (!status.ok()) {
      if (samples.failures++ == 0) samples.first_error = status.error_message();
      continue;
    }
    samples.ttft_ms.push_back(ttft);
    samples.inter_token_ms.insert(samples.inter_token_ms.end(), gaps.begin(), gaps.end());
    samples.tokens += tokens;
  }
}

int Run(const Args& args) {
  auto channel = grpc::CreateChannel(args.server, grpc::InsecureChannelCredentials());
  auto stub = v1::Inference::NewStub(channel);
  for (int k : args.clients) {
    Samples samples;
    std::vector<std::thread> threads;
    const Clock::time_point start = Clock::now();
    for (int c = 0; c < k; ++c) threads.emplace_back([&] { RunClient(*stub, args, samples); });
    for (std::thread& t : threads) t.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (samples.failures > 0) {
      std::cerr << "edgellm-bench-load: " << samples.failures << " requests failed: " << samples.first_error << "\n";
      return 1;
    }
    auto print = [&](const char* metric, double value, const char* unit) {
      std::printf("bench server=%s clients=%d metric=%s value=%.6g unit=%s\n", args.server.c_str(), k, metric, value,
                  unit);
    };
    print("aggregate_tok_s", samples.tokens / seconds, "tok/s");
    print("ttft_p50_ms", Percentile(samples.ttft_ms, 0.50), "ms");
    print("ttft_p99_ms", Percentile(samples.ttft_ms, 0.99), "ms");
    print("inter_token_p50_ms", Percentile(samples.inter_token_ms, 0.50), "ms");
    print("inter_token_p99_ms", Percentile(samples.inter_token_ms, 0.99), "ms");
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace edgellm::bench

int main(int argc, char** argv) {
  edgellm::bench::Args args;
  CLI::App app{"Load generator: concurrent streaming clients against a running edgellmd"};
  app.add_option("--server", args.server, "unix:///PATH, unix:PATH or HOST:PORT")->required();
  app.add_option("--clients", args.clients, "Concurrent clients, one run each")->delimiter(',');
  app.add_option("--requests-per-client", args.requests_per_client, "Streams each client runs in turn")
      ->capture_default_str();
  app.add_option("--max-tokens", args.max_tokens, "Tokens per stream (greedy)")->capture_default_str();
  app.add_option("--pause-ms", args.pause_ms,
                 "Each client waits this long before each request (so that requests find the daemon idle, "
                 "or training running)")
      ->capture_default_str();
  app.add_option("--prompt", args.prompt, "Prompt of every request");
  CLI11_PARSE(app, argc, argv);
  return edgellm::bench::Run(args);
}
