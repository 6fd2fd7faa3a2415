// edgellm-aggregator against light devices that speak the protocol by hand:
// the real program, real SQLite, real mutual TLS on loopback. Known deltas go
// in, so what comes out can be checked number by number: the weighted mean,
// the refusals (each with its reason, none losing an accepted update), a
// resumed upload, a kill -9 in the middle of a round, a round that closes at
// its deadline and one that fails there, a round whose version would hold
// infinities.
#include <gtest/gtest.h>

#include "federated/aggregator/audit_log.h"
#include "federated/aggregator/state_store.h"
#include "tests/support/aggregator_fixture.h"

namespace edgellm::federated {
namespace {

namespace fs = std::filesystem;
using edgellm::testing::AggregatorProcess;
using edgellm::testing::FederationTestClient;
using testing::kModelId;
using testing::kRank;
using testing::kTargets;
using testing::Settings;
using v1::SubmitUpdateResponse;

class Federation : public testing::AggregatorFixture {};

TEST_F(Federation, RefusesEachBadUpdateWithItsReasonAndLosesNothing) {
  WriteConfig({});
  StartAggregator();
  auto [a, b, c] = ThreeDevices();
  v1::Task task;
  ASSERT_TRUE(a->WaitForTask(kModelId, &task));
  const uint64_t round = task.round_id();
  const uint64_t base = task.adapter_version();
  EXPECT_EQ(task.config().rank(), kRank);
  EXPECT_TRUE(task.config().freeze_a());
  SubmitUpdateResponse response;

  // NaN.
  TensorSet nan = Delta(1.0f);
  nan[3].values[5] = std::nanf("");
  grpc::Status s = a->Submit(UploadOf(nan, round, base, "nan", 1), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("NaN"), std::string::npos) << s.error_message();
  // Oversized: declared beyond the bound, and a stream that runs past what it declared.
  FederationTestClient::Upload big = UploadOf(Delta(1.0f), round, base, "big", 1);
  big.declared_total = (1 << 20) + 1;
  s = a->Submit(big, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("bound"), std::string::npos) << s.error_message();
  FederationTestClient::Upload runs_past = UploadOf(Delta(1.0f), round, base, "past", 1);
  runs_past.declared_total = 100;
  s = a->Submit(runs_past, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("runs past"), std::string::npos) << s.error_message();
  // Wrong shape: one tensor a row short.
  TensorSet wrong = Delta(1.0f);
  wrong[0].rows -= 1;
  wrong[0].values.resize(wrong[0].values.size() - kRank);
  s = a->Submit(UploadOf(wrong, round, base, "shape", 1), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("expected"), std::string::npos) << s.error_message();
  // Impersonation: dev-a's certificate, dev-b's id.
  FederationTestClient::Upload impostor = UploadOf(Delta(9.0f), round, base, "impostor", 1);
  impostor.claimed_device = "dev-b";
  s = a->Submit(impostor, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("not the certificate's"), std::string::npos) << s.error_message();

  // dev-a's real update, in two streams: the first ends half way.
  const TensorSet da = Delta(1.0f), db = Delta(2.0f), dc = Delta(3.0f);
  FederationTestClient::Upload ua = UploadOf(da, round, base, "a-1", 1);
  FederationTestClient::Upload first_half = ua;
  first_half.stop_after = ua.bytes.size() / 2;
  ASSERT_TRUE(a->Submit(first_half, &response).ok());
  EXPECT_EQ(response.outcome(), SubmitUpdateResponse::INCOMPLETE);
  v1::UploadStatusResponse status;
  ASSERT_TRUE(a->UploadStatus(kModelId, round, "a-1", &status).ok());
  EXPECT_EQ(status.received_bytes(), ua.bytes.size() / 2);
  EXPECT_FALSE(status.accepted());
  FederationTestClient::Upload rest = ua;
  rest.offset = status.received_bytes();
  s = a->Submit(rest, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED) << response.detail();
  // A retry of the same update counts once; a second, different one is refused.
  ASSERT_TRUE(a->Submit(ua, &response).ok());
  EXPECT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED_EARLIER);
  s = a->Submit(UploadOf(Delta(5.0f), round, base, "a-2", 1), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  // dev-b replays dev-a's bytes.
  FederationTestClient::Upload replay = ua;
  replay.key = "b-replay";
  s = b->Submit(replay, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(s.error_message().find("replays"), std::string::npos) << s.error_message();

  ASSERT_TRUE(b->Submit(UploadOf(db, round, base, "b-1", 2), &response).ok());
  EXPECT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED);
  const std::string metrics = Metrics();
  for (const char* reason : {"not_finite", "size", "shape", "identity", "duplicate", "replay"}) {
    EXPECT_NE(metrics.find(std::string("reason=\"") + reason + "\""), std::string::npos) << reason << "\n" << metrics;
  }
  ASSERT_TRUE(c->Submit(UploadOf(dc, round, base, "c-1", 3), &response).ok());
  EXPECT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED);

