#include "daemon/serve/unix_peer_listener.h"

#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/str_cat.h"

namespace edgellm::serve {

absl::StatusOr<std::unique_ptr<UnixPeerListener>> UnixPeerListener::Listen(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(StrCat("unix socket path '", path, "' is empty or longer than ",
                                             sizeof(address.sun_path) - 1, " bytes"));
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  std::error_code ec;
  std::filesystem::remove(path, ec);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(StrCat("socket: ", std::strerror(errno)));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 || ::listen(fd, 128) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::UnavailableError(StrCat("cannot listen on unix:", path, ": ", std::strerror(error)));
  }
  ::chmod(path.c_str(), 0660);
  return std::unique_ptr<UnixPeerListener>(new UnixPeerListener(fd, path));
}

UnixPeerListener::~UnixPeerListener() {
  Stop();
  ::close(fd_);
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

void UnixPeerListener::Start(grpc::Server* server) {
  acceptor_ = std::thread([this, server] { AcceptLoop(server); });
}

void UnixPeerListener::Stop() {
  if (stopping_.exchange(true)) return;
  ::shutdown(fd_, SHUT_RDWR);  // wakes the accept
  if (acceptor_.joinable()) acceptor_.join();
}

void UnixPeerListener::AcceptLoop(grpc::Server* server) {
  while (!stopping_) {
    const int connection = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);  // as gRPC reads it
    if (connection < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (stopping_) return;
      // Out of descriptors, say: wait a moment rather than spin.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    ucred credentials{};
    socklen_t length = sizeof(credentials);
    if (::getsockopt(connection, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
      ::close(connection);
      continue;
    }
    {
      MutexLock lock(&mu_);
      uids_[connection] = credentials.uid;
    }
    grpc::AddInsecureChannelFromFd(server, connection);
  }
}

std::string UnixPeerListener::CallerOf(const std::string& peer) {
  if (!peer.starts_with("fd:")) return "";
  const int fd = std::atoi(peer.c_str() + 3);
  MutexLock lock(&mu_);
  auto it = uids_.find(fd);
  return it == uids_.end() ? "" : StrCat("uid:", it->second);
}

}  // namespace edgellm::serve
