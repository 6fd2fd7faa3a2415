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
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"

namespace edgellm::testing {

// How a test reaches the daemon when not on its default fresh unix socket.
struct DaemonAddress {
  std::string listen;  // e.g. "127.0.0.1:0": the daemon picks a free port and logs it
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// Starts edgellmd on a fresh unix socket (or `address`) and waits until its
// health check says SERVING; sends SIGTERM and reaps it on destruction. Its
// stderr goes to a log file (`log`, or one of its own), where the ports it
// picked for listeners given as HOST:0 are read (LoggedPort).
class DaemonProcess {
 public:
  // nullptr (with the reason and the daemon's log in *error) when it does not
  // come up within 60 s. `environment` adds NAME=VALUE entries to the daemon's
  // environment. `log` (if not empty) receives the daemon's stderr, appended.
  static std::unique_ptr<DaemonProcess> Start(const std::string& model, const std::vector<std::string>& extra_args,
                                              std::string* error,
                                              const std::vector<std::string>& environment = {},
                                              const DaemonAddress& address = {}, const std::string& log = "") {
    auto daemon = std::unique_ptr<DaemonProcess>(new DaemonProcess());
    daemon->socket_ = (std::filesystem::temp_directory_path() /
                       ("edgellmd-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++) + ".sock"))
                          .string();
    daemon->target_ = address.listen.empty() ? "unix:" + daemon->socket_ : address.listen;
    daemon->log_ = log.empty() ? daemon->socket_ + ".log" : log;
    daemon->owns_log_ = log.empty();
    // A log appended to by earlier runs: this run's lines are what follows.
    std::error_code size_error;
    const auto size = std::filesystem::file_size(daemon->log_, size_error);
    daemon->log_offset_ = size_error ? 0 : static_cast<size_t>(size);
    daemon->credentials_ = address.credentials ? address.credentials : grpc::InsecureChannelCredentials();
    // An empty `model` leaves the model to a --config file among `extra_args`.
    std::vector<std::string> args = {std::string(EDGELLM_BINARY_DIR) + "/daemon/edgellmd", "--listen",
                                     daemon->target_, "--threads", "1"};
    if (!model.empty()) args.insert(args.end(), {"--model", model});
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    daemon->pid_ = ::fork();
    if (daemon->pid_ == 0) {
      ::dup2(::open(daemon->log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644), STDERR_FILENO);
      for (const std::string& entry : environment) ::putenv(const_cast<char*>(entry.c_str()));
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    const bool any_port = daemon->target_.size() > 2 && daemon->target_.ends_with(":0");
    while (std::chrono::steady_clock::now() < give_up) {
      int status = 0;
      if (::waitpid(daemon->pid_, &status, WNOHANG) == daemon->pid_) {
        daemon->pid_ = -1;
        *error = "edgellmd exited during start-up with status " + std::to_string(WEXITSTATUS(status)) +
                 "; its log: " + daemon->LogText();
        return nullptr;
      }
      if (any_port && daemon->target_.ends_with(":0")) {
        // Listening on port 0: the port is in the log once the listener is up.
        const std::string text = daemon->LogText();
        const size_t at = text.find("gRPC on port ");
        if (at == std::string::npos) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          continue;
        }
        daemon->target_ = daemon->target_.substr(0, daemon->target_.size() - 1) +
                          std::to_string(std::atoi(text.c_str() + at + 13));
      }
      // A fresh channel per probe: a channel that failed to connect backs off for seconds.
      daemon->channel_ = daemon->NewChannel(daemon->credentials_);
      if (daemon->HealthStatus() == grpc::health::v1::HealthCheckResponse::SERVING) return daemon;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    *error = "edgellmd did not report SERVING within 60 s; its threads (name: state, kernel wait): " +
             ThreadStates(daemon->pid_) + "; its log: " + daemon->LogText();
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
    if (owns_log_) std::filesystem::remove(log_);
  }

  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  // Another channel to the daemon, with other credentials.
  std::shared_ptr<grpc::Channel> NewChannel(std::shared_ptr<grpc::ChannelCredentials> credentials) const {
    return grpc::CreateChannel(target_, credentials);
  }
  const std::string& socket() const { return socket_; }
  // The address its gRPC listener is reached at (a port 0 replaced by the one it got).
  const std::string& target() const { return target_; }
  // The port a listener given as HOST:0 logged after `marker` (e.g. "metrics on
  // port "), waiting for it up to 30 s; -1 if it never came.
  int LoggedPort(const std::string& marker) const {
    for (int attempt = 0; attempt < 1500; ++attempt) {
      const std::string text = LogText();
      const size_t at = text.find(marker);
      if (at != std::string::npos) return std::atoi(text.c_str() + at + marker.size());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  // What this run of the daemon has logged so far.
  std::string LogText() const {
    std::ifstream in(log_);
    in.seekg(static_cast<std::streamoff>(log_offset_));
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
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
  std::string log_;
  bool owns_log_ = false;  // a log of its own, removed with it
  size_t log_offset_ = 0;  // where this run's lines begin
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace edgellm::testing

#endif  // EDGELLM_TESTS_SUPPORT_DAEMON_PROCESS_H_
