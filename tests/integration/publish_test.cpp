// `edgellm publish` against a hostile aggregator: a ReleaseAdmin server that
// prepares manifests an operator did not ask for. The operator's keys must
// sign none of them; an honest manifest still goes through.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <limits>

#include "edgellm/v1/ota.grpc.pb.h"
#include "federated/protocol/sha256.h"
#include "federated/release/manifest.h"
#include "federated/release/signing_key.h"
#include "tests/support/cli_run.h"
#include "tests/support/federation.h"
#include "tests/support/test_support.h"

namespace edgellm {
namespace {

namespace fs = std::filesystem;
using testing::RunCli;

// Serves whatever manifest and artifact the test sets; counts Publish calls.
class HostileReleaseAdmin final : public v1::ReleaseAdmin::Service {
 public:
  std::function<release::ReleaseManifest()> manifest;
  std::string artifact;
  std::atomic<int> published{0};

  grpc::Status PrepareRelease(grpc::ServerContext*, const v1::PrepareReleaseRequest*,
                              v1::PrepareReleaseResponse* response) override {
    response->set_manifest_json(manifest().ToJson());
    return grpc::Status::OK;
  }
  grpc::Status GetRollout(grpc::ServerContext*, const v1::GetRolloutRequest* request,
                          v1::RolloutStatus* response) override {
    response->set_model_id(request->model_id());
    response->set_release(4);  // release 4 is out: the next one is 5
    response->set_stage("done");
    return grpc::Status::OK;
  }
  grpc::Status FetchPreparedArtifact(grpc::ServerContext*, const v1::FetchPreparedArtifactRequest*,
                                     grpc::ServerWriter<v1::ArtifactChunk>* writer) override {
    v1::ArtifactChunk chunk;
    chunk.set_data(artifact);
    writer->Write(chunk);
    return grpc::Status::OK;
  }
  grpc::Status Publish(grpc::ServerContext*, const v1::PublishRequest*, v1::RolloutStatus* response) override {
    ++published;
    response->set_stage("canary");
    return grpc::Status::OK;
  }
};

class PublishTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TestDir();
    ASSERT_TRUE(testing::MakePki(dir_ / "pki", {"operator"}));
    const auto keygen = RunCli("keygen --out " + (dir_ / "release").string());
    ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
    grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = testing::ReadAll(dir_ / "pki" / "ca.pem");
    ssl.pem_key_cert_pairs.push_back(
        {testing::ReadAll(dir_ / "pki" / "aggregator.key"), testing::ReadAll(dir_ / "pki" / "aggregator.pem")});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(ssl), &port_);
    builder.RegisterService(&admin_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    admin_.artifact = "adapter weights";
    admin_.manifest = [this] { return Honest(); };
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  // What an honest aggregator would prepare for release 5.
  release::ReleaseManifest Honest() const {
    release::ReleaseManifest m;
    m.model_id = "stories";
    m.release = 5;
    m.version = 7;
    m.parent_version = 6;
    m.artifact_sha256 = federated::Sha256Hex(admin_.artifact);
    m.artifact_bytes = admin_.artifact.size();
    m.base_model_sha256 = std::string(64, 'a');
    m.adapter_config = R"({"peft_type":"LORA","r":4,"lora_alpha":8,"target_modules":["q_proj","v_proj"]})";
    m.created_at = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
    m.expires_at = m.created_at + 30 * 86400;
    return m;
  }

  testing::CliRun Publish() {
    return RunCli("publish --aggregator 127.0.0.1:" + std::to_string(port_) + " --ca " +
                  (dir_ / "pki" / "ca.pem").string() + " --cert " + (dir_ / "pki" / "operator.pem").string() +
                  " --key " + (dir_ / "pki" / "operator.key").string() + " -m stories --signing-key " +
                  (dir_ / "release.key").string());
  }

  // Publishing with `change` applied to the honest manifest is refused, naming `words`, and nothing is published.
  void ExpectRefused(const std::function<void(release::ReleaseManifest&)>& change, const std::string& words) {
    admin_.manifest = [this, change] {
      release::ReleaseManifest m = Honest();
      change(m);
      return m;
    };
    const testing::CliRun run = Publish();
    EXPECT_NE(run.exit_code, 0) << words << "\n" << run.err;
    EXPECT_NE(run.err.find(words), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("not signing"), std::string::npos) << run.err;
    EXPECT_EQ(admin_.published.load(), 0) << words;
  }

  fs::path dir_;
  int port_ = 0;
  HostileReleaseAdmin admin_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(PublishTest, AHostileAggregatorGetsNothingSigned) {
  ExpectRefused([](auto& m) { m.release = std::numeric_limits<uint64_t>::max(); }, "the model's next release is 5");
  ExpectRefused([](auto& m) { m.release = 4; }, "the model's next release is 5");
  ExpectRefused([](auto& m) { m.artifact_sha256 = federated::Sha256Hex("other weights"); }, "the artifact is");
  ExpectRefused([](auto& m) { m.artifact_bytes = 4; }, "runs past");
  ExpectRefused([](auto& m) { m.expires_at = m.created_at + 3650 * 86400; }, "days after its creation");
  ExpectRefused([](auto& m) { m.created_at -= 86400; }, "was created at");
  // A well-formed base-model release of the same bytes, where an adapter was asked for.
  ExpectRefused(
      [](auto& m) {
        m.kind = release::ArtifactKind::kBase;
        m.base_model_sha256 = m.artifact_sha256;
        m.adapter_config.clear();
      },
      "is of kind base");
  ExpectRefused([](auto& m) { m.adapter_config = "{}"; }, "adapter_config");
  ExpectRefused([](auto& m) { m.model_id = "other"; }, "not what was asked for");
  // The honest one is signed and published, its checks shown.
  admin_.manifest = [this] { return Honest(); };
  const testing::CliRun run = Publish();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(admin_.published.load(), 1);
  EXPECT_NE(run.err.find("fetched and checked"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("LoRA rank 4"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace edgellm
