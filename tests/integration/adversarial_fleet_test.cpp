// edgellm-aggregator against devices that attack it: each test is an attack
// a stolen or compromised device can make with its own valid certificate,
// run against the real program over real mutual TLS, and what must hold
// afterwards (the aggregate, the rollout, the aggregator's memory).
#include <gtest/gtest.h>
#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <future>
#include <numeric>
#include <thread>

#include "common/hashing.h"
#include "edgellm/v1/ota.grpc.pb.h"
#include "federated/aggregator/aggregator_config.h"
#include "federated/aggregator/audit_log.h"
#include "federated/aggregator/strategy.h"
#include "federated/release/manifest.h"
#include "federated/release/signing_key.h"
#include "tests/support/aggregator_fixture.h"
#include "tests/support/process_state.h"

namespace edgellm::federated {
namespace {

namespace fs = std::filesystem;
using edgellm::testing::FederationTestClient;
using testing::kModelId;
using testing::kRank;
using testing::kTargets;
using v1::SubmitUpdateResponse;

class AdversarialFleet : public testing::AggregatorFixture {
 protected:
  // Registers each device with its local example count.
  std::vector<std::unique_ptr<FederationTestClient>> Devices(const std::vector<std::pair<std::string, int64_t>>& ids,
                                                             const std::string& model_id = kModelId) {
    std::vector<std::unique_ptr<FederationTestClient>> devices;
    for (const auto& [id, examples] : ids) {
      devices.push_back(Device(id));
      grpc::Status s = devices.back()->Register(model_id, base_sha_, kRank, kTargets, nullptr, examples);
      EXPECT_TRUE(s.ok()) << id << ": " << s.error_message();
    }
    return devices;
  }

  // An aggregator that publishes each round's version by itself (canaries
  // first: one of three devices; no soak), with `model_lines` for more
  // models; dev-a, dev-b and dev-c run round 1, whose version is release 1.
  std::vector<std::unique_ptr<FederationTestClient>> StartRollout(const std::string& model_lines) {
    auto key = release::SigningKey::Generate();
    EXPECT_TRUE(key.ok());
    std::ofstream(dir_ / "release.key") << key->PrivatePem();
    std::ofstream(dir_ / "release.pub") << key->PublicPem();
    testing::Settings settings;
    settings.top_lines = "release_keys: [" + (dir_ / "release.pub").string() + "]\nrelease_signing_key: " +
                         (dir_ / "release.key").string() + "\nadmins: [operator]\ncanary_fraction: 0.25\n" +
                         "soak_seconds: 0\n";
    settings.model_lines = model_lines;
    WriteConfig(settings);
    StartAggregator();
    auto devices = Devices({{"dev-a", 100}, {"dev-b", 100}, {"dev-c", 100}});
    v1::Task task;
    EXPECT_TRUE(devices[0]->WaitForTask(kModelId, &task));
    SubmitUpdateResponse response;
    for (size_t d = 0; d < devices.size(); ++d) {
      auto upload = UploadOf(Delta(1.0f + d), task.round_id(), task.adapter_version(), "k", 100);
      EXPECT_TRUE(devices[d]->Submit(upload, &response).ok());
    }
    EXPECT_TRUE(aggregator_->WaitForLog("model stories: release 1", std::chrono::seconds(60))) << aggregator_->Log();
    return devices;
  }

  std::unique_ptr<v1::Releases::Stub> Releases(const std::string& id) const {
    return v1::Releases::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(port_),
        edgellm::testing::DeviceCredentials(dir_ / "pki" / "ca.pem", dir_ / "pki" / (id + ".pem"),
                                            dir_ / "pki" / (id + ".key"))));
  }

  // Whether the device hears INSTALL for the model's release.
  bool Offered(const std::string& id) const {
    v1::GetReleaseRequest request;
    request.set_device_id(id);
    request.set_model_id(kModelId);
    grpc::ClientContext context;
    v1::GetReleaseResponse answer;
    EXPECT_TRUE(Releases(id)->GetRelease(&context, request, &answer).ok());
    return answer.outcome() == v1::GetReleaseResponse::INSTALL;
  }

  // The one of dev-a, dev-b and dev-c offered release 1, and the others.
  std::pair<std::string, std::vector<std::string>> FindCanary() const {
    std::pair<std::string, std::vector<std::string>> found;
    for (const char* id : {"dev-a", "dev-b", "dev-c"}) (Offered(id) ? found.first : found.second.emplace_back()) = id;
    return found;
  }

  grpc::Status Report(const std::string& id, v1::InstallReport::Outcome outcome) const {
    v1::InstallReport r;
    r.set_device_id(id);
    r.set_model_id(kModelId);
    r.set_release(1);
    r.set_outcome(outcome);
    r.set_detail("reported by the test");
    grpc::ClientContext context;
    v1::InstallReportResponse ignored;
    return Releases(id)->ReportInstall(&context, r, &ignored);
  }

  // What `calls` calls one after the other got: those answered, the
  // messages of those refused with RESOURCE_EXHAUSTED (any other failure
  // fails the test), and how long they took.
  struct Flood {
    int answered = 0;
    std::vector<std::string> refusals;
    double seconds = 0;
  };
  static Flood Repeat(int calls, const std::function<grpc::Status()>& call) {
    Flood flood;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) {
      const grpc::Status s = call();
      if (s.ok()) {
        ++flood.answered;
        continue;
      }
      EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
      flood.refusals.push_back(s.error_message());
    }
    flood.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return flood;
  }

  // Every value of the layout set to `value`.
  TensorSet Filled(float value) const {
    TensorSet delta = layout_;
    for (NamedTensor& t : delta) std::fill(t.values.begin(), t.values.end(), value);
    return delta;
  }
};

