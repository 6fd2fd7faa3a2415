// train/trainer.h — trains a LoRA adapter on a node's local JSONL data, on
// the frozen weights the node serves (quantized or not).
//
// One Step() is one optimizer step: grad accumulation over micro-batches,
// clipping, AdamW at the scheduled rate. A caller that must stay responsive
// (edgellmd, whose inference preempts training) runs steps one at a time and
// stops between any two. Every `checkpoint_every` steps the adapter and the
// optimizer's state go to DIR/checkpoint.safetensors atomically, and the
// PEFT adapter to DIR; a trainer created on a DIR with a checkpoint of the
// same data and options resumes from it and ends with the very adapter an
// uninterrupted run would have (same thread count).
//
// A memory budget picks what fits: first recomputing each layer in the
// backward pass instead of keeping its activations, then a smaller
// micro-batch (with more accumulation, so the effective batch stays), then
// shorter rows. This header is free of LibTorch; the library links it.
#ifndef EDGELLM_TRAIN_TRAINER_H_
#define EDGELLM_TRAIN_TRAINER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/train/dataset.h"

namespace edgellm::train {

struct TrainerOptions {
  engine::LoraConfig lora;
  int32_t steps = 100;
  double learning_rate = 2e-4;
  double min_learning_rate_ratio = 0.1;  // the cosine ends at learning_rate × this
  int32_t warmup_steps = -1;             // -1: a tenth of the steps, at most 100
  double weight_decay = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double clip_norm = 1.0;                // 0: no clipping
  int32_t micro_batch = 4;               // rows per forward
  int32_t grad_accumulation = 1;         // forwards per optimizer step
  int32_t max_length = 256;              // tokens per packed row
  double eval_fraction = 0.1;
  int32_t eval_every = 10;               // steps; 0: only at the end
  int32_t checkpoint_every = 10;         // steps; 0: only at the end
  int64_t memory_budget_mib = 0;         // 0: no limit
  uint64_t seed = 0;                     // data split and order, dropout
  // A PEFT adapter to start from instead of a fresh one (a federated round's
  // global version); its rank, alpha and targets must be those of `lora`.
  std::string init_adapter;
  // FedProx (Li et al., "Federated Optimization in Heterogeneous Networks"):
  // the loss gains μ/2·‖w − w₀‖², w₀ the adapter the run started from, so a
  // device with data unlike the others' strays less from the global version.
  // 0: off.
  double proximal_mu = 0.0;

  absl::Status Validate() const;
};

// What the trainer will run with, chosen from the options and the budget.
struct TrainingPlan {
  int32_t micro_batch = 0;
  int32_t grad_accumulation = 0;
  int32_t max_length = 0;
  bool recompute_layers = false;
  uint64_t estimated_bytes = 0;  // activations, logits and optimizer state of one step
  std::string reason;            // how the budget shaped it, in words

  std::string Describe() const;
};

// The plan for `model`: InvalidArgument for bad options; ResourceExhausted
// when not even one row of 32 tokens fits the budget.
absl::StatusOr<TrainingPlan> PlanTraining(const engine::LlamaConfig& model, const TrainerOptions& options);
// Bytes one step needs under `plan` (an estimate from the model's shape).
uint64_t EstimateStepBytes(const engine::LlamaConfig& model, const engine::LoraConfig& lora, int32_t micro_batch,
                           int32_t max_length, bool recompute_layers);

struct StepReport {
  int32_t step = 0;           // steps done, this one included
  double loss = 0.0;          // mean cross-entropy of the step's labelled tokens
  double learning_rate = 0.0;
  double grad_norm = 0.0;     // before clipping
  int64_t tokens = 0;         // tokens run through the model
  double seconds = 0.0;
  bool skipped = false;       // a non-finite loss or gradient: the adapter was left as it was
  std::optional<double> eval_loss;
};

class LoraTrainer {
 public:
  // Plans, reads and packs the data, creates the adapter (or resumes from
  // out_dir's checkpoint). `base` must outlive the trainer. FailedPrecondition
  // when out_dir holds a checkpoint of other data or options.
  static absl::StatusOr<std::unique_ptr<LoraTrainer>> Create(const engine::LlamaModel& base,
                                                             const std::string& data_path,
                                                             const TrainerOptions& options,
                                                             const std::string& out_dir);
  ~LoraTrainer();

  int32_t step() const;
  bool done() const;
  bool resumed() const;
  const TrainingPlan& plan() const;
  const Dataset& data() const;
  const engine::LoraAdapter& adapter() const;

  // One optimizer step, then evaluation and a checkpoint when they are due
  // (always after the last step). FailedPrecondition once done().
  absl::StatusOr<StepReport> Step();
  // Mean cross-entropy of the held-out rows; nullopt without any.
  absl::StatusOr<std::optional<double>> EvalLoss() const;
  // The checkpoint and the PEFT adapter into out_dir, atomically.
  absl::Status Save() const;

 private:
  struct Impl;
  explicit LoraTrainer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgellm::train

#endif  // EDGELLM_TRAIN_TRAINER_H_
