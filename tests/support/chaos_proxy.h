// tests/support/chaos_proxy.h — a TCP proxy on loopback that a test can turn
// against its clients: every connection it carries can be cut at once (as a
// NAT timeout, a Wi-Fi drop or a middlebox does), and the address it forwards
// to can change (the server came back on another port). It listens on a port
// of its own choosing (port()).
#ifndef EDGELLM_TESTS_SUPPORT_CHAOS_PROXY_H_
#define EDGELLM_TESTS_SUPPORT_CHAOS_PROXY_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <list>
#include <mutex>
#include <thread>

namespace edgellm::testing {

class ChaosProxy {
 public:
  explicit ChaosProxy(int target_port) : target_port_(target_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address = Loopback(0);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    ::listen(listener_, 256);
    socklen_t length = sizeof(address);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~ChaosProxy() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    acceptor_.join();
    ::close(listener_);
    CutAll();
    std::lock_guard<std::mutex> lock(mu_);
    for (Pipe& pipe : pipes_) Reap(pipe);
  }

  int port() const { return port_; }
  void SetTarget(int port) { target_port_ = port; }
  // Breaks every connection carried now; both ends see it closed. Returns how many.
  int CutAll() {
    std::lock_guard<std::mutex> lock(mu_);
    int cut = 0;
    for (Pipe& pipe : pipes_) {
      if (pipe.done) continue;
      ::shutdown(pipe.client, SHUT_RDWR);
      ::shutdown(pipe.server, SHUT_RDWR);
      ++cut;
    }
    return cut;
  }

 private:
  struct Pipe {
    int client = -1;
    int server = -1;
    std::atomic<bool> done{false};
    std::thread thread;
  };

  static sockaddr_in Loopback(int port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    return address;
  }

  void Accept() {
    while (!stopping_) {
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in target = Loopback(target_port_);
      if (::connect(server, reinterpret_cast<sockaddr*>(&target), sizeof(target)) != 0) {
        ::close(client);
        ::close(server);
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      // Finished pipes are reaped as new ones come.
      for (auto it = pipes_.begin(); it != pipes_.end();) {
        if (it->done) {
          Reap(*it);
          it = pipes_.erase(it);
        } else {
          ++it;
        }
      }
      Pipe& pipe = pipes_.emplace_back();
      pipe.client = client;
      pipe.server = server;
      pipe.thread = std::thread([&pipe] { Forward(pipe); });
    }
  }

  // Copies both ways until either side closes, then closes both.
  static void Forward(Pipe& pipe) {
    pollfd fds[2] = {{pipe.client, POLLIN, 0}, {pipe.server, POLLIN, 0}};
    char buffer[16384];
    bool open = true;
    while (open && ::poll(fds, 2, -1) > 0) {
      for (int side = 0; side < 2 && open; ++side) {
        if (fds[side].revents == 0) continue;
        const ssize_t n = ::recv(fds[side].fd, buffer, sizeof(buffer), 0);
        if (n <= 0) {
          open = false;
          break;
        }
        for (ssize_t sent = 0; sent < n && open;) {
          const ssize_t w = ::send(fds[1 - side].fd, buffer + sent, static_cast<size_t>(n - sent), MSG_NOSIGNAL);
          open = w > 0;
          sent += w > 0 ? w : 0;
        }
      }
    }
    // Closed when reaped, under the lock: CutAll never touches a reused descriptor.
    ::shutdown(pipe.client, SHUT_RDWR);
    ::shutdown(pipe.server, SHUT_RDWR);
    pipe.done = true;
  }

  // Joins a finished pipe and closes its sockets; the caller holds mu_.
  static void Reap(Pipe& pipe) {
    pipe.thread.join();
    ::close(pipe.client);
    ::close(pipe.server);
  }

  std::atomic<int> target_port_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::list<Pipe> pipes_;
};

}  // namespace edgellm::testing

#endif  // EDGELLM_TESTS_SUPPORT_CHAOS_PROXY_H_
