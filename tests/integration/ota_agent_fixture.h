// tests/integration/ota_agent_fixture.h — a real edgellmd whose OTA agent
// faces HostileReleaseServer: the release server of the OTA agent tests
// (ota_agent_test.cpp, ota_base_release_test.cpp).
#ifndef EDGELLM_TESTS_INTEGRATION_OTA_AGENT_FIXTURE_H_
#define EDGELLM_TESTS_INTEGRATION_OTA_AGENT_FIXTURE_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "edgellm/v1/ota.grpc.pb.h"
#include "federated/protocol/sha256.h"
#include "federated/release/manifest.h"
#include "tests/support/daemon_process.h"
#include "tests/support/federation.h"
#include "tests/support/inference_client.h"
#include "tests/support/test_support.h"

#include <fcntl.h>
#include <sys/wait.h>

namespace edgellm::ota {

namespace fs = std::filesystem;
using edgellm::testing::DaemonProcess;
using edgellm::testing::kLibFaketime;
using edgellm::testing::ReadAll;

inline const std::string kModel = edgellm::testing::SharedPath("models/stories260K.gguf");

inline int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// edgellm.v1.Releases, offering one release at a time until the device
// reports on it, serving artifacts in small, optionally slow chunks.
class HostileReleaseServer final : public v1::Releases::Service {
 public:
  // With `delta`, when given: `delta_bytes` offered as the artifact's delta, as `delta` says.
  void Offer(const std::string& envelope, const std::string& artifact, uint64_t release,
             const v1::BaseDeltaOffer& delta = {}, const std::string& delta_bytes = "") {
    absl::MutexLock lock(&mu_);
    envelope_ = envelope;
    artifact_ = artifact;
    offered_release_ = release;
    offered_at_ = reports_.size();
    delta_ = delta;
    delta_bytes_ = delta_bytes;
  }
  // The sha256 of each FetchArtifact call, in order.
  std::vector<std::string> fetched() {
    absl::MutexLock lock(&mu_);
    return fetched_;
  }
  void SetChunks(size_t bytes, std::chrono::milliseconds delay) {
    absl::MutexLock lock(&mu_);
    chunk_bytes_ = bytes;
    chunk_delay_ = delay;
  }
  // Release polls fail as if the aggregator were unreachable while `away`; counts them.
  void SetAway(bool away) {
    absl::MutexLock lock(&mu_);
    away_ = away;
    polls_while_away_ = 0;
  }
  int polls_while_away() {
    absl::MutexLock lock(&mu_);
    return polls_while_away_;
  }
  // Offers the release to one poll only (an aggregator's rollout that moved
  // on), not to every poll until the device reports on it.
  void OfferOnce() {
    absl::MutexLock lock(&mu_);
    offer_once_ = true;
  }
  // The next `count` install reports fail as if the aggregator were
  // unreachable, or with `code`.
  void FailReports(int count, grpc::StatusCode code = grpc::StatusCode::UNAVAILABLE) {
    absl::MutexLock lock(&mu_);
    failing_reports_ = count;
    failing_reports_code_ = code;
  }
  // The next download ends, as if the connection broke, after `bytes`.
  void CutNextDownloadAfter(size_t bytes) {
    absl::MutexLock lock(&mu_);
    cut_after_ = bytes;
  }
  // Waits up to `timeout` for a report on `release` (with `outcome`, if given)
  // since the last offer; OUTCOME_UNSPECIFIED if none came.
  v1::InstallReport AwaitReport(uint64_t release,
                                v1::InstallReport::Outcome outcome = v1::InstallReport::OUTCOME_UNSPECIFIED,
                                absl::Duration timeout = absl::Seconds(60)) {
    absl::MutexLock lock(&mu_);
    const auto find = [&]() -> const v1::InstallReport* {
      for (size_t i = offered_at_; i < reports_.size(); ++i) {
        const v1::InstallReport& r = reports_[i];
        if (r.release() == release && (outcome == v1::InstallReport::OUTCOME_UNSPECIFIED || r.outcome() == outcome)) {
          return &r;
        }
      }
      return nullptr;
    };
    const auto found = [&] { return find() != nullptr; };
    mu_.AwaitWithTimeout(absl::Condition(&found), timeout);
    const v1::InstallReport* r = find();
    return r != nullptr ? *r : v1::InstallReport();
  }
  std::vector<uint64_t> fetch_offsets() {
    absl::MutexLock lock(&mu_);
    return fetch_offsets_;
  }
  size_t bytes_sent() {
    absl::MutexLock lock(&mu_);
    return bytes_sent_;
  }

