// serve/unix_peer_listener.h — the daemon's unix socket, accepted by the
// daemon itself so that it knows who connected: the kernel tells (SO_PEERCRED)
// the uid of the process at the other end, and gRPC, handed the connection,
// names it "fd:N" in each call's peer(). Sessions and the fair share then
// belong to a local user ("uid:1000"), as they belong to a client
// certificate over TCP: one user of the socket cannot continue another's
// session.
#ifndef EDGELLM_SERVE_UNIX_PEER_LISTENER_H_
#define EDGELLM_SERVE_UNIX_PEER_LISTENER_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "common/mutex.h"

namespace grpc {
class Server;
}

namespace edgellm::serve {

class UnixPeerListener {
 public:
  // Listens on `path` (a stale socket there is replaced), group-accessible (0660).
  static absl::StatusOr<std::unique_ptr<UnixPeerListener>> Listen(const std::string& path);
  ~UnixPeerListener();  // Stop()
  UnixPeerListener(const UnixPeerListener&) = delete;
  UnixPeerListener& operator=(const UnixPeerListener&) = delete;

  // Hands every connection from now on to `server`, which must outlive Stop().
  void Start(grpc::Server* server);
  // Accepts no more connections; those handed over stay the server's.
  void Stop();
  // "uid:N" for the peer() of a call on a connection accepted here; "" otherwise.
  std::string CallerOf(const std::string& peer);

 private:
  UnixPeerListener(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  void AcceptLoop(grpc::Server* server);

  const int fd_;
  const std::string path_;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  Mutex mu_;
  // A connection's descriptor -> its peer's uid. A descriptor number is
  // reused only after gRPC closed the connection, and is overwritten then.
  std::unordered_map<int, uid_t> uids_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_UNIX_PEER_LISTENER_H_
