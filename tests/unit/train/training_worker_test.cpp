// The daemon's supervisor of the trainer process, with a shell script in the
// trainer's place: it speaks the same JSON lines and its pid can be watched.
#include "daemon/train/training_worker.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/process_state.h"
#include "tests/support/test_support.h"

namespace edgellm::train {
namespace {

using Clock = std::chrono::steady_clock;

// A trainer of `steps` steps of `seconds` each that exits with `code` (and
// says done only when that is 0); it records its pid in DIR/pids.
std::vector<std::string> FakeTrainer(const std::filesystem::path& dir, int steps, double seconds, int code = 0) {
  const std::string script = (dir / "trainer.sh").string();
  std::ofstream(script) << "#!/bin/sh\n"
                        << "echo $$ >> " << (dir / "pids").string() << "\n"
                        << "echo '{\"event\": \"plan\", \"plan\": \"p\", \"examples\": 2, \"step\": 0, \"steps\": "
                        << steps << "}'\n"
                        << "i=1\n"
                        << "while [ $i -le " << steps << " ]; do\n"
                        << "  sleep " << seconds << "\n"
                        << "  echo \"{\\\"event\\\": \\\"step\\\", \\\"step\\\": $i, \\\"steps\\\": " << steps
                        << ", \\\"loss\\\": 1.5, \\\"tokens\\\": 10, \\\"seconds\\\": " << seconds << "}\"\n"
                        << "  i=$((i + 1))\n"
                        << "done\n"
                        << (code == 0 ? "echo '{\"event\": \"done\"}'\n" : "echo 'broken' >&2\n")
                        << "exit " << code << "\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  return {script};
}

// Polls `done` every 10 ms for up to 20 s.
bool Eventually(const std::function<bool()>& done) {
  const Clock::time_point until = Clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

struct Record {
  absl::Mutex mu;
  std::vector<int32_t> steps;
  std::string done_dir;
  std::vector<std::string> log;
};

TrainingWorker::Callbacks RecordInto(Record& r) {
  TrainingWorker::Callbacks callbacks;
  callbacks.on_step = [&r](const TrainingProgress& p) {
    absl::MutexLock lock(&r.mu);
    r.steps.push_back(p.step);
  };
  callbacks.on_done = [&r](const std::string& dir) {
    absl::MutexLock lock(&r.mu);
    r.done_dir = dir;
  };
  callbacks.log = [&r](const std::string& line) {
    absl::MutexLock lock(&r.mu);
    r.log.push_back(line);
  };
  return callbacks;
}

TEST(TrainingWorker, RunsTheTrainerToTheEndAndReportsEachStep) {
  const std::filesystem::path dir = edgellm::testing::TestDir();
  Record record;
  TrainingWorker worker({FakeTrainer(dir, 4, 0.01), "out-dir"}, RecordInto(record));
  worker.Start();
  ASSERT_TRUE(Eventually([&] { return worker.state() == TrainingState::kDone; }));
  absl::MutexLock lock(&record.mu);
  EXPECT_EQ(record.steps, (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(record.done_dir, "out-dir");
}

// A request stops the trainer before SetBusy returns; it goes on once idle.
TEST(TrainingWorker, StopsTheTrainerWhileBusyAndContinuesWhenIdle) {
  const std::filesystem::path dir = edgellm::testing::TestDir();
  Record record;
  TrainingWorkerConfig config{FakeTrainer(dir, 20, 0.05), "out"};
  config.idle_grace = std::chrono::milliseconds(100);
  TrainingWorker worker(config, RecordInto(record));
  worker.Start();
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock lock(&record.mu);
    return !record.steps.empty();
  }));
  const pid_t pid = worker.pid();
  ASSERT_GT(pid, 0);
  worker.SetBusy(true);
  EXPECT_EQ(worker.state(), TrainingState::kPaused);
  ASSERT_TRUE(Eventually([&] { return edgellm::testing::ReadProcessStat(pid).state == 'T'; })) << edgellm::testing::ReadProcessStat(pid).state;
  size_t seen;
  {
    absl::MutexLock lock(&record.mu);
    seen = record.steps.size();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  {
    absl::MutexLock lock(&record.mu);
    EXPECT_LE(record.steps.size(), seen + 1) << "no step while busy (one may have been on its way)";
  }
  worker.SetBusy(false);
  ASSERT_TRUE(Eventually([&] { return worker.state() == TrainingState::kDone; }));
  absl::MutexLock lock(&record.mu);
  EXPECT_EQ(record.steps.size(), 20u);
}

// Short of memory, the trainer is killed; once memory recovers a new one starts.
TEST(TrainingWorker, GivesWayToMemoryPressureAndStartsAgainAfter) {
  const std::filesystem::path dir = edgellm::testing::TestDir();
  Record record;
  TrainingWorker worker({FakeTrainer(dir, 30, 0.05), "out"}, RecordInto(record));
  worker.Start();
  // A step means the script has run far enough to record its pid; a kill
  // before that would leave one line in DIR/pids for two runs.
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock lock(&record.mu);
    return !record.steps.empty();
  }));
  const pid_t first = worker.pid();
  ASSERT_GT(first, 0);
  worker.SetMemoryShort(true);
  ASSERT_TRUE(Eventually([&] { return worker.state() == TrainingState::kWaitingForMemory; }));
  EXPECT_EQ(worker.pid(), -1);
  EXPECT_TRUE(Eventually([&] { return edgellm::testing::ReadProcessStat(first).state == 0; })) << "the trainer is gone, its memory freed";
  worker.SetMemoryShort(false);
  ASSERT_TRUE(Eventually([&] { return worker.pid() > 0 && worker.pid() != first; }));
  ASSERT_TRUE(Eventually([&] { return worker.state() == TrainingState::kDone; }));
  std::ifstream pids(dir / "pids");
  int runs = 0;
  for (std::string line; std::getline(pids, line);) ++runs;
  EXPECT_EQ(runs, 2);
}

// A trainer that keeps failing is started again, then given up.
TEST(TrainingWorker, GivesUpOnATrainerThatKeepsFailing) {
  const std::filesystem::path dir = edgellm::testing::TestDir();
  Record record;
  TrainingWorkerConfig config{FakeTrainer(dir, 1, 0.01, /*code=*/3), "out"};
  config.max_restarts = 1;
  TrainingWorker worker(config, RecordInto(record));
  worker.Start();
  ASSERT_TRUE(Eventually([&] { return worker.state() == TrainingState::kFailed; }));
  absl::MutexLock lock(&record.mu);
  EXPECT_TRUE(record.done_dir.empty());
  bool said_status = false, said_stderr = false;
  for (const std::string& line : record.log) {
    said_status = said_status || line.find("exited with status 3") != std::string::npos;
    said_stderr = said_stderr || line == "training: broken";
  }
  EXPECT_TRUE(said_status && said_stderr);
  std::ifstream pids(dir / "pids");
  int runs = 0;
  for (std::string line; std::getline(pids, line);) ++runs;
  EXPECT_EQ(runs, 2) << "one run and one restart";
}

}  // namespace
}  // namespace edgellm::train
