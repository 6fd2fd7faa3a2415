#include "daemon/train/training_worker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace edgellm::train {

std::vector<std::string> TrainCommandLine(const TrainCommand& c) {
  std::string program = c.program;
  if (program.empty()) {
    std::error_code ec;
    const std::filesystem::path beside = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "edgellm";
    program = !ec && std::filesystem::exists(beside) ? beside.string() : "edgellm";
  }
  std::vector<std::string> argv = {program,
                                   "train",
                                   "--model",
                                   c.model,
                                   "--data",
                                   c.data,
                                   "--out",
                                   c.out_dir,
                                   "--steps",
                                   std::to_string(c.steps),
                                   "--lr",
                                   std::to_string(c.learning_rate),
                                   "--rank",
                                   std::to_string(c.rank),
                                   "--alpha",
                                   std::to_string(c.alpha),
                                   "--targets",
                                   c.targets,
                                   "--max-length",
                                   std::to_string(c.max_length),
                                   "--micro-batch",
                                   std::to_string(c.micro_batch),
                                   "--memory-budget",
                                   std::to_string(c.memory_budget_mib),
                                   "--threads",
                                   std::to_string(c.threads),
                                   "--clip",
                                   std::to_string(c.clip_norm),
                                   "--lora-seed",
                                   std::to_string(c.lora_seed),
                                   "--proximal-mu",
                                   std::to_string(c.proximal_mu),
                                   "--json"};
  if (!c.init_adapter.empty()) {
    argv.push_back("--init-adapter");
    argv.push_back(c.init_adapter);
  }
  if (c.freeze_a) argv.push_back("--freeze-a");
  return argv;
}
namespace {

using Clock = std::chrono::steady_clock;

// How often the supervisor looks at the pipes and the pacing.
constexpr int kPollMilliseconds = 50;

// Splits complete lines off the front of `buffer`.
std::vector<std::string> TakeLines(std::string& buffer) {
  std::vector<std::string> lines;
  size_t start = 0, end;
  while ((end = buffer.find('\n', start)) != std::string::npos) {
    lines.push_back(buffer.substr(start, end - start));
    start = end + 1;
  }
  buffer.erase(0, start);
  return lines;
}

}  // namespace

std::string_view TrainingStateName(TrainingState state) {
  switch (state) {
    case TrainingState::kStarting: return "starting";
    case TrainingState::kRunning: return "running";
    case TrainingState::kPaused: return "paused";
    case TrainingState::kDone: return "done";
    case TrainingState::kFailed: return "failed";
    case TrainingState::kStopped: return "stopped";
    case TrainingState::kWaitingForMemory: return "waiting for memory";
  }
  return "unknown";
}

TrainingWorker::TrainingWorker(TrainingWorkerConfig config, Callbacks callbacks)
    : config_(std::move(config)), callbacks_(std::move(callbacks)) {
  idle_since_ = Clock::now() - config_.idle_grace;  // nothing is being served yet
}

TrainingWorker::~TrainingWorker() { Stop(); }

void TrainingWorker::Start() {
  MutexLock lock(&mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { Supervise(); });
}

void TrainingWorker::SetBusy(bool busy) {
  MutexLock lock(&mu_);
  if (busy == busy_) return;
  busy_ = busy;
  const Clock::time_point now = Clock::now();
  if (busy) {
    busy_since_ = now;
    // At once, not at the next poll: the request must not share the CPU with a training step.
    if (pid_ > 0 && child_running_ && config_.busy_share <= 0.0) Signal(false);
  } else {
    idle_since_ = now;
  }
}

void TrainingWorker::SetMemoryShort(bool short_of_memory) {
  MutexLock lock(&mu_);
  if (short_of_memory == memory_short_) return;
  memory_short_ = short_of_memory;
  // SIGKILL frees the memory at once; its checkpoints are written atomically.
  if (short_of_memory && pid_ > 0) ::kill(pid_, SIGKILL);
}

void TrainingWorker::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    // A stopped process dies of SIGKILL too; its checkpoints are written atomically.
    if (pid_ > 0) ::kill(pid_, SIGKILL);
  }
  if (thread_.joinable()) thread_.join();
  MutexLock lock(&mu_);
  if (state_ != TrainingState::kDone && state_ != TrainingState::kFailed) state_ = TrainingState::kStopped;
}

TrainingState TrainingWorker::state() const {
  MutexLock lock(&mu_);
  return state_;
}

pid_t TrainingWorker::pid() const {
  MutexLock lock(&mu_);
  return pid_;
}

void TrainingWorker::Signal(bool run) {
  ::kill(pid_, run ? SIGCONT : SIGSTOP);
  child_running_ = run;
  state_ = run ? TrainingState::kRunning : TrainingState::kPaused;
}

void TrainingWorker::Pace(Clock::time_point now) {
  if (pid_ <= 0) return;
  bool run;
  if (!busy_) {
    run = now - idle_since_ >= config_.idle_grace;
  } else if (config_.busy_share <= 0.0) {
    run = false;
  } else {
    const auto period = std::chrono::duration_cast<Clock::duration>(config_.share_period);
    const auto phase = (now - busy_since_) % period;
    run = phase < std::chrono::duration_cast<Clock::duration>(period * config_.busy_share);
  }
  if (run != child_running_) Signal(run);
}

