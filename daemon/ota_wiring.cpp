#include "daemon/ota_wiring.h"

#include <filesystem>

#include "common/str_cat.h"
#include "daemon/aggregator_identity.h"
#include "daemon/base_model_swap.h"
#include "daemon/ota/release_store.h"
#include "daemon/serve/release_evaluation.h"
#include "daemon/serve/smoke_test.h"
#include "daemon/train/held_out_set.h"

namespace edgellm {
namespace {

using Adapter = std::shared_ptr<const engine::LoraAdapter>;
using Load = BaseModelSwap::Load;

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

// The served version and the candidate scored on `spec`, one after the
// other (each on its own base model): the served one first, so that a
// candidate that must be drained in is compared with figures already taken.
absl::StatusOr<release::EvaluationFigures> EvaluateRelease(BaseModelSwap& bases, const ota::ServedFiles& candidate,
                                                           const ota::ServedFiles& served,
                                                           const std::string& examples_file,
                                                           const release::EvaluationSpec& spec) {
  absl::StatusOr<serve::VersionScores> served_scores = [&]() -> absl::StatusOr<serve::VersionScores> {
    absl::StatusOr<std::shared_ptr<serve::ServedModel>> model = bases.For(served, Load::kNo);
    if (!model.ok()) return model.status();
    absl::StatusOr<Adapter> adapter = LoadAdapterFor(served.adapter, (*model)->model());
    if (!adapter.ok()) return adapter.status();
    return Score(**model, *std::move(adapter), examples_file, spec);
  }();
  if (!served_scores.ok()) return served_scores.status();
  absl::StatusOr<std::shared_ptr<serve::ServedModel>> candidate_model = bases.For(candidate, Load::kDrain);
  if (!candidate_model.ok()) return candidate_model.status();
  absl::StatusOr<Adapter> candidate_adapter = LoadAdapterFor(candidate.adapter, (*candidate_model)->model());
  if (!candidate_adapter.ok()) return candidate_adapter.status();
  absl::StatusOr<serve::VersionScores> candidate_scores =
      Score(**candidate_model, *std::move(candidate_adapter), examples_file, spec);
  if (!candidate_scores.ok()) return candidate_scores.status();
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
  auto bases = std::make_shared<BaseModelSwap>(args, loader, core, log);
  ota::ServingHooks hooks;
  hooks.smoke_test = [bases, log, prompt = args.ota_smoke_prompt](const ota::ServedFiles& files) -> absl::Status {
    absl::StatusOr<std::shared_ptr<serve::ServedModel>> model = bases->For(files, Load::kBeside);
    if (!model.ok() && bases->Deferred()) {
      log(StrCat("ota: ", model.status().message(), ": it will be tested once the model serving is drained"));
      return absl::OkStatus();
    }
    if (!model.ok()) return model.status();
    absl::StatusOr<Adapter> adapter = LoadAdapterFor(files.adapter, (*model)->model());
    if (!adapter.ok()) return adapter.status();
    return serve::SmokeTest((*model)->scheduler(), (*model)->model(), *std::move(adapter), prompt);
  };
  hooks.serve = [bases](const ota::ServedFiles& files, uint64_t version) { return bases->Serve(files, version); };
  hooks.evaluate = [bases](const ota::ServedFiles& candidate, const ota::ServedFiles& served,
                           const std::string& examples_file, const release::EvaluationSpec& spec) {
    return EvaluateRelease(*bases, candidate, served, examples_file, spec);
  };
  hooks.forget_candidate = [bases] { bases->Forget(); };
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
