// The OTA agent in a real edgellmd, facing a release server that does what
// an attacker, a broken network or a bad build would: tampered artifacts,
// foreign signatures, old or expired releases, downloads cut short, kill -9
// in the middle, a version that cannot generate. The server speaks the real
// edgellm.v1.Releases over real mutual TLS; it is hostile on purpose, which
// the real aggregator never is (its side is tested in ota_rollout_test.cpp).
// Every case ends with the daemon serving a verified version and the server
// knowing which.
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

namespace edgellm::ota {
namespace {

namespace fs = std::filesystem;
using edgellm::testing::DaemonProcess;
using edgellm::testing::kLibFaketime;
using edgellm::testing::ReadAll;

const std::string kModel = edgellm::testing::SharedPath("models/stories260K.gguf");

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// edgellm.v1.Releases, offering one release at a time until the device
// reports on it, serving artifacts in small, optionally slow chunks.
class HostileReleaseServer final : public v1::Releases::Service {
 public:
  void Offer(const std::string& envelope, const std::string& artifact, uint64_t release) {
    absl::MutexLock lock(&mu_);
    envelope_ = envelope;
    artifact_ = artifact;
    offered_release_ = release;
    offered_at_ = reports_.size();
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
  // The next `count` install reports fail as if the aggregator were unreachable.
  void FailReports(int count) {
    absl::MutexLock lock(&mu_);
    failing_reports_ = count;
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
    if (envelope_.empty() || reported) {
      response->set_outcome(v1::GetReleaseResponse::UP_TO_DATE);
      return grpc::Status::OK;
    }
    response->set_outcome(v1::GetReleaseResponse::INSTALL);
    response->set_signed_release(envelope_);
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
      artifact = artifact_;
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
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the aggregator is away");
    }
    reports_.push_back(*report);
    return grpc::Status::OK;
  }

 private:
  absl::Mutex mu_;
  std::string envelope_ ABSL_GUARDED_BY(mu_);
  std::string artifact_ ABSL_GUARDED_BY(mu_);
  uint64_t offered_release_ ABSL_GUARDED_BY(mu_) = 0;
  size_t offered_at_ ABSL_GUARDED_BY(mu_) = 0;  // reports before the offer are about earlier ones
  size_t chunk_bytes_ ABSL_GUARDED_BY(mu_) = 1 << 20;
  std::chrono::milliseconds chunk_delay_ ABSL_GUARDED_BY(mu_){0};
  size_t cut_after_ ABSL_GUARDED_BY(mu_) = SIZE_MAX;
  std::vector<uint64_t> fetch_offsets_ ABSL_GUARDED_BY(mu_);
  size_t bytes_sent_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::InstallReport> reports_ ABSL_GUARDED_BY(mu_);
  int failing_reports_ ABSL_GUARDED_BY(mu_) = 0;
  bool away_ ABSL_GUARDED_BY(mu_) = false;
  int polls_while_away_ ABSL_GUARDED_BY(mu_) = 0;
};

// How often `needle` stands in `text`.
int Count(const std::string& text, const std::string& needle) {
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

TEST_F(OtaAgentTest, InstallsAVerifiedReleaseAndSwapsItIn) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  EXPECT_EQ(ServedVersion(), "base");
  const std::string before = Complete("Once upon a time");
  const Artifact v1 = MakeAdapter(0.05f, 1);
  const v1::InstallReport report = OfferAndAwait(Manifest(1, 1, v1), v1.weights);
  EXPECT_EQ(report.outcome(), v1::InstallReport::INSTALLED) << report.detail();
  EXPECT_EQ(report.serving_version(), 1u);
  EXPECT_EQ(ServedVersion(), "v1");
  EXPECT_EQ(Metric("edgellm_model_version"), 1.0);
  EXPECT_EQ(Metric("edgellm_ota_installs"), 1.0);
  // Requests that name no adapter now run with the release's.
  EXPECT_NE(Complete("Once upon a time"), before);
  EXPECT_TRUE(fs::exists(ota_dir() / "versions" / "r1-v1" / "adapter_model.safetensors"));
}

TEST_F(OtaAgentTest, ATamperedArtifactIsRefusedAndNothingChanges) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const Artifact v1 = MakeAdapter(0.05f, 1);
  std::string tampered = v1.weights;
  tampered[tampered.size() / 2] ^= 0x01;
  const v1::InstallReport report = OfferAndAwait(Manifest(1, 1, v1), tampered);
  EXPECT_EQ(report.outcome(), v1::InstallReport::REFUSED);
  EXPECT_NE(report.detail().find("sha256"), std::string::npos) << report.detail();
  EXPECT_EQ(report.serving_version(), 0u);
  EXPECT_EQ(ServedVersion(), "base");
  EXPECT_TRUE(fs::is_empty(ota_dir() / "staging"));
  EXPECT_TRUE(fs::is_empty(ota_dir() / "versions"));
}

TEST_F(OtaAgentTest, AReleaseSignedByAnUntrustedKeyIsRefusedBeforeAnyDownload) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const Artifact v1 = MakeAdapter(0.05f, 1);
  const release::SigningKey stranger = *release::SigningKey::Generate();
  server_.Offer(Sign(Manifest(1, 1, v1), stranger), v1.weights, 1);
  const v1::InstallReport report = server_.AwaitReport(1);
  EXPECT_EQ(report.outcome(), v1::InstallReport::REFUSED);
  EXPECT_NE(report.detail().find("signed by 0 of the 1"), std::string::npos) << report.detail();
  EXPECT_TRUE(server_.fetch_offsets().empty());
  EXPECT_EQ(ServedVersion(), "base");
}

