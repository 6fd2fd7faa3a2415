// Base-model releases in a real edgellmd: a whole GGUF released over the air
// is downloaded (or rebuilt from a delta against the model the device holds,
// falling back to the whole file when the delta is bad), loaded beside the
// model serving, tested, swapped in, kept across a clean restart, given up
// after a crash on probation or a tampered file, swapped by draining when it
// cannot fit beside the model serving (the model before served again when
// the new one fails), and adapters released for the base model before it are
// refused on it.
#include "federated/release/base_delta.h"
#include "tests/integration/ota_agent_fixture.h"
#include "tests/support/cli_run.h"

namespace edgellm::ota {
namespace {

class OtaBaseRelease : public OtaAgentTest {
 protected:
  void SetUp() override {
    OtaAgentTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    // The new base model: the same model re-quantized, as a fleet moves to a cheaper file.
    new_base_ = dir_ / "stories260K-q8.gguf";
    const auto quantized = edgellm::testing::RunCli("quantize -m " + kModel + " --type Q8_0 -o " + new_base_.string());
    ASSERT_EQ(quantized.exit_code, 0) << quantized.err;
  }

  release::ReleaseManifest BaseManifest(uint64_t release, uint64_t version, const std::string& bytes) {
    release::ReleaseManifest m;
    m.model_id = "stories260K";
    m.release = release;
    m.version = version;
    m.kind = release::ArtifactKind::kBase;
    m.artifact_sha256 = federated::Sha256Hex(bytes);
    m.artifact_bytes = bytes.size();
    m.base_model_sha256 = m.artifact_sha256;
    m.created_at = NowUnix() - 60;
    m.expires_at = NowUnix() + 3600;
    return m;
  }
  // Offers `m` (its file `bytes`) with `delta` as a delta against the configured model.
  v1::BaseDeltaOffer OfferWithDelta(const release::ReleaseManifest& m, const std::string& bytes,
                                    const std::string& delta) {
    v1::BaseDeltaOffer offer;
    offer.set_from_sha256(*federated::Sha256OfFile(kModel));
    offer.set_sha256(federated::Sha256Hex(delta));
    offer.set_bytes(delta.size());
    // In one step: a poll between the two would see the release without its delta.
    server_.Offer(Sign(m, key_), bytes, m.release, offer, delta);
    return offer;
  }
  v1::ModelInfo Served() {
    auto stub = v1::Inference::NewStub(daemon_->channel());
    grpc::ClientContext context;
    v1::ListModelsResponse response;
    EXPECT_TRUE(stub->ListModels(&context, {}, &response).ok());
    return response.models_size() == 1 ? response.models(0) : v1::ModelInfo();
  }
  // Waits (30 s at most) for `text` in the daemon's log; whether it came.
  bool AwaitLog(const std::string& text) {
    for (int i = 0; i < 300; ++i) {
      if (ReadAll(log_path()).find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  fs::path new_base_;
};

TEST_F(OtaBaseRelease, IsTestedBesideTheModelServingThenServedItsAdaptersOnlyAndKeptAcrossARestart) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  EXPECT_EQ(Served().quantization(), "F32");
  const std::string bytes = ReadAll(new_base_);
  const v1::InstallReport report = OfferAndAwait(BaseManifest(1, 5, bytes), bytes);
  ASSERT_EQ(report.outcome(), v1::InstallReport::INSTALLED) << report.detail();
  EXPECT_EQ(report.serving_version(), 5u);
  EXPECT_EQ(Served().quantization(), "Q8_0");
  EXPECT_EQ(Served().version(), "v5");
  EXPECT_EQ(Metric("edgellm_ota_base_installs"), 1.0);
  EXPECT_EQ(Metric("edgellm_model_version"), 5.0);
  EXPECT_FALSE(Complete("Once upon a time").empty());
  const std::string log = ReadAll(log_path());
  EXPECT_NE(log.find("loading the base model beside the one serving"), std::string::npos) << log;
  EXPECT_NE(log.find("now serving version 5 (release 1, a new base model)"), std::string::npos) << log;
  // Nothing holds the model it replaced: its memory goes.
  EXPECT_TRUE(AwaitLog("replaced base model stories260K.gguf finished its last request; its memory is returned"));
  EXPECT_EQ(Metric("edgellm_models_loaded"), 1.0);
  EXPECT_EQ(ReadAll(ota_dir() / "versions" / "r1-v5" / "model.gguf"), bytes);

  // An adapter released for the base model before is refused on this one.
  const Artifact for_old_base = MakeAdapter(0.05f, 1);
  v1::InstallReport refused = OfferAndAwait(Manifest(2, 6, for_old_base), for_old_base.weights);
  EXPECT_EQ(refused.outcome(), v1::InstallReport::REFUSED);
  EXPECT_NE(refused.detail().find("is for the base model with sha256"), std::string::npos) << refused.detail();
  EXPECT_EQ(Served().version(), "v5");
  // One released for it is installed on it.
  release::ReleaseManifest for_new_base = Manifest(3, 6, for_old_base);
  for_new_base.base_model_sha256 = federated::Sha256Hex(bytes);
  const std::string bare = Complete("Once upon a time");
  ASSERT_EQ(OfferAndAwait(for_new_base, for_old_base.weights).outcome(), v1::InstallReport::INSTALLED);
  EXPECT_EQ(Served().version(), "v6");
  EXPECT_EQ(Served().quantization(), "Q8_0");
  EXPECT_NE(Complete("Once upon a time"), bare);

  // A clean restart serves the same: the new base model and its adapter, loaded once.
  daemon_.reset();
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  EXPECT_EQ(Served().version(), "v6");
  EXPECT_EQ(Served().quantization(), "Q8_0");
  const std::string restarted = ReadAll(log_path());
  EXPECT_EQ(Count(restarted, "model.gguf: llama"), 2) << "loaded once at each start, never beside itself";
  EXPECT_EQ(Count(restarted, "stories260K.gguf: llama"), 1) << "only the first start loaded the configured file";
  EXPECT_TRUE(fs::exists(ota_dir() / "versions" / "r1-v5" / "model.gguf")) << "the adapter's base model stays";
}

TEST_F(OtaBaseRelease, AKill9WhileTheNewBaseModelIsOnProbationRestoresTheModelBefore) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const std::string bytes = ReadAll(new_base_);
  ASSERT_EQ(OfferAndAwait(BaseManifest(1, 5, bytes), bytes).outcome(), v1::InstallReport::INSTALLED);
  EXPECT_EQ(Served().quantization(), "Q8_0");
  daemon_->Kill9();
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const v1::InstallReport rolled_back = server_.AwaitReport(1, v1::InstallReport::ROLLED_BACK);
  EXPECT_EQ(rolled_back.outcome(), v1::InstallReport::ROLLED_BACK);
  EXPECT_EQ(Served().quantization(), "F32");
  EXPECT_EQ(Served().version(), "base");
  EXPECT_EQ(Count(ReadAll(log_path()), "model.gguf: llama"), 1) << "the restart never loaded the new model";
}

TEST_F(OtaBaseRelease, ABaseModelThatNoLongerMatchesItsSha256IsNotServedAfterARestart) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(/*probation_seconds=*/0));
  const std::string bytes = ReadAll(new_base_);
  ASSERT_EQ(OfferAndAwait(BaseManifest(1, 5, bytes), bytes).outcome(), v1::InstallReport::INSTALLED);
  daemon_.reset();
  const fs::path installed = ota_dir() / "versions" / "r1-v5" / "model.gguf";
  {
    std::fstream file(installed, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(bytes.size() - 100));
    file.put('\x5a');
  }
  ASSERT_NO_FATAL_FAILURE(StartDaemon(0));
  EXPECT_EQ(Served().quantization(), "F32");
  EXPECT_EQ(Served().version(), "base");
  EXPECT_NE(ReadAll(log_path()).find("installed release 1 fails its check"), std::string::npos);
}

TEST_F(OtaBaseRelease, ASignedFileThatDoesNotLoadFailsItsSmokeTestAndTheModelServingServesOn) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  std::string bytes = ReadAll(new_base_);
  bytes.resize(bytes.size() / 2);  // a truncated build, signed all the same
  const v1::InstallReport report = OfferAndAwait(BaseManifest(1, 5, bytes), bytes);
  EXPECT_EQ(report.outcome(), v1::InstallReport::SMOKE_FAILED);
  EXPECT_FALSE(report.detail().empty());
  EXPECT_EQ(Served().quantization(), "F32");
  EXPECT_EQ(Served().version(), "base");
  EXPECT_FALSE(Complete("Once upon a time").empty());
  EXPECT_FALSE(fs::exists(ota_dir() / "versions" / "r1-v5")) << "a failed base model does not keep its slot";
}