// Item 1: with DP-FedAvg, a version minus its parent is the noised mean of
// the clipped updates. If the noise can be regenerated from public values
// (the model id and the round), whoever holds both versions and their own
// update recovers the others' exactly.
TEST_F(AdversarialFleet, TheDpNoiseCannotBeRegeneratedFromPublicValues) {
  testing::Settings settings;
  settings.strategy = "dp_fedavg";
  settings.model_lines = "    norm_bound: 10\n    noise_multiplier: 1.0\n";
  WriteConfig(settings);
  StartAggregator();
  auto devices = Devices({{"dev-a", 100}, {"dev-b", 100}, {"dev-c", 100}});
  v1::Task task;
  ASSERT_TRUE(devices[0]->WaitForTask(kModelId, &task));
  const std::vector<TensorSet> deltas = {Delta(1.0f), Delta(2.0f), Delta(3.0f)};
  SubmitUpdateResponse response;
  for (size_t d = 0; d < devices.size(); ++d) {
    auto upload = UploadOf(deltas[d], task.round_id(), task.adapter_version(), "k" + std::to_string(d), 100);
    ASSERT_TRUE(devices[d]->Submit(upload, &response).ok());
    ASSERT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED) << response.detail();
  }
  ASSERT_TRUE(aggregator_->WaitForLog("version 2 from 3 updates", std::chrono::seconds(60))) << aggregator_->Log();
  const TensorSet released = FetchB(*devices[0], task.adapter_version() + 1);
  ASSERT_EQ(released.size(), layout_.size());

  // The attack: the same aggregation, seeded from what everyone knows.
  StrategyConfig strategy;
  strategy.name = "dp_fedavg";
  strategy.norm_bound = 10;
  strategy.noise_multiplier = 1.0;
  auto regenerated = NewAggregation(strategy, layout_, MixSeeds(Fnv1a(kModelId), task.round_id()));
  for (const TensorSet& d : deltas) regenerated->Add(d, 1.0);
  auto guess = regenerated->Finish();
  ASSERT_TRUE(guess.ok());
  // The noise on the sum has deviation z·S = 10, so on the mean of three
  // 10/3 per value: a regenerated noise would match to float rounding.
  double worst = 0, noise_square_sum = 0;
  size_t values = 0;
  for (size_t t = 0; t < released.size(); ++t) {
    for (size_t i = 0; i < released[t].values.size(); ++i) {
      worst = std::max(worst, std::fabs(double{released[t].values[i]} - (*guess)[t].values[i]));
      double honest_sum = 0;
      for (const TensorSet& d : deltas) honest_sum += d[t].values[i];
      const double noise = 3.0 * released[t].values[i] - honest_sum;
      noise_square_sum += noise * noise;
      ++values;
    }
  }
  EXPECT_GT(worst, 1.0) << "the released version is the publicly regenerated one";
  // The noise is still there, at its calibrated deviation.
  const double deviation = std::sqrt(noise_square_sum / static_cast<double>(values));
  EXPECT_NEAR(deviation, 10.0, 1.0);
}

