// ops/http_server.h — an HTTP/1.1 server for the daemon's HTTP API and the aggregator's fleet page
// (Boost.Beast, OpenSSL for TLS): keep-alive connections, bodies bounded
// before they are read, a deadline on every request's arrival and on idle
// connections, and responses that are either whole or streamed in chunks
// (server-sent events). A handler answers through an HttpResponder from any
// thread; a client that goes away mid-response is reported to it at once.
#ifndef EDGELLM_OPS_HTTP_SERVER_H_
#define EDGELLM_OPS_HTTP_SERVER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace edgellm::ops {

struct HttpServerConfig {
  std::string listen;  // HOST:PORT; port 0 picks a free one (see HttpServer::port)
  // PEM files; empty cert: plain HTTP. With client_ca, clients must present
  // a certificate that chains to it.
  std::string tls_cert, tls_key, tls_client_ca;
  uint64_t max_body_bytes = 4 << 20;       // larger bodies are refused with 413 before they are read
  std::chrono::milliseconds request_timeout{30000};  // for a request's headers and body to arrive
  std::chrono::milliseconds idle_timeout{60000};     // a kept-alive connection with no request is closed
  int32_t max_connections = 256;           // more are closed at once
  int32_t threads = 2;                     // I/O threads
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // the target without its query
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string peer_name;  // the TLS client certificate's common name, or ""
};

// One response. Either Send once, or StartStream, any number of Write, then
// End. Thread-safe; calls after the client has gone are ignored.
class HttpResponder {
 public:
  virtual ~HttpResponder() = default;
  virtual void Send(int status, std::string content_type, std::string body,
                    std::vector<std::pair<std::string, std::string>> headers = {}) = 0;
  virtual void StartStream(int status, std::string content_type) = 0;
  virtual void Write(std::string data) = 0;
  virtual void End() = 0;
  // `on_gone` runs once (on an I/O thread) if the client disconnects before
  // the response has ended; set it before the response may take long.
  virtual void OnClientGone(std::function<void()> on_gone) = 0;
};

using HttpRequestHandler = std::function<void(HttpRequest request, std::shared_ptr<HttpResponder> responder)>;
// The body of an error the server itself answers (413, 400, 503): a status and a message.
using HttpErrorBody = std::function<std::string(int status, const std::string& message)>;

class HttpServer {
 public:
  // Listens and serves on its own threads. InvalidArgument for a malformed
  // address or TLS files, Unavailable when it cannot bind.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerConfig& config, HttpRequestHandler handler,
                                                           HttpErrorBody error_body);
  ~HttpServer();  // closes every connection and joins the threads
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;

 private:
  struct Impl;
  explicit HttpServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace edgellm::ops

#endif  // EDGELLM_OPS_HTTP_SERVER_H_
