// The fleet page in a real browser: a real edgellm-aggregator with two
// models — one whose rollout waits at its canary, one whose canary reported
// a failed smoke test (halted) — serves the page over HTTPS; Debian's
// headless Chromium loads it with the token in its fragment, runs its
// script against /api/fleet, and the DOM it leaves shows both rollouts, the
// devices and the chart, with nothing on the console. curl checks who may
// read the API; `edgellm fleet --json` prints the same JSON.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "edgellm/v1/ota.grpc.pb.h"
#include "tests/support/cli_run.h"
#include "tests/support/federation.h"
#include "tests/support/test_support.h"

namespace edgellm::federated {
namespace {

namespace fs = std::filesystem;
using edgellm::testing::AggregatorProcess;
using edgellm::testing::ReadAll;
using edgellm::testing::RunCli;
using edgellm::testing::RunShell;

const std::string kStories = edgellm::testing::SharedPath("models/stories260K.gguf");
constexpr char kToken[] = "fleet-page-token-0123456789abcdef";
constexpr char kChromium[] = "/usr/bin/chromium";

class FleetPage : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGELLM_REQUIRE_SHARED_FILE(kStories);
    if (!fs::exists(kChromium)) {
      if (edgellm::testing::RunningInCi()) FAIL() << "no " << kChromium << " (deploy/install-deps.sh installs it)";
      GTEST_SKIP() << "no " << kChromium;
    }
    dir_ = edgellm::testing::TestDir();
    ASSERT_TRUE(edgellm::testing::MakePki(dir_ / "pki", {"dev-a", "dev-b", "operator"}));
    ASSERT_EQ(RunCli("keygen --out " + (dir_ / "release").string()).exit_code, 0);
  }

  // The aggregator with two models and the fleet page: with `token`, read by
  // bearer token; without, by admins' client certificates.
  void StartAggregator(bool token) {
    std::ofstream(dir_ / "fleet.token") << kToken << "\n";
    std::ofstream(dir_ / "eval.jsonl") << R"({"prompt": "Once upon a time", "completion": " there was a dragon."})" << "\n";
    std::ofstream config(dir_ / "aggregator.yaml");
    config << "listen: 127.0.0.1:0\n"
           << "tls_cert: " << (dir_ / "pki" / "aggregator.pem").string() << "\n"
           << "tls_key: " << (dir_ / "pki" / "aggregator.key").string() << "\n"
           << "tls_client_ca: " << (dir_ / "pki" / "ca.pem").string() << "\n"
           << "state_dir: " << (dir_ / "state").string() << "\n"
           << "fleet_listen: 127.0.0.1:0\n"
           << (token ? "fleet_token_file: " + (dir_ / "fleet.token").string() + "\n" : std::string())
           << "poll_interval_seconds: 0.2\nthreads: 1\nadmins: [operator]\n"
           << "release_keys: [" << (dir_ / "release.pub").string() << "]\n"
           << "canary_fraction: 1\nsoak_seconds: 600\n"
           << "models:\n"
           << "  - id: waiting\n    base_model: " << kStories << "\n    rounds: 1\n    min_devices: 3\n"
           << "    eval_data: " << (dir_ / "eval.jsonl").string() << "\n"
           << "  - id: halting\n    base_model: " << kStories << "\n    rounds: 1\n    min_devices: 3\n";
    config.close();
    std::string error;
    aggregator_ = AggregatorProcess::Start(dir_ / "aggregator.yaml", dir_ / "aggregator.log", &error);
    ASSERT_NE(aggregator_, nullptr) << error;
    port_ = aggregator_->LoggedPort("(port ");
    fleet_port_ = aggregator_->LoggedPort("fleet page on port ");
    ASSERT_GT(port_, 0) << aggregator_->Log();
    ASSERT_GT(fleet_port_, 0) << aggregator_->Log();
  }

  std::string Admin() const {
    return "--aggregator 127.0.0.1:" + std::to_string(port_) + " --ca " + (dir_ / "pki" / "ca.pem").string() +
           " --cert " + (dir_ / "pki" / "operator.pem").string() + " --key " + (dir_ / "pki" / "operator.key").string();
  }

