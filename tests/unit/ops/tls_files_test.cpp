#include "daemon/ops/tls_files.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "tests/support/test_support.h"

namespace edgellm::ops {
namespace {

class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TestDir();
    const std::string command =
        std::string(EDGELLM_SOURCE_DIR) + "/deploy/pki.sh " + dir_.string() + " device-1 >/dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0);
  }
  std::string Path(const std::string& file) const { return (dir_ / file).string(); }
  std::filesystem::path dir_;
};

TEST_F(TlsFilesTest, LoadsAMatchingCertificateAndKey) {
  absl::StatusOr<TlsFiles> files = LoadTlsFiles(Path("server.pem"), Path("server.key"), Path("ca.pem"));
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_NE(files->cert_chain.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_NE(files->private_key.find("PRIVATE KEY"), std::string::npos);
  EXPECT_NE(files->client_ca.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_TRUE(LoadTlsFiles(Path("server.pem"), Path("server.key"), "")->client_ca.empty());
}

TEST_F(TlsFilesTest, NamesWhatIsWrong) {
  std::ofstream(Path("junk.pem")) << "not a certificate\n";
  absl::Status s = LoadTlsFiles(Path("server.pem"), Path("device-1.key"), "").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("does not match"), std::string::npos) << s;
  s = LoadTlsFiles(Path("junk.pem"), Path("server.key"), "").status();
  EXPECT_NE(s.message().find("tls_cert " + Path("junk.pem") + ": no PEM certificate"), std::string::npos) << s;
  s = LoadTlsFiles(Path("server.pem"), Path("junk.pem"), "").status();
  EXPECT_NE(s.message().find("no PEM private key"), std::string::npos) << s;
  s = LoadTlsFiles(Path("server.pem"), Path("server.key"), Path("junk.pem")).status();
  EXPECT_NE(s.message().find("tls_client_ca"), std::string::npos) << s;
  EXPECT_EQ(LoadTlsFiles(Path("absent.pem"), Path("server.key"), "").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace edgellm::ops