TEST_F(OtaAgentTest, OlderExpiredAndReplayedReleasesAreRefusedButASignedRollbackIsNot) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const Artifact v1 = MakeAdapter(0.05f, 1);
  const Artifact v2 = MakeAdapter(-0.05f, 2);
  ASSERT_EQ(OfferAndAwait(Manifest(1, 2, v2), v2.weights).outcome(), v1::InstallReport::INSTALLED);

  v1::InstallReport older = OfferAndAwait(Manifest(2, 1, v1), v1.weights);
  EXPECT_EQ(older.outcome(), v1::InstallReport::REFUSED);
  EXPECT_NE(older.detail().find("not newer"), std::string::npos) << older.detail();

  release::ReleaseManifest expired = Manifest(3, 3, v1);
  expired.created_at = NowUnix() - 7200;
  expired.expires_at = NowUnix() - 3600;
  v1::InstallReport stale = OfferAndAwait(expired, v1.weights);
  EXPECT_EQ(stale.outcome(), v1::InstallReport::REFUSED);
  EXPECT_NE(stale.detail().find("expired"), std::string::npos) << stale.detail();
  EXPECT_EQ(ServedVersion(), "v2");

  release::ReleaseManifest rollback = Manifest(4, 1, v1);
  rollback.rollback = true;
  EXPECT_EQ(OfferAndAwait(rollback, v1.weights).outcome(), v1::InstallReport::INSTALLED);
  EXPECT_EQ(ServedVersion(), "v1");

  // Release 1 again, validly signed: the device has seen release 4.
  release::ReleaseManifest replay = Manifest(1, 2, v2);
  replay.rollback = true;
  const v1::InstallReport replayed = OfferAndAwait(replay, v2.weights);
  EXPECT_EQ(replayed.outcome(), v1::InstallReport::REFUSED);
  EXPECT_NE(replayed.detail().find("a replay"), std::string::npos) << replayed.detail();
  EXPECT_EQ(ServedVersion(), "v1");
  EXPECT_GE(Metric("edgellm_ota_refusals"), 3.0);
}

TEST_F(OtaAgentTest, ADownloadCutShortIsResumedWhereItStopped) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const Artifact v1 = MakeAdapter(0.05f, 1);
  ASSERT_GT(v1.weights.size(), 3u * 4096);
  server_.SetChunks(4096, std::chrono::milliseconds(0));
  server_.CutNextDownloadAfter(2 * 4096);
  const v1::InstallReport report = OfferAndAwait(Manifest(1, 1, v1), v1.weights);
  EXPECT_EQ(report.outcome(), v1::InstallReport::INSTALLED) << report.detail();
  const std::vector<uint64_t> offsets = server_.fetch_offsets();
  ASSERT_GE(offsets.size(), 2u);
  EXPECT_EQ(offsets[0], 0u);
  EXPECT_EQ(offsets[1], 2u * 4096);
  EXPECT_EQ(server_.bytes_sent(), v1.weights.size());  // no byte twice
}

