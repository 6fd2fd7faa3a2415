// tests/support/cli_run.h — runs the `edgellm` CLI built beside the tests and
// captures what it printed.
#ifndef EDGELLM_TESTS_SUPPORT_CLI_RUN_H_
#define EDGELLM_TESTS_SUPPORT_CLI_RUN_H_

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace edgellm::testing {

struct CliRun {
  int exit_code;
  std::string out;  // stdout
  std::string err;  // stderr
};

// A shell command line to its end, with what it printed.
inline CliRun RunShell(const std::string& command_line) {
  const std::string err_path =
      (std::filesystem::temp_directory_path() / ("edgellm-cli-stderr-" + std::to_string(::getpid()))).string();
  const std::string command = "(" + command_line + ") 2>" + err_path;
  CliRun run{-1, "", ""};
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) run.out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream err(err_path);
  run.err.assign(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
  return run;
}

// `edgellm ARGS` (a shell command line) to its end.
inline CliRun RunCli(const std::string& args) {
  return RunShell(std::string(EDGELLM_BINARY_DIR) + "/tools/edgellm " + args);
}

}  // namespace edgellm::testing

#endif  // EDGELLM_TESTS_SUPPORT_CLI_RUN_H_
