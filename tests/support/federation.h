// tests/support/federation.h — a real edgellm-aggregator for a test, the PKI
// it needs (deploy/pki.sh), and a light device client speaking
// edgellm.v1.Federation over mutual TLS.
#ifndef EDGELLM_TESTS_SUPPORT_FEDERATION_H_
#define EDGELLM_TESTS_SUPPORT_FEDERATION_H_

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "edgellm/v1/federation.grpc.pb.h"
#include "tests/support/http_get.h"

namespace edgellm::testing {

inline std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// libfaketime, preloaded with its variables (FAKETIME=-2h, ...) rather than
// through the `faketime` wrapper: the wrapper keeps a named semaphore per
// process id in /dev/shm, and one a killed run left behind fails a later
// process that gets the same id ("sem_open: File exists").
inline constexpr char kLibFaketime[] = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

// deploy/pki.sh into `dir`: ca.pem, aggregator.pem/.key and NAME.pem/.key per
// device; `backdated` certificates were valid from a day ago (for processes
// whose clock is set back).
inline bool MakePki(const std::filesystem::path& dir, const std::vector<std::string>& devices,
                    bool backdated = false) {
  std::string command = (backdated ? std::string("LD_PRELOAD=") + kLibFaketime + " FAKETIME=-1d " : std::string()) +
                        EDGELLM_SOURCE_DIR + "/deploy/pki.sh " + dir.string() + " --server aggregator";
  for (const std::string& d : devices) command += " " + d;
  return std::system((command + " >/dev/null").c_str()) == 0;
}

// edgellm-aggregator --config FILE, its stderr in a log file.
class AggregatorProcess {
 public:
  // nullptr (reason in *error) when it exits or does not listen within 60 s.
  static std::unique_ptr<AggregatorProcess> Start(const std::filesystem::path& config, const std::filesystem::path& log,
                                                  std::string* error) {
    auto process = std::unique_ptr<AggregatorProcess>(new AggregatorProcess(log));
    const std::string start_marker = "listening on";
    const size_t log_before = ReadAll(log).size();
    process->log_offset_ = log_before;
    process->pid_ = ::fork();
    if (process->pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 2);
      std::string program = std::string(EDGELLM_BINARY_DIR) + "/federated/aggregator/edgellm-aggregator";
      std::string flag = "--config";
      std::string path = config.string();
      char* argv[] = {program.data(), flag.data(), path.data(), nullptr};
      ::execv(argv[0], argv);
      ::_exit(127);
    }
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < give_up) {
      int status = 0;
      if (::waitpid(process->pid_, &status, WNOHANG) == process->pid_) {
        process->pid_ = -1;
        *error = "edgellm-aggregator exited with status " + std::to_string(WEXITSTATUS(status)) + ": " +
                 ReadAll(log).substr(log_before);
        return nullptr;
      }
      if (ReadAll(log).find(start_marker, log_before) != std::string::npos) return process;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    *error = "edgellm-aggregator did not listen within 60 s";
    return nullptr;
  }
  ~AggregatorProcess() {
    if (pid_ > 0) Terminate();
  }
  void Kill9() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  int Terminate() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  pid_t pid() const { return pid_; }
  std::string Log() const { return ReadAll(log_); }
  // The number after `marker` in this run's log: the port of a listener
  // given as HOST:0 ("(port " for gRPC, "metrics on port "); 0 if absent.
  int LoggedPort(const std::string& marker) const {
    const std::string text = Log();
    const size_t at = text.find(marker, log_offset_);
    return at == std::string::npos ? 0 : std::atoi(text.c_str() + at + marker.size());
  }
  // Waits up to `timeout` for `text` to appear in the log.
  bool WaitForLog(const std::string& text, std::chrono::seconds timeout) const {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < give_up) {
      if (Log().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

 private:
  explicit AggregatorProcess(std::filesystem::path log) : log_(std::move(log)) {}
  pid_t pid_ = -1;
  std::filesystem::path log_;
  size_t log_offset_ = 0;  // where this run's lines begin
};

// Sets the port of a config file's `key: HOST:0` line. A program listening
// on port 0 picks a free one; pinning it there after the first start makes a
// restart listen where the clients were told to connect.
inline bool PinPort(const std::filesystem::path& config, const std::string& key, int port) {
  std::istringstream in(ReadAll(config));
  std::string text, line;
  bool pinned = false;
  while (std::getline(in, line)) {
    if (!pinned && line.starts_with(key + ": ") && line.ends_with(":0")) {
      line.replace(line.size() - 1, 1, std::to_string(port));
      pinned = true;
    }
    text += line + "\n";
  }
  if (pinned) std::ofstream(config, std::ios::trunc) << text;
  return pinned;
}

// Channel credentials from PEM files; an empty cert means none is presented.
inline std::shared_ptr<grpc::ChannelCredentials> DeviceCredentials(const std::filesystem::path& ca,
                                                                   const std::filesystem::path& cert,
                                                                   const std::filesystem::path& key) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadAll(ca);
  if (!cert.empty()) {
    ssl.pem_cert_chain = ReadAll(cert);
    ssl.pem_private_key = ReadAll(key);
  }
  return grpc::SslCredentials(ssl);
}

// A device reduced to its protocol: what a test needs to drive rounds by hand.
class FederationTestClient {
 public:
  // With `wait_for_ready`, calls wait (up to their 30 s deadline) for the
  // aggregator to be reachable, as across its restart; without, a call that
  // cannot connect fails at once.
  FederationTestClient(const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials,
                       std::string device_id, bool wait_for_ready = true)
      : stub_(edgellm::v1::Federation::NewStub(grpc::CreateChannel(target, credentials))),
        device_id_(std::move(device_id)),
        wait_for_ready_(wait_for_ready) {}