TEST_F(OtaAgentTest, Kill9DuringTheDownloadResumesAfterRestartAndServesAVerifiedVersionMeanwhile) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const Artifact v1 = MakeAdapter(0.05f, 1);
  server_.SetChunks(2048, std::chrono::milliseconds(50));
  server_.Offer(Sign(Manifest(1, 1, v1), key_), v1.weights, 1);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (server_.bytes_sent() < 4 * 2048 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  daemon_->Kill9();
  const size_t sent_before = server_.bytes_sent();
  ASSERT_LT(sent_before, v1.weights.size());
  server_.SetChunks(1 << 20, std::chrono::milliseconds(0));
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const v1::InstallReport report = server_.AwaitReport(1);
  EXPECT_EQ(report.outcome(), v1::InstallReport::INSTALLED) << report.detail();
  EXPECT_EQ(ServedVersion(), "v1");
  const std::vector<uint64_t> offsets = server_.fetch_offsets();
  ASSERT_EQ(offsets.size(), 2u);
  EXPECT_GT(offsets[1], 0u);  // resumed, not restarted
  EXPECT_NE(ReadAll(log_path()).find("resuming the download at byte"), std::string::npos);
}

TEST_F(OtaAgentTest, AnInstallCutShortOrAnInstalledVersionDamagedOnDiskNeverServes) {
  // No probation: v1 is last-known-good at once, so the kill below is not a crash of a new version.
  ASSERT_NO_FATAL_FAILURE(StartDaemon(0));
  const Artifact v1 = MakeAdapter(0.05f, 1);
  ASSERT_EQ(OfferAndAwait(Manifest(1, 1, v1), v1.weights).outcome(), v1::InstallReport::INSTALLED);
  daemon_->Kill9();
  // What a kill -9 halfway through installing release 2 leaves behind.
  fs::create_directories(ota_dir() / "versions" / ".r2-v2");
  std::ofstream(ota_dir() / "versions" / ".r2-v2" / "adapter_model.safetensors") << "half";
  ASSERT_NO_FATAL_FAILURE(StartDaemon(0));
  EXPECT_EQ(ServedVersion(), "v1");
  EXPECT_FALSE(fs::exists(ota_dir() / "versions" / ".r2-v2"));
  daemon_->Terminate();

  // The installed artifact changed on disk: it no longer matches its signed
  // sha256, so the daemon serves the base model instead.
  std::ofstream(ota_dir() / "versions" / "r1-v1" / "adapter_model.safetensors", std::ios::app) << "x";
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  EXPECT_EQ(ServedVersion(), "base");
  EXPECT_NE(ReadAll(log_path()).find("fails its check"), std::string::npos);
}

TEST_F(OtaAgentTest, AVersionThatCannotGenerateFailsItsSmokeTestAndNeverServes) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const Artifact good = MakeAdapter(0.05f, 1);
  ASSERT_EQ(OfferAndAwait(Manifest(1, 1, good), good.weights).outcome(), v1::InstallReport::INSTALLED);
  // Finite weights, but so large that the activations overflow.
  const Artifact broken = MakeAdapter(3e38f, 2);
  const v1::InstallReport report = OfferAndAwait(Manifest(2, 2, broken), broken.weights);
  EXPECT_EQ(report.outcome(), v1::InstallReport::SMOKE_FAILED);
  EXPECT_NE(report.detail().find("non-finite logits"), std::string::npos) << report.detail();
  EXPECT_EQ(report.serving_version(), 1u);
  EXPECT_EQ(ServedVersion(), "v1");
  EXPECT_EQ(Metric("edgellm_ota_smoke_failures"), 1.0);
  EXPECT_FALSE(fs::exists(ota_dir() / "versions" / "r2-v2"));
}