  // The round closes with the three good updates: version 2 is their weighted mean.
  ASSERT_TRUE(aggregator_->WaitForLog("version 2 from 3 updates", std::chrono::seconds(30))) << aggregator_->Log();
  ExpectWeightedMean(FetchB(*a, base + 1), {{da, 1.0}, {db, 2.0}, {dc, 3.0}});

  // Round 2: a round-1 update is late, and a round-1 payload under a new hash is caught by its content.
  v1::Task next;
  ASSERT_TRUE(a->WaitForTask(kModelId, &next));
  EXPECT_EQ(next.round_id(), round + 1);
  ASSERT_TRUE(a->Submit(UploadOf(Delta(4.0f), round, base, "late", 1), &response).ok());
  EXPECT_EQ(response.outcome(), SubmitUpdateResponse::ROUND_OVER);
  // A retry of an update that counted, after its round closed (its first answer lost), still hears so.
  ASSERT_TRUE(a->Submit(ua, &response).ok());
  EXPECT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED_EARLIER) << response.detail();
  FederationTestClient::Upload old = UploadOf(Delta(1.5f), round, base, "old", 1);
  old.round_id = next.round_id();
  s = a->Submit(old, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("made for"), std::string::npos) << s.error_message();

  // The audit log names the three accepted updates and their senders, in an unbroken chain.
  aggregator_->Terminate();
  const std::string audit = edgellm::testing::ReadAll(dir_ / "state" / "audit.log");
  for (const auto& [device, u] : {std::pair{"dev-a", ua}, {"dev-b", UploadOf(db, round, base, "b-1", 2)},
                                   {"dev-c", UploadOf(dc, round, base, "c-1", 3)}}) {
    EXPECT_NE(audit.find(u.sha256), std::string::npos) << device;
    EXPECT_NE(audit.find(device), std::string::npos);
  }
  EXPECT_TRUE(AuditLog::Verify((dir_ / "state" / "audit.log").string()).ok());
}

