// tests/support/http_get.h — a minimal HTTP/1.0 client for tests on loopback.
#ifndef EDGELLM_TESTS_SUPPORT_HTTP_GET_H_
#define EDGELLM_TESTS_SUPPORT_HTTP_GET_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace edgellm::testing {

struct HttpResult {
  int status = 0;  // 0 when the request failed
  std::string body;
};

// Sends `request_line` (e.g. "GET /metrics") to 127.0.0.1:`port` and reads the whole answer.
inline HttpResult HttpRequest(int port, const std::string& request_line) {
  HttpResult result;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return result;
  }
  const std::string request = request_line + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  (void)::send(fd, request.data(), request.size(), 0);
  std::string response;
  char buffer[4096];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) response.append(buffer, n);
  ::close(fd);
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return result;
  result.status = std::stoi(response.substr(9, 3));
  const size_t body = response.find("\r\n\r\n");
  if (body != std::string::npos) result.body = response.substr(body + 4);
  return result;
}

inline HttpResult HttpGet(int port, const std::string& path) { return HttpRequest(port, "GET " + path); }

}  // namespace edgellm::testing

#endif  // EDGELLM_TESTS_SUPPORT_HTTP_GET_H_
