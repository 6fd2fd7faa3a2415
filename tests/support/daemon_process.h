// tests/support/daemon_process.h — runs a real edgellmd for a test.
#ifndef EDGELLM_TESTS_SUPPORT_DAEMON_PROCESS_H_
#define EDGELLM_TESTS_SUPPORT_DAEMON_PROCESS_H_

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"

namespace edgellm::testing {

// How a test reaches the daemon when not on its default fresh unix socket.
struct DaemonAddress {
  std::string listen;  // e.g. "127.0.0.1:PORT"
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// Starts edgellmd on a fresh unix socket (or `address`) and waits until its
// health check says SERVING; sends SIGTERM and reaps it on destruction.
class DaemonProcess {
 public:
  // nullptr (with the reason in *error) when it does not come up within 60 s.
  // `environment` adds NAME=VALUE entries to the daemon's environment.
  // `log` (if not empty) receives the daemon's stderr, appended.
  static std::unique_ptr<DaemonProcess> Start(const std::string& model, const std::vector<std::string>& extra_args,
                                              std::string* error,
                                              const std::vector<std::string>& environment = {},
                                              const DaemonAddress& address = {}, const std::string& log = "") {
    auto daemon = std::unique_ptr<DaemonProcess>(new DaemonProcess());
    daemon->socket_ = (std::filesystem::temp_directory_path() /
                       ("edgellmd-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++) + ".sock"))
                          .string();
    daemon->target_ = address.listen.empty() ? "unix:" + daemon->socket_ : address.listen;
    daemon->credentials_ = address.credentials ? address.credentials : grpc::InsecureChannelCredentials();
    // An empty `model` leaves the model to a --config file among `extra_args`.
    std::vector<std::string> args = {std::string(EDGELLM_BINARY_DIR) + "/daemon/edgellmd", "--listen",
                                     daemon->target_, "--threads", "1"};
    if (!model.empty()) args.insert(args.end(), {"--model", model});
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    daemon->pid_ = ::fork();
    if (daemon->pid_ == 0) {
      if (!log.empty()) ::dup2(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644), STDERR_FILENO);
      for (const std::string& entry : environment) ::putenv(const_cast<char*>(entry.c_str()));
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < give_up) {
      int status = 0;
      if (::waitpid(daemon->pid_, &status, WNOHANG) == daemon->pid_) {
        daemon->pid_ = -1;
        *error = "edgellmd exited during start-up with status " + std::to_string(WEXITSTATUS(status));
        return nullptr;
      }
      // A fresh channel per probe: a channel that failed to connect backs off for seconds.
      daemon->channel_ = daemon->NewChannel(daemon->credentials_);
      if (daemon->HealthStatus() == grpc::health::v1::HealthCheckResponse::SERVING) return daemon;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    *error = "edgellmd did not report SERVING within 60 s; its threads (name: state, kernel wait): " +
             ThreadStates(daemon->pid_);
    return nullptr;
  }

  // Where a stuck process's threads are, from /proc: enough to tell a
  // deadlock on a lock from a wait on I/O.
  static std::string ThreadStates(pid_t pid) {
    std::string out;
    std::error_code ec;
    const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
    for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
      std::string name, state, wchan;
      std::getline(std::ifstream(task.path() / "comm"), name);
      std::ifstream status(task.path() / "status");
      for (std::string line; std::getline(status, line);) {
        if (line.rfind("State:", 0) == 0) state = line.substr(7);
      }
      std::getline(std::ifstream(task.path() / "wchan"), wchan);
      out += name + ": " + state + ", " + wchan + "; ";
    }
    return out;
  }

  ~DaemonProcess() {
    if (pid_ > 0) Terminate();
  }

  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  // Another channel to the daemon, with other credentials.
  std::shared_ptr<grpc::Channel> NewChannel(std::shared_ptr<grpc::ChannelCredentials> credentials) const {
    return grpc::CreateChannel(target_, credentials);
  }
  const std::string& socket() const { return socket_; }
  pid_t pid() const { return pid_; }

  // UNKNOWN when the check itself fails.
  grpc::health::v1::HealthCheckResponse::ServingStatus HealthStatus() const {
    auto stub = grpc::health::v1::Health::NewStub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    if (!stub->Check(&context, request, &response).ok()) return grpc::health::v1::HealthCheckResponse::UNKNOWN;
    return response.status();
  }

  void SendSigterm() const { ::kill(pid_, SIGTERM); }
  // kill -9, and reaps it.
  void Kill9() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // Waits for the process to exit (after SIGTERM) and returns its exit code; -1 if killed by a signal.
  int Wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  int Terminate() {
    SendSigterm();
    return Wait();
  }

 private:
  DaemonProcess() = default;
  static int& counter() {
    static int n = 0;
    return n;
  }
  pid_t pid_ = -1;
  std::string socket_;
  std::string target_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace edgellm::testing

#endif  // EDGELLM_TESTS_SUPPORT_DAEMON_PROCESS_H_