void TrainingWorker::HandleLine(const std::string& line, bool* done) {
  const nlohmann::json json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object() || !json.contains("event")) {
    if (callbacks_.log) callbacks_.log("training: " + line);
    return;
  }
  const std::string event = json.value("event", "");
  if (event == "step") {
    TrainingProgress p;
    p.step = json.value("step", 0);
    p.steps = json.value("steps", 0);
    p.loss = json.value("loss", 0.0);
    p.tokens = json.value("tokens", int64_t{0});
    p.seconds = json.value("seconds", 0.0);
    if (json.contains("eval_loss") && json["eval_loss"].is_number()) p.eval_loss = json["eval_loss"].get<double>();
    if (callbacks_.on_step) callbacks_.on_step(p);
  } else if (event == "plan") {
    if (callbacks_.log) {
      callbacks_.log("training: " + std::to_string(json.value("examples", 0)) + " examples, from step " +
                     std::to_string(json.value("step", 0)) + " of " + std::to_string(json.value("steps", 0)) + "; " +
                     json.value("plan", std::string()));
    }
  } else if (event == "done") {
    *done = true;
  }
}

bool TrainingWorker::RunOnce() {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return false;
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return false;
  }
  std::vector<char*> argv;
  std::vector<std::string> args = config_.command;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  {
    MutexLock lock(&mu_);
    if (stopping_ || memory_short_) return false;
    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    if (child == 0) {
      // A trainer never outlives the daemon: were it killed (kill -9 included),
      // an orphan would keep writing the checkpoint its successor resumes from.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(err[1], STDERR_FILENO);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    pid_ = child;
    child_running_ = child > 0;
    state_ = child > 0 ? TrainingState::kRunning : TrainingState::kFailed;
    Pace(Clock::now());  // stopped at once if requests are being served
  }
  ::close(out[1]);
  ::close(err[1]);
  bool done = false;
  std::string out_buffer, err_buffer;
  bool out_open = true, err_open = true;
  if (pid() <= 0) out_open = err_open = false;
  while (out_open || err_open) {
    pollfd fds[2] = {{out[0], static_cast<short>(out_open ? POLLIN : 0), 0},
                     {err[0], static_cast<short>(err_open ? POLLIN : 0), 0}};
    if (::poll(fds, 2, kPollMilliseconds) < 0 && errno != EINTR) break;
    char chunk[4096];
    for (int i = 0; i < 2; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = ::read(fds[i].fd, chunk, sizeof(chunk));
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
        continue;
      }
      std::string& buffer = i == 0 ? out_buffer : err_buffer;
      buffer.append(chunk, static_cast<size_t>(n));
      for (const std::string& line : TakeLines(buffer)) {
        if (i == 0) {
          HandleLine(line, &done);
        } else if (callbacks_.log) {
          callbacks_.log("training: " + line);
        }
      }
    }
    MutexLock lock(&mu_);
    if (stopping_ || memory_short_) {
      if (pid_ > 0) ::kill(pid_, SIGKILL);
    } else {
      Pace(Clock::now());
    }
  }
  ::close(out[0]);
  ::close(err[0]);
  pid_t child;
  {
    MutexLock lock(&mu_);
    child = pid_;
  }
  int status = 0;
  if (child > 0) ::waitpid(child, &status, 0);
  bool killed_by_us;
  {
    MutexLock lock(&mu_);
    pid_ = -1;
    child_running_ = false;
    killed_by_us = stopping_ || memory_short_;
  }
  const bool ok = child > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && done;
  if (!ok && !killed_by_us && callbacks_.log) {
    callbacks_.log(WIFSIGNALED(status) ? "training: the trainer died of signal " + std::to_string(WTERMSIG(status))
                                       : "training: the trainer exited with status " +
                                             std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  }
  return ok;
}

void TrainingWorker::Supervise() {
  int failures = 0;
  while (true) {
    if (RunOnce()) {
      {
        MutexLock lock(&mu_);
        state_ = TrainingState::kDone;
      }
      if (callbacks_.on_done) callbacks_.on_done(config_.out_dir);
      return;
    }
    MutexLock lock(&mu_);
    if (stopping_) return;
    if (memory_short_) {
      // Not the trainer's failure: wait for memory, then resume from the checkpoint.
      state_ = TrainingState::kWaitingForMemory;
      if (callbacks_.log) callbacks_.log("training: stopped while memory is short; it resumes when memory recovers");
      auto recovered = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !memory_short_; };
      mu_.Await(absl::Condition(&recovered));
      continue;
    }
    if (++failures > config_.max_restarts) {
      state_ = TrainingState::kFailed;
      if (callbacks_.log) callbacks_.log("training: given up after " + std::to_string(failures) + " failed runs");
      return;
    }
    if (callbacks_.log) {
      callbacks_.log("training: starting again in " + std::to_string(failures) + " s (it resumes from its checkpoint)");
    }
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Seconds(failures));
    if (stopping_) return;
  }
}

}  // namespace edgellm::train