TEST_F(OtaBaseRelease, ABaseModelThatCannotFitBesideTheModelServingIsSwappedByDrainingAndSaysSo) {
  // As if the box had almost no memory to spare: more must stay free than it has.
  ASSERT_NO_FATAL_FAILURE(StartDaemon(300, "memory_low_mib: 100000000\n"));
  const std::string bytes = ReadAll(new_base_);
  // Judged against the model it replaces: that model's figures are taken before it is drained.
  release::ReleaseManifest m = BaseManifest(1, 5, bytes);
  m.evaluation = release::EvaluationSpec{};
  m.evaluation->examples_jsonl = R"({"prompt": "Once upon a time", "completion": " there was a little girl."})" "\n";
  m.evaluation->max_loss_ratio = 1.5;
  const v1::InstallReport report = OfferAndAwait(m, bytes);
  ASSERT_EQ(report.outcome(), v1::InstallReport::INSTALLED) << report.detail();
  ASSERT_TRUE(report.has_evaluation());
  EXPECT_GT(report.evaluation().loss(), 0.0);
  EXPECT_GT(report.evaluation().baseline_loss(), 0.0) << "the drained model's figures";
  EXPECT_NEAR(report.evaluation().loss(), report.evaluation().baseline_loss(), 0.1) << "Q8_0 of the same weights";
  EXPECT_EQ(Served().quantization(), "Q8_0");
  EXPECT_EQ(Served().version(), "v5");
  EXPECT_FALSE(Complete("Once upon a time").empty());
  const std::string log = ReadAll(log_path());
  EXPECT_NE(log.find("MiB must stay free (memory_low_mib)"), std::string::npos) << log;
  EXPECT_NE(log.find("it will be tested once the model serving is drained"), std::string::npos) << log;
  EXPECT_NE(log.find("draining the model serving (requests in flight finish, new ones are refused until the swap)"),
            std::string::npos) << log;
  // Never two models at once: the old one's memory went before the new one was loaded.
  const size_t freed = log.find("replaced base model stories260K.gguf finished its last request");
  const size_t loaded = log.find("model.gguf: llama");
  EXPECT_NE(freed, std::string::npos) << log;
  EXPECT_LT(freed, loaded) << log;
}

