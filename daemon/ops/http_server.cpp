#include "daemon/ops/http_server.h"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "common/str_cat.h"
#include "daemon/ops/tls_files.h"

namespace edgellm::ops {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr uint32_t kMaxHeaderBytes = 16 * 1024;
constexpr size_t kWatchBytes = 4096;

// The common name of the certificate the TLS peer showed ("" without one).
std::string PeerCommonName(SSL* ssl) {
  X509* certificate = SSL_get_peer_certificate(ssl);
  if (certificate == nullptr) return "";
  char name[256] = {};
  const int length = X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, name, sizeof(name));
  X509_free(certificate);
  return length > 0 ? std::string(name, static_cast<size_t>(length)) : "";
}

// The bytes of a response's status line and headers.
std::string Head(int status, const std::string& content_type,
                 const std::vector<std::pair<std::string, std::string>>& headers, bool keep_alive) {
  std::string head = edgellm::StrCat("HTTP/1.1 ", status, " ",
                                     std::string(http::obsolete_reason(static_cast<http::status>(status))),
                                     "\r\nServer: edgellmd\r\nContent-Type: ", content_type, "\r\n");
  for (const auto& [name, value] : headers) head += edgellm::StrCat(name, ": ", value, "\r\n");
  if (!keep_alive) head += "Connection: close\r\n";
  return head;
}

std::string ChunkOf(const std::string& data) {
  char size[24];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  return edgellm::StrCat(size, data, "\r\n");
}

// What a responder asks of its connection, done on the connection's strand.
struct Action {
  enum Kind { kSend, kStartStream, kWrite, kEnd, kOnGone } kind;
  int status = 0;
  std::string content_type;
  std::string data;
  std::vector<std::pair<std::string, std::string>> headers;
  std::function<void()> on_gone;
};

class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  // Runs `action` for request number `request` on the strand; ignored if that
  // request's response is over.
  virtual void Enqueue(uint64_t request, Action action) = 0;
};

class Responder final : public HttpResponder {
 public:
  Responder(std::weak_ptr<ConnectionBase> connection, uint64_t request)
      : connection_(std::move(connection)), request_(request) {}
  void Send(int status, std::string content_type, std::string body,
            std::vector<std::pair<std::string, std::string>> headers) override {
    Do({Action::kSend, status, std::move(content_type), std::move(body), std::move(headers), nullptr});
  }
  void StartStream(int status, std::string content_type) override {
    Do({Action::kStartStream, status, std::move(content_type), "", {}, nullptr});
  }
  void Write(std::string data) override { Do({Action::kWrite, 0, "", std::move(data), {}, nullptr}); }
  void End() override { Do({Action::kEnd, 0, "", "", {}, nullptr}); }
  void OnClientGone(std::function<void()> on_gone) override {
    Do({Action::kOnGone, 0, "", "", {}, std::move(on_gone)});
  }

 private:
  void Do(Action action) {
    if (std::shared_ptr<ConnectionBase> connection = connection_.lock()) connection->Enqueue(request_, std::move(action));
  }
  const std::weak_ptr<ConnectionBase> connection_;
  const uint64_t request_;
};

}  // namespace

namespace {

// What every connection reads of its server.
struct ServerShared {
  HttpServerConfig config;
  HttpRequestHandler handler;
  HttpErrorBody error_body;
  std::unique_ptr<ssl::context> tls;
  std::atomic<int32_t> connections{0};
};

}  // namespace

struct HttpServer::Impl {
  // The connections left in the I/O context's queues use everything else:
  // they go first, with the context.
  ~Impl() {
    acceptor.reset();
    io.reset();
  }

  ServerShared shared;
  std::vector<std::thread> threads;
  std::unique_ptr<asio::io_context> io = std::make_unique<asio::io_context>();
  std::unique_ptr<tcp::acceptor> acceptor = std::make_unique<tcp::acceptor>(*io);

  void Accept();
};

namespace {

// One client connection over `Stream` (TCP, or TLS over TCP): requests one
// after another, each answered before the next is read.
template <typename Stream>
class Connection final : public ConnectionBase, public std::enable_shared_from_this<Connection<Stream>> {
 public:
  Connection(ServerShared& server, Stream stream)
      : server_(server), stream_(std::move(stream)), timer_(stream_.get_executor()) {
    ++server_.connections;
  }
  ~Connection() override { --server_.connections; }