  grpc::Status GetRelease(grpc::ServerContext*, const v1::GetReleaseRequest*,
                          v1::GetReleaseResponse* response) override {
    absl::MutexLock lock(&mu_);
    if (away_) {
      ++polls_while_away_;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the aggregator is away");
    }
    response->set_retry_after_ms(100);
    bool reported = false;
    for (size_t i = offered_at_; i < reports_.size(); ++i) reported |= reports_[i].release() == offered_release_;
    if (envelope_.empty() || reported || (offer_once_ && offers_ > 0)) {
      response->set_outcome(v1::GetReleaseResponse::UP_TO_DATE);
      return grpc::Status::OK;
    }
    ++offers_;
    response->set_outcome(v1::GetReleaseResponse::INSTALL);
    response->set_signed_release(envelope_);
    if (!delta_.sha256().empty()) *response->mutable_delta() = delta_;
    return grpc::Status::OK;
  }

  grpc::Status FetchArtifact(grpc::ServerContext* context, const v1::FetchArtifactRequest* request,
                             grpc::ServerWriter<v1::ArtifactChunk>* writer) override {
    std::string artifact;
    size_t chunk_bytes;
    std::chrono::milliseconds delay;
    size_t cut_after;
    {
      absl::MutexLock lock(&mu_);
      artifact = !delta_.sha256().empty() && request->sha256() == delta_.sha256() ? delta_bytes_ : artifact_;
      fetched_.push_back(request->sha256());
      chunk_bytes = chunk_bytes_;
      delay = chunk_delay_;
      cut_after = std::exchange(cut_after_, SIZE_MAX);
      fetch_offsets_.push_back(request->offset());
    }
    size_t offset = request->offset();
    size_t sent = 0;
    while (offset < artifact.size() && sent < cut_after && !context->IsCancelled()) {
      const size_t n = std::min({chunk_bytes, artifact.size() - offset, cut_after - sent});
      v1::ArtifactChunk chunk;
      chunk.set_offset(offset);
      chunk.set_data(artifact.substr(offset, n));
      chunk.set_total_bytes(artifact.size());
      if (!writer->Write(chunk)) break;
      offset += n;
      sent += n;
      {
        absl::MutexLock lock(&mu_);
        bytes_sent_ += n;
      }
      std::this_thread::sleep_for(delay);
    }
    return grpc::Status::OK;
  }

  grpc::Status ReportInstall(grpc::ServerContext*, const v1::InstallReport* report,
                             v1::InstallReportResponse*) override {
    absl::MutexLock lock(&mu_);
    if (failing_reports_ > 0) {
      --failing_reports_;
      return grpc::Status(failing_reports_code_, "the aggregator cannot take this report now");
    }
    reports_.push_back(*report);
    return grpc::Status::OK;
  }

