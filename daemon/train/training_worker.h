// train/training_worker.h — LoRA training inside edgellmd, in a child
// process that inference preempts.
//
// The trainer is the `edgellm train` CLI in its --json mode: it maps the same
// GGUF (the page cache holds the weights once for both processes), keeps
// LibTorch out of the serving process, and a crash or an out-of-memory kill
// in training never takes serving down. Its checkpoints make it resumable, so
// a trainer that dies is started again and continues.
//
// Preemption: the moment a request arrives, SetBusy(true) stops the child
// (SIGSTOP) wherever it is, so a Generate never waits for a training step;
// once no request has been served for `idle_grace`, it continues (SIGCONT).
// With busy_share > 0, training also runs that share of each period while
// requests are being served.
//
// Memory: training gives way to serving. While SetMemoryShort(true) holds,
// no trainer runs — one that runs is killed, freeing its memory at once — and
// once memory recovers a new one resumes from the last checkpoint.
#ifndef EDGELLM_TRAIN_TRAINING_WORKER_H_
#define EDGELLM_TRAIN_TRAINING_WORKER_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"

namespace edgellm::train {

// What the trainer (`edgellm train --json`) is asked to do.
struct TrainCommand {
  std::string program;  // "": the `edgellm` beside this executable, else the one on PATH
  std::string model;
  std::string data;
  std::string out_dir;
  int32_t steps = 100;
  double learning_rate = 2e-4;
  int32_t rank = 8;
  double alpha = 16;
  std::string targets = "q_proj,v_proj";
  int32_t max_length = 256;
  int32_t micro_batch = 4;
  int64_t memory_budget_mib = 0;
  int32_t threads = 0;
  // A federated round's additions: start from this adapter, FFA-LoRA, clipping.
  std::string init_adapter;
  bool freeze_a = false;
  uint64_t lora_seed = 0;
  double clip_norm = 1.0;
  double proximal_mu = 0.0;  // FedProx; 0: off
};
// Its argv.
std::vector<std::string> TrainCommandLine(const TrainCommand& command);

struct TrainingWorkerConfig {
  std::vector<std::string> command;  // argv of the trainer, reporting JSON lines on stdout
  std::string out_dir;               // where it writes the adapter
  double busy_share = 0.0;           // share of time it may run while requests are served
  std::chrono::milliseconds idle_grace{250};
  std::chrono::milliseconds share_period{1000};
  int max_restarts = 3;              // a trainer that fails more often is given up
};

struct TrainingProgress {
  int32_t step = 0;
  int32_t steps = 0;
  double loss = 0.0;
  std::optional<double> eval_loss;
  int64_t tokens = 0;
  double seconds = 0.0;  // of this step
};

enum class TrainingState { kStarting, kRunning, kPaused, kDone, kFailed, kStopped, kWaitingForMemory };
std::string_view TrainingStateName(TrainingState state);

// Thread-safe.
class TrainingWorker {
 public:
  struct Callbacks {
    std::function<void(const TrainingProgress&)> on_step;
    std::function<void(const std::string& out_dir)> on_done;  // the adapter is complete in out_dir
    std::function<void(const std::string& line)> log;
  };
  TrainingWorker(TrainingWorkerConfig config, Callbacks callbacks);
  ~TrainingWorker();  // Stop()
  TrainingWorker(const TrainingWorker&) = delete;
  TrainingWorker& operator=(const TrainingWorker&) = delete;

  void Start();
  // Requests are being served (true) or none is (false). Stopping takes
  // effect before this returns.
  void SetBusy(bool busy);
  // Memory is short (true) or enough again (false).
  void SetMemoryShort(bool short_of_memory);
  // Kills the trainer (its last checkpoint stays) and joins. Idempotent.
  void Stop();

  TrainingState state() const;
  // The child's pid while one runs, else -1.
  pid_t pid() const;

 private:
  void Supervise();
  // Runs one trainer process to its end; true when it finished the training.
  bool RunOnce();
  // Stops or continues the child as the busy state and the share ask.
  void Pace(std::chrono::steady_clock::time_point now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Signal(bool run) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleLine(const std::string& line, bool* done);

  const TrainingWorkerConfig config_;
  const Callbacks callbacks_;
  std::thread thread_;

  mutable Mutex mu_;
  pid_t pid_ ABSL_GUARDED_BY(mu_) = -1;
  bool child_running_ ABSL_GUARDED_BY(mu_) = false;  // not SIGSTOPped
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point idle_since_ ABSL_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point busy_since_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool memory_short_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  TrainingState state_ ABSL_GUARDED_BY(mu_) = TrainingState::kStarting;
};

}  // namespace edgellm::train

#endif  // EDGELLM_TRAIN_TRAINING_WORKER_H_