  void Run() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      beast::get_lowest_layer(stream_).expires_after(server_.config.request_timeout);
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return;
        self->peer_name_ = PeerCommonName(self->stream_.native_handle());
        self->ReadRequest();
      });
    } else {
      ReadRequest();
    }
  }

  void Enqueue(uint64_t request, Action action) override {
    asio::dispatch(stream_.get_executor(),
                   [self = this->shared_from_this(), request, action = std::move(action)]() mutable {
                     self->Act(request, std::move(action));
                   });
  }

 private:
  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(server_.config.max_body_bytes);
    // The stream's own timeout would close the socket (and never applies to a
    // read already pending): this timer leaves room to answer 408.
    beast::get_lowest_layer(stream_).expires_never();
    timed_out_ = false;
    timer_.expires_after(server_.config.request_timeout);
    timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->timed_out_ = true;
      beast::error_code ignored;
      beast::get_lowest_layer(self->stream_).socket().cancel(ignored);
    });
    http::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      self->timer_.cancel();
      self->OnRequest(ec);
    });
  }

  void OnRequest(beast::error_code ec) {
    if (timed_out_) ec = beast::error::timeout;
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset) return;
    if (ec) {
      // Answered, then closed: the rest of the request cannot be trusted.
      keep_alive_ = false;
      ++request_;
      in_response_ = true;
      head_sent_ = false;
      int status = 400;
      std::string message = edgellm::StrCat("malformed request: ", ec.message());
      if (ec == http::error::body_limit) {
        status = 413;
        message = edgellm::StrCat("the request body is larger than ", server_.config.max_body_bytes, " bytes");
      } else if (ec == http::error::header_limit) {
        status = 431;
        message = edgellm::StrCat("the request headers are larger than ", kMaxHeaderBytes, " bytes");
      } else if (ec == beast::error::timeout) {
        status = 408;
        message = edgellm::StrCat("the request did not arrive within ",
                                  server_.config.request_timeout.count(), " ms");
      }
      Act(request_, {Action::kSend, status, "application/json", server_.error_body(status, message), {}, nullptr});
      return;
    }
    http::request<http::string_body> message = parser_->release();
    HttpRequest request;
    request.method = std::string(message.method_string());
    const std::string target(message.target());
    request.path = target.substr(0, target.find('?'));
    for (const auto& field : message) {
      request.headers[absl::AsciiStrToLower(std::string(field.name_string()))] = std::string(field.value());
    }
    request.body = std::move(message.body());
    request.peer_name = peer_name_;
    keep_alive_ = message.keep_alive();
    ++request_;
    in_response_ = true;
    head_sent_ = false;
    // The client's silence is fine while the answer is prepared; a closed connection is noticed at once.
    beast::get_lowest_layer(stream_).expires_never();
    Watch();
    server_.handler(std::move(request), std::make_shared<Responder>(this->weak_from_this(), request_));
  }

  // Reads while a response is on its way: an error means the client is gone;
  // bytes are the start of its next request, kept for ReadRequest.
  void Watch() {
    if (watching_ || gone_) return;
    watching_ = true;
    stream_.async_read_some(buffer_.prepare(kWatchBytes),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              self->OnWatch(ec, n);
                            });
  }

  void OnWatch(beast::error_code ec, size_t n) {
    watching_ = false;
    if (ec) {
      gone_ = true;
      if (in_response_ && on_gone_) {
        auto on_gone = std::move(on_gone_);
        on_gone_ = nullptr;
        on_gone();
      }
      return;
    }
    buffer_.commit(n);
    // The next request begins (ReadRequest gives the idle timer its deadline).
    if (!in_response_) ReadRequest();
  }

  void Act(uint64_t request, Action action) {
    if (request != request_ || !in_response_ || gone_) return;
    switch (action.kind) {
      case Action::kOnGone:
        on_gone_ = std::move(action.on_gone);
        return;
      case Action::kSend: {
        if (head_sent_) return;
        head_sent_ = true;
        std::string bytes = Head(action.status, action.content_type, action.headers, keep_alive_);
        bytes += edgellm::StrCat("Content-Length: ", action.data.size(), "\r\n\r\n");
        bytes += action.data;
        Queue(std::move(bytes));
        Finish();
        return;
      }
      case Action::kStartStream:
        if (head_sent_) return;
        head_sent_ = true;
        Queue(Head(action.status, action.content_type, {{"Cache-Control", "no-cache"}, {"Transfer-Encoding", "chunked"}},
                   keep_alive_) +
              "\r\n");
        return;
      case Action::kWrite:
        if (!head_sent_ || action.data.empty()) return;
        Queue(ChunkOf(action.data));
        return;
      case Action::kEnd:
        if (!head_sent_) return;
        Queue("0\r\n\r\n");
        Finish();
        return;
    }
  }

  void Finish() {
    in_response_ = false;
    on_gone_ = nullptr;
  }

  void Queue(std::string bytes) {
    outgoing_.push_back(std::move(bytes));
    if (!writing_) WriteNext();
  }

  void WriteNext() {
    if (outgoing_.empty()) {
      writing_ = false;
      if (in_response_) return;
      if (!keep_alive_) {
        Close();
      } else {
        if (buffer_.size() > 0 && !watching_) {
          ReadRequest();
        } else {
          // Idle until the next request: the watch read (or a new one) waits
          // for it, and an idle connection is closed after idle_timeout.
          Watch();
          timer_.expires_after(server_.config.idle_timeout);
          timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
            if (ec || self->in_response_) return;
            beast::error_code ignored;
            beast::get_lowest_layer(self->stream_).socket().close(ignored);
          });
        }
      }
      return;
    }
    writing_ = true;
    asio::async_write(stream_, asio::buffer(outgoing_.front()),
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        self->outgoing_.pop_front();
                        if (ec) {
                          self->outgoing_.clear();
                          self->writing_ = false;
                          self->OnWatch(ec, 0);
                          return;
                        }
                        self->WriteNext();
                      });
  }

  void Close() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  ServerShared& server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  uint64_t request_ = 0;  // the number of the request being answered
  bool in_response_ = false;
  bool head_sent_ = false;
  bool keep_alive_ = true;
  bool watching_ = false;
  bool writing_ = false;
  bool gone_ = false;
  bool timed_out_ = false;  // the request did not arrive in time
  std::string peer_name_;   // the client certificate's common name, if it showed one
  asio::steady_timer timer_;  // a request's deadline to arrive, or an idle connection's
  std::function<void()> on_gone_;
  std::deque<std::string> outgoing_;
};

}  // namespace