// Item 2: the weight of an update is what its device says it is, and its
// size is whatever it sends. One device must not decide the average.
TEST_F(AdversarialFleet, OneDeviceWithAHugeExampleCountDoesNotDecideTheAverage) {
  WriteConfig({});
  StartAggregator();
  // dev-a lies at registration too: it claims a billion local examples.
  auto devices = Devices({{"dev-a", 1'000'000'000}, {"dev-b", 100}, {"dev-c", 200}});
  v1::Task task;
  ASSERT_TRUE(devices[0]->WaitForTask(kModelId, &task));
  const uint64_t round = task.round_id(), base = task.adapter_version();
  SubmitUpdateResponse response;
  // Δ = −100 everywhere with a weight of 1e9: far beyond any update local training makes.
  grpc::Status s = devices[0]->Submit(UploadOf(Filled(-100.0f), round, base, "bomb", 1'000'000'000), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("norm"), std::string::npos) << s.error_message();
  // dev-b claims more examples than it registered.
  s = devices[1]->Submit(UploadOf(Delta(1.0f), round, base, "more", 101), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("registered"), std::string::npos) << s.error_message();
  // The largest update dev-a can get accepted, still with its billion examples.
  const double refusal_bound = 3 * 20 * 0.01 * std::sqrt(static_cast<double>(ValueCount(layout_)));
  const float largest = static_cast<float>(-0.95 * refusal_bound / std::sqrt(static_cast<double>(ValueCount(layout_))));
  ASSERT_TRUE(devices[0]->Submit(UploadOf(Filled(largest), round, base, "a", 1'000'000'000), &response).ok());
  EXPECT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED) << response.detail();
  ASSERT_TRUE(devices[1]->Submit(UploadOf(Delta(1.0f), round, base, "b", 100), &response).ok());
  ASSERT_TRUE(devices[2]->Submit(UploadOf(Delta(2.0f), round, base, "c", 200), &response).ok());
  ASSERT_TRUE(aggregator_->WaitForLog("version 2 from 3 updates", std::chrono::seconds(60))) << aggregator_->Log();
  // dev-a's weight is capped at 4 × the median registered count (200 → 800)
  // and its update clipped to the norm bound, so each value of the mean
  // moves by at most (800 / 1100) × (clip / √n) ≈ 0.15.
  const TensorSet released = FetchB(*devices[0], base + 1);
  float lowest = 0;
  for (const NamedTensor& t : released) lowest = std::min(lowest, *std::min_element(t.values.begin(), t.values.end()));
  EXPECT_GT(lowest, -0.2f);
  EXPECT_LT(lowest, -0.01f) << "dev-a's update, clipped and capped, still counts";
  const std::string metrics = Metrics();
  for (const char* reason : {"reason=\"norm\"", "reason=\"weight\""}) {
    EXPECT_NE(metrics.find(reason), std::string::npos) << reason << "\n" << metrics;
  }
  EXPECT_NE(metrics.find("edgellm_aggregator_updates_bounded_total{bound=\"weight_cap\",model=\"stories\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("edgellm_aggregator_updates_bounded_total{bound=\"norm_clip\",model=\"stories\"} 1"),
            std::string::npos)
      << metrics;
}

// An update whose zstd frame holds `decoded_bytes` of zeros after a valid
// header: tens of kilobytes that decode into hundreds of megabytes.
std::string DecompressionBomb(uint64_t round, uint64_t base, uint32_t rows, uint32_t cols) {
  std::string header = "EDLU";
  auto put = [&](auto value) { header.append(reinterpret_cast<const char*>(&value), sizeof(value)); };
  put(uint32_t{1});
  put(static_cast<uint16_t>(kModelId.size()));
  header += kModelId;
  put(round);
  put(base);
  put(uint32_t{1});
  const std::string name = "x";
  put(static_cast<uint16_t>(name.size()));
  header += name;
  put(rows);
  put(cols);
  put(uint8_t{2});  // INT8: 36 bytes per block of 32 values
  const uint64_t payload = (static_cast<uint64_t>(rows) * cols + 31) / 32 * 36;
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 1);
  ZSTD_CCtx_setPledgedSrcSize(cctx, header.size() + payload);
  std::string out(ZSTD_CStreamOutSize(), '\0');
  std::string frame;
  const std::string zeros(1 << 20, '\0');
  auto feed = [&](const char* data, size_t size, ZSTD_EndDirective directive) {
    ZSTD_inBuffer in{data, size, 0};
    size_t left;
    do {
      ZSTD_outBuffer o{out.data(), out.size(), 0};
      left = ZSTD_compressStream2(cctx, &o, &in, directive);
      frame.append(out.data(), o.pos);
    } while (in.pos < in.size || (directive == ZSTD_e_end && left != 0));
  };
  feed(header.data(), header.size(), ZSTD_e_continue);
  for (uint64_t at = 0; at < payload; at += zeros.size()) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), payload - at));
    feed(zeros.data(), n, at + n == payload ? ZSTD_e_end : ZSTD_e_continue);
  }
  ZSTD_freeCCtx(cctx);
  return frame;
}

// Item 3: three devices send decompression bombs at once. The aggregator
// refuses them without inflating them, and goes on serving.
TEST_F(AdversarialFleet, ThreeConcurrentDecompressionBombsLeaveTheAggregatorsMemoryAlone) {
  testing::Settings settings;
  settings.max_update_bytes = 64ull << 20;
  WriteConfig(settings);
  StartAggregator();
  auto devices = Devices({{"dev-a", 100}, {"dev-b", 100}, {"dev-c", 100}});
  v1::Task task;
  ASSERT_TRUE(devices[0]->WaitForTask(kModelId, &task));
  const uint64_t round = task.round_id(), base = task.adapter_version();
  // ~512 MiB declared: 2^20 rows of 455 INT8 values.
  const std::string bomb = DecompressionBomb(round, base, 1u << 20, 455);
  ASSERT_LT(bomb.size(), 64u << 10);
  ASSERT_GT(ZSTD_getFrameContentSize(bomb.data(), bomb.size()), 500ull << 20);
  const double rss_before = edgellm::testing::ProcessMemoryMiB(aggregator_->pid(), "VmRSS");
  std::vector<std::future<grpc::Status>> attacks;
  for (size_t d = 0; d < devices.size(); ++d) {
    attacks.push_back(std::async(std::launch::async, [&, d] {
      FederationTestClient::Upload u;
      u.model_id = kModelId;
      u.round_id = round;
      u.key = "bomb";
      u.examples = 100;
      u.bytes = bomb;
      u.sha256 = Sha256Hex(bomb);
      SubmitUpdateResponse ignored;
      // Each device's own bytes: a replay of another's would be refused for that alone.
      u.bytes += std::string(d, '\0');
      u.sha256 = Sha256Hex(u.bytes);
      return devices[d]->Submit(u, &ignored);
    }));
  }
  for (auto& attack : attacks) {
    const grpc::Status s = attack.get();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  }
  const double peak = edgellm::testing::ProcessMemoryMiB(aggregator_->pid(), "VmHWM");
  EXPECT_LT(peak, rss_before + 128) << "before the bombs: " << rss_before << " MiB";
  // It goes on: the three honest updates close the round.
  SubmitUpdateResponse response;
  for (size_t d = 0; d < devices.size(); ++d) {
    ASSERT_TRUE(devices[d]->Submit(UploadOf(Delta(1.0f + d), round, base, "ok", 100), &response).ok());
    EXPECT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED) << response.detail();
  }
  EXPECT_TRUE(aggregator_->WaitForLog("version 2 from 3 updates", std::chrono::seconds(60))) << aggregator_->Log();
}

// Item 4: install reports move rollouts, so only a device that was offered
// the release may report on it.
TEST_F(AdversarialFleet, ADeviceOfAnotherModelCannotHaltARollout) {
  // A second model on the same base file, for dev-d.
  const std::string other = "  - id: other\n    base_model: " + testing::kModel +
                            "\n    rank: 4\n    targets: q_proj,v_proj\n    min_devices: 1\n    quorum: 1\n";
  auto devices = StartRollout(other);
  ASSERT_FALSE(HasFatalFailure());
  auto stranger = Devices({{"dev-d", 100}}, "other");
  const auto [canary, others] = FindCanary();
  ASSERT_FALSE(canary.empty());
  // dev-d, enrolled for another model, tries to halt this one.
  grpc::Status s = Report("dev-d", v1::InstallReport::SMOKE_FAILED);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  // A device of this model that was not offered the release yet fakes a canary's success or failure.
  s = Report(others.front(), v1::InstallReport::INSTALLED);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  s = Report(others.back(), v1::InstallReport::SMOKE_FAILED);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_EQ(aggregator_->Log().find("halted"), std::string::npos) << aggregator_->Log();
  // The canary's own report moves it on.
  s = Report(canary, v1::InstallReport::INSTALLED);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(aggregator_->WaitForLog("rollout: canary -> soak", std::chrono::seconds(30))) << aggregator_->Log();
}

// Item 10 and 11: a rollout halted by its canary and resumed by an operator
// (who looked at the failure) offers the release to the canary again and goes
// on when it installs; the audit log names the operator and every report.
TEST_F(AdversarialFleet, AHaltedRolloutResumedByAnOperatorMakesProgressAndTheAuditLogSaysWho) {
  auto devices = StartRollout("");
  ASSERT_FALSE(HasFatalFailure());
  const auto [canary, others] = FindCanary();
  ASSERT_FALSE(canary.empty());
  ASSERT_TRUE(Report(canary, v1::InstallReport::SMOKE_FAILED).ok());
  ASSERT_TRUE(aggregator_->WaitForLog("rollout: canary -> halted", std::chrono::seconds(30))) << aggregator_->Log();
  EXPECT_FALSE(Offered(canary));  // halted: nobody is offered it
  auto admin = v1::ReleaseAdmin::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port_),
      edgellm::testing::DeviceCredentials(dir_ / "pki" / "ca.pem", dir_ / "pki" / "operator.pem",
                                          dir_ / "pki" / "operator.key")));
  v1::ControlRolloutRequest resume;
  resume.set_model_id(kModelId);
  resume.set_action(v1::ControlRolloutRequest::RESUME);
  grpc::ClientContext context;
  v1::RolloutStatus status;
  ASSERT_TRUE(admin->ControlRollout(&context, resume, &status).ok());
  EXPECT_EQ(status.stage(), "canary");
  EXPECT_TRUE(Offered(canary)) << "the canary that failed is offered the release again";
  ASSERT_TRUE(Report(canary, v1::InstallReport::INSTALLED).ok());
  EXPECT_TRUE(aggregator_->WaitForLog("rollout: canary -> soak", std::chrono::seconds(30))) << aggregator_->Log();
  EXPECT_TRUE(aggregator_->WaitForLog("rollout: soak -> full", std::chrono::seconds(30))) << aggregator_->Log();
  aggregator_->Terminate();
  const std::string audit = edgellm::testing::ReadAll(dir_ / "state" / "audit.log");
  EXPECT_NE(audit.find("\"action\":\"RESUME\""), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"operator\":\"operator\""), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"outcome\":\"SMOKE_FAILED\""), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"device\":\"" + canary + "\""), std::string::npos) << audit;
  EXPECT_TRUE(AuditLog::Verify((dir_ / "state" / "audit.log").string()).ok());
}

