// edgellmd over TCP with TLS: real certificates from deploy/pki.sh, a
// real gRPC client, clients that should and should not get through; and
// who a caller is, by certificate or by unix user.
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <sstream>

#include "edgellm/v1/inference.grpc.pb.h"
#include "tests/support/cli_run.h"
#include "tests/support/daemon_process.h"
#include "tests/support/inference_client.h"
#include "tests/support/test_support.h"

namespace edgellm {
namespace {

using testing::DaemonProcess;
using testing::Generate;
using testing::Greedy;
using testing::Stream;

const std::string kModel = testing::SharedPath("models/stories260K.gguf");

std::string Read(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Two unrelated PKIs: the daemon's, and another whose certificates it must refuse.
class DaemonTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGELLM_REQUIRE_SHARED_FILE(kModel);
    dir_ = testing::TestDir();
    const std::string script = std::string(EDGELLM_SOURCE_DIR) + "/deploy/pki.sh";
    ASSERT_EQ(std::system((script + " " + (dir_ / "pki").string() + " device-1 device-2 >/dev/null").c_str()), 0);
    ASSERT_EQ(std::system((script + " " + (dir_ / "other").string() + " device-1 >/dev/null").c_str()), 0);
    listen_ = "127.0.0.1:0";  // the daemon picks the port and logs it
  }
  std::string Pki(const std::string& file) const { return (dir_ / "pki" / file).string(); }
  std::string Other(const std::string& file) const { return (dir_ / "other" / file).string(); }

  // Credentials trusting `ca`, presenting `client` (NAME.pem/.key) if given.
  static std::shared_ptr<grpc::ChannelCredentials> Trusting(const std::string& ca, const std::string& client = "") {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = Read(ca);
    if (!client.empty()) {
      options.pem_cert_chain = Read(client + ".pem");
      options.pem_private_key = Read(client + ".key");
    }
    return grpc::SslCredentials(options);
  }
  // What a Generate over `credentials` ends with.
  grpc::StatusCode Attempt(const DaemonProcess& daemon, std::shared_ptr<grpc::ChannelCredentials> credentials) {
    auto stub = v1::Inference::NewStub(daemon.NewChannel(std::move(credentials)));
    return Generate(*stub, Greedy("Once upon a time", 4), std::chrono::seconds(10)).status.error_code();
  }