TEST_F(OtaBaseRelease, ASwapByDrainingWhoseModelDoesNotLoadServesTheModelBeforeAgain) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(300, "memory_low_mib: 100000000\n"));
  std::string bytes = ReadAll(new_base_);
  bytes.resize(bytes.size() / 2);
  const v1::InstallReport report = OfferAndAwait(BaseManifest(1, 5, bytes), bytes);
  EXPECT_EQ(report.outcome(), v1::InstallReport::SMOKE_FAILED) << report.detail();
  EXPECT_EQ(Served().quantization(), "F32");
  EXPECT_EQ(Served().version(), "base");
  EXPECT_FALSE(Complete("Once upon a time").empty());
  EXPECT_NE(ReadAll(log_path()).find("serving the drained model"), std::string::npos) << ReadAll(log_path());
}

// The delta of `new_base` against the configured model, every tensor matched by its offset (same layout).
std::string DeltaOf(const fs::path& dir, const std::string& old_file, const fs::path& new_base) {
  const fs::path out = dir / "base.delta";
  // The two files differ only in their tensors' types here: nothing matches, so match everything after the header.
  const uint64_t size = std::min(fs::file_size(old_file), fs::file_size(new_base));
  EXPECT_TRUE(release::WriteBaseDelta(old_file, new_base.string(), {{4096, 4096, size - 4096}}, out.string(), 3).ok());
  return ReadAll(out);
}