// A canary on probation with release 1 keeps sending its live figures; an
// operator publishes release 2 (a rollback), whose smoke test fails on the
// canary. A live report for release 1 arriving after that must neither
// replace the canary's SMOKE_FAILED on release 2 nor be judged for it.
TEST_F(AdversarialFleet, ALiveReportForAnOlderReleaseDoesNotHideAFailureOnTheLatest) {
  auto devices = StartRollout("");
  ASSERT_FALSE(HasFatalFailure());
  const auto [canary, others] = FindCanary();
  ASSERT_FALSE(canary.empty());
  ASSERT_TRUE(Report(canary, v1::InstallReport::INSTALLED).ok());
  auto admin = v1::ReleaseAdmin::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port_),
      edgellm::testing::DeviceCredentials(dir_ / "pki" / "ca.pem", dir_ / "pki" / "operator.pem",
                                          dir_ / "pki" / "operator.key")));
  v1::PrepareReleaseRequest prepare;
  prepare.set_model_id(kModelId);
  prepare.set_version(1);
  prepare.set_rollback(true);
  v1::PrepareReleaseResponse prepared;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(admin->PrepareRelease(&context, prepare, &prepared).ok());
  }
  auto key = release::SigningKey::Load((dir_ / "release.key").string());
  ASSERT_TRUE(key.ok());
  release::SignedRelease envelope{prepared.manifest_json(), {}};
  release::AddSignature(envelope, *key);
  v1::PublishRequest publish;
  publish.set_signed_release(envelope.ToJson());
  publish.mutable_rollout()->set_canary_fraction(0.25);
  v1::RolloutStatus status;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(admin->Publish(&context, publish, &status).ok());
  }
  ASSERT_EQ(status.release(), 2u);
  ASSERT_TRUE(Offered(canary));
  v1::InstallReport failed;
  failed.set_device_id(canary);
  failed.set_model_id(kModelId);
  failed.set_release(2);
  failed.set_outcome(v1::InstallReport::SMOKE_FAILED);
  failed.set_detail("the smoke test failed");
  v1::InstallReportResponse ignored;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(Releases(canary)->ReportInstall(&context, failed, &ignored).ok());
  }
  // The late live report of release 1, with figures that would fail any judge.
  v1::InstallReport late;
  late.set_device_id(canary);
  late.set_model_id(kModelId);
  late.set_release(1);
  late.set_outcome(v1::InstallReport::INSTALLED);
  late.mutable_live()->set_requests(100);
  late.mutable_live()->set_errors(100);
  late.mutable_live_baseline()->set_requests(100);
  {
    grpc::ClientContext context;
    ASSERT_TRUE(Releases(canary)->ReportInstall(&context, late, &ignored).ok());
  }
  v1::GetRolloutRequest get;
  get.set_model_id(kModelId);
  {
    grpc::ClientContext context;
    ASSERT_TRUE(admin->GetRollout(&context, get, &status).ok());
  }
  EXPECT_EQ(status.release(), 2u);
  EXPECT_EQ(status.stage(), "halted") << status.detail();
  bool seen = false;
  for (const v1::DeviceRollout& d : status.devices()) {
    if (d.device_id() != canary) continue;
    seen = true;
    EXPECT_EQ(d.last_report(), "SMOKE_FAILED") << d.DebugString();
    EXPECT_FALSE(d.has_live()) << d.DebugString();
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(aggregator_->Log().find("LIVE_FAILED"), std::string::npos) << aggregator_->Log();
}

