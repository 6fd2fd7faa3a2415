// tests/support/process_state.h — what /proc says of a process: its state
// letter (R running, S sleeping, T stopped, ...), its children and its memory.
#ifndef EDGELLM_TESTS_SUPPORT_PROCESS_STATE_H_
#define EDGELLM_TESTS_SUPPORT_PROCESS_STATE_H_

#include <sys/types.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace edgellm::testing {

struct ProcessStat {
  char state = 0;  // 0: no such process
  pid_t parent = 0;
};

// Reads /proc/PID/stat: "pid (comm) state ppid ...", where comm may hold
// spaces and parentheses, so the fields are read after its last ')'.
inline ProcessStat ReadProcessStat(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  ProcessStat out;
  if (!std::getline(stat, line)) return out;
  const size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return out;
  std::istringstream rest(line.substr(close + 2));
  rest >> out.state >> out.parent;
  return out;
}

// The children of `parent` with their state letters.
inline std::vector<std::pair<pid_t, char>> ChildrenOf(pid_t parent) {
  std::vector<std::pair<pid_t, char>> children;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    const ProcessStat stat = ReadProcessStat(pid);
    if (stat.state != 0 && stat.parent == parent) children.push_back({pid, stat.state});
  }
  return children;
}

// The number a field of /proc/PID/status holds (Threads, or VmRSS in kB...); -1 if absent.
inline double ProcessStatus(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1));
  }
  return -1;
}

// A memory field of /proc/PID/status (VmRSS, VmHWM, ...) in MiB; -1 if absent.
inline double ProcessMemoryMiB(pid_t pid, const std::string& field) {
  const double kib = ProcessStatus(pid, field);
  return kib < 0 ? -1 : kib / 1024.0;
}

}  // namespace edgellm::testing

#endif  // EDGELLM_TESTS_SUPPORT_PROCESS_STATE_H_
