#include "daemon/ota_wiring.h"

#include <filesystem>

#include "common/str_cat.h"
#include "daemon/aggregator_identity.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/ota/release_store.h"
#include "daemon/serve/release_evaluation.h"
#include "daemon/serve/smoke_test.h"
#include "daemon/train/held_out_set.h"

namespace edgellm {
namespace {

using AdapterLoader =
    std::function<absl::StatusOr<std::shared_ptr<const engine::LoraAdapter>>(const std::string& dir)>;

// The candidate in `candidate_dir` and the served version in `served_dir`
// ("": the bare base model) scored on `spec`, one after the other.
absl::StatusOr<release::EvaluationFigures> EvaluateRelease(serve::Scheduler& scheduler,
                                                           const engine::LlamaModel& model,
                                                           const AdapterLoader& load,
                                                           const std::string& candidate_dir,
                                                           const std::string& served_dir,
                                                           const release::EvaluationSpec& spec) {
  std::vector<train::HeldOutExample> examples;
  if (!spec.examples_jsonl.empty()) {
    const int32_t max_length = std::min(spec.max_length, scheduler.context_limit());
    absl::StatusOr<train::HeldOutSet> held_out = train::HeldOutSet::Load(
        (std::filesystem::path(candidate_dir) / ota::kEvaluationExamplesFile).string(), model.tokenizer(), max_length);
    if (!held_out.ok()) return held_out.status();
    examples = held_out->examples();
  }
  std::vector<serve::ExactMatchPrompt> prompts;
  for (const release::ExactMatchCase& c : spec.exact_match) prompts.push_back({c.prompt, c.expected, c.max_tokens});
  absl::StatusOr<std::shared_ptr<const engine::LoraAdapter>> candidate = load(candidate_dir);
  if (!candidate.ok()) return candidate.status();
  std::shared_ptr<const engine::LoraAdapter> served;
  if (!served_dir.empty()) {
    absl::StatusOr<std::shared_ptr<const engine::LoraAdapter>> loaded = load(served_dir);
    if (!loaded.ok()) return loaded.status();
    served = *std::move(loaded);
  }
  absl::StatusOr<serve::VersionScores> candidate_scores =
      serve::ScoreVersion(scheduler, model, *std::move(candidate), examples, prompts);
  if (!candidate_scores.ok()) return candidate_scores.status();
  absl::StatusOr<serve::VersionScores> served_scores =
      serve::ScoreVersion(scheduler, model, std::move(served), examples, prompts);
  if (!served_scores.ok()) return served_scores.status();
  const auto mean = [](const train::LossSum& sum) {
    return sum.tokens > 0 ? sum.total / static_cast<double>(sum.tokens) : 0.0;
  };
  release::EvaluationFigures figures;
  figures.examples = static_cast<int64_t>(examples.size());
  figures.loss = mean(candidate_scores->loss);
  figures.baseline_loss = mean(served_scores->loss);
  figures.cases = static_cast<int32_t>(prompts.size());
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
                                                         const engine::LlamaModel& model, serve::Scheduler& scheduler,
                                                         serve::InferenceCore& service, ops::MetricsRegistry& registry,
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
  const auto load = [&model](const std::string& dir) -> absl::StatusOr<std::shared_ptr<const engine::LoraAdapter>> {
    absl::StatusOr<engine::LoraAdapter> adapter = engine::LoraAdapter::Load(dir, model.config());
    if (!adapter.ok()) return adapter.status();
    return std::make_shared<const engine::LoraAdapter>(*std::move(adapter));
  };
  ota::ServingHooks hooks;
  hooks.smoke_test = [&, load, prompt = args.ota_smoke_prompt](const std::string& dir) -> absl::Status {
    absl::StatusOr<std::shared_ptr<const engine::LoraAdapter>> adapter = load(dir);
    if (!adapter.ok()) return adapter.status();
    return serve::SmokeTest(scheduler, model, *std::move(adapter), prompt);
  };
  hooks.serve = [&service, load](const std::string& dir, uint64_t version) -> absl::Status {
    if (dir.empty()) {
      service.SetModelVersion("base", nullptr);
      return absl::OkStatus();
    }
    absl::StatusOr<std::shared_ptr<const engine::LoraAdapter>> adapter = load(dir);
    if (!adapter.ok()) return adapter.status();
    service.SetModelVersion(StrCat("v", version), *std::move(adapter));
    return absl::OkStatus();
  };
  hooks.evaluate = [&scheduler, &model, load](const std::string& candidate_dir, const std::string& served_dir,
                                              const release::EvaluationSpec& spec) {
    return EvaluateRelease(scheduler, model, load, candidate_dir, served_dir, spec);
  };
  if (serve::ServeMetrics* metrics = service.metrics()) hooks.tally = [metrics] { return ServingTallyOf(*metrics); };
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
  registry.AddCallbackGauge("edgellm_ota_rollbacks", "Restores of the last-known-good version after a crash on probation.",
                            [raw] { return static_cast<double>(raw->stats().rollbacks); });
  registry.AddCallbackGauge("edgellm_ota_fetched_bytes", "Release artifact bytes downloaded.",
                            [raw] { return static_cast<double>(raw->stats().bytes_fetched); });
  return agent;
}


}  // namespace edgellm