// A canary reporting in a loop, each report one the aggregator judges
// LIVE_FAILED (a database write apiece): after its burst it is refused
// without a write, the audit log says the failure once, its refill lets an
// honest report through, and the other devices are answered throughout.
TEST_F(AdversarialFleet, ACanaryReportingInALoopIsHeldToItsReportBudget) {
  const auto devices = StartRollout("");
  const auto [canary, others] = FindCanary();
  ASSERT_FALSE(canary.empty());
  ASSERT_TRUE(Report(canary, v1::InstallReport::INSTALLED).ok());
  v1::InstallReport flood;
  flood.set_device_id(canary);
  flood.set_model_id(kModelId);
  flood.set_release(1);
  flood.set_outcome(v1::InstallReport::INSTALLED);
  flood.mutable_live()->set_requests(100);
  flood.mutable_live()->set_errors(100);
  flood.mutable_live_baseline()->set_requests(100);
  auto stub = Releases(canary);
  const Flood reports = Repeat(200, [&] {
    grpc::ClientContext context;
    v1::InstallReportResponse ignored;
    return stub->ReportInstall(&context, flood, &ignored);
  });
  ASSERT_FALSE(reports.refusals.empty());
  // Its reports, then (past a hundred) all its calls.
  EXPECT_NE(reports.refusals.front().find("reports faster than 1 a second"), std::string::npos)
      << reports.refusals.front();
  // The first INSTALLED, then the burst of 10 less that one, then one a second.
  EXPECT_LE(reports.answered, 9 + static_cast<int>(std::ceil(reports.seconds)) + 1) << reports.seconds << " s";
  const std::string audit = edgellm::testing::ReadAll(dir_ / "state" / "audit.log");
  size_t lines = 0;
  for (size_t at = audit.find("\"outcome\":\"LIVE_FAILED\""); at != std::string::npos;
       at = audit.find("\"outcome\":\"LIVE_FAILED\"", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 1u) << "the failure once, not once per report";
  v1::GetReleaseRequest poll;
  poll.set_device_id(others[0]);
  poll.set_model_id(kModelId);
  {
    grpc::ClientContext context;
    v1::GetReleaseResponse answer;
    EXPECT_TRUE(Releases(others[0])->GetRelease(&context, poll, &answer).ok());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  grpc::ClientContext context;
  v1::InstallReportResponse ignored;
  EXPECT_TRUE(stub->ReportInstall(&context, flood, &ignored).ok()) << "refilled at one a second";
}

// A device asking for releases in a loop (each poll reads the rollout's
// state): after its burst it is refused at the door, at its refill rate it
// is answered again, and another device is answered throughout.
TEST_F(AdversarialFleet, ADeviceCallingInALoopIsHeldToItsCallBudget) {
  testing::Settings settings;
  settings.top_lines = "device_call_burst: 30\ndevice_calls_per_second: 5\n";
  WriteConfig(settings);
  StartAggregator();
  auto devices = Devices({{"dev-a", 100}, {"dev-b", 100}});
  auto stub = Releases("dev-a");
  v1::GetReleaseRequest poll;
  poll.set_device_id("dev-a");
  poll.set_model_id(kModelId);
  const Flood polls = Repeat(300, [&] {
    grpc::ClientContext context;
    v1::GetReleaseResponse answer;
    return stub->GetRelease(&context, poll, &answer);
  });
  ASSERT_FALSE(polls.refusals.empty());
  for (const std::string& refusal : polls.refusals) {
    EXPECT_NE(refusal.find("calls faster than 5 a second"), std::string::npos) << refusal;
  }
  // Registering took one of the 30.
  EXPECT_LE(polls.answered, 29 + static_cast<int>(std::ceil(polls.seconds * 5)) + 1) << polls.seconds << " s";
  v1::GetReleaseRequest other = poll;
  other.set_device_id("dev-b");
  {
    grpc::ClientContext context;
    v1::GetReleaseResponse answer;
    EXPECT_TRUE(Releases("dev-b")->GetRelease(&context, other, &answer).ok()) << "another device's budget is its own";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  grpc::ClientContext context;
  v1::GetReleaseResponse answer;
  EXPECT_TRUE(stub->GetRelease(&context, poll, &answer).ok()) << "refilled at five a second";
}

// Item 5: a stolen device is revoked while the aggregator runs and refused
// at its next call; a device cannot fetch another model's adapter; an
// operator's certificate is not a device's.
TEST_F(AdversarialFleet, ARevokedDeviceIsRefusedAtOnceAndNoDeviceReachesAnotherModel) {
  testing::Settings settings;
  settings.top_lines = "revoked_certificates_file: " + (dir_ / "revoked").string() + "\nadmins: [operator]\n";
  settings.model_lines = "  - id: other\n    base_model: " + testing::kModel +
                         "\n    rank: 4\n    targets: q_proj,v_proj\n    min_devices: 1\n    quorum: 1\n";
  WriteConfig(settings);
  StartAggregator();
  auto devices = Devices({{"dev-a", 100}, {"dev-b", 100}});
  auto stranger = Devices({{"dev-d", 100}}, "other");
  std::ofstream(dir_ / "revoked") << "# stolen on 2026-12-04\ndev-b\n";
  grpc::Status s = devices[1]->Register(kModelId, base_sha_, kRank, kTargets, nullptr, 100);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_NE(s.error_message().find("revoked"), std::string::npos) << s.error_message();
  EXPECT_TRUE(devices[0]->Register(kModelId, base_sha_, kRank, kTargets, nullptr, 100).ok());
  std::ofstream(dir_ / "revoked", std::ios::trunc) << "# found again\n";
  EXPECT_TRUE(devices[1]->Register(kModelId, base_sha_, kRank, kTargets, nullptr, 100).ok());

  std::string bytes;
  s = stranger[0]->Fetch(kModelId, 1, &bytes);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_TRUE(bytes.empty());
  s = stranger[0]->Register(kModelId, base_sha_, kRank, kTargets, nullptr, 100);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_TRUE(stranger[0]->Fetch("other", 1, &bytes).ok());

  // A device that tried the wrong model first (it did not fit) is not bound to it.
  auto mistaken = Device("dev-c");
  s = mistaken->Register("other", std::string(64, 'f'), kRank, kTargets, nullptr, 100);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  s = mistaken->Register(kModelId, base_sha_, kRank, kTargets, nullptr, 100);
  EXPECT_TRUE(s.ok()) << s.error_message();

  s = Device("operator")->Register(kModelId, base_sha_, kRank, kTargets, nullptr, 100);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_NE(s.error_message().find("operator's certificate"), std::string::npos) << s.error_message();
}

// Item 5: with a devices_file, a model takes only the devices it lists — not
// every certificate of the fleet CA on its first call. Taken off the list, a
// device is refused at its next call; put on another model's list instead, it
// moves there (how an operator re-enrolls a device), without a restart.
TEST_F(AdversarialFleet, AModelsDevicesFileDecidesWhoEnrollsAndMovesADevice) {
  const fs::path stories_devices = dir_ / "stories.devices";
  const fs::path other_devices = dir_ / "other.devices";
  std::ofstream(stories_devices) << "# the stories fleet\ndev-a\ndev-b\n";
  std::ofstream(other_devices) << "dev-c\n";
  testing::Settings settings;
  settings.model_lines = "    devices_file: " + stories_devices.string() + "\n  - id: other\n    base_model: " +
                         testing::kModel + "\n    rank: 4\n    targets: q_proj,v_proj\n    devices_file: " +
                         other_devices.string() + "\n";
  WriteConfig(settings);
  StartAggregator();
  auto a = Device("dev-a");
  auto b = Device("dev-b");
  auto d = Device("dev-d");
  EXPECT_TRUE(a->Register(kModelId, base_sha_, kRank, kTargets, nullptr, 100).ok());
  EXPECT_TRUE(b->Register(kModelId, base_sha_, kRank, kTargets, nullptr, 100).ok());
  grpc::Status s = d->Register(kModelId, base_sha_, kRank, kTargets, nullptr, 100);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_NE(s.error_message().find("not in the devices_file of model stories"), std::string::npos)
      << s.error_message();
  std::string bytes;
  EXPECT_EQ(d->Fetch(kModelId, 1, &bytes).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // dev-b is moved to the other model: refused here at once, welcome there.
  std::ofstream(stories_devices, std::ios::trunc) << "dev-a\n";
  std::ofstream(other_devices, std::ios::trunc) << "dev-c\ndev-b\n";
  s = b->Fetch(kModelId, 1, &bytes);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  s = b->Register("other", base_sha_, kRank, kTargets, nullptr, 100);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(b->Fetch("other", 1, &bytes).ok());
  EXPECT_TRUE(aggregator_->WaitForLog("device dev-b moved from model stories to model other", std::chrono::seconds(5)))
      << aggregator_->Log();
  // dev-a, listed on its own model only, stays bound to it.
  s = a->Register("other", base_sha_, kRank, kTargets, nullptr, 100);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
}

// Item 10: an unfinished upload belongs to its model and round alone. Model
// ids may contain dots, so "stories" round 1 must not take "stories.1"'s.
TEST_F(AdversarialFleet, TheEndOfOneModelsRoundLeavesAnotherModelsUploadsAlone) {
  testing::Settings settings;
  settings.model_lines = "  - id: stories.1\n    base_model: " + testing::kModel +
                         "\n    rank: 4\n    targets: q_proj,v_proj\n    min_devices: 1\n    quorum: 1\n";
  WriteConfig(settings);
  StartAggregator();
  auto devices = Devices({{"dev-a", 100}, {"dev-b", 100}, {"dev-c", 100}});
  auto other = Devices({{"dev-d", 100}}, "stories.1");
  v1::Task other_task;
  ASSERT_TRUE(other[0]->WaitForTask("stories.1", &other_task));
  FederationTestClient::Upload half = UploadOf(Delta(1.0f), other_task.round_id(), other_task.adapter_version(), "d", 1);
  half.model_id = "stories.1";
  half.bytes = EncodeTensors({"stories.1", other_task.round_id(), other_task.adapter_version(), Delta(1.0f)},
                             TensorEncoding::kF32);
  half.sha256 = Sha256Hex(half.bytes);
  half.stop_after = half.bytes.size() / 2;
  SubmitUpdateResponse response;
  ASSERT_TRUE(other[0]->Submit(half, &response).ok());
  ASSERT_EQ(response.outcome(), SubmitUpdateResponse::INCOMPLETE);

  v1::Task task;
  ASSERT_TRUE(devices[0]->WaitForTask(kModelId, &task));
  for (size_t d = 0; d < devices.size(); ++d) {
    auto upload = UploadOf(Delta(1.0f + d), task.round_id(), task.adapter_version(), "k", 100);
    ASSERT_TRUE(devices[d]->Submit(upload, &response).ok());
  }
  ASSERT_TRUE(aggregator_->WaitForLog("model stories: round 1 closed", std::chrono::seconds(60)))
      << aggregator_->Log();
  v1::UploadStatusResponse status;
  ASSERT_TRUE(other[0]->UploadStatus("stories.1", other_task.round_id(), "d", &status).ok());
  EXPECT_EQ(status.received_bytes(), half.bytes.size() / 2);
}

// Item 9: one device abandons 300 uploads, each under a fresh idempotency
// key, each with half its bytes sent: the disk holds one part file of it.
TEST_F(AdversarialFleet, AbandonedUploadsUnderFreshKeysDoNotFillTheDisk) {
  testing::Settings settings;
  settings.top_lines = "device_call_burst: 1000\n";  // the disk is what this attack is about
  WriteConfig(settings);
  StartAggregator();
  auto devices = Devices({{"dev-a", 100}, {"dev-b", 100}, {"dev-c", 100}});
  v1::Task task;
  ASSERT_TRUE(devices[0]->WaitForTask(kModelId, &task));
  SubmitUpdateResponse response;
  for (int i = 0; i < 300; ++i) {
    FederationTestClient::Upload half =
        UploadOf(Delta(1.0f + 0.001f * i), task.round_id(), task.adapter_version(), "key-" + std::to_string(i), 1);
    half.stop_after = half.bytes.size() / 2;
    ASSERT_TRUE(devices[0]->Submit(half, &response).ok());
    ASSERT_EQ(response.outcome(), SubmitUpdateResponse::INCOMPLETE);
  }
  size_t parts = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir_ / "state" / "uploads")) parts += entry.is_regular_file();
  EXPECT_EQ(parts, 1u);
  // The last one can still be finished.
  FederationTestClient::Upload last = UploadOf(Delta(1.0f + 0.001f * 299), task.round_id(), task.adapter_version(),
                                               "key-299", 1);
  last.offset = last.bytes.size() / 2;
  ASSERT_TRUE(devices[0]->Submit(last, &response).ok());
  EXPECT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED) << response.detail();
}

// Item 9: one device opens 4,000 upload streams and never sends a byte on
// them. Each would hold a server thread; the aggregator keeps its threads
// and memory bounded and goes on serving the other devices.
TEST_F(AdversarialFleet, FourThousandSilentStreamsDoNotStarveTheOtherDevices) {
  WriteConfig({});
  StartAggregator();
  auto devices = Devices({{"dev-a", 100}, {"dev-b", 100}, {"dev-c", 100}});
  const pid_t pid = aggregator_->pid();
  const double rss_before = edgellm::testing::ProcessMemoryMiB(pid, "VmRSS");
  const auto credentials = edgellm::testing::DeviceCredentials(dir_ / "pki" / "ca.pem", dir_ / "pki" / "dev-a.pem",
                                                                dir_ / "pki" / "dev-a.key");
  struct Silent {
    std::unique_ptr<grpc::ClientContext> context;
    SubmitUpdateResponse response;
    std::unique_ptr<grpc::ClientWriter<v1::UpdateChunk>> writer;
  };
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::Federation::Stub>> stubs;
  std::vector<Silent> silent(4000);
  for (size_t i = 0; i < silent.size(); ++i) {
    if (i % 16 == 0) {  // a connection per 16 streams, as many as one connection may carry
      grpc::ChannelArguments arguments;
      arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      channels.push_back(
          grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_), credentials, arguments));
      stubs.push_back(v1::Federation::NewStub(channels.back()));
    }
    silent[i].context = std::make_unique<grpc::ClientContext>();
    silent[i].context->set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
    silent[i].writer = stubs.back()->SubmitUpdate(silent[i].context.get(), &silent[i].response);
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));  // for the aggregator to take up what reached it
  const double threads = edgellm::testing::ProcessStatus(pid, "Threads");
  const double rss = edgellm::testing::ProcessMemoryMiB(pid, "VmRSS");
  // Another device is served as before.
  v1::Task task;
  EXPECT_TRUE(devices[1]->WaitForTask(kModelId, &task));
  EXPECT_TRUE(devices[2]->Register(kModelId, base_sha_, kRank, kTargets, nullptr, 100).ok());
  for (Silent& s : silent) s.context->TryCancel();
  std::cerr << "aggregator with 4,000 silent streams: " << threads << " threads, RSS " << rss_before << " -> " << rss
            << " MiB\n";
  EXPECT_LT(threads, 300) << "aggregator threads with 4,000 silent streams open";
  // The connections themselves (TLS state and buffers) cost memory; the
  // threads the streams would hold do not. Under AddressSanitizer, freed
  // memory waits in its quarantine (256 MiB) before it is reused.
