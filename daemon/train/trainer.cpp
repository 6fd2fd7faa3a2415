#include "daemon/train/trainer.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "absl/strings/str_format.h"
#include "common/hashing.h"
#include "common/read_file.h"
#include "common/str_cat.h"
#include "common/status_macros.h"
#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/safetensors.h"
#include "daemon/engine/thread_pool.h"
#include "daemon/train/fused_ops.h"
#include "daemon/train/lora_model.h"
#include "daemon/train/optimizer.h"
#include "daemon/train/tensor_block_cache.h"

namespace edgellm::train {
namespace {

constexpr const char* kCheckpointFile = "checkpoint.safetensors";
constexpr int32_t kShortestRows = 32;

// Everything that decides the numbers a run produces, but the data (which has
// its own fingerprint) and the thread count.
uint64_t OptionsFingerprint(const TrainerOptions& o, const TrainingPlan& plan, const engine::LlamaModel& base) {
  std::string text = edgellm::StrCat(
      "lora ", o.lora.rank, " ", o.lora.alpha, " ", o.lora.dropout, " ", o.lora.use_rslora, " ", o.lora.freeze_a, " ",
      o.lora.seed, " steps ", o.steps, " lr ", o.learning_rate, " ", o.min_learning_rate_ratio, " ", o.warmup_steps,
      " wd ", o.weight_decay, " betas ", o.beta1, " ", o.beta2, " clip ", o.clip_norm, " mu ", o.proximal_mu,
      " seed ", o.seed, " plan ",
      plan.micro_batch, " ", plan.grad_accumulation, " ", plan.max_length, " model ", base.parameter_count(), " ",
      base.weight_type(), " ", base.gguf().file_size());
  for (engine::LoraTarget t : o.lora.targets) text += edgellm::StrCat(" ", engine::LoraTargetName(t));
  return Fnv1a(text);
}

// Starts `adapter` from the weights of the PEFT adapter in `dir`, which must
// have the same rank, alpha and projections.
absl::Status StartFrom(const std::string& dir, const engine::LlamaConfig& model, engine::LoraAdapter& adapter) {
  EDGELLM_ASSIGN_OR_RETURN(engine::LoraAdapter init, engine::LoraAdapter::Load(dir, model));
  const engine::LoraConfig& want = adapter.config();
  if (init.config().rank != want.rank || init.config().alpha != want.alpha ||
      init.config().targets != want.targets || init.config().use_rslora != want.use_rslora) {
    return absl::InvalidArgumentError(edgellm::StrCat("train: the adapter in ", dir, " has rank ", init.config().rank,
                                                      " alpha ", init.config().alpha,
                                                      "; training asks for rank ", want.rank, " alpha ", want.alpha,
                                                      " on the same projections"));
  }
  for (int32_t layer = 0; layer < adapter.n_layer(); ++layer) {
    for (engine::LoraTarget target : want.targets) {
      engine::LoraWeights* to = adapter.Find(layer, target);
      const engine::LoraWeights* from = init.Find(layer, target);
      to->a = from->a;
      to->b = from->b;
    }
  }
  return absl::OkStatus();
}

std::string Mib(uint64_t bytes) { return absl::StrFormat("%.0f MiB", static_cast<double>(bytes) / (1 << 20)); }

}  // namespace

absl::Status TrainerOptions::Validate() const {
  EDGELLM_RETURN_IF_ERROR(lora.Validate());
  auto bad = [](auto&&... parts) { return absl::InvalidArgumentError(edgellm::StrCat("train: ", parts...)); };
  if (steps < 1) return bad("steps ", steps, " is not positive");
  if (!(learning_rate > 0.0) || !std::isfinite(learning_rate)) {
    return bad("learning rate ", learning_rate, " is not positive");
  }
  if (!(min_learning_rate_ratio >= 0.0 && min_learning_rate_ratio <= 1.0)) {
    return bad("min learning rate ratio ", min_learning_rate_ratio, " is outside [0, 1]");
  }
  if (!(beta1 >= 0.0 && beta1 < 1.0) || !(beta2 >= 0.0 && beta2 < 1.0)) return bad("betas must be in [0, 1)");
  if (weight_decay < 0.0 || clip_norm < 0.0) return bad("weight decay and clip norm must not be negative");
  if (!(proximal_mu >= 0.0) || !std::isfinite(proximal_mu)) return bad("proximal mu ", proximal_mu, " is negative");
  if (micro_batch < 1 || grad_accumulation < 1) return bad("micro-batch and accumulation must be at least 1");
  if (max_length < kShortestRows) return bad("max length ", max_length, " is below ", kShortestRows);
  if (eval_every < 0 || checkpoint_every < 0 || memory_budget_mib < 0) return bad("negative intervals or budget");
  return absl::OkStatus();
}

std::string TrainingPlan::Describe() const {
  return absl::StrFormat(
      "micro-batch %d x %d tokens, %d accumulated per step, %s; about %s a step besides the model (%s)", micro_batch,
      max_length, grad_accumulation,
                         recompute_layers ? "layers recomputed in the backward pass" : "activations kept",
                         Mib(estimated_bytes), reason);
}

uint64_t EstimateStepBytes(const engine::LlamaConfig& m, const engine::LoraConfig& lora, int32_t micro_batch,
                           int32_t max_length, bool recompute_layers) {
  const uint64_t tokens = static_cast<uint64_t>(micro_batch) * static_cast<uint64_t>(max_length);
  const uint64_t d = m.n_embd, ff = m.n_ff, heads = m.n_head;
  const uint64_t q_dim = heads * static_cast<uint64_t>(m.head_dim);
  const uint64_t kv_dim = static_cast<uint64_t>(m.n_head_kv) * static_cast<uint64_t>(m.head_dim);
  // Floats a layer keeps per token for its backward (lora_model.cpp, fused_ops.h,
  // fused_attention.h): its input, the two normalized inputs, the residual
  // after attention, the rotated queries and keys, the values, the attention's
  // output and one log-sum-exp per head, the gate, up and gated MLP values,
  // and each adapter's A·x (and its input with dropout applied, and the mask).
  uint64_t per_token = 4 * d + 2 * q_dim + 2 * kv_dim + heads + 3 * ff;
  uint64_t lora_params = 0;
  for (engine::LoraTarget t : lora.targets) {
    const engine::ProjectionShape shape = engine::ShapeOf(m, t);
    per_token += static_cast<uint64_t>(lora.rank) + (lora.dropout > 0.0f ? 2 * static_cast<uint64_t>(shape.in) : 0);
    lora_params += static_cast<uint64_t>(lora.rank * (shape.in + shape.out)) * m.n_layer;
  }
  const uint64_t one_layer = tokens * per_token;
  // Kept for the backward pass (every layer's, or only each layer's input
  // and one layer recomputed at a time), plus the gradients of one layer's
  // activations while its backward runs.
  const uint64_t layers = (recompute_layers ? tokens * d * m.n_layer + one_layer : one_layer * m.n_layer) + one_layer;
  // One chunk of logits and the output's input gradient.
  const uint64_t logits =
      std::min<uint64_t>(tokens, kOutputLossChunkRows) * static_cast<uint64_t>(m.n_vocab) + tokens * d;
  const uint64_t optimizer = lora_params * 4;  // values, gradients, two moments
  // Each compute thread's two length × length tiles of scores (fused_attention.h).
  const uint64_t attention_tiles = 2 * static_cast<uint64_t>(max_length) * static_cast<uint64_t>(max_length) *
                                   static_cast<uint64_t>(engine::ThreadPool::Shared().size());
  return 4 * (layers + logits + optimizer + attention_tiles + tokens * d);
}

absl::StatusOr<TrainingPlan> PlanTraining(const engine::LlamaConfig& model, const TrainerOptions& options) {
  EDGELLM_RETURN_IF_ERROR(options.Validate());
  TrainingPlan plan;
  plan.micro_batch = options.micro_batch;
  plan.grad_accumulation = options.grad_accumulation;
  plan.max_length = options.max_length;
  const uint64_t budget = static_cast<uint64_t>(options.memory_budget_mib) << 20;
  if (budget == 0) {
    plan.estimated_bytes = EstimateStepBytes(model, options.lora, plan.micro_batch, plan.max_length, false);
    plan.reason = "no memory budget";
    return plan;
  }
  const int32_t rows_per_step = options.micro_batch * options.grad_accumulation;
  for (int32_t length = options.max_length; length >= kShortestRows; length /= 2) {
    for (int32_t micro = options.micro_batch; micro >= 1; micro /= 2) {
      for (bool recompute : {false, true}) {
        const uint64_t bytes = EstimateStepBytes(model, options.lora, micro, length, recompute);
        if (bytes > budget) continue;
        plan.micro_batch = micro;
        plan.grad_accumulation = (rows_per_step + micro - 1) / micro;
        plan.max_length = length;
        plan.recompute_layers = recompute;
        plan.estimated_bytes = bytes;
        const bool as_asked = micro == options.micro_batch && length == options.max_length && !recompute;
        plan.reason = as_asked ? edgellm::StrCat("fits the budget of ", Mib(budget))
                               : edgellm::StrCat("chosen to fit the budget of ", Mib(budget), "; asked for ",
                                                 options.micro_batch, " x ", options.max_length);
        return plan;
      }
    }
  }
  return absl::ResourceExhaustedError(edgellm::StrCat(
      "train: not even one row of ", kShortestRows, " tokens fits the memory budget of ", Mib(budget), " (it needs ",
      Mib(EstimateStepBytes(model, options.lora, 1, kShortestRows, true)), ")"));
}

struct LoraTrainer::Impl {
  Impl(const engine::LlamaModel& base, TrainerOptions options, std::string out_dir)
      : base(base), options(std::move(options)), out_dir(std::move(out_dir)) {}

