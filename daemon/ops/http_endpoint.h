// ops/http_endpoint.h — a small HTTP/1.1 server (Boost.Beast) for operators:
// Prometheus scrapes /metrics, probes hit /healthz. One I/O thread; each
// connection must send its request within 5 s; requests are GET only and
// bounded to 8 KiB.
#ifndef EDGELLM_OPS_HTTP_ENDPOINT_H_
#define EDGELLM_OPS_HTTP_ENDPOINT_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace edgellm::ops {

struct HttpReply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Answers a request for `path` (the target without its query). Called on the
// endpoint's thread; must not block for long.
using HttpHandler = std::function<HttpReply(const std::string& path)>;

class HttpEndpoint {
 public:
  // Listens on "HOST:PORT" (port 0 picks a free one). InvalidArgument for a
  // malformed address, Unavailable when it cannot bind.
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(const std::string& host_port, HttpHandler handler);
  ~HttpEndpoint();  // stops and joins the thread
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  int port() const;

 private:
  struct Impl;
  explicit HttpEndpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class MetricsRegistry;

// The operator endpoint both programs serve: /metrics renders `registry` in
// the Prometheus text format, /healthz answers 200 while `serving` and 503
// otherwise. Both must outlive the endpoint.
absl::StatusOr<std::unique_ptr<HttpEndpoint>> StartMetricsEndpoint(const std::string& host_port,
                                                                   const MetricsRegistry& registry,
                                                                   const std::atomic<bool>& serving);

}  // namespace edgellm::ops

#endif  // EDGELLM_OPS_HTTP_ENDPOINT_H_