  std::unique_ptr<v1::Releases::Stub> DeviceStub(const std::string& device) const {
    return v1::Releases::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(port_),
        edgellm::testing::DeviceCredentials(dir_ / "pki" / "ca.pem", dir_ / "pki" / (device + ".pem"),
                                            dir_ / "pki" / (device + ".key"))));
  }

  static v1::GetReleaseResponse Poll(v1::Releases::Stub& stub, const std::string& device, const std::string& model) {
    grpc::ClientContext context;
    v1::GetReleaseRequest request;
    request.set_device_id(device);
    request.set_model_id(model);
    v1::GetReleaseResponse response;
    const grpc::Status s = stub.GetRelease(&context, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }

  // curl against the page: the body, then the HTTP status on a line of its
  // own (000: no HTTP answer at all). `options`: more of curl's.
  edgellm::testing::CliRun Curl(const std::string& path, const std::string& header = "",
                                const std::string& options = "") const {
    return RunShell("curl -s --max-time 20 --cacert " + (dir_ / "pki" / "ca.pem").string() + " " + options +
                    (header.empty() ? "" : " -H '" + header + "'") + " -w '\\n%{http_code}' https://127.0.0.1:" +
                    std::to_string(fleet_port_) + path);
  }
  std::string CertOf(const std::string& name) const {
    return "--cert " + (dir_ / "pki" / (name + ".pem")).string() + " --key " + (dir_ / "pki" / (name + ".key")).string();
  }

  fs::path dir_;
  int port_ = 0;
  int fleet_port_ = 0;
  std::unique_ptr<AggregatorProcess> aggregator_;
};