  const engine::LlamaModel& base;
  TrainerOptions options;
  std::string out_dir;
  TrainingPlan plan;
  Dataset data;
  std::optional<engine::LoraAdapter> adapter;
  std::unique_ptr<LoraModel> model;
  std::unique_ptr<AdamW> optimizer;
  std::vector<at::Tensor> anchor;  // FedProx's w₀: the trainable weights as the run began
  int32_t warmup = 0;
  int32_t step = 0;
  bool resumed = false;
  uint64_t options_fingerprint = 0;
  int64_t cached_epoch = -1;
  std::vector<size_t> epoch_order;

  size_t RowAt(int64_t cursor);
  TrainingBatch MakeBatch(const std::vector<PackedRow>& rows, const std::vector<size_t>& indices) const;
  absl::Status Resume(const std::string& path);
  absl::Status Save() const;
};

size_t LoraTrainer::Impl::RowAt(int64_t cursor) {
  const int64_t n = static_cast<int64_t>(data.train.size());
  const int64_t epoch = cursor / n;
  if (epoch != cached_epoch) {
    epoch_order.resize(static_cast<size_t>(n));
    std::iota(epoch_order.begin(), epoch_order.end(), 0);
    std::mt19937_64 rng(MixSeeds(options.seed, static_cast<uint64_t>(epoch)));
    for (size_t i = epoch_order.size(); i > 1; --i) std::swap(epoch_order[i - 1], epoch_order[rng() % i]);
    cached_epoch = epoch;
  }
  return epoch_order[static_cast<size_t>(cursor % n)];
}

TrainingBatch LoraTrainer::Impl::MakeBatch(const std::vector<PackedRow>& rows,
                                           const std::vector<size_t>& indices) const {
  size_t length = 0;
  for (size_t i : indices) length = std::max(length, rows[i].tokens.size());
  const int64_t n = static_cast<int64_t>(indices.size()), t = static_cast<int64_t>(length);
  TrainingBatch batch;
  batch.tokens = at::zeros({n, t}, at::kLong);
  batch.labels = at::full({n, t}, -1, at::kLong);
  batch.positions = at::zeros({n, t}, at::kLong);
  batch.segments = at::full({n, t}, -1, at::kLong);
  int64_t* tokens = batch.tokens.data_ptr<int64_t>();
  int64_t* labels = batch.labels.data_ptr<int64_t>();
  int64_t* positions = batch.positions.data_ptr<int64_t>();
  int64_t* segments = batch.segments.data_ptr<int64_t>();
  for (int64_t r = 0; r < n; ++r) {
    const PackedRow& row = rows[indices[static_cast<size_t>(r)]];
    for (size_t i = 0; i < row.tokens.size(); ++i) {
      tokens[r * t + static_cast<int64_t>(i)] = row.tokens[i];
      labels[r * t + static_cast<int64_t>(i)] = row.labels[i];
      positions[r * t + static_cast<int64_t>(i)] = row.positions[i];
      segments[r * t + static_cast<int64_t>(i)] = row.segments[i];
    }
  }
  return batch;
}

absl::Status LoraTrainer::Impl::Save() const {
  const std::filesystem::path dir(out_dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::PermissionDeniedError(edgellm::StrCat("train: cannot create ", out_dir, ": ", ec.message()));
  engine::SafetensorsWriter writer;
  writer.SetMetadata("edgellm.step", std::to_string(step));
  writer.SetMetadata("edgellm.data_fingerprint", std::to_string(data.fingerprint));
  writer.SetMetadata("edgellm.options_fingerprint", std::to_string(options_fingerprint));
  const int64_t rank = adapter->config().rank;
  for (int32_t layer = 0; layer < adapter->n_layer(); ++layer) {
    for (engine::LoraTarget target : adapter->config().targets) {
      const engine::LoraWeights& w = *adapter->Find(layer, target);
      EDGELLM_RETURN_IF_ERROR(writer.Add("adapter/" + engine::PeftTensorName(layer, target, false), {rank, w.in}, w.a));
      EDGELLM_RETURN_IF_ERROR(writer.Add("adapter/" + engine::PeftTensorName(layer, target, true), {w.out, rank}, w.b));
    }
  }
  const std::vector<std::string>& names = model->trainable_names();
  for (size_t i = 0; i < names.size(); ++i) {
    for (const auto& [prefix, moments] : {std::pair{"adam_m/", &optimizer->first_moments()},
                                          std::pair{"adam_v/", &optimizer->second_moments()}}) {
      const at::Tensor& m = (*moments)[i];
      EDGELLM_RETURN_IF_ERROR(writer.Add(prefix + names[i], m.sizes().vec(),
                                         {m.data_ptr<float>(), static_cast<size_t>(m.numel())}));
    }
  }
  EDGELLM_RETURN_IF_ERROR(writer.Write((dir / kCheckpointFile).string()));
  return adapter->Save(out_dir, std::filesystem::path(base.gguf().name()).filename().string());
}

absl::Status LoraTrainer::Impl::Resume(const std::string& path) {
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<engine::SafetensorsReader> reader, engine::SafetensorsReader::Open(path));
  auto meta = [&](const char* key) {
    auto it = reader->metadata().find(key);
    return it == reader->metadata().end() ? std::string() : it->second;
  };
  if (meta("edgellm.data_fingerprint") != std::to_string(data.fingerprint) ||
      meta("edgellm.options_fingerprint") != std::to_string(options_fingerprint)) {
    return absl::FailedPreconditionError(edgellm::StrCat(
        "train: ", path, " is a checkpoint of other data or options; remove it (or train into another directory)"));
  }
  const int64_t saved_step = std::strtoll(meta("edgellm.step").c_str(), nullptr, 10);
  if (saved_step < 0 || saved_step > options.steps) {
    return absl::InvalidArgumentError(edgellm::StrCat("train: ", path, " holds step ", saved_step));
  }
  auto read_into = [&](const std::string& name, float* out, int64_t count) -> absl::Status {
    const engine::SafetensorsTensor* t = reader->Find(name);
    if (t == nullptr || t->element_count() != count) {
      return absl::InvalidArgumentError(edgellm::StrCat("train: ", path, " lacks ", name, " of ", count, " values"));
    }
    engine::ReadFloats(*t, absl::MakeSpan(out, static_cast<size_t>(count)));
    return absl::OkStatus();
  };
  for (int32_t layer = 0; layer < adapter->n_layer(); ++layer) {
    for (engine::LoraTarget target : adapter->config().targets) {
      engine::LoraWeights& w = *adapter->Find(layer, target);
      EDGELLM_RETURN_IF_ERROR(read_into("adapter/" + engine::PeftTensorName(layer, target, false), w.a.data(),
                                        static_cast<int64_t>(w.a.size())));
      EDGELLM_RETURN_IF_ERROR(read_into("adapter/" + engine::PeftTensorName(layer, target, true), w.b.data(),
                                        static_cast<int64_t>(w.b.size())));
    }
  }
  const std::vector<std::string>& names = model->trainable_names();
  for (size_t i = 0; i < names.size(); ++i) {
    at::Tensor& m = optimizer->first_moments()[i];
    at::Tensor& v = optimizer->second_moments()[i];
    EDGELLM_RETURN_IF_ERROR(read_into("adam_m/" + names[i], m.data_ptr<float>(), m.numel()));
    EDGELLM_RETURN_IF_ERROR(read_into("adam_v/" + names[i], v.data_ptr<float>(), v.numel()));
  }
  step = static_cast<int32_t>(saved_step);
  optimizer->set_steps(saved_step);
  resumed = true;
  return absl::OkStatus();
}

LoraTrainer::LoraTrainer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LoraTrainer::~LoraTrainer() = default;

absl::StatusOr<std::unique_ptr<LoraTrainer>> LoraTrainer::Create(const engine::LlamaModel& base,
                                                                 const std::string& data_path,
                                                                 const TrainerOptions& options,
                                                                 const std::string& out_dir) {
  auto impl = std::make_unique<Impl>(base, options, out_dir);
  EDGELLM_ASSIGN_OR_RETURN(impl->plan, PlanTraining(base.config(), options));
  DatasetOptions data_options;
  data_options.max_length = impl->plan.max_length;
  data_options.eval_fraction = options.eval_fraction;
  data_options.seed = options.seed;
  EDGELLM_ASSIGN_OR_RETURN(impl->data, LoadJsonlDataset(data_path, base.tokenizer(), data_options));
  if (impl->data.train.empty()) return absl::InvalidArgumentError("train: no training rows after the held-out split");
  EDGELLM_ASSIGN_OR_RETURN(impl->adapter, engine::LoraAdapter::Create(options.lora, base.config()));
  if (!options.init_adapter.empty()) {
    EDGELLM_RETURN_IF_ERROR(StartFrom(options.init_adapter, base.config(), *impl->adapter));
  }
  impl->warmup = options.warmup_steps >= 0 ? options.warmup_steps : std::min(100, options.steps / 10);
  impl->options_fingerprint = OptionsFingerprint(options, impl->plan, base);
  if (!options.init_adapter.empty()) {
    // A checkpoint resumes only a run that started from the same weights.
    EDGELLM_ASSIGN_OR_RETURN(std::string init_bytes,
                             ReadFileToString((std::filesystem::path(options.init_adapter) /
                                               "adapter_model.safetensors").string(), "init adapter"));
    impl->options_fingerprint = MixSeeds(impl->options_fingerprint, Fnv1a(init_bytes));
  }
  // The frozen products (nearly all the work) run on the engine's pool.
  // LibTorch's OpenMP threads would spin between its operations against that
  // pool: with two of them on 2 cores a step took 35% longer.
  at::set_num_threads(1);
  UseTensorBlockCache();
  impl->model = std::make_unique<LoraModel>(base, *impl->adapter, impl->plan.recompute_layers);
  impl->optimizer = std::make_unique<AdamW>(
      impl->model->trainable(), AdamWOptions{options.beta1, options.beta2, 1e-8, options.weight_decay});
  if (options.proximal_mu > 0) {
    // Before a checkpoint is resumed: w₀ is where the run began, not where it stopped.
    for (const at::Tensor& p : impl->model->trainable()) impl->anchor.push_back(p.detach().clone());
  }
  const std::string checkpoint = (std::filesystem::path(out_dir) / kCheckpointFile).string();
  if (std::filesystem::exists(checkpoint)) EDGELLM_RETURN_IF_ERROR(impl->Resume(checkpoint));
  return std::unique_ptr<LoraTrainer>(new LoraTrainer(std::move(impl)));
}

int32_t LoraTrainer::step() const { return impl_->step; }
bool LoraTrainer::done() const { return impl_->step >= impl_->options.steps; }
bool LoraTrainer::resumed() const { return impl_->resumed; }
const TrainingPlan& LoraTrainer::plan() const { return impl_->plan; }
const Dataset& LoraTrainer::data() const { return impl_->data; }
const engine::LoraAdapter& LoraTrainer::adapter() const { return *impl_->adapter; }
absl::Status LoraTrainer::Save() const { return impl_->Save(); }

absl::StatusOr<std::optional<double>> LoraTrainer::EvalLoss() const {
  const std::vector<PackedRow>& rows = impl_->data.eval;
  if (rows.empty()) return std::optional<double>();
  double sum = 0.0;
  int64_t tokens = 0;
  try {
    for (size_t begin = 0; begin < rows.size(); begin += static_cast<size_t>(impl_->plan.micro_batch)) {
      std::vector<size_t> indices;
      for (size_t i = begin; i < std::min(rows.size(), begin + impl_->plan.micro_batch); ++i) {
        indices.push_back(i);
        tokens += rows[i].loss_tokens();
      }
      sum += impl_->model->Loss(impl_->MakeBatch(rows, indices));
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(edgellm::StrCat("train: evaluation: ", e.what_without_backtrace()));
  }
  return std::optional<double>(tokens > 0 ? sum / static_cast<double>(tokens) : 0.0);
}

absl::StatusOr<StepReport> LoraTrainer::Step() {
  Impl& s = *impl_;
  if (done()) return absl::FailedPreconditionError("train: all steps are done");
  const auto start = std::chrono::steady_clock::now();
  StepReport report;
  const int64_t rows_per_step = static_cast<int64_t>(s.plan.micro_batch) * s.plan.grad_accumulation;
  std::vector<TrainingBatch> batches;
  int64_t labelled = 0;
  for (int32_t m = 0; m < s.plan.grad_accumulation; ++m) {
    std::vector<size_t> indices;
    for (int32_t r = 0; r < s.plan.micro_batch; ++r) {
      const size_t row = s.RowAt(s.step * rows_per_step + static_cast<int64_t>(m) * s.plan.micro_batch + r);
      indices.push_back(row);
      labelled += s.data.train[row].loss_tokens();
      report.tokens += static_cast<int64_t>(s.data.train[row].tokens.size());
    }
    batches.push_back(s.MakeBatch(s.data.train, indices));
  }
  for (const at::Tensor& p : s.model->trainable()) {
    at::Tensor param = p;
    param.mutable_grad() = at::Tensor();
  }
  double loss_sum = 0.0;
  try {
    for (size_t m = 0; m < batches.size(); ++m) {
      if (labelled == 0) break;
      const DropoutSeed dropout{s.adapter->config().dropout,
                                MixSeeds(s.options.seed, static_cast<uint64_t>(s.step) * 4096 + m)};
      loss_sum += s.model->LossAndBackward(batches[m], dropout, 1.0 / static_cast<double>(labelled));
    }
    report.loss = labelled > 0 ? loss_sum / static_cast<double>(labelled) : 0.0;
    if (s.options.proximal_mu > 0) {
      // The gradient of μ/2·‖w − w₀‖² is μ·(w − w₀).
      const std::vector<at::Tensor>& params = s.model->trainable();
      for (size_t i = 0; i < params.size(); ++i) {
        at::Tensor param = params[i];
        const at::Tensor pull = (param.detach() - s.anchor[i]) * s.options.proximal_mu;
        if (param.grad().defined()) {
          param.mutable_grad().add_(pull);
        } else {
          param.mutable_grad() = pull;
        }
      }
    }
    report.grad_norm = ClipGradients(s.model->trainable(), s.options.clip_norm);
    report.learning_rate = ScheduledLearningRate(s.step, s.options.steps, s.warmup, s.options.learning_rate,
                                                 s.options.min_learning_rate_ratio);
    report.skipped = !std::isfinite(report.loss) || !std::isfinite(report.grad_norm) || labelled == 0;
    if (!report.skipped) s.optimizer->Step(report.learning_rate);
  } catch (const c10::Error& e) {
    return absl::InternalError(edgellm::StrCat("train: step ", s.step + 1, ": ", e.what_without_backtrace()));
  }
  ++s.step;
  report.step = s.step;
  const bool last = done();
  if (last || (s.options.eval_every > 0 && s.step % s.options.eval_every == 0)) {
    EDGELLM_ASSIGN_OR_RETURN(report.eval_loss, EvalLoss());
  }
  if (last || (s.options.checkpoint_every > 0 && s.step % s.options.checkpoint_every == 0)) {
    EDGELLM_RETURN_IF_ERROR(s.Save());
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace edgellm::train
