// tests/support/test_support.h — helpers every edgellm test may use.
#ifndef EDGELLM_TESTS_SUPPORT_TEST_SUPPORT_H_
#define EDGELLM_TESTS_SUPPORT_TEST_SUPPORT_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace edgellm::testing {

// A file under ../shared (the directory beside the checkout).
inline std::string SharedPath(const std::string& relative) {
  return (std::filesystem::path(EDGELLM_SHARED_DIR) / relative).string();
}

inline bool RunningInCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && *ci != '\0' && std::string(ci) != "0" && std::string(ci) != "false";
}

// A fresh directory for the current test, removed and recreated on each call.
inline std::filesystem::path TestDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("edgellm-" + std::string(info->test_suite_name()) + "-" + info->name() + "-" +
                               std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
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
