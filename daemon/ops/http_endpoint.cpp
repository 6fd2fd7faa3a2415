#include "daemon/ops/http_endpoint.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/version.hpp>
#include <thread>

#include "common/str_cat.h"
#include "daemon/ops/metrics.h"

namespace edgellm::ops {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::chrono::seconds kRequestTimeout{5};
constexpr size_t kMaxRequestBytes = 8 * 1024;

// One connection: read one request, answer, close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpHandler& handler) : stream_(std::move(socket)), handler_(handler) {}

  void Run() {
    parser_.header_limit(kMaxRequestBytes);
    parser_.body_limit(kMaxRequestBytes);
    stream_.expires_after(kRequestTimeout);
    http::async_read(stream_, buffer_, parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec) return;  // timeout, reset or a malformed request: drop the connection
    const http::request<http::string_body>& request = parser_.get();
    HttpReply reply;
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      reply = {405, "text/plain; charset=utf-8", "only GET is served\n"};
    } else {
      std::string path(request.target());
      path = path.substr(0, path.find('?'));
      reply = handler_(path);
    }
    response_.result(static_cast<http::status>(reply.status));
    response_.version(request.version());
    response_.set(http::field::server, "edgellmd");
    response_.set(http::field::content_type, reply.content_type);
    response_.body() = request.method() == http::verb::head ? std::string() : std::move(reply.body);
    response_.keep_alive(false);
    response_.prepare_payload();
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code, size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  const HttpHandler& handler_;
  beast::flat_buffer buffer_;
  http::request_parser<http::string_body> parser_;
  http::response<http::string_body> response_;
};

}  // namespace

struct HttpEndpoint::Impl {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  HttpHandler handler;
  std::thread thread;

  void Accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) std::make_shared<Session>(std::move(socket), handler)->Run();
      Accept();
    });
  }
};

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(const std::string& host_port, HttpHandler handler) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(edgellm::StrCat("metrics address '", host_port, "' is not HOST:PORT"));
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    port = std::stoi(host_port.substr(colon + 1));
  } catch (const std::exception&) {
    port = -1;
  }
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(edgellm::StrCat("metrics address '", host_port, "' has a bad port"));
  }
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  beast::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return absl::InvalidArgumentError(edgellm::StrCat("metrics address '", host, "': ", ec.message()));
  const tcp::endpoint endpoint(address, static_cast<uint16_t>(port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(edgellm::StrCat("cannot listen on ", host_port, ": ", ec.message()));
  impl->Accept();
  impl->thread = std::thread([io = &impl->io] { io->run(); });
  return std::unique_ptr<HttpEndpoint>(new HttpEndpoint(std::move(impl)));
}

HttpEndpoint::HttpEndpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpEndpoint::~HttpEndpoint() {
  asio::post(impl_->io, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->io.stop();
  });
  impl_->thread.join();
}

int HttpEndpoint::port() const { return impl_->acceptor.local_endpoint().port(); }

absl::StatusOr<std::unique_ptr<HttpEndpoint>> StartMetricsEndpoint(const std::string& host_port,
                                                                   const MetricsRegistry& registry,
                                                                   const std::atomic<bool>& serving) {
  return HttpEndpoint::Start(host_port, [&registry, &serving](const std::string& path) -> HttpReply {
    if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", registry.Render()};
    if (path == "/healthz") return serving ? HttpReply{200, "text/plain", "ok\n"} : HttpReply{503, "text/plain", "not serving\n"};
    return {404, "text/plain", "not found\n"};
  });
}

}  // namespace edgellm::ops