  const std::string& device_id() const { return device_id_; }
  edgellm::v1::Federation::Stub& stub() { return *stub_; }

  grpc::Status Register(const std::string& model_id, const std::string& base_sha256, int32_t rank,
                        const std::vector<std::string>& targets, edgellm::v1::RegisterResponse* response = nullptr,
                        int64_t local_examples = 100) {
    edgellm::v1::RegisterRequest request;
    request.set_device_id(device_id_);
    request.set_protocol_version(1);
    request.set_daemon_version("test");
    request.set_model_id(model_id);
    request.set_base_model_sha256(base_sha256);
    request.mutable_adapter_schema()->set_rank(rank);
    for (const std::string& t : targets) request.mutable_adapter_schema()->add_targets(t);
    request.mutable_capabilities()->set_local_examples(local_examples);
    edgellm::v1::RegisterResponse ignored;
    auto context = Context();
    return stub_->Register(context.get(), request, response != nullptr ? response : &ignored);
  }

  grpc::Status GetTask(const std::string& model_id, edgellm::v1::GetTaskResponse* response) {
    edgellm::v1::GetTaskRequest request;
    request.set_device_id(device_id_);
    request.set_model_id(model_id);
    auto context = Context();
    return stub_->GetTask(context.get(), request, response);
  }

  // Polls until a TRAIN task arrives (or 60 s pass).
  bool WaitForTask(const std::string& model_id, edgellm::v1::Task* task) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < give_up) {
      edgellm::v1::GetTaskResponse response;
      if (GetTask(model_id, &response).ok() && response.outcome() == edgellm::v1::GetTaskResponse::TRAIN) {
        *task = response.task();
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  grpc::Status Heartbeat(const std::string& model_id, uint64_t round_id, edgellm::v1::HeartbeatResponse* response) {
    edgellm::v1::HeartbeatRequest request;
    request.set_device_id(device_id_);
    request.set_model_id(model_id);
    request.set_state(edgellm::v1::DEVICE_STATE_TRAINING);
    request.set_round_id(round_id);
    auto context = Context();
    return stub_->Heartbeat(context.get(), request, response);
  }

  // The whole artifact of a version.
  grpc::Status Fetch(const std::string& model_id, uint64_t version, std::string* bytes, uint64_t offset = 0) {
    edgellm::v1::FetchAdapterRequest request;
    request.set_device_id(device_id_);
    request.set_model_id(model_id);
    request.set_version(version);
    request.set_offset(offset);
    auto context = Context();
    auto reader = stub_->FetchAdapter(context.get(), request);
    edgellm::v1::ArtifactChunk chunk;
    while (reader->Read(&chunk)) *bytes += chunk.data();
    return reader->Finish();
  }

  struct Upload {
    std::string model_id;
    uint64_t round_id = 0;
    std::string key;
    int64_t examples = 1;
    std::string bytes;
    std::string sha256;          // of `bytes`
    uint64_t declared_total = 0; // 0: bytes.size()
    uint64_t offset = 0;         // stream bytes from here
    uint64_t stop_after = 0;     // 0: all; else end the stream after this many bytes
    std::string claimed_device;  // "": this client's id
    size_t chunk_bytes = 64 << 10;
    std::chrono::milliseconds pause{0};  // between chunks: a slow link
  };
  grpc::Status Submit(const Upload& u, edgellm::v1::SubmitUpdateResponse* response) {
    auto context = Context();
    auto writer = stub_->SubmitUpdate(context.get(), response);
    edgellm::v1::UpdateChunk header;
    edgellm::v1::UpdateHeader* h = header.mutable_header();
    h->set_device_id(u.claimed_device.empty() ? device_id_ : u.claimed_device);
    h->set_model_id(u.model_id);
    h->set_round_id(u.round_id);
    h->set_idempotency_key(u.key);
    h->set_example_count(u.examples);
    h->set_total_bytes(u.declared_total != 0 ? u.declared_total : u.bytes.size());
    h->set_sha256(u.sha256);
    h->set_offset(u.offset);
    bool open = writer->Write(header);
    const uint64_t end = u.stop_after != 0 ? u.offset + u.stop_after : u.bytes.size();
    for (uint64_t at = u.offset; open && at < end; at += u.chunk_bytes) {
      edgellm::v1::UpdateChunk chunk;
      chunk.set_data(u.bytes.substr(at, std::min<uint64_t>(u.chunk_bytes, end - at)));
      open = writer->Write(chunk);
      if (u.pause.count() > 0) std::this_thread::sleep_for(u.pause);
    }
    writer->WritesDone();
    return writer->Finish();
  }

  grpc::Status UploadStatus(const std::string& model_id, uint64_t round_id, const std::string& key,
                            edgellm::v1::UploadStatusResponse* response) {
    edgellm::v1::UploadStatusRequest request;
    request.set_device_id(device_id_);
    request.set_model_id(model_id);
    request.set_round_id(round_id);
    request.set_idempotency_key(key);
    auto context = Context();
    return stub_->UploadStatus(context.get(), request, response);
  }

 private:
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    context->set_wait_for_ready(wait_for_ready_);
    return context;
  }
  std::unique_ptr<edgellm::v1::Federation::Stub> stub_;
  std::string device_id_;
  bool wait_for_ready_;
};

}  // namespace edgellm::testing

#endif  // EDGELLM_TESTS_SUPPORT_FEDERATION_H_