TEST_F(Federation, RefusesStrangersAndIncompatibleDevices) {
  WriteConfig({});
  StartAggregator();
  ASSERT_TRUE(edgellm::testing::MakePki(dir_ / "other", {"dev-a"}));
  const std::string target = "127.0.0.1:" + std::to_string(port_);
  // No certificate, a certificate from another CA, plaintext: none gets through.
  FederationTestClient anonymous(target, edgellm::testing::DeviceCredentials(dir_ / "pki" / "ca.pem", {}, {}), "dev-a",
                                 false);
  EXPECT_FALSE(anonymous.Register(kModelId, base_sha_, kRank, kTargets).ok());
  FederationTestClient foreign(target,
                               edgellm::testing::DeviceCredentials(dir_ / "pki" / "ca.pem", dir_ / "other" / "dev-a.pem",
                                                                   dir_ / "other" / "dev-a.key"),
                               "dev-a", false);
  EXPECT_FALSE(foreign.Register(kModelId, base_sha_, kRank, kTargets).ok());
  FederationTestClient plaintext(target, grpc::InsecureChannelCredentials(), "dev-a", false);
  EXPECT_FALSE(plaintext.Register(kModelId, base_sha_, kRank, kTargets).ok());
  // A device of this CA that does not match the round's model or adapter.
  auto a = Device("dev-a");
  grpc::Status s = a->Register(kModelId, std::string(64, 'f'), kRank, kTargets);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("base model sha256"), std::string::npos) << s.error_message();
  s = a->Register(kModelId, base_sha_, 16, {"q_proj"});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("adapter rank 16 on q_proj"), std::string::npos) << s.error_message();
  s = a->Register("no-such-model", base_sha_, kRank, kTargets);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  // Another device's id on dev-a's certificate.
  s = Device("dev-a")->Register(kModelId, base_sha_, kRank, kTargets);
  EXPECT_TRUE(s.ok()) << s.error_message();
  FederationTestClient impostor(target,
                                edgellm::testing::DeviceCredentials(dir_ / "pki" / "ca.pem", dir_ / "pki" / "dev-a.pem",
                                                                    dir_ / "pki" / "dev-a.key"),
                                "dev-b");
  s = impostor.Register(kModelId, base_sha_, kRank, kTargets);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(Federation, AKill9MidRoundLosesNoAcceptedUpdate) {
  WriteConfig({});
  StartAggregator();
  auto [a, b, c] = ThreeDevices();
  v1::Task task;
  ASSERT_TRUE(a->WaitForTask(kModelId, &task));
  const uint64_t round = task.round_id();
  const uint64_t base = task.adapter_version();
  const TensorSet da = Delta(1.0f), db = Delta(2.0f), dc = Delta(3.0f);
  SubmitUpdateResponse response;
  ASSERT_TRUE(a->Submit(UploadOf(da, round, base, "a", 5), &response).ok());
  ASSERT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED);
  // dev-b gets half its bytes in before the aggregator dies.
  FederationTestClient::Upload ub = UploadOf(db, round, base, "b", 1);
  FederationTestClient::Upload half = ub;
  half.stop_after = ub.bytes.size() / 2;
  ASSERT_TRUE(b->Submit(half, &response).ok());
  ASSERT_EQ(response.outcome(), SubmitUpdateResponse::INCOMPLETE);

  aggregator_->Kill9();
  StartAggregator();
  // A channel that was connected fails its first call after the restart
  // ("socket closed"), as a device would see it; devices retry such calls.
  for (FederationTestClient* d : {a.get(), b.get()}) {
    v1::HeartbeatResponse ignored;
    for (int attempt = 0; attempt < 5 && !d->Heartbeat(kModelId, round, &ignored).ok(); ++attempt) {
    }
  }
  EXPECT_NE(aggregator_->Log().find("round 1 continues with its 1 accepted updates"), std::string::npos)
      << aggregator_->Log();
  v1::UploadStatusResponse status;
  grpc::Status s = a->UploadStatus(kModelId, round, "a", &status);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(status.accepted());
  ASSERT_TRUE(b->UploadStatus(kModelId, round, "b", &status).ok());
  EXPECT_EQ(status.received_bytes(), ub.bytes.size() / 2);
  FederationTestClient::Upload rest = ub;
  rest.offset = status.received_bytes();
  ASSERT_TRUE(b->Submit(rest, &response).ok());
  EXPECT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED) << response.detail();
  ASSERT_TRUE(c->Submit(UploadOf(dc, round, base, "c", 2), &response).ok());
  EXPECT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED);
  ASSERT_TRUE(aggregator_->WaitForLog("version 2 from 3 updates", std::chrono::seconds(30))) << aggregator_->Log();
  ExpectWeightedMean(FetchB(*a, base + 1), {{da, 5.0}, {db, 1.0}, {dc, 2.0}});
}

