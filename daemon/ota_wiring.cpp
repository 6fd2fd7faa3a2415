#include "daemon/ota_wiring.h"

#include <filesystem>

#include "common/str_cat.h"
#include "daemon/aggregator_identity.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/ops/memory_guard.h"
#include "daemon/ota/release_store.h"
#include "daemon/serve/release_evaluation.h"
#include "daemon/serve/smoke_test.h"
#include "daemon/train/held_out_set.h"

namespace edgellm {
namespace {

using Adapter = std::shared_ptr<const engine::LoraAdapter>;

// The adapter in `dir` for `model`; nullptr for "" (the bare base model).
absl::StatusOr<Adapter> LoadAdapter(const std::string& dir, const engine::LlamaModel& model) {
  if (dir.empty()) return nullptr;
  absl::StatusOr<engine::LoraAdapter> adapter = engine::LoraAdapter::Load(dir, model.config());
  if (!adapter.ok()) return adapter.status();
  return std::make_shared<const engine::LoraAdapter>(*std::move(adapter));
}

// The base models the agent's versions run on: the one serving, and a new
// one loaded beside it for its test (memory permitting) until it is served
// or given up. The agent's thread only.
class BaseModels {
 public:
  BaseModels(const ops::DaemonConfig& args, const ModelLoader& loader, serve::InferenceCore& core,
             std::function<void(const std::string&)> log)
      : args_(args), loader_(loader), core_(core), log_(std::move(log)) {}

  // The model `files` runs on: the one serving, the candidate, or (when
  // `load` says so) a new one — refused with ResourceExhausted when it
  // would not fit beside the one serving.
  absl::StatusOr<std::shared_ptr<serve::ServedModel>> For(const ota::ServedFiles& files, bool load) {
    const std::string file = files.base.empty() ? args_.model : files.base;
    std::shared_ptr<serve::ServedModel> serving = core_.Current().model;
    if (serving->file() == file) return serving;
    if (candidate_ && candidate_->file() == file) return candidate_;
    if (!load) return absl::FailedPreconditionError(StrCat(file, " is not loaded"));
    candidate_.reset();
    const uint64_t needed = loader_.BytesToLoad(file, *serving);
    const uint64_t reserve = static_cast<uint64_t>(args_.memory_low_mib) << 20;
    if (absl::StatusOr<uint64_t> available = ops::SystemMemory().AvailableBytes();
        available.ok() && *available < needed + reserve) {
      return absl::ResourceExhaustedError(
          StrCat("the base model needs about ", needed >> 20, " MiB beside the one serving (weights and KV cache), and ",
                 reserve >> 20, " MiB must stay free (memory_low_mib); ", *available >> 20, " MiB are available"));
    }
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::shared_ptr<serve::ServedModel>> loaded = loader_.Load(file);
    if (!loaded.ok()) return loaded.status();
    log_(StrCat("ota: loaded ", file, " beside the model serving in ",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), " s"));
    candidate_ = *std::move(loaded);
    return candidate_;
  }
  // Serves `files` as `version`; the candidate, if it was that, is served now.
  absl::Status Serve(const ota::ServedFiles& files, uint64_t version) {
    absl::StatusOr<std::shared_ptr<serve::ServedModel>> model = For(files, /*load=*/true);
    if (!model.ok()) return model.status();
    absl::StatusOr<Adapter> adapter = LoadAdapter(files.adapter, (*model)->model());
    if (!adapter.ok()) return adapter.status();
    core_.SetModelVersion(files.adapter.empty() && files.base.empty() ? std::string("base") : StrCat("v", version),
                          *std::move(adapter), *model);
    candidate_.reset();
    return absl::OkStatus();
  }
  void ForgetCandidate() { candidate_.reset(); }

