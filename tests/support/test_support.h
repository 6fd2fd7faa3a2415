// tests/support/test_support.h — helpers every edgellm test may use.
#ifndef EDGELLM_TESTS_SUPPORT_TEST_SUPPORT_H_
#define EDGELLM_TESTS_SUPPORT_TEST_SUPPORT_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace edgellm::testing {

// A file under ../shared (the directory beside the checkout).
inline std::string SharedPath(const std::string& relative) {
  return (std::filesystem::path(EDGELLM_SHARED_DIR) / relative).string();
}

inline bool RunningInCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && *ci != '\0' && std::string(ci) != "0" && std::string(ci) != "false";
}

// Temporary directories a test binary made, removed when it exits: always
// (`kAlways`, what can be made again), or only when every test passed
// (`kIfPassed`, so that a failure's files can still be looked at). A suite
// runs each test in a process of its own, so without this every process
// would leave its models and state behind, gigabytes over a run.
class TemporaryDirectories {
 public:
  enum Keep { kAlways, kIfPassed };
  static void Add(const std::filesystem::path& dir, Keep keep) {
    static TemporaryDirectories directories;  // made after gtest's UnitTest, so destroyed before it
    directories.dirs_.emplace_back(dir, keep);
  }
  ~TemporaryDirectories() {
    const bool passed = !::testing::UnitTest::GetInstance()->Failed();
    for (const auto& [dir, keep] : dirs_) {
      std::error_code ec;
      if (keep == kAlways || passed) std::filesystem::remove_all(dir, ec);
    }
  }

 private:
  std::vector<std::pair<std::filesystem::path, Keep>> dirs_;
};

// A fresh directory for the current test, removed and recreated on each call,
// and at exit when every test passed.
inline std::filesystem::path TestDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("edgellm-" + std::string(info->test_suite_name()) + "-" + info->name() + "-" +
                               std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  TemporaryDirectories::Add(dir, TemporaryDirectories::kIfPassed);
  return dir;
}

}  // namespace edgellm::testing

// Skips the test when a file from ../shared is missing — but fails it when the
// CI environment variable is set, so CI can never pass by skipping.
#define EDGELLM_REQUIRE_SHARED_FILE(path)                                              \
  do {                                                                                 \
    if (!std::filesystem::exists(path)) {                                              \
      if (::edgellm::testing::RunningInCi()) FAIL() << "missing shared file " << (path); \
      GTEST_SKIP() << "missing shared file " << (path);                                \
    }                                                                                  \
  } while (false)

#endif  // EDGELLM_TESTS_SUPPORT_TEST_SUPPORT_H_
