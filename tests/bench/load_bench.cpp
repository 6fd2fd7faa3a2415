// edgellm-bench-load: K concurrent streaming clients against a running
// edgellmd, over gRPC (Generate) or over its OpenAI-compatible HTTP API
// (POST /v1/completions with stream: true, one kept-alive connection per
// client, as the SDKs do). For each K prints aggregate tok/s and, in
// milliseconds, time to first token and inter-token latency at p50 and p99,
// one line per figure:
//
//   bench api=<grpc|http> server=<address> clients=<K> metric=<name> value=<number> unit=<unit>
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

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
  int http_port = 0;  // > 0: the HTTP API on 127.0.0.1 instead of gRPC
  std::vector<int> clients = {1, 4, 16};
  int requests_per_client = 4;
  uint32_t max_tokens = 64;
  int pause_ms = 0;  // each client waits this long before each request
  float temperature = 0.0f;  // 0: greedy; else sampled at it (the API's defaults for the rest)
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

// One client: `requests` streams one after another, of a fixed length.
void RunClient(v1::Inference::Stub& stub, const Args& args, Samples& samples) {
  for (int r = 0; r < args.requests_per_client; ++r) {
    if (args.pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(args.pause_ms));
    v1::GenerateRequest request;
    request.set_prompt(args.prompt);
    request.set_max_tokens(args.max_tokens);
    request.mutable_sampling()->set_temperature(args.temperature);
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

// JSON string contents: the prompt has no quotes or backslashes to escape but these.
std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// One HTTP client: the same streams as RunClient, each a server-sent-event
// stream on one kept-alive connection. Every event with text is a token
// (no drafts); the usage chunk gives the exact count.
void RunHttpClient(const Args& args, Samples& samples) {
  const auto fail = [&](const std::string& why) {
    std::lock_guard<std::mutex> lock(samples.mu);
    if (samples.failures++ == 0) samples.first_error = why;
  };
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(args.http_port));
  ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return fail("cannot connect to the HTTP API");
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  const std::string body = "{\"prompt\": " + JsonString(args.prompt) + ", \"max_tokens\": " +
                           std::to_string(args.max_tokens) + ", \"temperature\": " + std::to_string(args.temperature) +
                           ", \"stream\": true}";
  const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  for (int r = 0; r < args.requests_per_client; ++r) {
    if (args.pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(args.pause_ms));
    const Clock::time_point sent = Clock::now();
    if (::send(fd, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size())) return fail("send failed");
    std::string received;
    size_t scanned = 0;
    std::vector<double> gaps;
    double ttft = -1.0;
    uint64_t tokens = 0;
    Clock::time_point previous = sent;
    bool done = false;
    char buffer[16384];
    while (!done) {
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) return fail("the connection closed mid-stream");
      const Clock::time_point now = Clock::now();
      received.append(buffer, static_cast<size_t>(n));
      size_t at;
      while ((at = received.find("data: ", scanned)) != std::string::npos) {
        const size_t end = received.find("\n\n", at);
        if (end == std::string::npos) break;
        const std::string event = received.substr(at + 6, end - at - 6);
        scanned = end + 2;
        if (event == "[DONE]") {
          done = true;
          break;
        }
        if (event.find("\"text\":\"\"") != std::string::npos) continue;  // the closing chunk
        if (event.find("\"error\"") != std::string::npos) return fail(event);
        ++tokens;
        if (ttft < 0) {
          ttft = Millis(now - sent);
        } else {
          gaps.push_back(Millis(now - previous));
        }
        previous = now;
      }
    }
    // The chunked body's last chunk, before the next request goes out.
    while (received.find("0\r\n\r\n", scanned) == std::string::npos) {
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) return fail("the connection closed before the stream's end");
      received.append(buffer, static_cast<size_t>(n));
    }
    std::lock_guard<std::mutex> lock(samples.mu);
    samples.ttft_ms.push_back(ttft);
    samples.inter_token_ms.insert(samples.inter_token_ms.end(), gaps.begin(), gaps.end());
    samples.tokens += tokens;
  }
  ::close(fd);
}

int Run(const Args& args) {
  const bool http = args.http_port > 0;
  auto stub = http ? nullptr : v1::Inference::NewStub(grpc::CreateChannel(args.server, grpc::InsecureChannelCredentials()));
  const std::string where = http ? "http://127.0.0.1:" + std::to_string(args.http_port) : args.server;
  for (int k : args.clients) {
    Samples samples;
    std::vector<std::thread> threads;
    const Clock::time_point start = Clock::now();
    for (int c = 0; c < k; ++c) {
      threads.emplace_back([&] { http ? RunHttpClient(args, samples) : RunClient(*stub, args, samples); });
    }
    for (std::thread& t : threads) t.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (samples.failures > 0) {
      std::cerr << "edgellm-bench-load: " << samples.failures << " requests failed: " << samples.first_error << "\n";
      return 1;
    }
    auto print = [&](const char* metric, double value, const char* unit) {
      std::printf("bench api=%s server=%s clients=%d metric=%s value=%.6g unit=%s\n", http ? "http" : "grpc",
                  where.c_str(), k, metric, value, unit);
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
  app.add_option("--server", args.server, "gRPC: unix:///PATH, unix:PATH or HOST:PORT");
  app.add_option("--http-port", args.http_port, "The daemon's HTTP API on 127.0.0.1:PORT instead of gRPC");
  app.add_option("--clients", args.clients, "Concurrent clients, one run each")->delimiter(',');
  app.add_option("--requests-per-client", args.requests_per_client, "Streams each client runs in turn")
      ->capture_default_str();
  app.add_option("--max-tokens", args.max_tokens, "Tokens per stream")->capture_default_str();
  app.add_option("--temperature", args.temperature,
                 "Sampling temperature of every request; 0 is greedy (the API's defaults for top-k, top-p and min-p)")
      ->capture_default_str();
  app.add_option("--pause-ms", args.pause_ms,
                 "Each client waits this long before each request (so that requests find the daemon idle, "
                 "or training running)")
      ->capture_default_str();
  app.add_option("--prompt", args.prompt, "Prompt of every request");
  CLI11_PARSE(app, argc, argv);
  if (args.server.empty() == (args.http_port <= 0)) {
    std::cerr << "edgellm-bench-load: give one of --server and --http-port\n";
    return 2;
  }
  return edgellm::bench::Run(args);
}
