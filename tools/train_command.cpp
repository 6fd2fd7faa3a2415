// `edgellm train`: train a LoRA adapter on local JSONL data and write it to a
// directory in the PEFT layout, printing the loss curve as it goes.
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "common/str_cat.h"
#include "daemon/engine/engine.h"
#include "daemon/train/trainer.h"
#include "tools/commands.h"

namespace edgellm::tools {
namespace {

struct TrainArgs {
  std::string model;
  std::string data;
  std::string out;
  std::string targets = "q_proj,v_proj";
  int32_t threads = 0;
  bool fresh = false;
  bool json = false;
  train::TrainerOptions options;
};

absl::Status RunTrain(TrainArgs args) {
  auto targets = engine::ParseLoraTargets(args.targets);
  if (!targets.ok()) return targets.status();
  args.options.lora.targets = *targets;
  engine::ModelOptions model_options;
  model_options.threads = args.threads;
  auto model = engine::LlamaModel::Load(args.model, model_options);
  if (!model.ok()) return model.status();
  const std::filesystem::path checkpoint = std::filesystem::path(args.out) / "checkpoint.safetensors";
  if (args.fresh) std::filesystem::remove(checkpoint);

  auto trainer = train::LoraTrainer::Create(**model, args.data, args.options, args.out);
  if (!trainer.ok()) return trainer.status();
  train::LoraTrainer& t = **trainer;
  const train::Dataset& data = t.data();
  for (const train::DataProblem& p : data.problems) {
    std::cerr << args.data << ":" << p.line << ": skipped: " << p.reason << "\n";
  }
  if (args.json) {
    // One JSON object per line, for a supervisor (edgellmd) to read.
    std::cout << nlohmann::json({{"event", "plan"},
                                 {"plan", t.plan().Describe()},
                                 {"examples", data.examples},
                                 {"train_rows", data.train.size()},
                                 {"eval_rows", data.eval.size()},
                                 {"skipped_lines", data.problems.size()},
                                 {"step", t.step()},
                                 {"steps", args.options.steps}})
              << std::endl;
  } else {
    std::cout << absl::StrFormat("model %s (%s, %d layers); data %s: %d examples -> %d training rows, %d held out\n",
                                 args.model, (*model)->weight_type(), (*model)->config().n_layer, args.data,
                                 data.examples, data.train.size(), data.eval.size());
    std::cout << absl::StrFormat("LoRA rank %d alpha %g on %s: %d trainable values%s\n", args.options.lora.rank,
                                 args.options.lora.alpha, args.targets, t.adapter().parameter_count(),
                                 args.options.lora.freeze_a ? " (A frozen: FFA-LoRA)" : "");
    std::cout << "plan: " << t.plan().Describe() << "\n";
    if (t.resumed()) std::cout << "resuming from the checkpoint at step " << t.step() << "\n";
  }
  if (!t.resumed() && !args.json) {
    auto eval = t.EvalLoss();
    if (!eval.ok()) return eval.status();
    if (eval->has_value()) std::cout << absl::StrFormat("step 0 eval_loss %.4f\n", **eval);
  }
  while (!t.done()) {
    auto report = t.Step();
    if (!report.ok()) return report.status();
    if (args.json) {
      nlohmann::json step = {{"event", "step"},        {"step", report->step},
                             {"steps", args.options.steps}, {"loss", report->loss},
                             {"learning_rate", report->learning_rate}, {"grad_norm", report->grad_norm},
                             {"tokens", report->tokens},  {"seconds", report->seconds},
                             {"skipped", report->skipped}};
      if (report->eval_loss) step["eval_loss"] = *report->eval_loss;
      std::cout << step.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
      continue;
    }
    std::string line = absl::StrFormat("step %d/%d loss %.4f lr %.3g grad_norm %.3f tokens %d %.2f s (%.0f tok/s)",
                                       report->step, args.options.steps, report->loss, report->learning_rate,
                                       report->grad_norm, report->tokens, report->seconds,
                                       static_cast<double>(report->tokens) / std::max(report->seconds, 1e-9));
    if (report->eval_loss) line += absl::StrFormat(" eval_loss %.4f", *report->eval_loss);
    if (report->skipped) line += " (not finite: update skipped)";
    std::cout << line << std::endl;
  }
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(std::filesystem::path(args.out) / "adapter_model.safetensors", ec);
  if (args.json) {
    std::cout << nlohmann::json({{"event", "done"}, {"adapter", args.out}, {"adapter_bytes", bytes}}) << std::endl;
    return absl::OkStatus();
  }
  std::cout << absl::StrFormat("adapter written to %s (%d bytes; the model is %d bytes)\n", args.out, bytes,
                               std::filesystem::file_size(args.model, ec));
  return absl::OkStatus();
}

}  // namespace

void AddTrainCommand(CLI::App& app, absl::Status* result) {
  auto args = std::make_shared<TrainArgs>();
  train::TrainerOptions& o = args->options;
  CLI::App* cmd = app.add_subcommand("train", "Train a LoRA adapter on local JSONL data (written in the PEFT layout)");
  cmd->add_option("-m,--model", args->model, "GGUF base model (any supported type; it stays frozen)")->required();
  cmd->add_option("--data", args->data, "JSONL: {\"text\": ...} or {\"prompt\": ..., \"completion\": ...} per line")
      ->required();
  cmd->add_option("-o,--out", args->out, "Directory for the adapter and the checkpoint (a run there resumes)")
      ->required();
  cmd->add_option("--steps", o.steps, "Optimizer steps")->capture_default_str();
  cmd->add_option("--lr", o.learning_rate, "Peak learning rate")->capture_default_str();
  cmd->add_option("--min-lr-ratio", o.min_learning_rate_ratio, "The cosine ends at lr x this")->capture_default_str();
  cmd->add_option("--warmup", o.warmup_steps, "Warm-up steps (default: a tenth of the steps, at most 100)");
  cmd->add_option("--weight-decay", o.weight_decay, "AdamW weight decay")->capture_default_str();
  cmd->add_option("--clip", o.clip_norm, "Clip gradients to this global norm; 0 is off")->capture_default_str();
  cmd->add_option("--proximal-mu", o.proximal_mu,
                  "FedProx: add mu/2 * |w - w0|^2 to the loss, w0 the starting adapter (0: off)")
      ->capture_default_str();
  cmd->add_option("--rank", o.lora.rank, "LoRA rank")->capture_default_str();
  cmd->add_option("--alpha", o.lora.alpha, "LoRA alpha (scale alpha / rank)")->capture_default_str();
  cmd->add_option("--dropout", o.lora.dropout, "Dropout on the adapter's input")->capture_default_str();
  cmd->add_option("--targets", args->targets, "Adapted projections: all, or a comma-separated list")
      ->capture_default_str();
  cmd->add_flag("--freeze-a", o.lora.freeze_a, "Keep A as initialised from --lora-seed; train B only (FFA-LoRA)");
  cmd->add_option("--lora-seed", o.lora.seed, "Seed of A's initialisation")->capture_default_str();
  cmd->add_option("--init-adapter", o.init_adapter,
                  "Start from this PEFT adapter (same rank, alpha and targets) instead of a fresh one");
  cmd->add_option("--micro-batch", o.micro_batch, "Rows per forward")->capture_default_str();
  cmd->add_option("--accumulate", o.grad_accumulation, "Forwards per optimizer step")->capture_default_str();
  cmd->add_option("--max-length", o.max_length, "Tokens per packed row")->capture_default_str();
  cmd->add_option("--eval-fraction", o.eval_fraction, "Share of the examples held out")->capture_default_str();
  cmd->add_option("--eval-every", o.eval_every, "Evaluate every N steps (0: at the end)")->capture_default_str();
  cmd->add_option("--checkpoint-every", o.checkpoint_every, "Checkpoint every N steps (0: at the end)")
      ->capture_default_str();
  cmd->add_option("--memory-budget", o.memory_budget_mib, "MiB a step may use; the plan shrinks to fit (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of the data split, order and dropout")->capture_default_str();
  cmd->add_option("-t,--threads", args->threads, "Compute threads (default: one per core)");
  cmd->add_flag("--fresh", args->fresh, "Ignore a checkpoint in --out and start over");
  cmd->add_flag("--json", args->json, "Report progress as one JSON object per line (plan, step..., done)");
  cmd->callback([args, result] { *result = RunTrain(*args); });
}

}  // namespace edgellm::tools