  std::filesystem::path dir_;
  std::string listen_;
};

TEST_F(DaemonTlsTest, ServesClientsThatTrustItsCaAndNoOthers) {
  std::string error;
  auto daemon = DaemonProcess::Start(kModel, {"--tls-cert", Pki("server.pem"), "--tls-key", Pki("server.key")},
                                     &error, {}, {listen_, Trusting(Pki("ca.pem"))});
  ASSERT_NE(daemon, nullptr) << error;
  auto stub = v1::Inference::NewStub(daemon->channel());
  const Stream stream = Generate(*stub, Greedy("Once upon a time", 8));
  ASSERT_TRUE(stream.status.ok()) << stream.status.error_message();
  EXPECT_EQ(stream.token_ids.size(), 8u);
  EXPECT_EQ(Attempt(*daemon, grpc::InsecureChannelCredentials()), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Attempt(*daemon, Trusting(Other("ca.pem"))), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(DaemonTlsTest, MutualTlsAdmitsOnlyClientCertificatesFromItsCa) {
  std::string error;
  auto daemon = DaemonProcess::Start(
      kModel,
      {"--tls-cert", Pki("server.pem"), "--tls-key", Pki("server.key"), "--tls-client-ca", Pki("ca.pem")}, &error,
      {}, {listen_, Trusting(Pki("ca.pem"), Pki("device-1"))});
  ASSERT_NE(daemon, nullptr) << error;
  EXPECT_EQ(Attempt(*daemon, Trusting(Pki("ca.pem"), Pki("device-1"))), grpc::StatusCode::OK);
  EXPECT_EQ(Attempt(*daemon, Trusting(Pki("ca.pem"))), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Attempt(*daemon, Trusting(Pki("ca.pem"), Other("device-1"))), grpc::StatusCode::UNAVAILABLE);
}

// grpc.reflection.v1alpha's list_services, sent as one message with the
// generic stub (no reflection stubs are installed): the status it ends with.
grpc::StatusCode ReflectionListServices(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub generic(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  const grpc::Slice slice(std::string("\x3a\x00", 2));  // field 7 (list_services) = ""
  const grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  generic.UnaryCall(&context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", {}, &request,
                    &response, [&done](grpc::Status s) { done.set_value(std::move(s)); });
  return done.get_future().get().error_code();
}

// Kubernetes' gRPC probes speak no TLS: health_listen answers them in
// plaintext with grpc.health.v1 and serves nothing else there.
TEST_F(DaemonTlsTest, APlaintextHealthListenerAnswersHealthChecksAndNothingElse) {
  std::string error;
  auto daemon = DaemonProcess::Start(kModel,
                                     {"--tls-cert", Pki("server.pem"), "--tls-key", Pki("server.key"),
                                      "--tls-client-ca", Pki("ca.pem"), "--health-listen", "127.0.0.1:0"},
                                     &error, {}, {listen_, Trusting(Pki("ca.pem"), Pki("device-1"))});
  ASSERT_NE(daemon, nullptr) << error;
  const std::string health = "127.0.0.1:" + std::to_string(daemon->LoggedPort("health on port "));
  auto channel = grpc::CreateChannel(health, grpc::InsecureChannelCredentials());
  auto health_stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(health_stub->Check(&context, {}, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  auto stub = v1::Inference::NewStub(channel);
  grpc::ClientContext list_context;
  v1::ListModelsResponse models;
  EXPECT_EQ(stub->ListModels(&list_context, {}, &models).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  // Nor reflection, whose streams would each hold one of its threads; the TLS port keeps it.
  EXPECT_EQ(ReflectionListServices(channel), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(ReflectionListServices(daemon->channel()), grpc::StatusCode::OK);
  // The inference service's own name answers as "" does; others are unknown.
  grpc::ClientContext named_context;
  grpc::health::v1::HealthCheckRequest named;
  named.set_service("edgellm.v1.Inference");
  ASSERT_TRUE(health_stub->Check(&named_context, named, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  grpc::ClientContext unknown_context;
  named.set_service("no.such.Service");
  EXPECT_EQ(health_stub->Check(&unknown_context, named, &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

// A session is its caller's: another certificate cannot read or continue it.
TEST_F(DaemonTlsTest, ASessionBelongsToTheCertificateThatBeganIt) {
  std::string error;
  auto daemon = DaemonProcess::Start(kModel,
                                     {"--tls-cert", Pki("server.pem"), "--tls-key", Pki("server.key"),
                                      "--tls-client-ca", Pki("ca.pem")},
                                     &error, {}, {listen_, Trusting(Pki("ca.pem"), Pki("device-1"))});
  ASSERT_NE(daemon, nullptr) << error;
  auto one = v1::Inference::NewStub(daemon->NewChannel(Trusting(Pki("ca.pem"), Pki("device-1"))));
  auto two = v1::Inference::NewStub(daemon->NewChannel(Trusting(Pki("ca.pem"), Pki("device-2"))));
  v1::GenerateRequest turn = Greedy("Once upon a time", 4);
  turn.set_session_id("shared-name");
  ASSERT_TRUE(Generate(*one, turn).status.ok());
  const auto stolen = Generate(*two, turn);
  EXPECT_EQ(stolen.status.error_code(), grpc::StatusCode::NOT_FOUND) << stolen.status.error_message();
  EXPECT_TRUE(Generate(*one, turn).status.ok());  // still device-1's, undisturbed
}

// On the unix socket the caller is the user at the other end (the kernel's
// SO_PEERCRED): another local user cannot continue a session, whatever its
// name. The other user is `nobody`, running the edgellm CLI.
TEST_F(DaemonTlsTest, ASessionOnTheUnixSocketBelongsToTheUserThatBeganIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another user";
  std::string error;
  auto daemon = DaemonProcess::Start(kModel, {}, &error);
  ASSERT_NE(daemon, nullptr) << error;
  ::chmod(daemon->socket().c_str(), 0666);  // for this test: any local user may connect
  auto stub = v1::Inference::NewStub(daemon->channel());
  v1::GenerateRequest turn = Greedy("Once upon a time", 4);
  turn.set_session_id("shared-name");
  ASSERT_TRUE(Generate(*stub, turn).status.ok());
  const auto as_nobody = [&](const std::string& session) {
    return testing::RunShell("setpriv --reuid=65534 --regid=65534 --clear-groups " + std::string(EDGELLM_BINARY_DIR) +
                             "/tools/edgellm generate --server unix:" + daemon->socket() + " --session " + session +
                             " --prompt 'Once upon a time' -n 4 --temp 0");
  };
  const auto stolen = as_nobody("shared-name");
  EXPECT_NE(stolen.exit_code, 0) << stolen.out;
  EXPECT_NE(stolen.err.find("no session 'shared-name' of this caller"), std::string::npos) << stolen.err;
  const auto own = as_nobody("nobodys-own");
  EXPECT_EQ(own.exit_code, 0) << own.err;
  EXPECT_TRUE(Generate(*stub, turn).status.ok());  // still root's, undisturbed
}

// Beyond loopback, TLS alone would let any client in: a client CA is
// required (unless tls_allow_any_client opts out in so many words).
TEST_F(DaemonTlsTest, BeyondLoopbackAClientCaIsRequired) {
  std::string error;
  EXPECT_EQ(DaemonProcess::Start(kModel, {"--tls-cert", Pki("server.pem"), "--tls-key", Pki("server.key")}, &error, {},
                                 {"0.0.0.0:0", Trusting(Pki("ca.pem"))}),
            nullptr);
  EXPECT_NE(error.find("status 2"), std::string::npos) << error;
  EXPECT_NE(error.find("tls_client_ca"), std::string::npos) << error;
  // The HTTP API the same.
  EXPECT_EQ(DaemonProcess::Start(kModel,
                                 {"--tls-cert", Pki("server.pem"), "--tls-key", Pki("server.key"), "--http-listen",
                                  "0.0.0.0:0"},
                                 &error, {}, {listen_, Trusting(Pki("ca.pem"))}),
            nullptr);
  EXPECT_NE(error.find("tls_client_ca"), std::string::npos) << error;
}

TEST_F(DaemonTlsTest, RefusesToStartWithAKeyThatIsNotTheCertificates) {
  std::string error;
  EXPECT_EQ(DaemonProcess::Start(kModel, {"--tls-cert", Pki("server.pem"), "--tls-key", Pki("device-1.key")}, &error,
                                 {}, {listen_, Trusting(Pki("ca.pem"))}),
            nullptr);
  EXPECT_NE(error.find("status 2"), std::string::npos) << error;
  EXPECT_EQ(DaemonProcess::Start(kModel, {"--tls-cert", Pki("server.pem"), "--tls-key", Pki("missing.key")}, &error,
                                 {}, {listen_, Trusting(Pki("ca.pem"))}),
            nullptr);
  EXPECT_NE(error.find("status 2"), std::string::npos) << error;
}

// What curl gets from `url` with `options`: the HTTP status, or 0 when the
// connection or handshake failed.
int CurlStatus(const std::string& options, const std::string& url) {
  const std::string command = "curl -s -o /dev/null -w '%{http_code}' --max-time 20 " + options + " '" + url + "'";
  FILE* pipe = popen(command.c_str(), "r");
  char buffer[16] = {};
  const size_t n = pipe != nullptr ? fread(buffer, 1, sizeof(buffer) - 1, pipe) : 0;
  if (pipe != nullptr) pclose(pipe);
  return n > 0 ? std::atoi(buffer) : 0;
}

TEST_F(DaemonTlsTest, TheHttpApiUsesTheSameTlsAndClientCertificates) {
  std::string error;
  auto daemon = DaemonProcess::Start(kModel,
                                     {"--tls-cert", Pki("server.pem"), "--tls-key", Pki("server.key"), "--tls-client-ca",
                                      Pki("ca.pem"), "--http-listen", "127.0.0.1:0"},
                                     &error, {}, {listen_, Trusting(Pki("ca.pem"), Pki("device-1"))});
  ASSERT_NE(daemon, nullptr) << error;
  const int port = daemon->LoggedPort("HTTP API on port ");
  ASSERT_GT(port, 0);
  const std::string url = "https://127.0.0.1:" + std::to_string(port) + "/v1/models";
  const std::string ca = "--cacert " + Pki("ca.pem");
  EXPECT_EQ(CurlStatus(ca + " --cert " + Pki("device-1.pem") + " --key " + Pki("device-1.key"), url), 200);
  EXPECT_EQ(CurlStatus(ca, url), 0) << "no client certificate";
  EXPECT_EQ(CurlStatus(ca + " --cert " + Other("device-1.pem") + " --key " + Other("device-1.key"), url), 0)
      << "a client certificate from another CA";
  EXPECT_EQ(CurlStatus("--cacert " + Other("ca.pem") + " --cert " + Pki("device-1.pem") + " --key " +
                           Pki("device-1.key"),
                       url),
            0)
      << "a server the client does not trust";
  EXPECT_EQ(CurlStatus("", "http://127.0.0.1:" + std::to_string(port) + "/v1/models"), 0) << "plain HTTP";
}

TEST_F(DaemonTlsTest, RefusesPlainHttpBeyondLoopback) {
  std::string error;
  EXPECT_EQ(DaemonProcess::Start(kModel, {"--http-listen", "0.0.0.0:0"}, &error), nullptr);
  EXPECT_NE(error.find("status 2"), std::string::npos) << error;
  EXPECT_NE(error.find("beyond loopback it needs TLS"), std::string::npos) << error;
}

TEST_F(DaemonTlsTest, RefusesPlainTcpBeyondLoopback) {
  std::string error;
  EXPECT_EQ(DaemonProcess::Start(kModel, {}, &error, {}, {"0.0.0.0:" + listen_.substr(listen_.find(':') + 1), {}}),
            nullptr);
  EXPECT_NE(error.find("status 2"), std::string::npos) << error;
}

}  // namespace
}  // namespace edgellm
