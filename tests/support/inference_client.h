// tests/support/inference_client.h — a gRPC client of edgellm.v1.Inference and
// a reader of the daemon's /metrics, for the daemon's end-to-end tests.
#ifndef EDGELLM_TESTS_SUPPORT_INFERENCE_CLIENT_H_
#define EDGELLM_TESTS_SUPPORT_INFERENCE_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "edgellm/v1/inference.grpc.pb.h"
#include "tests/support/http_get.h"

namespace edgellm::testing {

// The value of the series whose line starts with `series` ("name{labels}"), or -1.
inline double MetricValue(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1.0;
  return std::stod(text.substr(at + series.size() + 2));
}

// The value of `series` on the /metrics endpoint at `port`, or -1.
inline double ScrapeMetric(int port, const std::string& series) {
  return MetricValue(HttpGet(port, "/metrics").body, series);
}

// Polls the daemon's /metrics on `port` until `series` equals `want`, for up
// to 5 s; returns the last value read.
inline double AwaitMetric(int port, const std::string& series, double want) {
  double value = -1;
  for (int attempt = 0; attempt < 250 && value != want; ++attempt) {
    value = ScrapeMetric(port, series);
    if (value != want) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return value;
}

// Everything one Generate call returned.
struct Stream {
  grpc::Status status;
  std::vector<uint32_t> token_ids;
  std::string text;
  v1::GenerateResponse last;
  int responses = 0;
};

inline v1::GenerateRequest Greedy(const std::string& prompt, uint32_t max_tokens) {
  v1::GenerateRequest request;
  request.set_prompt(prompt);
  request.set_max_tokens(max_tokens);
  request.mutable_sampling()->set_temperature(0.0f);
  return request;
}

// Everything a stream of GenerateResponse carried, to its end.
template <typename Reader>
Stream ReadStream(Reader& reader) {
  Stream out;
  v1::GenerateResponse response;
  while (reader.Read(&response)) {
    ++out.responses;
    out.text += response.text();
    out.token_ids.insert(out.token_ids.end(), response.token_ids().begin(), response.token_ids().end());
    out.last = response;
  }
  out.status = reader.Finish();
  return out;
}

inline Stream Generate(v1::Inference::Stub& stub, const v1::GenerateRequest& request,
                       std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  auto reader = stub.Generate(&context, request);
  return ReadStream(*reader);
}

inline Stream Chat(v1::Inference::Stub& stub, const v1::ChatRequest& request,
                   std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  auto reader = stub.Chat(&context, request);
  return ReadStream(*reader);
}

}  // namespace edgellm::testing

#endif  // EDGELLM_TESTS_SUPPORT_INFERENCE_CLIENT_H_
