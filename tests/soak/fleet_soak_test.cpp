// The fleet under chaos. A real edgellm-aggregator, three real edgellmd
// daemons that train in rounds and install releases, and twenty light devices
// (the federation and release protocols, without a model) on loopback with
// mutual TLS go through rounds and staged rollouts, while a chaos thread
// kills -9 the aggregator or a daemon (and starts it again), cuts every
// connection at once (all traffic passes a ChaosProxy), and fills the disk
// quota of the aggregator's state directory or of one daemon's (tmpfs disks
// of their own), in turn. At the end:
// no update the aggregator answered ACCEPTED is missing from its state, every
// device serves the last release's version (the daemons only ever serve
// verified ones), and no process that lived through the chaos grew in memory
// or file descriptors.
//
// EDGELLM_SOAK_ROUNDS and EDGELLM_SOAK_ROLLOUTS set its length: 50 rounds and
// 5 rollouts, or 16 and 2 when CI is set. ctest runs it in a mount namespace of
// its own (unshare) so that it may mount its tmpfs disks.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "edgellm/v1/ota.grpc.pb.h"
#include "federated/release/manifest.h"
#include "federated/release/trust_policy.h"
#include "tests/support/aggregator_fixture.h"
#include "tests/support/chaos_proxy.h"
#include "tests/support/cli_run.h"
#include "tests/support/daemon_process.h"
#include "tests/support/inference_client.h"
#include "tests/support/process_state.h"