TEST_F(OtaBaseRelease, ADeviceHoldingTheBaseModelBeforeFetchesTheDeltaAndRebuildsTheFile) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  // The model one step of training away: the configured file with a few weights moved.
  std::string bytes = ReadAll(kModel);
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 64; ++i) bytes[i] = static_cast<char>(bytes[i] + 1);
  const fs::path new_base = dir_ / "stories260K-moved.gguf";
  std::ofstream(new_base, std::ios::binary) << bytes;
  const std::string delta = DeltaOf(dir_, kModel, new_base);
  ASSERT_LT(delta.size(), bytes.size() / 4);
  const release::ReleaseManifest m = BaseManifest(1, 5, bytes);
  const v1::BaseDeltaOffer offer = OfferWithDelta(m, bytes, delta);
  const v1::InstallReport report = server_.AwaitReport(1);
  ASSERT_EQ(report.outcome(), v1::InstallReport::INSTALLED) << report.detail();
  EXPECT_EQ(server_.fetched(), std::vector<std::string>{offer.sha256()}) << "the delta only, never the whole file";
  EXPECT_EQ(server_.bytes_sent(), delta.size());
  EXPECT_EQ(ReadAll(ota_dir() / "versions" / "r1-v5" / "model.gguf"), bytes);
  EXPECT_EQ(Metric("edgellm_ota_fetched_bytes"), static_cast<double>(delta.size()));
  EXPECT_TRUE(fs::is_empty(ota_dir() / "staging"));
  EXPECT_NE(ReadAll(log_path()).find("fetching it as a delta of"), std::string::npos);
}

TEST_F(OtaBaseRelease, ADeltaThatDoesNotRebuildTheSignedFileFallsBackToTheWholeFile) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const std::string bytes = ReadAll(new_base_);
  // A delta against another file than the device holds, offered as if against its own: it rebuilds something else.
  std::string other = ReadAll(kModel);
  other[8192] ^= 0x55;  // within the range the delta takes from the old file
  const fs::path other_file = dir_ / "other.gguf";
  std::ofstream(other_file, std::ios::binary) << other;
  const std::string delta = DeltaOf(dir_, other_file.string(), new_base_);
  const release::ReleaseManifest m = BaseManifest(1, 5, bytes);
  const v1::BaseDeltaOffer offer = OfferWithDelta(m, bytes, delta);
  const v1::InstallReport report = server_.AwaitReport(1);
  ASSERT_EQ(report.outcome(), v1::InstallReport::INSTALLED) << report.detail();
  EXPECT_EQ(server_.fetched(), (std::vector<std::string>{offer.sha256(), m.artifact_sha256}));
  EXPECT_EQ(ReadAll(ota_dir() / "versions" / "r1-v5" / "model.gguf"), bytes);
  EXPECT_EQ(Served().quantization(), "Q8_0");
  EXPECT_NE(ReadAll(log_path()).find("the delta did not rebuild it (the rebuilt file's sha256"), std::string::npos)
      << ReadAll(log_path());
}

}  // namespace
}  // namespace edgellm::ota
