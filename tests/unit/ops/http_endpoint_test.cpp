#include "daemon/ops/http_endpoint.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/support/http_get.h"

namespace edgellm::ops {
namespace {

using edgellm::testing::HttpGet;
using edgellm::testing::HttpRequest;

TEST(HttpEndpoint, AnswersByPath) {
  auto endpoint = HttpEndpoint::Start("127.0.0.1:0", [](const std::string& path) -> HttpReply {
    if (path == "/metrics") return {200, "text/plain", "a_metric 1\n"};
    return {404, "text/plain", "not found\n"};
  });
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();
  ASSERT_GT(port, 0);
  EXPECT_EQ(HttpGet(port, "/metrics").body, "a_metric 1\n");
  EXPECT_EQ(HttpGet(port, "/metrics?x=1").status, 200);  // the query is not part of the path
  EXPECT_EQ(HttpGet(port, "/nothing").status, 404);
  EXPECT_EQ(HttpRequest(port, "POST /metrics").status, 405);
}

TEST(HttpEndpoint, ASilentClientDoesNotBlockOthers) {
  auto endpoint = HttpEndpoint::Start("127.0.0.1:0", [](const std::string&) { return HttpReply{200, "text/plain", "ok"}; });
  ASSERT_TRUE(endpoint.ok());
  const int port = (*endpoint)->port();
  // Connect and say nothing.
  const int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  ASSERT_EQ(::connect(silent, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(HttpGet(port, "/").body, "ok");
  ::close(silent);
}

TEST(HttpEndpoint, BadAddressesAreErrors) {
  auto handler = [](const std::string&) { return HttpReply{}; };
  EXPECT_EQ(HttpEndpoint::Start("no-port", handler).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpEndpoint::Start("127.0.0.1:99999", handler).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpEndpoint::Start("not-an-ip:80", handler).status().code(), absl::StatusCode::kInvalidArgument);
  auto first = HttpEndpoint::Start("127.0.0.1:0", handler);
  ASSERT_TRUE(first.ok());
  const std::string taken = "127.0.0.1:" + std::to_string((*first)->port());
  EXPECT_EQ(HttpEndpoint::Start(taken, handler).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace edgellm::ops