 private:
  absl::Mutex mu_;
  std::string envelope_ ABSL_GUARDED_BY(mu_);
  std::string artifact_ ABSL_GUARDED_BY(mu_);
  v1::BaseDeltaOffer delta_ ABSL_GUARDED_BY(mu_);
  std::string delta_bytes_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> fetched_ ABSL_GUARDED_BY(mu_);
  uint64_t offered_release_ ABSL_GUARDED_BY(mu_) = 0;
  size_t offered_at_ ABSL_GUARDED_BY(mu_) = 0;  // reports before the offer are about earlier ones
  size_t chunk_bytes_ ABSL_GUARDED_BY(mu_) = 1 << 20;
  std::chrono::milliseconds chunk_delay_ ABSL_GUARDED_BY(mu_){0};
  size_t cut_after_ ABSL_GUARDED_BY(mu_) = SIZE_MAX;
  std::vector<uint64_t> fetch_offsets_ ABSL_GUARDED_BY(mu_);
  size_t bytes_sent_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::InstallReport> reports_ ABSL_GUARDED_BY(mu_);
  int failing_reports_ ABSL_GUARDED_BY(mu_) = 0;
  bool offer_once_ ABSL_GUARDED_BY(mu_) = false;
  int offers_ ABSL_GUARDED_BY(mu_) = 0;  // INSTALL answers
  grpc::StatusCode failing_reports_code_ ABSL_GUARDED_BY(mu_) = grpc::StatusCode::UNAVAILABLE;
  bool away_ ABSL_GUARDED_BY(mu_) = false;
  int polls_while_away_ ABSL_GUARDED_BY(mu_) = 0;
};

// How often `needle` stands in `text`.
inline int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// A PEFT adapter for stories260K: its weights file and config.
struct Artifact {
  std::string weights;
  std::string config;
};

class OtaAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGELLM_REQUIRE_SHARED_FILE(kModel);
    dir_ = edgellm::testing::TestDir();
    ASSERT_TRUE(edgellm::testing::MakePki(dir_ / "pki", {"dev-a"}, /*backdated=*/true));
    key_ = *release::SigningKey::Generate();
    std::ofstream(dir_ / "release.pub") << key_.PublicPem();
    grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = ReadAll(dir_ / "pki" / "ca.pem");
    ssl.pem_key_cert_pairs.push_back({ReadAll(dir_ / "pki" / "aggregator.key"), ReadAll(dir_ / "pki" / "aggregator.pem")});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(ssl), &port_);
    builder.RegisterService(&server_);
    grpc_server_ = builder.BuildAndStart();
    ASSERT_NE(grpc_server_, nullptr);
    auto model = engine::LlamaModel::Load(kModel, {});
    ASSERT_TRUE(model.ok()) << model.status();
    model_config_ = (*model)->config();
  }
  void TearDown() override {
    daemon_.reset();
    if (grpc_server_) grpc_server_->Shutdown(std::chrono::system_clock::now());
  }

  // An adapter whose B holds `value` everywhere (0: the base model's outputs).
  Artifact MakeAdapter(float value, uint64_t seed) {
    engine::LoraConfig lora;
    lora.rank = 4;
    lora.seed = seed;
    lora.targets = *engine::ParseLoraTargets("q_proj,v_proj");
    auto adapter = engine::LoraAdapter::Create(lora, model_config_);
    EXPECT_TRUE(adapter.ok()) << adapter.status();
    for (int32_t layer = 0; layer < adapter->n_layer(); ++layer) {
      for (engine::LoraTarget t : lora.targets) {
        if (engine::LoraWeights* w = adapter->Find(layer, t)) std::fill(w->b.begin(), w->b.end(), value);
      }
    }
    const fs::path out = dir_ / ("adapter-" + std::to_string(seed));
    EXPECT_TRUE(adapter->Save(out.string(), "stories260K").ok());
    return {ReadAll(out / "adapter_model.safetensors"), ReadAll(out / "adapter_config.json")};
  }

  release::ReleaseManifest Manifest(uint64_t release, uint64_t version, const Artifact& artifact) {
    release::ReleaseManifest m;
    m.model_id = "stories260K";
    m.release = release;
    m.version = version;
    m.artifact_sha256 = federated::Sha256Hex(artifact.weights);
    m.artifact_bytes = artifact.weights.size();
    m.base_model_sha256 = *federated::Sha256OfFile(kModel);
    m.adapter_config = artifact.config;
    m.created_at = NowUnix() - 60;
    m.expires_at = NowUnix() + 3600;
    return m;
  }
  std::string Sign(const release::ReleaseManifest& m, const release::SigningKey& key) {
    release::SignedRelease envelope{m.ToJson(), {}};
    release::AddSignature(envelope, key);
    return envelope.ToJson();
  }
  // Offers `m` with `artifact` signed by the trusted key; waits for the report.
  v1::InstallReport OfferAndAwait(const release::ReleaseManifest& m, const std::string& artifact) {
    server_.Offer(Sign(m, key_), artifact, m.release);
    return server_.AwaitReport(m.release);
  }

  // `extra` config lines, e.g. to put the daemon under memory pressure.
  // `environment`, e.g. a FakeClock.
  void StartDaemon(double probation_seconds = 300, const std::string& extra = "",
                   const std::vector<std::string>& environment = {}) {
    const fs::path config = dir_ / "dev-a.yaml";
    std::ofstream(config) << "model: " << kModel << "\n"
                          << "metrics_listen: 127.0.0.1:0\n"
                          << "federation_aggregator: 127.0.0.1:" << port_ << "\n"
                          << "federation_ca: " << (dir_ / "pki" / "ca.pem").string() << "\n"
                          << "federation_cert: " << (dir_ / "pki" / "dev-a.pem").string() << "\n"
                          << "federation_key: " << (dir_ / "pki" / "dev-a.key").string() << "\n"
                          << "ota_release_keys: [" << (dir_ / "release.pub").string() << "]\n"
                          << "ota_dir: " << ota_dir().string() << "\n"
                          << "ota_poll_seconds: 0.1\n"
                          << "ota_probation_seconds: " << probation_seconds << "\n"
                          << extra;
    std::string error;
    daemon_ = DaemonProcess::Start("", {"--config", config.string()}, &error, environment, {}, log_path().string());
    ASSERT_NE(daemon_, nullptr) << error;
    metrics_port_ = daemon_->LoggedPort("metrics on port ");
  }
  // The OTA agent alone (ota_agent_harness), its smoke tests dying (`die`)
  // or passing (`pass`); its log goes to harness_log().
  pid_t StartHarness(const std::string& mode) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(::open(harness_log().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644), STDERR_FILENO);
      std::vector<std::string> args = {std::string(EDGELLM_BINARY_DIR) + "/tests/integration/ota_agent_harness",
                                       "127.0.0.1:" + std::to_string(port_),
                                       (dir_ / "pki").string(),
                                       "dev-a",
                                       (dir_ / "release.pub").string(),
                                       ota_dir().string(),
                                       kModel,
                                       mode};
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    return pid;
  }
  // The harness's wait status once it exits; -1 if it runs on after 60 s.
  int AwaitExit(pid_t pid) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < give_up) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) return status;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return -1;
  }
  // libfaketime's variables for a daemon whose wall clock is `setting` (an
  // offset like "-2h", or "file" for one read from clock_file() at every
  // call); its monotonic clock stays true.
  std::vector<std::string> FakeClock(const std::string& setting) {
    const char* asan = std::getenv("ASAN_OPTIONS");
    std::vector<std::string> environment = {
        std::string("LD_PRELOAD=") + kLibFaketime, "FAKETIME_DONT_FAKE_MONOTONIC=1",
        // ASan wants to come first among the libraries; libfaketime only wraps the clock.
        std::string("ASAN_OPTIONS=") + (asan != nullptr ? std::string(asan) + ":" : "") + "verify_asan_link_order=0"};
    if (setting == "file") {
      environment.push_back("FAKETIME_TIMESTAMP_FILE=" + clock_file().string());
      environment.push_back("FAKETIME_NO_CACHE=1");
    } else {
      environment.push_back("FAKETIME=" + setting);
    }
    return environment;
  }
  fs::path clock_file() const { return dir_ / "clock"; }
  fs::path harness_log() const { return dir_ / "harness.log"; }
  fs::path ota_dir() const { return dir_ / "ota"; }
  fs::path log_path() const { return dir_ / "dev-a.log"; }

  // What the daemon says it serves.
  std::string ServedVersion() {
    auto stub = v1::Inference::NewStub(daemon_->channel());
    grpc::ClientContext context;
    v1::ListModelsResponse response;
    if (!stub->ListModels(&context, {}, &response).ok() || response.models_size() != 1) return "?";
    return response.models(0).version();
  }
  std::string Complete(const std::string& prompt) {
    auto stub = v1::Inference::NewStub(daemon_->channel());
    const edgellm::testing::Stream s = edgellm::testing::Generate(*stub, edgellm::testing::Greedy(prompt, 12));
    EXPECT_TRUE(s.status.ok()) << s.status.error_message();
    return s.text;
  }
  double Metric(const std::string& name) { return edgellm::testing::ScrapeMetric(metrics_port_, name); }

  fs::path dir_;
  release::SigningKey key_ = *release::SigningKey::Generate();
  engine::LlamaConfig model_config_;
  HostileReleaseServer server_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  int metrics_port_ = 0;
  std::unique_ptr<DaemonProcess> daemon_;
};

}  // namespace edgellm::ota

#endif  // EDGELLM_TESTS_INTEGRATION_OTA_AGENT_FIXTURE_H_