void HttpServer::Impl::Accept() {
  acceptor->async_accept(asio::make_strand(*io), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      // Streams are many small writes: Nagle's algorithm would hold each one
      // back until the client's delayed ACK, 40 ms later.
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      if (shared.connections.load() >= shared.config.max_connections) {
        socket.close(ignored);
      } else if (shared.tls) {
        std::make_shared<Connection<beast::ssl_stream<beast::tcp_stream>>>(
            shared, beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *shared.tls))
            ->Run();
      } else {
        std::make_shared<Connection<beast::tcp_stream>>(shared, beast::tcp_stream(std::move(socket)))->Run();
      }
    }
    Accept();
  });
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerConfig& config, HttpRequestHandler handler,
                                                              HttpErrorBody error_body) {
  const size_t colon = config.listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(edgellm::StrCat("http_listen '", config.listen, "' is not HOST:PORT"));
  }
  std::string host = config.listen.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = -1;
  const std::string port_text = config.listen.substr(colon + 1);
  if (!port_text.empty() && port_text.size() <= 5 && port_text.find_first_not_of("0123456789") == std::string::npos) {
    port = std::stoi(port_text);
  }
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(edgellm::StrCat("http_listen '", config.listen, "' has a bad port"));
  }
  auto impl = std::make_shared<Impl>();
  impl->shared.config = config;
  impl->shared.handler = std::move(handler);
  impl->shared.error_body = std::move(error_body);
  if (!config.tls_cert.empty()) {
    absl::StatusOr<ops::TlsFiles> files = ops::LoadTlsFiles(config.tls_cert, config.tls_key, config.tls_client_ca);
    if (!files.ok()) return files.status();
    impl->shared.tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    impl->shared.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                           ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    beast::error_code ec;
    impl->shared.tls->use_certificate_chain(asio::buffer(files->cert_chain), ec);
    if (!ec) impl->shared.tls->use_private_key(asio::buffer(files->private_key), ssl::context::pem, ec);
    if (!ec && !files->client_ca.empty()) {
      impl->shared.tls->add_certificate_authority(asio::buffer(files->client_ca), ec);
      impl->shared.tls->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    }
    if (ec) return absl::InvalidArgumentError(edgellm::StrCat("http TLS files: ", ec.message()));
  }
  beast::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return absl::InvalidArgumentError(edgellm::StrCat("http_listen host '", host, "': ", ec.message()));
  const tcp::endpoint endpoint(address, static_cast<uint16_t>(port));
  impl->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(endpoint, ec);
  if (!ec) impl->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(edgellm::StrCat("cannot listen on ", config.listen, ": ", ec.message()));
  impl->Accept();
  for (int i = 0; i < std::max(1, config.threads); ++i) {
    impl->threads.emplace_back([io = impl->io.get()] { io->run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  asio::post(*impl_->io, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor->close(ignored);
    impl->io->stop();
  });
  for (std::thread& thread : impl_->threads) thread.join();
}

int HttpServer::port() const { return impl_->acceptor->local_endpoint().port(); }

}  // namespace edgellm::ops