// A release that carries an evaluation is measured against the version
// served before it serves: one worse on its held-out loss and its prompts is
// refused with the figures that show why; one as good goes in, its figures
// reported too.
TEST_F(OtaAgentTest, AReleaseWorseOnItsEvaluationNeverServesAndItsFiguresSayWhy) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const std::string base_completion = Complete("Once upon a time");
  ASSERT_FALSE(base_completion.empty());
  release::EvaluationSpec spec;
  spec.examples_jsonl =
      "{\"text\": \"Once upon a time, there was a little girl named Lily. She loved to play outside.\"}\n"
      "{\"prompt\": \"Tom had a red ball.\", \"completion\": \" He liked to play with it every day.\"}\n"
      "{\"text\": \"The sun was shining and the birds were singing in the big green tree.\"}\n";
  spec.max_loss_ratio = 1.05;
  spec.exact_match = {{"Once upon a time", base_completion, 0}};

  // Finite, and it generates: only its answers give it away.
  const Artifact worse = MakeAdapter(0.5f, 1);
  release::ReleaseManifest bad = Manifest(1, 1, worse);
  bad.evaluation = spec;
  const v1::InstallReport refused = OfferAndAwait(bad, worse.weights);
  EXPECT_EQ(refused.outcome(), v1::InstallReport::EVAL_FAILED) << refused.detail();
  EXPECT_EQ(refused.serving_version(), 0u);
  ASSERT_TRUE(refused.has_evaluation());
  const v1::EvaluationFigures& f = refused.evaluation();
  EXPECT_EQ(f.examples(), 3u);
  EXPECT_GT(f.loss(), 1.05 * f.baseline_loss()) << refused.detail();
  EXPECT_EQ(f.cases(), 1u);
  EXPECT_EQ(f.baseline_exact_matches(), 1u);
  EXPECT_GT(f.seconds(), 0.0);
  EXPECT_NE(refused.detail().find("eval loss"), std::string::npos) << refused.detail();
  EXPECT_NE(refused.detail().find("x the replaced version's"), std::string::npos) << refused.detail();
  EXPECT_EQ(ServedVersion(), "base");
  EXPECT_EQ(Complete("Once upon a time"), base_completion);
  EXPECT_EQ(Metric("edgellm_ota_eval_failures"), 1.0);
  EXPECT_FALSE(fs::exists(ota_dir() / "versions" / "r1-v1"));

  // B of zero: the base model's answers, so no worse.
  const Artifact same = MakeAdapter(0.0f, 2);
  release::ReleaseManifest good = Manifest(2, 2, same);
  good.evaluation = spec;
  const v1::InstallReport installed = OfferAndAwait(good, same.weights);
  EXPECT_EQ(installed.outcome(), v1::InstallReport::INSTALLED) << installed.detail();
  ASSERT_TRUE(installed.has_evaluation());
  EXPECT_NEAR(installed.evaluation().loss(), installed.evaluation().baseline_loss(), 1e-4);
  EXPECT_EQ(installed.evaluation().exact_matches(), 1u);
  EXPECT_EQ(ServedVersion(), "v2");
  EXPECT_NE(ReadAll(log_path()).find("failed its evaluation"), std::string::npos);
}

// The aggregator does not hear the INSTALLED report and offers the release
// again: the device serves it already, so the report it finally delivers is
// still INSTALLED — not a refusal of a release "not newer" than its own.
TEST_F(OtaAgentTest, AnUndeliveredInstalledReportStaysInstalled) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  server_.FailReports(6);
  const Artifact adapter = MakeAdapter(0.05f, 1);
  const v1::InstallReport report = OfferAndAwait(Manifest(1, 1, adapter), adapter.weights);
  EXPECT_EQ(report.outcome(), v1::InstallReport::INSTALLED) << report.detail();
  EXPECT_EQ(report.serving_version(), 1u);
  EXPECT_EQ(ServedVersion(), "v1");
}

// An aggregator that cannot be reached is asked less and less often: over
// 3 s, polling every 0.1 s would ask 30 times; backing off (0.1, 0.2, 0.4,
// ... s) asks about 5.
TEST_F(OtaAgentTest, PollsBackOffWhileTheAggregatorIsAway) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  server_.SetAway(true);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const int polls = server_.polls_while_away();
  server_.SetAway(false);
  EXPECT_GE(polls, 2);
  EXPECT_LE(polls, 12);
}

// Signed for another base model, an adapter would run on weights it was not
// trained for: it is refused.
TEST_F(OtaAgentTest, AReleaseSignedForAnotherBaseModelIsRefused) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const Artifact adapter = MakeAdapter(0.05f, 1);
  release::ReleaseManifest m = Manifest(1, 1, adapter);
  m.base_model_sha256 = std::string(64, 'b');
  const v1::InstallReport report = OfferAndAwait(m, adapter.weights);
  EXPECT_EQ(report.outcome(), v1::InstallReport::REFUSED);
  EXPECT_NE(report.detail().find("base model"), std::string::npos) << report.detail();
  EXPECT_EQ(ServedVersion(), "base");
}

