// tests/support/http_client.h — an HTTP/1.1 client for tests on loopback
// (Boost.Beast): whole requests with any method, headers and body, chunked
// answers read to their end, and a raw socket for clients that misbehave.
#ifndef EDGELLM_TESTS_SUPPORT_HTTP_CLIENT_H_
#define EDGELLM_TESTS_SUPPORT_HTTP_CLIENT_H_

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace edgellm::testing {

struct HttpAnswer {
  int status = 0;  // 0 when the exchange failed (error says why)
  std::map<std::string, std::string> headers;
  std::string body;
  std::string error;
};

// One request on a fresh connection to 127.0.0.1:`port`.
inline HttpAnswer HttpCall(int port, const std::string& method, const std::string& target, const std::string& body = "",
                           const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  HttpAnswer answer;
  try {
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(120));
    stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)));
    http::request<http::string_body> request(http::string_to_verb(method), target, 11);
    request.set(http::field::host, "localhost");
    if (!body.empty()) request.set(http::field::content_type, "application/json");
    for (const auto& [name, value] : headers) request.set(name, value);
    request.body() = body;
    request.prepare_payload();
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 << 20);
    http::read(stream, buffer, parser);
    const auto& response = parser.get();
    answer.status = static_cast<int>(response.result_int());
    for (const auto& field : response) answer.headers[std::string(field.name_string())] = std::string(field.value());
    answer.body = response.body();
  } catch (const std::exception& e) {
    answer.error = e.what();
  }
  return answer;
}

inline HttpAnswer HttpPost(int port, const std::string& target, const std::string& body,
                           const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  return HttpCall(port, "POST", target, body, headers);
}

// The data lines of a server-sent-event stream, in order.
inline std::vector<std::string> SseData(const std::string& body) {
  std::vector<std::string> data;
  size_t at = 0;
  while ((at = body.find("data: ", at)) != std::string::npos) {
    const size_t end = body.find("\n\n", at);
    data.push_back(body.substr(at + 6, end - at - 6));
    at = end == std::string::npos ? body.size() : end;
  }
  return data;
}

}  // namespace edgellm::testing

#endif  // EDGELLM_TESTS_SUPPORT_HTTP_CLIENT_H_
