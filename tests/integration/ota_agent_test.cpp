// The OTA agent in a real edgellmd, facing a release server that does what
// an attacker, a broken network or a bad build would: tampered artifacts,
// foreign signatures, old or expired releases, downloads cut short, kill -9
// in the middle, a version that cannot generate. The server speaks the real
// edgellm.v1.Releases over real mutual TLS; it is hostile on purpose, which
// the real aggregator never is (its side is tested in ota_rollout_test.cpp).
// Every case ends with the daemon serving a verified version and the server
// knowing which.
#include "tests/integration/ota_agent_fixture.h"

namespace edgellm::ota {
namespace {

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

// An aggregator holding this device to its report budget refuses reports
// with RESOURCE_EXHAUSTED for a while: the device keeps the report and
// delivers it at its next poll, instead of dropping it.
TEST_F(OtaAgentTest, AReportRefusedForComingTooFastIsDeliveredLater) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  server_.OfferOnce();
  server_.FailReports(3, grpc::StatusCode::RESOURCE_EXHAUSTED);
  const Artifact adapter = MakeAdapter(0.05f, 1);
  server_.Offer(Sign(Manifest(1, 1, adapter), key_), adapter.weights, 1);
  // Dropped, the outcome would reach the aggregator only with the first live
  // figures that get through (every 10 s while on probation): 30 s here.
  const v1::InstallReport report = server_.AwaitReport(1, v1::InstallReport::OUTCOME_UNSPECIFIED, absl::Seconds(15));
  EXPECT_EQ(report.outcome(), v1::InstallReport::INSTALLED) << report.detail();
  EXPECT_EQ(report.serving_version(), 1u);
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