// A daemon under critical memory pressure refuses every new request, the
// smoke test's too: that says nothing of the release, which must not be
// reported as failed (that would halt its rollout everywhere).
TEST_F(OtaAgentTest, ASmokeTestTheDaemonCannotRunNowIsNotAFailure) {
  // More memory than any machine has must stay available: the guard is critical from the start.
  ASSERT_NO_FATAL_FAILURE(StartDaemon(300, "memory_low_mib: 100000000\nmemory_critical_mib: 100000000\n"));
  const Artifact adapter = MakeAdapter(0.05f, 1);
  const release::ReleaseManifest m = Manifest(1, 1, adapter);
  server_.Offer(Sign(m, key_), adapter.weights, m.release);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (edgellm::testing::ReadAll(log_path()).find("could not run now") == std::string::npos &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_NE(edgellm::testing::ReadAll(log_path()).find("could not run now"), std::string::npos)
      << edgellm::testing::ReadAll(log_path());
  std::this_thread::sleep_for(std::chrono::seconds(3));  // retries, still no verdict
  EXPECT_EQ(server_.AwaitReport(m.release, v1::InstallReport::SMOKE_FAILED, absl::Seconds(1)).outcome(),
            v1::InstallReport::OUTCOME_UNSPECIFIED);
  EXPECT_EQ(Metric("edgellm_ota_smoke_failures"), 0.0);
  // Tried again from the download it kept: fetched once, whatever the number of tries.
  EXPECT_GE(Count(edgellm::testing::ReadAll(log_path()), "could not run now"), 2);
  EXPECT_EQ(server_.fetch_offsets().size(), 1u);
}

TEST_F(OtaAgentTest, ACrashWhileOnProbationRestoresTheLastKnownGoodVersion) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(0));
  const Artifact v1 = MakeAdapter(0.05f, 1);
  const Artifact v2 = MakeAdapter(-0.05f, 2);
  ASSERT_EQ(OfferAndAwait(Manifest(1, 1, v1), v1.weights).outcome(), v1::InstallReport::INSTALLED);
  daemon_->Terminate();
  // v1 is past probation (0 s): it is the last-known-good. v2 stays on
  // probation for an hour, and the daemon dies in it.
  ASSERT_NO_FATAL_FAILURE(StartDaemon(3600));
  ASSERT_EQ(OfferAndAwait(Manifest(2, 2, v2), v2.weights).outcome(), v1::InstallReport::INSTALLED);
  EXPECT_EQ(ServedVersion(), "v2");
  daemon_->Kill9();
  ASSERT_NO_FATAL_FAILURE(StartDaemon(3600));
  EXPECT_EQ(ServedVersion(), "v1");
  EXPECT_EQ(Metric("edgellm_ota_rollbacks"), 1.0);
  // The server hears of it: release 2 rolled back, version 1 serving.
  const v1::InstallReport rolled_back = server_.AwaitReport(2, v1::InstallReport::ROLLED_BACK);
  EXPECT_EQ(rolled_back.outcome(), v1::InstallReport::ROLLED_BACK);
  EXPECT_EQ(rolled_back.serving_version(), 1u);
  EXPECT_NE(ReadAll(log_path()).find("on probation; restoring version 1"), std::string::npos) << ReadAll(log_path());
}

// A release that crashes the daemon in its smoke test must not keep the
// device in a crash loop: the smoke test under way is written down first, a
// start that finds it tries the release once more (one death may be a power
// cut), and after a second death reports it and never tests it again.
TEST_F(OtaAgentTest, AReleaseTheDaemonDiesTestingIsTriedOnceMoreThenReportedAndSkipped) {
  const Artifact adapter = MakeAdapter(0.05f, 1);
  const release::ReleaseManifest m = Manifest(1, 1, adapter);
  server_.Offer(Sign(m, key_), adapter.weights, m.release);
  for (int death = 1; death <= 2; ++death) {
    const int status = AwaitExit(StartHarness("die"));
    ASSERT_TRUE(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT)
        << "start " << death << ": " << ReadAll(harness_log());
  }
  EXPECT_NE(ReadAll(harness_log()).find("it will be tried once more"), std::string::npos) << ReadAll(harness_log());
  const pid_t third = StartHarness("pass");
  const v1::InstallReport report = server_.AwaitReport(1);
  ::kill(third, SIGTERM);
  EXPECT_EQ(WEXITSTATUS(AwaitExit(third)), 0);
  EXPECT_EQ(report.outcome(), v1::InstallReport::SMOKE_FAILED) << report.detail();
  EXPECT_NE(report.detail().find("died during 2 smoke tests"), std::string::npos) << report.detail();
  EXPECT_EQ(report.serving_version(), 0u);
  const std::string log = ReadAll(harness_log());
  EXPECT_EQ(Count(log, "smoke-testing"), 2) << log;
  EXPECT_EQ(Count(log, "serving v1"), 0) << log;
  EXPECT_EQ(server_.fetch_offsets().size(), 1u);  // the second try used the first download
  EXPECT_FALSE(fs::exists(ota_dir() / "versions" / "r1-v1"));
}