namespace edgellm::federated {
namespace {

namespace fs = std::filesystem;
using edgellm::testing::ChaosProxy;
using edgellm::testing::DaemonProcess;
using edgellm::testing::ReadAll;
using edgellm::testing::RunCli;
using edgellm::testing::RunShell;
using v1::SubmitUpdateResponse;

constexpr int kLightDevices = 20;
const std::vector<std::string> kDaemons = {"edge-0", "edge-1", "edge-2"};
// Connections the fleet can hold open to the aggregator: one a light device,
// two a daemon (rounds and releases).
const int kFleetConnections = kLightDevices + 2 * static_cast<int>(kDaemons.size());
// The chaos spares this daemon's process (not its connections): one process
// lives through the whole run, to show its memory and descriptors stay flat.
const std::string kSpared = "edge-2";
// This daemon keeps its federation, OTA and training state on a small disk
// of its own, which the chaos fills as it fills the aggregator's.
const std::string kSmallDisk = "edge-0";

int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::atoi(value) : fallback;
}

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A uint64 field of a protobuf message printed as JSON (a string there).
uint64_t JsonNumber(const nlohmann::json& object, const std::string& key) {
  const nlohmann::json value = object.value(key, nlohmann::json());
  if (value.is_string()) return std::stoull(value.get<std::string>());
  return value.is_number() ? value.get<uint64_t>() : 0;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// A process's resident memory and open descriptors, first and last seen.
struct Footprint {
  double first_rss = 0, last_rss = 0;
  int first_fds = 0, last_fds = 0;
  std::chrono::steady_clock::time_point first_at, last_at;
  std::string name;
};

int OpenDescriptors(pid_t pid) {
  std::error_code ec;
  int n = 0;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}

// What the soak counts, for its report.
struct Tally {
  std::atomic<int> aggregator_kills{0}, daemon_kills{0}, cuts{0}, connections_cut{0}, disk_fills{0};
  std::atomic<int> device_disk_fills{0};  // of the disk_fills, the daemon's
  std::atomic<int> restarts{0};  // killed processes that came back serving
  std::atomic<int> publish_tries{0}, resumes{0};
};

class FleetSoak : public testing::AggregatorFixture {
 protected:
  void SetUp() override {
    testing::AggregatorFixture::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    rounds_ = EnvInt("EDGELLM_SOAK_ROUNDS", edgellm::testing::RunningInCi() ? 16 : 50);
    rollouts_ = std::max(1, EnvInt("EDGELLM_SOAK_ROLLOUTS", edgellm::testing::RunningInCi() ? 2 : 5));
    std::vector<std::string> names = kDaemons;
    for (int i = 0; i < kLightDevices; ++i) names.push_back(LightName(i));
    names.push_back("operator");
    fs::remove_all(dir_ / "pki");
    ASSERT_TRUE(edgellm::testing::MakePki(dir_ / "pki", names));
    const auto keygen = RunCli("keygen --out " + (dir_ / "release").string());
    ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
    // The aggregator's state and one daemon's on tmpfs disks the chaos can fill.
    for (const fs::path& disk : disks()) {
      fs::create_directories(disk);
      ASSERT_EQ(::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=32m"), 0)
          << "cannot mount a tmpfs at " << disk << " (" << std::strerror(errno)
          << "): run the soak as ctest does, under `unshare --mount --map-root-user`";
      mounted_.push_back(disk);
    }
  }
  void TearDown() override {
    stop_ = true;
    for (std::thread& t : light_) t.join();
    daemons_.clear();
    aggregator_.reset();
    proxy_.reset();
    for (const fs::path& disk : mounted_) {
      // A tmpfs goes with the namespace: what a failure left is kept beside it.
      std::error_code ec;
      if (HasFailure()) {
        fs::copy(disk, dir_ / (disk.filename().string() + "-at-failure"), fs::copy_options::recursive, ec);
      }
      ::umount2(disk.c_str(), MNT_DETACH);
    }
  }

  static std::string LightName(int i) { return "light-" + std::to_string(100 + i).substr(1); }
  fs::path state_dir() const { return dir_ / "state"; }
  fs::path small_disk() const { return dir_ / (kSmallDisk + "-disk"); }
  std::vector<fs::path> disks() const { return {state_dir(), small_disk()}; }
  // Where `device` keeps its state.
  fs::path DataDir(const std::string& device) const { return device == kSmallDisk ? small_disk() : dir_; }
  std::shared_ptr<grpc::ChannelCredentials> Credentials(const std::string& id) const {
    return edgellm::testing::DeviceCredentials(dir_ / "pki" / "ca.pem", dir_ / "pki" / (id + ".pem"),
                                               dir_ / "pki" / (id + ".key"));
  }
  std::string ThroughProxy() const { return "127.0.0.1:" + std::to_string(proxy_->port()); }

  void WriteAggregatorConfig() {
    std::ofstream out(dir_ / "aggregator.yaml");
    const fs::path pki = dir_ / "pki";
    out << "listen: 127.0.0.1:0\nmetrics_listen: 127.0.0.1:0\n"
        << "tls_cert: " << (pki / "aggregator.pem").string() << "\n"
        << "tls_key: " << (pki / "aggregator.key").string() << "\n"
        << "tls_client_ca: " << (pki / "ca.pem").string() << "\n"
        << "state_dir: " << state_dir().string() << "\n"
        << "heartbeat_interval_seconds: 1\npoll_interval_seconds: 0.2\nliveness_timeout_seconds: 6\nthreads: 1\n"
        << "admins: [operator]\n"
        << "release_keys: [" << (dir_ / "release.pub").string() << "]\n"
        << "canary_fraction: 0.15\nsoak_seconds: 2\n"
        << "models:\n"
        << "  - id: " << testing::kModelId << "\n"
        << "    base_model: " << testing::kModel << "\n"
        << "    rank: " << testing::kRank << "\n    targets: q_proj,v_proj\n    freeze_a: true\n"
        << "    rounds: " << rounds_ << "\n"
        << "    min_devices: 4\n    quorum: 3\n    selection_fraction: 0.3\n    round_timeout_seconds: 20\n"
        << "    local_steps: 4\n    learning_rate: 0.01\n    micro_batch: 2\n    max_length: 32\n";
  }

  // Starts the aggregator (again) and points the proxy at its new port.
  bool StartAggregator() {
    std::string error;
    aggregator_ = edgellm::testing::AggregatorProcess::Start(dir_ / "aggregator.yaml", dir_ / "aggregator.log", &error);
    EXPECT_NE(aggregator_, nullptr) << error;
    if (aggregator_ == nullptr) return false;
    const int port = aggregator_->LoggedPort("(port ");
    if (proxy_ == nullptr) {
      proxy_ = std::make_unique<ChaosProxy>(port);
    } else {
      proxy_->SetTarget(port);
    }
    return true;
  }

  bool StartDaemon(const std::string& device) {
    const fs::path config = dir_ / (device + ".yaml");
    if (!fs::exists(config)) {
      const fs::path data = dir_ / (device + ".jsonl");
      std::ofstream examples(data);
      for (int i = 0; i < 12; ++i) {
        examples << nlohmann::json({{"prompt", "Once upon a time " + device},
                                    {"completion", " there was a robot named " + device + "."}})
                        .dump()
                 << "\n";
      }
      std::ofstream out(config);
      out << "model: " << testing::kModel << "\n"
          << "federation_aggregator: " << ThroughProxy() << "\n"
          << "federation_model_id: " << testing::kModelId << "\n"
          << "federation_ca: " << (dir_ / "pki" / "ca.pem").string() << "\n"
          << "federation_cert: " << (dir_ / "pki" / (device + ".pem")).string() << "\n"
          << "federation_key: " << (dir_ / "pki" / (device + ".key")).string() << "\n"
          << "federation_dir: " << (DataDir(device) / (device + "-federation")).string() << "\n"
          << "ota_release_keys: [" << (dir_ / "release.pub").string() << "]\n"
          << "ota_dir: " << (DataDir(device) / (device + "-ota")).string() << "\n"
          << "ota_poll_seconds: 0.5\nota_probation_seconds: 2\n"
          << "train_data: " << data.string() << "\n"
          << "train_dir: " << (DataDir(device) / (device + "-train")).string() << "\n"
          << "train_rank: " << testing::kRank << "\ntrain_targets: q_proj,v_proj\ntrain_idle_seconds: 0\n"
          << "train_program: " << EDGELLM_BINARY_DIR << "/tools/edgellm\n";
    }
    std::string error;
    auto daemon = DaemonProcess::Start("", {"--config", config.string()}, &error, {}, {},
                                       (dir_ / (device + ".log")).string());
    EXPECT_NE(daemon, nullptr) << device << ": " << error;
    if (daemon == nullptr) return false;
    std::lock_guard<std::mutex> lock(processes_mu_);
    daemons_[device] = std::move(daemon);
    return true;
  }

  // One light device: registers, answers every task with an update (resuming
  // a cut upload where the aggregator says it stopped), and installs releases
  // after checking their signatures and their artifact's sha256.
  void RunLightDevice(int index) {
    const std::string id = LightName(index);
    edgellm::testing::FederationTestClient federation(ThroughProxy(), Credentials(id), id, /*wait_for_ready=*/false);
    auto releases = v1::Releases::NewStub(grpc::CreateChannel(ThroughProxy(), Credentials(id)));
    auto policy = release::TrustPolicy::Load({(dir_ / "release.pub").string()}, 1);
    ASSERT_TRUE(policy.ok()) << policy.status();
    bool registered = false;
    std::set<uint64_t> submitted;
    auto next_release_poll = std::chrono::steady_clock::now();
    while (!stop_) {
      if (!registered) {
        registered = federation.Register(testing::kModelId, base_sha_, testing::kRank, testing::kTargets).ok();
      } else {
        v1::GetTaskResponse response;
        if (federation.GetTask(testing::kModelId, &response).ok()) {
          if (response.outcome() == v1::GetTaskResponse::REGISTER_AGAIN) registered = false;
          if (response.outcome() == v1::GetTaskResponse::TRAIN && !submitted.contains(response.task().round_id())) {
            if (Submit(federation, id, index, response.task())) submitted.insert(response.task().round_id());
          }
        }
      }
      if (std::chrono::steady_clock::now() >= next_release_poll) {
        PollRelease(*releases, *policy, id);
        next_release_poll = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  bool Submit(edgellm::testing::FederationTestClient& federation, const std::string& id, int index,
              const v1::Task& task) {
    const std::string key = "r" + std::to_string(task.round_id());
    edgellm::testing::FederationTestClient::Upload upload =
        UploadOf(Delta(1.0f + 0.01f * static_cast<float>(index)), task.round_id(), task.adapter_version(), key, 100);
    upload.model_id = testing::kModelId;
    v1::UploadStatusResponse status;
    if (federation.UploadStatus(testing::kModelId, task.round_id(), key, &status).ok() &&
        status.received_bytes() < upload.bytes.size()) {
      upload.offset = status.received_bytes();
    }
    SubmitUpdateResponse response;
    if (!federation.Submit(upload, &response).ok()) return false;
    const bool accepted = response.outcome() == SubmitUpdateResponse::ACCEPTED ||
                          response.outcome() == SubmitUpdateResponse::ACCEPTED_EARLIER;
    if (accepted) {
      std::lock_guard<std::mutex> lock(accepted_mu_);
      accepted_.insert({id, task.round_id()});
    }
    // Refused for good (a late update, a closed round): nothing to resume.
    return accepted || response.outcome() != SubmitUpdateResponse::INCOMPLETE;
  }

  void PollRelease(v1::Releases::Stub& releases, const release::TrustPolicy& policy, const std::string& id) {
    LightState& state = light_state_[id];
    v1::GetReleaseRequest request;
    request.set_device_id(id);
    request.set_model_id(testing::kModelId);
    request.set_installed_version(state.version);
    request.set_last_release(state.release);
    v1::GetReleaseResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!releases.GetRelease(&context, request, &response).ok() ||
        response.outcome() != v1::GetReleaseResponse::INSTALL) {
      return;
    }
    auto envelope = release::SignedRelease::FromJson(response.signed_release());
    ASSERT_TRUE(envelope.ok()) << envelope.status();
    auto manifest = policy.Verify(*envelope, NowUnix());
    ASSERT_TRUE(manifest.ok()) << id << ": " << manifest.status();
    if (manifest->release != state.release) {
      v1::FetchArtifactRequest fetch;
      fetch.set_device_id(id);
      fetch.set_sha256(manifest->artifact_sha256);
      grpc::ClientContext fetch_context;
      fetch_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      auto reader = releases.FetchArtifact(&fetch_context, fetch);
      std::string artifact;
      v1::ArtifactChunk chunk;
      while (reader->Read(&chunk)) artifact += chunk.data();
      if (!reader->Finish().ok() || Sha256Hex(artifact) != manifest->artifact_sha256) return;
      state.version = manifest->version;
      state.release = manifest->release;
    }
    v1::InstallReport report;
    report.set_device_id(id);
    report.set_model_id(testing::kModelId);
    report.set_release(state.release);
    report.set_outcome(v1::InstallReport::INSTALLED);
    report.set_serving_version(state.version);
    grpc::ClientContext report_context;
    report_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::InstallReportResponse ignored;
    releases.ReportInstall(&report_context, report, &ignored);
  }

  // One fault, chosen by `rng`; false if a process it restarted did not come back.
  bool InjectFault(std::mt19937& rng) {
    const int kind = std::uniform_int_distribution<int>(0, 99)(rng);
    if (kind < 25) {
      tally_.aggregator_kills++;
      std::lock_guard<std::mutex> lock(processes_mu_);
      aggregator_->Kill9();
      if (!StartAggregator()) return false;
      tally_.restarts++;
    } else if (kind < 55) {
      std::vector<std::string> victims;
      for (const std::string& d : kDaemons) {
        if (d != kSpared) victims.push_back(d);
      }
      const std::string victim = victims[std::uniform_int_distribution<size_t>(0, victims.size() - 1)(rng)];
      tally_.daemon_kills++;
      {
        std::lock_guard<std::mutex> lock(processes_mu_);
        daemons_.at(victim)->Kill9();
        daemons_.erase(victim);
      }
      if (!StartDaemon(victim)) return false;
      tally_.restarts++;
    } else if (kind < 85) {
      tally_.cuts++;
      tally_.connections_cut += proxy_->CutAll();
    } else {
      // Fills the aggregator's disk and the small daemon's in turn, for a few seconds.
      const fs::path disk = disks()[tally_.disk_fills % 2];
      tally_.disk_fills++;
      tally_.device_disk_fills += disk == small_disk();
      struct statvfs fs_stat {};
      ::statvfs(disk.c_str(), &fs_stat);
      const fs::path ballast = disk / "ballast";
      const int fd = ::open(ballast.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::posix_fallocate(fd, 0, static_cast<off_t>(fs_stat.f_bavail * fs_stat.f_frsize));
      ::close(fd);
      std::this_thread::sleep_for(std::chrono::seconds(3));
      fs::remove(ballast);
    }
    return true;
  }

  // Records the footprint of every process the soak runs now.
  void SampleFootprints() {
    std::vector<std::pair<pid_t, std::string>> processes;
    {
      std::lock_guard<std::mutex> lock(processes_mu_);
      if (aggregator_ != nullptr) processes.emplace_back(aggregator_->pid(), "edgellm-aggregator");
      for (const auto& [name, daemon] : daemons_) processes.emplace_back(daemon->pid(), "edgellmd " + name);
    }
    const auto now = std::chrono::steady_clock::now();
    for (const auto& [pid, name] : processes) {
      const double rss = edgellm::testing::ProcessMemoryMiB(pid, "VmRSS");
      const int fds = OpenDescriptors(pid);
      if (rss <= 0) continue;
      Footprint& f = footprints_[pid];
      if (f.name.empty()) f = {rss, rss, fds, fds, now, now, name};
      f.last_rss = rss;
      f.last_fds = fds;
      f.last_at = now;
    }
  }

  // Closed rounds of the model, from the aggregator's state (read-only, beside it).
  int ClosedRounds() {
    const auto run = RunShell("sqlite3 -readonly " + (state_dir() / "state.db").string() +
                              " \"SELECT COUNT(*) FROM rounds WHERE model_id='" + testing::kModelId +
                              "' AND state='closed'\"");
    return run.exit_code == 0 ? std::atoi(run.out.c_str()) : -1;
  }

  std::string Admin() const {
    const int port = aggregator_->LoggedPort("(port ");
    return "--aggregator 127.0.0.1:" + std::to_string(port) + " --ca " + (dir_ / "pki" / "ca.pem").string() +
           " --cert " + (dir_ / "pki" / "operator.pem").string() + " --key " + (dir_ / "pki" / "operator.key").string();
  }
  // Publishes the latest version, trying again while the aggregator is away.
  bool Publish() {
    for (int attempt = 0; attempt < 60; ++attempt) {
      tally_.publish_tries++;
      std::unique_lock<std::mutex> lock(processes_mu_);
      const auto run = RunCli("publish " + Admin() + " -m " + testing::kModelId + " --signing-key " +
                              (dir_ / "release.key").string());
      lock.unlock();
      if (run.exit_code == 0) return true;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    return false;
  }
  nlohmann::json RolloutStatus() {
    std::lock_guard<std::mutex> lock(processes_mu_);
    const auto run = RunCli("rollout status " + Admin() + " -m " + testing::kModelId + " --json");
    return run.exit_code == 0 ? nlohmann::json::parse(run.out, nullptr, false) : nlohmann::json();
  }

  std::string ServedVersion(const std::string& device) {
    std::lock_guard<std::mutex> lock(processes_mu_);
    auto stub = v1::Inference::NewStub(daemons_.at(device)->channel());
    grpc::ClientContext context;
    v1::ListModelsResponse response;
    if (!stub->ListModels(&context, {}, &response).ok() || response.models_size() != 1) return "?";
    return response.models(0).version();
  }

  // What a light device serves; read by the test's thread while it runs.
  struct LightState {
    std::atomic<uint64_t> release{0};
    std::atomic<uint64_t> version{0};
  };

  int rounds_ = 0;
  int rollouts_ = 0;
  std::vector<fs::path> mounted_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<ChaosProxy> proxy_;
  std::mutex processes_mu_;  // aggregator_ and daemons_ while the chaos replaces them
  std::map<std::string, std::unique_ptr<DaemonProcess>> daemons_;
  std::vector<std::thread> light_;
  std::map<std::string, LightState> light_state_;  // each entry written by its light device's thread
  std::mutex accepted_mu_;
  std::set<std::pair<std::string, uint64_t>> accepted_;  // (device, round) answered ACCEPTED
  std::map<pid_t, Footprint> footprints_;
  Tally tally_;
};

TEST_F(FleetSoak, RoundsAndRolloutsGoOnThroughKillsCutsAndAFullDisk) {
  WriteAggregatorConfig();
  ASSERT_TRUE(StartAggregator());
  for (const std::string& device : kDaemons) ASSERT_TRUE(StartDaemon(device));
  for (int i = 0; i < kLightDevices; ++i) light_state_[LightName(i)];
  for (int i = 0; i < kLightDevices; ++i) light_.emplace_back([this, i] { RunLightDevice(i); });
  const auto start = std::chrono::steady_clock::now();

  // The chaos begins once the first round has closed, and ends with the last.
  std::atomic<bool> chaos_on{false}, chaos_off{false}, chaos_failed{false};
  std::thread chaos([&] {
    std::mt19937 rng(20261204);
    while (!chaos_off) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(1000, 4000)(rng)));
      if (chaos_off || !chaos_on) continue;
      if (!InjectFault(rng)) {
        chaos_failed = true;
        return;
      }
    }
  });

  int published = 0;
  int closed = 0;
  const auto give_up = start + std::chrono::seconds(60 * rounds_ + 120);
  while (closed < rounds_ && std::chrono::steady_clock::now() < give_up && !chaos_failed) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    closed = std::max(closed, ClosedRounds());
    if (closed >= 1) chaos_on = true;
    SampleFootprints();
    // Rollouts spread over the rounds; the last one after the last round.
    if (published < rollouts_ - 1 && closed >= (published + 1) * rounds_ / rollouts_) {
      ASSERT_TRUE(Publish()) << "publishing rollout " << published + 1;
      ++published;
    }
  }
  chaos_off = true;
  chaos.join();
  ASSERT_FALSE(chaos_failed) << "a killed process did not come back";
  ASSERT_EQ(closed, rounds_) << "rounds closed in " << Seconds(start) << " s; the aggregator's log:\n"
                             << ReadAll(dir_ / "aggregator.log").substr(0, 20000);
  const double rounds_seconds = Seconds(start);

  // The last rollout, after the chaos: every device ends on its version. A
  // rollout that an earlier kill halted is resumed, as an operator would.
  ASSERT_TRUE(Publish());
  ++published;
  nlohmann::json status = RolloutStatus();
  ASSERT_TRUE(status.is_object()) << status.dump();
  const std::string final_version = "v" + std::to_string(JsonNumber(status, "version"));
  const uint64_t final_release = JsonNumber(status, "release");
  bool everyone = false;
  for (int i = 0; i < 240 && !everyone; ++i) {
    status = RolloutStatus();
    if (status.is_object() && status.value("stage", "") == "halted") {
      RunCli("rollout resume " + Admin() + " -m " + testing::kModelId);
      tally_.resumes++;
    }
    everyone = true;
    for (const std::string& device : kDaemons) everyone = everyone && ServedVersion(device) == final_version;
    for (const auto& [id, state] : light_state_) everyone = everyone && state.release == final_release;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    SampleFootprints();
  }
  EXPECT_TRUE(everyone) << "rollout: " << status.dump();
  for (const std::string& device : kDaemons) EXPECT_EQ(ServedVersion(device), final_version) << device;
  stop_ = true;
  for (std::thread& t : light_) t.join();
  light_.clear();
  for (const auto& [id, state] : light_state_) EXPECT_EQ(state.release, final_release) << id;

  // No accepted update is lost: the daemons' and the light devices' are all in the state.
  std::set<std::pair<std::string, uint64_t>> claimed = accepted_;
  for (const std::string& device : kDaemons) {
    const std::string log = ReadAll(dir_ / (device + ".log"));
    const std::string marker = "federation: round ";
    for (size_t at = log.find(marker); at != std::string::npos; at = log.find(marker, at + 1)) {
      const size_t line_end = log.find('\n', at);
      const std::string line = log.substr(at, line_end - at);
      if (line.find(": update accepted") != std::string::npos) {
        claimed.insert({device, std::stoull(line.substr(marker.size()))});
      }
    }
  }
  aggregator_->Terminate();
  const auto rows = RunShell("sqlite3 -readonly " + (state_dir() / "state.db").string() +
                             " \"SELECT device_id || ' ' || round_id FROM updates WHERE model_id='" +
                             testing::kModelId + "'\"");
  ASSERT_EQ(rows.exit_code, 0) << rows.err;
  std::set<std::pair<std::string, uint64_t>> stored;
  std::istringstream lines(rows.out);
  std::string device;
  uint64_t round = 0;
  while (lines >> device >> round) stored.insert({device, round});
  int daemon_updates = 0;
  for (const auto& update : claimed) {
    EXPECT_TRUE(stored.contains(update)) << update.first << "'s update to round " << update.second
                                         << " was answered ACCEPTED but is not in the state";
    daemon_updates += update.first.starts_with("edge-");
  }
  EXPECT_GT(daemon_updates, 0) << "the daemons never had an update accepted";

  // Flat: no process that lived through at least 20 s of the run grew by
  // more than 64 MiB, or by more descriptors than 32 and one for each
  // connection the fleet can open to it (an aggregator restarted 20 s before
  // the end may still be taking its devices' connections: 30 -> 66 seen). The spared daemon, which lives through the
  // whole run, is always checked, however fast the machine ran the rounds.
  double longest = 0;
  for (const auto& [pid, f] : footprints_) {
    longest = std::max(longest, std::chrono::duration<double>(f.last_at - f.first_at).count());
  }
  const double long_enough = std::min(20.0, longest);
  int long_lived = 0;
  std::ostringstream footprint_report;
  for (const auto& [pid, f] : footprints_) {
    if (std::chrono::duration<double>(f.last_at - f.first_at).count() < long_enough) continue;
    ++long_lived;
    footprint_report << "\n  " << f.name << " (pid " << pid << "): RSS " << f.first_rss << " -> " << f.last_rss
                     << " MiB, descriptors " << f.first_fds << " -> " << f.last_fds << " over "
                     << std::chrono::duration<double>(f.last_at - f.first_at).count() << " s";
    EXPECT_LE(f.last_rss, f.first_rss + 64) << f.name;
    EXPECT_LE(f.last_fds, f.first_fds + 32 + kFleetConnections) << f.name;
  }
  EXPECT_GE(long_lived, 1);
  std::cerr << "soak: " << rounds_ << " rounds and " << published << " rollouts with " << kDaemons.size()
            << " daemons and " << kLightDevices << " light devices in " << rounds_seconds << " s ("
            << 3600.0 * rounds_ / rounds_seconds << " rounds/hour); faults: " << tally_.aggregator_kills
            << " aggregator kill -9, " << tally_.daemon_kills << " daemon kill -9, " << tally_.cuts
            << " cuts of every connection (" << tally_.connections_cut << " connections), " << tally_.disk_fills
            << " full disks (" << tally_.device_disk_fills << " of them a daemon's); recoveries: " << tally_.restarts << " of " << tally_.aggregator_kills + tally_.daemon_kills
            << " killed processes back serving, " << tally_.publish_tries << " publish calls for " << published
            << " releases, " << tally_.resumes << " halted rollouts resumed; " << claimed.size()
            << " accepted updates, all in the state; footprints:" << footprint_report.str() << "\n";
}

}  // namespace
}  // namespace edgellm::federated