#if defined(__SANITIZE_ADDRESS__)
  constexpr double kBudgetMiB = 128 + 256;
#else
  constexpr double kBudgetMiB = 128;
#endif
  EXPECT_LT(rss, rss_before + kBudgetMiB) << "before: " << rss_before << " MiB";
}

// Item 9: a device trickles its upload a few bytes at a time, holding a
// server thread as long as it likes. The stream is cut at max_stream_seconds
// (2 s here; the upload would take a minute), what arrived is kept, and the
// device resumes from there.
TEST_F(AdversarialFleet, AStreamTricklingForeverIsCutAtItsDeadlineAndCanResume) {
  testing::Settings settings;
  settings.top_lines = "max_stream_seconds: 2\n";
  WriteConfig(settings);
  StartAggregator();
  auto devices = Devices({{"dev-a", 100}, {"dev-b", 100}, {"dev-c", 100}});
  v1::Task task;
  ASSERT_TRUE(devices[0]->WaitForTask(kModelId, &task));
  FederationTestClient::Upload slow = UploadOf(Delta(1.0f), task.round_id(), task.adapter_version(), "slow", 100);
  slow.chunk_bytes = std::max<size_t>(1, slow.bytes.size() / 300);
  slow.pause = std::chrono::milliseconds(200);
  SubmitUpdateResponse response;
  const grpc::Status cut = devices[0]->Submit(slow, &response);
  EXPECT_EQ(cut.error_code(), grpc::StatusCode::CANCELLED) << cut.error_message();
  ASSERT_TRUE(aggregator_->WaitForLog("cut the SubmitUpdate of dev-a stream", std::chrono::seconds(10)))
      << aggregator_->Log();
  EXPECT_NE(Metrics().find("edgellm_aggregator_streams_cut_total 1"), std::string::npos) << Metrics();
  v1::UploadStatusResponse status;
  ASSERT_TRUE(devices[0]->UploadStatus(kModelId, task.round_id(), "slow", &status).ok());
  EXPECT_GT(status.received_bytes(), 0u);
  EXPECT_LT(status.received_bytes(), slow.bytes.size());
  FederationTestClient::Upload rest = UploadOf(Delta(1.0f), task.round_id(), task.adapter_version(), "slow", 100);
  rest.offset = status.received_bytes();
  ASSERT_TRUE(devices[0]->Submit(rest, &response).ok());
  EXPECT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED) << response.detail();
}