TEST_F(OtaAgentTest, OneDeathDuringASmokeTestIsNotHeldAgainstTheRelease) {
  const Artifact adapter = MakeAdapter(0.05f, 1);
  const release::ReleaseManifest m = Manifest(1, 1, adapter);
  server_.Offer(Sign(m, key_), adapter.weights, m.release);
  const int status = AwaitExit(StartHarness("die"));
  ASSERT_TRUE(status != -1 && WIFSIGNALED(status)) << ReadAll(harness_log());
  const pid_t second = StartHarness("pass");
  const v1::InstallReport report = server_.AwaitReport(1);
  ::kill(second, SIGTERM);
  AwaitExit(second);
  EXPECT_EQ(report.outcome(), v1::InstallReport::INSTALLED) << report.detail();
  EXPECT_EQ(report.serving_version(), 1u);
  EXPECT_EQ(Count(ReadAll(harness_log()), "smoke-testing"), 2);
}

// A device whose wall clock is set back (a dead RTC battery, a lying time
// server) must not take a release that had expired by the last time it knew
// of: the creation time of the last release it verified, carried forward.
TEST_F(OtaAgentTest, AClockSetBackDoesNotReviveAnExpiredRelease) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const Artifact v1 = MakeAdapter(0.05f, 1);
  ASSERT_EQ(OfferAndAwait(Manifest(1, 1, v1), v1.weights).outcome(), v1::InstallReport::INSTALLED);
  daemon_->Terminate();
  // Release 2 expired half an hour ago; the device now believes it is two hours earlier.
  const Artifact v2 = MakeAdapter(-0.05f, 2);
  release::ReleaseManifest expired = Manifest(2, 2, v2);
  expired.created_at = NowUnix() - 3 * 3600;
  expired.expires_at = NowUnix() - 1800;
  ASSERT_NO_FATAL_FAILURE(StartDaemon(300, "", FakeClock("-2h")));
  const v1::InstallReport report = OfferAndAwait(expired, v2.weights);
  EXPECT_EQ(report.outcome(), v1::InstallReport::REFUSED) << report.detail();
  EXPECT_NE(report.detail().find("expired"), std::string::npos) << report.detail();
  EXPECT_EQ(ServedVersion(), "v1");
}

// Probation is serving time: a wall clock jumping two hours forward while a
// new version is on probation for one does not make it the last-known-good.
TEST_F(OtaAgentTest, AClockJumpingForwardDoesNotCutProbationShort) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(0));
  const Artifact v1 = MakeAdapter(0.05f, 1);
  ASSERT_EQ(OfferAndAwait(Manifest(1, 1, v1), v1.weights).outcome(), v1::InstallReport::INSTALLED);
  daemon_->Terminate();
  std::ofstream(clock_file()) << "+0\n";
  ASSERT_NO_FATAL_FAILURE(StartDaemon(3600, "", FakeClock("file")));
  const Artifact v2 = MakeAdapter(-0.05f, 2);
  ASSERT_EQ(OfferAndAwait(Manifest(2, 2, v2), v2.weights).outcome(), v1::InstallReport::INSTALLED);
  std::ofstream(clock_file()) << "+2h\n";
  std::this_thread::sleep_for(std::chrono::seconds(2));  // twenty polls of the jumped clock
  daemon_->Kill9();
  ASSERT_NO_FATAL_FAILURE(StartDaemon(3600));
  EXPECT_EQ(ServedVersion(), "v1");
  EXPECT_EQ(server_.AwaitReport(2, v1::InstallReport::ROLLED_BACK).outcome(), v1::InstallReport::ROLLED_BACK);
}

}  // namespace
}  // namespace edgellm::ota