TEST_F(FleetPage, ARealBrowserShowsARunningRolloutAndAHaltedOneWithNoConsoleErrors) {
  ASSERT_NO_FATAL_FAILURE(StartAggregator(/*token=*/true));
  // dev-b asks for releases of "waiting" (and so is its canary), then never again.
  auto dev_b = DeviceStub("dev-b");
  Poll(*dev_b, "dev-b", "waiting");
  const std::string key = " --signing-key " + (dir_ / "release.key").string();
  ASSERT_EQ(RunCli("publish " + Admin() + " -m waiting --version 1" + key).exit_code, 0);
  // dev-a is offered "halting"'s release and reports a failed smoke test.
  auto dev_a = DeviceStub("dev-a");
  Poll(*dev_a, "dev-a", "halting");
  ASSERT_EQ(RunCli("publish " + Admin() + " -m halting --version 1" + key).exit_code, 0);
  ASSERT_EQ(Poll(*dev_a, "dev-a", "halting").outcome(), v1::GetReleaseResponse::INSTALL);
  {
    grpc::ClientContext context;
    v1::InstallReport report;
    report.set_device_id("dev-a");
    report.set_model_id("halting");
    report.set_release(1);
    report.set_outcome(v1::InstallReport::SMOKE_FAILED);
    report.set_detail("generated NaN <script>alert(1)</script>");
    v1::InstallReportResponse response;
    ASSERT_TRUE(dev_a->ReportInstall(&context, report, &response).ok());
  }

  // The API: the token is needed, and nothing else will do; the files are not secret.
  const auto anonymous = Curl("/api/fleet");
  EXPECT_TRUE(anonymous.out.ends_with("\n401")) << anonymous.out;
  const auto wrong = Curl("/api/fleet", "Authorization: Bearer fleet-page-token-0123456789abcdeX");
  EXPECT_TRUE(wrong.out.ends_with("\n401")) << wrong.out;
  EXPECT_TRUE(Curl("/", "").out.ends_with("\n200"));
  EXPECT_TRUE(Curl("/nothing", "").out.ends_with("\n404"));
  const auto api = Curl("/api/fleet", std::string("Authorization: Bearer ") + kToken);
  ASSERT_TRUE(api.out.ends_with("\n200")) << api.out;
  const nlohmann::json fleet = nlohmann::json::parse(api.out.substr(0, api.out.rfind('\n')), nullptr, false);
  ASSERT_TRUE(fleet.is_object()) << api.out;
  ASSERT_EQ(fleet["models"].size(), 2u);
  // The CLI prints the same document (but for the moment it was read at).
  const auto cli = RunCli("fleet " + Admin() + " --json");
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  nlohmann::json from_cli = nlohmann::json::parse(cli.out, nullptr, false);
  nlohmann::json from_api = fleet;
  from_cli.erase("unix_ms");
  from_api.erase("unix_ms");
  for (auto* doc : {&from_cli, &from_api}) {
    for (auto& model : (*doc)["models"]) {
      for (auto& device : model["devices"]) device.erase("online");
    }
  }
  EXPECT_EQ(from_cli, from_api);

  // The page in Chromium, its script given ten seconds of virtual time.
  const fs::path screenshot = dir_ / "fleet.png";
  const std::string url = "https://127.0.0.1:" + std::to_string(fleet_port_) + "/#token=" + kToken;
  const std::string chromium = std::string(kChromium) +
                               " --headless=new --no-sandbox --disable-gpu --ignore-certificate-errors"
                               " --user-data-dir=" + (dir_ / "chromium").string() +
                               " --virtual-time-budget=10000 --enable-logging=stderr --v=0 --window-size=1280,1000 ";
  const auto dom = RunShell("timeout 120 " + chromium + "--dump-dom '" + url + "'");
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  const std::string& page = dom.out;
  // Both models, each rollout at its stage.
  EXPECT_NE(page.find("data-model=\"waiting\""), std::string::npos) << page;
  EXPECT_NE(page.find("data-model=\"halting\""), std::string::npos) << page;
  EXPECT_NE(page.find("<span class=\"badge canary\">canary</span>"), std::string::npos) << page;
  EXPECT_NE(page.find("<span class=\"badge halted\">halted</span>"), std::string::npos) << page;
  EXPECT_NE(page.find("<span class=\"badge SMOKE_FAILED\">SMOKE_FAILED</span>"), std::string::npos) << page;
  EXPECT_NE(page.find("1 of 1 devices failed"), std::string::npos) << page;
  // The devices, and the device's words as text, never as markup.
  EXPECT_NE(page.find("dev-a"), std::string::npos);
  EXPECT_NE(page.find("dev-b"), std::string::npos);
  EXPECT_NE(page.find("generated NaN &lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos) << page;
  EXPECT_EQ(page.find("<script>alert(1)"), std::string::npos);
  EXPECT_NE(page.find("class=\"outcome-bar\""), std::string::npos);
  EXPECT_NE(page.find("1 failed"), std::string::npos);
  EXPECT_NE(page.find("1 waiting"), std::string::npos);
  // "waiting" has eval_data: its first version's loss is charted; "halting" has none, and says so.
  EXPECT_NE(page.find("class=\"loss-chart\""), std::string::npos) << page;
  EXPECT_NE(page.find("version 1: eval loss "), std::string::npos) << page;
  EXPECT_NE(page.find("No version has an eval loss yet"), std::string::npos) << page;
  EXPECT_NE(page.find("as of "), std::string::npos) << "the data never arrived";
  EXPECT_NE(page.find("id=\"problem\" hidden"), std::string::npos) << page;
  // Nothing on the console: no error, no exception, no failed request.
  EXPECT_EQ(dom.err.find(":CONSOLE"), std::string::npos) << dom.err;

  // Without the token the page says why, in the page.
  const auto refused = RunShell("timeout 120 " + chromium + "--dump-dom 'https://127.0.0.1:" +
                                std::to_string(fleet_port_) + "/'");
  EXPECT_NE(refused.out.find("The aggregator refused (401)"), std::string::npos) << refused.out;

  const auto shot = RunShell("timeout 120 " + chromium + "--screenshot=" + screenshot.string() + " '" + url + "'");
  EXPECT_EQ(shot.exit_code, 0) << shot.err;
  EXPECT_GT(fs::exists(screenshot) ? fs::file_size(screenshot) : 0, 10'000u);
}

TEST_F(FleetPage, WithoutATokenOnlyAnAdminsCertificateReadsIt) {
  ASSERT_NO_FATAL_FAILURE(StartAggregator(/*token=*/false));
  const auto admin = Curl("/api/fleet", "", CertOf("operator"));
  ASSERT_TRUE(admin.out.ends_with("\n200")) << admin.out;
  EXPECT_NE(admin.out.find("\"model_id\":\"waiting\""), std::string::npos) << admin.out;
  EXPECT_TRUE(Curl("/", "", CertOf("operator")).out.ends_with("\n200"));
  // A device's certificate is from the same CA, but no operator's: not even the page.
  const auto device = Curl("/api/fleet", "", CertOf("dev-a"));
  EXPECT_TRUE(device.out.ends_with("\n403")) << device.out;
  EXPECT_NE(device.out.find("'dev-a' is not among the aggregator's admins"), std::string::npos) << device.out;
  EXPECT_TRUE(Curl("/", "", CertOf("dev-a")).out.ends_with("\n403"));
  // No certificate: the handshake itself fails; a token means nothing here.
  EXPECT_TRUE(Curl("/api/fleet", std::string("Authorization: Bearer ") + kToken).out.ends_with("\n000"));
  // Read-only.
  EXPECT_TRUE(Curl("/api/fleet", "", CertOf("operator") + " -X POST").out.ends_with("\n405"));
}

}  // namespace
}  // namespace edgellm::federated