TEST_F(Federation, ARoundClosesAtItsDeadlineWithQuorumAndFailsWithout) {
  Settings settings;
  settings.quorum = 2;
  settings.round_timeout_seconds = 4;
  WriteConfig(settings);
  StartAggregator();
  auto [a, b, c] = ThreeDevices();
  v1::Task task;
  ASSERT_TRUE(a->WaitForTask(kModelId, &task));
  const uint64_t round = task.round_id();
  SubmitUpdateResponse response;
  ASSERT_TRUE(a->Submit(UploadOf(Delta(1.0f), round, task.adapter_version(), "a", 1), &response).ok());
  ASSERT_TRUE(b->Submit(UploadOf(Delta(2.0f), round, task.adapter_version(), "b", 1), &response).ok());
  ASSERT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED);
  // dev-c stays alive but never sends: the round waits for it until the deadline.
  v1::HeartbeatResponse heartbeat;
  ASSERT_TRUE(c->Heartbeat(kModelId, round, &heartbeat).ok());
  EXPECT_FALSE(heartbeat.round_over());
  ASSERT_TRUE(aggregator_->WaitForLog("closed (deadline, with quorum (2 of 3))", std::chrono::seconds(30)))
      << aggregator_->Log();
  ASSERT_TRUE(c->Heartbeat(kModelId, round, &heartbeat).ok());
  EXPECT_TRUE(heartbeat.round_over());
  ASSERT_TRUE(c->Submit(UploadOf(Delta(3.0f), round, task.adapter_version(), "c", 1), &response).ok());
  EXPECT_EQ(response.outcome(), SubmitUpdateResponse::ROUND_OVER);
  EXPECT_NE(response.detail().find("is over"), std::string::npos);

  // Round 2 gets one update only: it fails at its deadline, and round 3 trains the same version.
  v1::Task second;
  ASSERT_TRUE(a->WaitForTask(kModelId, &second));
  ASSERT_TRUE(a->Submit(UploadOf(Delta(1.0f), second.round_id(), second.adapter_version(), "a2", 1), &response).ok());
  ASSERT_TRUE(aggregator_->WaitForLog("round 2 failed: deadline without quorum: 1 of 2", std::chrono::seconds(30)))
      << aggregator_->Log();
  v1::Task third;
  ASSERT_TRUE(b->WaitForTask(kModelId, &third));
  EXPECT_EQ(third.round_id(), 3u);
  EXPECT_EQ(third.adapter_version(), second.adapter_version());
  EXPECT_NE(Metrics().find("edgellm_aggregator_rounds_total{model=\"stories\",outcome=\"failed\"} 1"),
            std::string::npos)
      << Metrics();
}

TEST_F(Federation, AVersionThatWouldHoldInfinitiesIsNeverRegistered) {
  // Finite updates, but a server learning rate no sane operator sets: the
  // step overflows. The round fails; no version 2 exists to be released, and
  // the next round trains version 1 again.
  Settings settings;
  settings.model_lines = "    server_learning_rate: 1e300\n";
  WriteConfig(settings);
  StartAggregator();
  auto [a, b, c] = ThreeDevices();
  v1::Task task;
  ASSERT_TRUE(a->WaitForTask(kModelId, &task));
  SubmitUpdateResponse response;
  ASSERT_TRUE(a->Submit(UploadOf(Delta(0.05f), task.round_id(), task.adapter_version(), "a", 1), &response).ok());
  ASSERT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED) << response.detail();
  ASSERT_TRUE(b->Submit(UploadOf(Delta(0.04f), task.round_id(), task.adapter_version(), "b", 1), &response).ok());
  ASSERT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED) << response.detail();
  ASSERT_TRUE(c->Submit(UploadOf(Delta(0.03f), task.round_id(), task.adapter_version(), "c", 1), &response).ok());
  ASSERT_EQ(response.outcome(), SubmitUpdateResponse::ACCEPTED) << response.detail();
  ASSERT_TRUE(aggregator_->WaitForLog("holds NaN or infinity; not registered", std::chrono::seconds(60)))
      << aggregator_->Log();
  EXPECT_NE(aggregator_->Log().find("round 1 failed: the new version's tensor"), std::string::npos)
      << aggregator_->Log();
  v1::Task next;
  ASSERT_TRUE(a->WaitForTask(kModelId, &next)) << aggregator_->Log();
  EXPECT_EQ(next.round_id(), 2u);
  EXPECT_EQ(next.adapter_version(), task.adapter_version());
  EXPECT_FALSE(fs::exists(dir_ / "state" / "models" / kModelId / "v2"));
}

}  // namespace
}  // namespace edgellm::federated