// Item 11: what a device says reaches the log escaped: it cannot forge a line.
TEST_F(AdversarialFleet, ADeviceCannotForgeALogLine) {
  WriteConfig({});
  StartAggregator();
  auto devices = Devices({{"dev-a", 100}});
  v1::HeartbeatRequest request;
  request.set_device_id("dev-a");
  request.set_model_id(kModelId);
  request.set_state(v1::DEVICE_STATE_FAILED);
  request.set_detail("disk full\nmodel stories: round 7 closed (forged): version 9\x1b[2J");
  grpc::ClientContext context;
  v1::HeartbeatResponse response;
  ASSERT_TRUE(devices[0]->stub().Heartbeat(&context, request, &response).ok());
  ASSERT_TRUE(aggregator_->WaitForLog("reports a failure: disk full", std::chrono::seconds(10))) << aggregator_->Log();
  const std::string log = aggregator_->Log();
  EXPECT_EQ(log.find("\nmodel stories: round 7 closed"), std::string::npos) << log;
  EXPECT_EQ(log.find('\x1b'), std::string::npos) << log;
  EXPECT_NE(log.find("disk full\\nmodel stories: round 7 closed (forged): version 9\\x1b[2J"), std::string::npos)
      << log;
}

}  // namespace
}  // namespace edgellm::federated