 private:
  const ops::DaemonConfig& args_;
  const ModelLoader& loader_;
  serve::InferenceCore& core_;
  const std::function<void(const std::string&)> log_;
  std::shared_ptr<serve::ServedModel> candidate_;
};

// A version's scores on `spec`: held-out examples from `examples_file` and the exact-match prompts.
absl::StatusOr<serve::VersionScores> Score(const serve::ServedModel& model, Adapter adapter,
                                           const std::string& examples_file, const release::EvaluationSpec& spec) {
  std::vector<train::HeldOutExample> examples;
  if (!spec.examples_jsonl.empty()) {
    const int32_t max_length = std::min(spec.max_length, model.scheduler().context_limit());
    absl::StatusOr<train::HeldOutSet> held_out =
        train::HeldOutSet::Load(examples_file, model.model().tokenizer(), max_length);
    if (!held_out.ok()) return held_out.status();
    examples = held_out->examples();
  }
  std::vector<serve::ExactMatchPrompt> prompts;
  for (const release::ExactMatchCase& c : spec.exact_match) prompts.push_back({c.prompt, c.expected, c.max_tokens});
  return serve::ScoreVersion(model.scheduler(), model.model(), std::move(adapter), examples, prompts);
}

// The candidate and the served version scored on `spec`, one after the other
// (each on its own base model).
absl::StatusOr<release::EvaluationFigures> EvaluateRelease(BaseModels& bases, const ota::ServedFiles& candidate,
                                                           const ota::ServedFiles& served,
                                                           const std::string& examples_file,
                                                           const release::EvaluationSpec& spec) {
  absl::StatusOr<std::shared_ptr<serve::ServedModel>> candidate_model = bases.For(candidate, /*load=*/true);
  if (!candidate_model.ok()) return candidate_model.status();
  absl::StatusOr<std::shared_ptr<serve::ServedModel>> served_model = bases.For(served, /*load=*/false);
  if (!served_model.ok()) return served_model.status();
  absl::StatusOr<Adapter> candidate_adapter = LoadAdapter(candidate.adapter, (*candidate_model)->model());
  if (!candidate_adapter.ok()) return candidate_adapter.status();
  absl::StatusOr<Adapter> served_adapter = LoadAdapter(served.adapter, (*served_model)->model());
  if (!served_adapter.ok()) return served_adapter.status();
  absl::StatusOr<serve::VersionScores> candidate_scores =
      Score(**candidate_model, *std::move(candidate_adapter), examples_file, spec);
  if (!candidate_scores.ok()) return candidate_scores.status();
  absl::StatusOr<serve::VersionScores> served_scores =
      Score(**served_model, *std::move(served_adapter), examples_file, spec);
  if (!served_scores.ok()) return served_scores.status();
  const auto mean = [](const train::LossSum& sum) {
    return sum.tokens > 0 ? sum.total / static_cast<double>(sum.tokens) : 0.0;
  };
  release::EvaluationFigures figures;
  figures.examples = candidate_scores->examples;
  figures.loss = mean(candidate_scores->loss);
  figures.baseline_loss = mean(served_scores->loss);
  figures.cases = static_cast<int32_t>(spec.exact_match.size());
  figures.exact_matches = candidate_scores->exact_matches;
  figures.baseline_exact_matches = served_scores->exact_matches;
  return figures;
}

// What the daemon's serving metrics count so far, as the live figures take it.
release::ServingTally ServingTallyOf(const serve::ServeMetrics& metrics) {
  release::ServingTally tally;
  tally.requests = metrics.RequestsEnded();
  // Codes without a series of their own (UNKNOWN, DATA_LOSS) count as INTERNAL.
  tally.errors = metrics.RequestsEndedWith(absl::StatusCode::kInternal);
  tally.refusals = metrics.RequestsEndedWith(absl::StatusCode::kResourceExhausted) +
                   metrics.RequestsEndedWith(absl::StatusCode::kUnavailable);
  tally.ttft_bounds = metrics.time_to_first_token.bounds();
  tally.ttft_cumulative = metrics.time_to_first_token.CumulativeCounts();
  return tally;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ota::OtaAgent>> StartOta(const ops::DaemonConfig& args, const std::string& model_name,
                                                         const ModelLoader& loader, serve::InferenceCore& core,
                                                         ops::MetricsRegistry& registry,
                                                         std::function<void(const std::string&)> log) {
  ota::OtaAgentConfig config;
  SetAggregatorIdentity(args, model_name, config);
  config.dir = args.ota_dir;
  config.base_model_path = args.model;
  config.release_keys = args.ota_release_keys;
  config.key_threshold = args.ota_key_threshold;
  config.poll_interval = std::chrono::milliseconds(static_cast<int64_t>(args.ota_poll_seconds * 1000));
  config.probation = std::chrono::seconds(static_cast<int64_t>(args.ota_probation_seconds));
  config.live_report_interval =
      std::chrono::milliseconds(static_cast<int64_t>(args.ota_live_report_seconds * 1000));
  auto bases = std::make_shared<BaseModels>(args, loader, core, log);
  ota::ServingHooks hooks;
  hooks.smoke_test = [bases, prompt = args.ota_smoke_prompt](const ota::ServedFiles& files) -> absl::Status {
    absl::StatusOr<std::shared_ptr<serve::ServedModel>> model = bases->For(files, /*load=*/true);
    if (!model.ok()) return model.status();
    absl::StatusOr<Adapter> adapter = LoadAdapter(files.adapter, (*model)->model());
    if (!adapter.ok()) return adapter.status();
    return serve::SmokeTest((*model)->scheduler(), (*model)->model(), *std::move(adapter), prompt);
  };
  hooks.serve = [bases](const ota::ServedFiles& files, uint64_t version) { return bases->Serve(files, version); };
  hooks.evaluate = [bases](const ota::ServedFiles& candidate, const ota::ServedFiles& served,
                           const std::string& examples_file, const release::EvaluationSpec& spec) {
    return EvaluateRelease(*bases, candidate, served, examples_file, spec);
  };
  hooks.forget_candidate = [bases] { bases->ForgetCandidate(); };
  if (serve::ServeMetrics* metrics = core.metrics()) hooks.tally = [metrics] { return ServingTallyOf(*metrics); };
  auto agent = ota::OtaAgent::Create(std::move(config), std::move(hooks), std::move(log));
  if (!agent.ok()) return agent.status();
  ota::OtaAgent* raw = agent->get();
  registry.AddCallbackGauge("edgellm_model_version", "The model version served (0: the base model, no release).",
                            [raw] { return static_cast<double>(raw->stats().version); });
  registry.AddCallbackGauge("edgellm_ota_release", "The release the served version came from.",
                            [raw] { return static_cast<double>(raw->stats().release); });
  registry.AddCallbackGauge("edgellm_ota_installs", "Releases installed and swapped in since start.",
                            [raw] { return static_cast<double>(raw->stats().installs); });
  registry.AddCallbackGauge("edgellm_ota_refusals", "Releases refused: signature, expiry, sha256, not newer.",
                            [raw] { return static_cast<double>(raw->stats().refusals); });
  registry.AddCallbackGauge("edgellm_ota_smoke_failures", "Installed releases that failed their smoke test.",
                            [raw] { return static_cast<double>(raw->stats().smoke_failures); });
  registry.AddCallbackGauge("edgellm_ota_eval_failures",
                            "Releases whose evaluation fell below its thresholds against the version served.",
                            [raw] { return static_cast<double>(raw->stats().eval_failures); });
  registry.AddCallbackGauge("edgellm_ota_base_installs", "Of those, base-model releases.",
                            [raw] { return static_cast<double>(raw->stats().base_installs); });
  registry.AddCallbackGauge("edgellm_models_loaded",
                            "Base models loaded: 2 while a replaced one finishes its requests or a new one is tested.",
                            [&core] { return static_cast<double>(core.models_loaded()); });
  registry.AddCallbackGauge("edgellm_ota_rollbacks", "Restores of the last-known-good version after a crash on probation.",
                            [raw] { return static_cast<double>(raw->stats().rollbacks); });
  registry.AddCallbackGauge("edgellm_ota_fetched_bytes", "Release artifact bytes downloaded.",
                            [raw] { return static_cast<double>(raw->stats().bytes_fetched); });
  return agent;
}


}  // namespace edgellm
