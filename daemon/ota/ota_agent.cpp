#include "daemon/ota/ota_agent.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "common/mutex.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/ops/tls_files.h"
#include "daemon/ota/release_store.h"
#include "daemon/ota/trusted_clock.h"
#include "edgellm/v1/ota.grpc.pb.h"
#include "federated/channel/aggregator_channel.h"
#include "federated/protocol/sha256.h"
#include "federated/release/base_delta.h"
#include "federated/release/evaluation_proto.h"
#include "federated/release/trust_policy.h"

namespace edgellm::ota {
namespace {

namespace fs = std::filesystem;
using federated::CallTracker;
using federated::Describe;
using federated::Transient;

// A release under whose smoke test the daemon died this many times is
// reported and skipped: once may be a power cut, twice is the release.
constexpr int kSmokeDeathLimit = 2;
// How often the probation time left is written down while it runs out.
constexpr std::chrono::seconds kProbationPersistInterval{10};
// Disk a base-model download must leave free: state, logs and the next
// adapter still have to fit.
constexpr uint64_t kDiskReserveBytes = uint64_t{64} << 20;

std::string OutcomeName(int32_t outcome) {
  return v1::InstallReport::Outcome_Name(static_cast<v1::InstallReport::Outcome>(outcome));
}

}  // namespace

struct OtaAgent::Impl {
  OtaAgentConfig config;
  ServingHooks hooks;
  Log log;
  std::unique_ptr<release::TrustPolicy> policy;
  std::unique_ptr<ReleaseStore> store;  // the loop thread's once started
  std::unique_ptr<v1::Releases::Stub> stub;
  CallTracker calls;
  std::thread loop;
  mutable Mutex mu;
  OtaStats stats ABSL_GUARDED_BY(mu);
  std::string configured_base_sha256;  // the configured model file's; the loop thread's: computed on first need
  std::unique_ptr<TrustedClock> clock;  // from the state's floor, at Restore
  // When the probation time left was last counted down, and last saved.
  std::chrono::steady_clock::time_point probation_counted;
  std::chrono::steady_clock::time_point probation_saved;
  // Where the window of serving that the next swap takes as its baseline
  // began: the daemon's start, or the last swap.
  release::ServingTally window_tally;
  std::chrono::steady_clock::time_point window_start;
  // The version on probation whose live figures are reported (release 0: none).
  struct LiveWindow {
    uint64_t release = 0;
    uint64_t version = 0;
    release::LiveFigures baseline;
    std::string evaluation;  // the install's figures (JSON), sent again with each report
    int64_t reported_requests = -1;
    std::chrono::steady_clock::time_point reported;
  } live;

  // Serves what the state names, after checking it; falls back as it must.
  absl::Status Restore();
  // Settles a smoke test the daemon died in (`state.smoke`): tried once more,
  // or reported and skipped.
  void SettleInterruptedSmokeTest(OtaState& state);
  // Counts the current version's probation down by the monotonic time since
  // the last count; at zero it becomes the last-known-good.
  void CountDownProbation();
  // store->Save with the trusted clock's floor.
  absl::Status SaveState(OtaState state);
  absl::Status Serve(const InstalledVersion& version);
  void Loop();
  // Handles one offered release (with the delta it may be fetched as); the
  // outcome goes into the state's report.
  void Handle(const std::string& signed_text, const v1::BaseDeltaOffer& delta);
  // FailedPrecondition when the release is signed for another base model
  // than the one served, or is a base model that cannot fit on the disk.
  absl::Status CheckBaseModel(const release::ReleaseManifest& manifest, const InstalledVersion& served,
                              const v1::BaseDeltaOffer& delta);
  // The configured model file's sha256, computed once.
  absl::StatusOr<std::string> ConfiguredBaseSha256();
  ServedFiles FilesOf(const InstalledVersion& version) const {
    return {store->BaseFileOf(version), store->AdapterDirOf(version)};
  }
  // The artifact's path once downloaded (or rebuilt from `delta` against the
  // base model `served` runs on) and its sha256 checked.
  absl::StatusOr<std::string> Download(const release::ReleaseManifest& manifest, const v1::BaseDeltaOffer& delta,
                                       const InstalledVersion& served);
  // The artifact rebuilt from the delta; Unavailable when the download was
  // cut (resumed later), another error when the delta cannot rebuild it.
  absl::StatusOr<std::string> RebuildFromDelta(const release::ReleaseManifest& manifest,
                                               const v1::BaseDeltaOffer& delta, const std::string& held);
  // Fetches `bytes` bytes of the artifact `sha256` into `path`, resuming
  // what is there; Unavailable when the stream ends early.
  absl::Status Fetch(const std::string& sha256, uint64_t bytes, const std::string& path);
  // Records the outcome of `release` (and the state) and tries to deliver it;
  // `evaluation`: the figures measured, as JSON.
  void Conclude(OtaState state, uint64_t release, v1::InstallReport::Outcome outcome, const std::string& detail,
                const std::string& evaluation = "");
  // Runs the release's evaluation on the installed candidate against the
  // version served now; OK with the figures when they meet its thresholds.
  // Unavailable when it could not run now; FailedPrecondition (with the
  // figures in `figures`, if measured) when the release falls short.
  absl::Status Evaluate(const InstalledVersion& candidate, const release::EvaluationSpec& spec,
                        const InstalledVersion& served, std::optional<release::EvaluationFigures>& figures);
  void DeliverReport();
  // Begins the live window of a version just swapped in: the window before
  // it becomes its baseline.
  void StartLiveWindow(const InstalledVersion& version, const std::string& evaluation);
  // While the version of the live window is on probation, sends its figures
  // when they changed and the interval has passed.
  void ReportLive();
  void Count(int64_t OtaStats::*counter) {
    MutexLock lock(&mu);
    ++(stats.*counter);
  }
};

OtaAgent::OtaAgent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OtaAgent::~OtaAgent() { Stop(); }

absl::StatusOr<std::unique_ptr<OtaAgent>> OtaAgent::Create(OtaAgentConfig config, ServingHooks hooks, Log log) {
  auto impl = std::make_unique<Impl>();
  EDGELLM_ASSIGN_OR_RETURN(ops::TlsFiles tls, ops::LoadTlsFiles(config.cert_file, config.key_file, config.ca_file));
  if (config.device_id.empty()) config.device_id = tls.common_name;
  EDGELLM_ASSIGN_OR_RETURN(release::TrustPolicy policy,
                           release::TrustPolicy::Load(config.release_keys, config.key_threshold));
  impl->policy = std::make_unique<release::TrustPolicy>(std::move(policy));
  EDGELLM_ASSIGN_OR_RETURN(impl->store, ReleaseStore::Open(config.dir));
  impl->stub = v1::Releases::NewStub(federated::AggregatorChannel(config.aggregator, tls));
  impl->config = std::move(config);
  impl->hooks = std::move(hooks);
  impl->log = std::move(log);
  EDGELLM_RETURN_IF_ERROR(impl->Restore());
  return std::unique_ptr<OtaAgent>(new OtaAgent(std::move(impl)));
}

void OtaAgent::Start() {
  impl_->loop = std::thread([this] { impl_->Loop(); });
}

void OtaAgent::Stop() {
  impl_->calls.Stop();
  if (impl_->loop.joinable()) impl_->loop.join();
  impl_->CountDownProbation();
  OtaState state = impl_->store->state();
  state.clean_stop = true;
  if (absl::Status s = impl_->SaveState(state); !s.ok()) impl_->log("ota: " + std::string(s.message()));
}

OtaStats OtaAgent::stats() const {
  MutexLock lock(&impl_->mu);
  return impl_->stats;
}

absl::Status OtaAgent::Impl::Serve(const InstalledVersion& version) {
  EDGELLM_RETURN_IF_ERROR(hooks.serve(FilesOf(version), version.version));
  MutexLock lock(&mu);
  stats.version = version.version;
  stats.release = version.release;
  return absl::OkStatus();
}

absl::Status OtaAgent::Impl::SaveState(OtaState state) {
  state.time_floor = clock->Floor();
  return store->Save(state);
}

void OtaAgent::Impl::CountDownProbation() {
  const auto now = std::chrono::steady_clock::now();
  const int64_t elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now - std::exchange(probation_counted, now)).count();
  OtaState state = store->state();
  if (state.probation_left_ms <= 0) return;
  state.probation_left_ms = std::max<int64_t>(0, state.probation_left_ms - elapsed_ms);
  if (state.probation_left_ms == 0) {
    state.last_good = state.current;
    if (SaveState(state).ok()) store->Prune();
    return;
  }
  if (now - probation_saved < kProbationPersistInterval) return;
  probation_saved = now;
  if (absl::Status s = SaveState(state); !s.ok()) log("ota: " + std::string(s.message()));
}

void OtaAgent::Impl::SettleInterruptedSmokeTest(OtaState& state) {
  const SmokeInProgress smoke = std::exchange(state.smoke, {});
  if (smoke.attempts >= kSmokeDeathLimit) {
    log(StrCat("ota: the daemon died during ", smoke.attempts, " smoke tests of release ", smoke.version.release,
               " (version ", smoke.version.version, "); skipping it"));
    Count(&OtaStats::smoke_failures);
    state.report = {smoke.version.release, v1::InstallReport::SMOKE_FAILED,
                    StrCat("the daemon died during ", smoke.attempts, " smoke tests of the release"), ""};
    state.last_release = std::max(state.last_release, smoke.version.release);
    return;
  }
  log(StrCat("ota: the daemon died during the smoke test of release ", smoke.version.release, " (version ",
             smoke.version.version, "); it will be tried once more"));
  // Its download is kept for the next try; the count of tries goes on.
  if (absl::Status s = store->ReturnToStaging(smoke.version, smoke.artifact_sha256); !s.ok()) {
    log("ota: " + std::string(s.message()));
  }
  state.smoke = smoke;
}

absl::Status OtaAgent::Impl::Restore() {
  OtaState state = store->state();
  clock = std::make_unique<TrustedClock>(state.time_floor);
  probation_counted = probation_saved = window_start = std::chrono::steady_clock::now();
  if (hooks.tally) window_tally = hooks.tally();
  // A death during a smoke test is the tested release's doing, not the served version's.
  const bool died_in_smoke_test = state.smoke.version.release != 0;
  if (died_in_smoke_test) SettleInterruptedSmokeTest(state);
  const bool crashed_on_probation = !state.clean_stop && state.probation_left_ms > 0 && !died_in_smoke_test;
  if (crashed_on_probation && state.current.release != 0) {
    log(StrCat("ota: the daemon stopped uncleanly while release ", state.current.release, " (version ",
               state.current.version, ") was on probation; restoring version ", state.last_good.version));
    state.report = {state.current.release, v1::InstallReport::ROLLED_BACK,
                    "the daemon stopped uncleanly while the version was on probation", ""};
    state.current = state.last_good;
    state.probation_left_ms = 0;
    Count(&OtaStats::rollbacks);
  }
  // The first of the current and the last-known-good version that passes its
  // check serves; if neither does, the base model.
  InstalledVersion chosen;
  for (const InstalledVersion& candidate : {state.current, state.last_good}) {
    if (candidate.release == 0) continue;
    if (absl::Status verified = store->Verify(candidate, *policy); !verified.ok()) {
      log(StrCat("ota: installed release ", candidate.release, " fails its check (", verified.message(),
                 "); not serving it"));
      continue;
    }
    chosen = candidate;
    break;
  }
  state.current = chosen;
  state.clean_stop = false;
  EDGELLM_RETURN_IF_ERROR(SaveState(state));
  if (died_in_smoke_test) store->Prune();
  absl::Status served = Serve(state.current);
  if (!served.ok() && state.current.release != 0) {
    log(StrCat("ota: version ", state.current.version, " cannot be served (", served.message(),
               "); serving the base model"));
    state.current = {};
    EDGELLM_RETURN_IF_ERROR(SaveState(state));
    served = Serve(state.current);
  }
  if (served.ok()) {
    log(state.current.release == 0 ? std::string("ota: serving the base model (no release installed)")
                                   : StrCat("ota: serving version ", state.current.version, " (release ",
                                            state.current.release, ")"));
  }
  return served;
}

void OtaAgent::Impl::Loop() {
  // Consecutive polls that could not reach the aggregator: the wait doubles
  // with each (up to a minute, with jitter), so a fleet whose aggregator is
  // away does not hammer it when it comes back.
  int failures = 0;
  std::minstd_rand jitter(static_cast<uint32_t>(std::hash<std::string>()(config.device_id)));
  while (!calls.stopping()) {
    DeliverReport();
    CountDownProbation();
    ReportLive();
    const OtaState& state = store->state();
    v1::GetReleaseRequest request;
    request.set_device_id(config.device_id);
    request.set_model_id(config.model_id);
    request.set_installed_version(state.current.version);
    request.set_last_release(state.last_release);
    v1::GetReleaseResponse response;
    grpc::Status s = stub->GetRelease(calls.NewCall(std::chrono::seconds(10)).get(), request, &response);
    if (!s.ok()) {
      if (!Transient(s)) log("ota: asking for releases: " + Describe(s));
      ++failures;
      const double backoff = std::min(60'000.0, static_cast<double>(config.poll_interval.count()) *
                                                    std::pow(2.0, std::min(failures - 1, 10)));
      const double spread = std::uniform_real_distribution<double>(0.8, 1.2)(jitter);
      calls.Sleep(std::chrono::milliseconds(static_cast<int64_t>(backoff * spread)));
      continue;
    }
    failures = 0;
    if (response.outcome() == v1::GetReleaseResponse::INSTALL) {
      Handle(response.signed_release(), response.delta());
      continue;
    }
    const auto wait = response.retry_after_ms() > 0 ? std::chrono::milliseconds(response.retry_after_ms())
                                                    : config.poll_interval;
    calls.Sleep(std::min(wait, config.poll_interval));
  }
}

void OtaAgent::Impl::Handle(const std::string& signed_text, const v1::BaseDeltaOffer& delta) {
  OtaState state = store->state();
  absl::StatusOr<release::SignedRelease> envelope = release::SignedRelease::FromJson(signed_text);
  absl::StatusOr<release::ReleaseManifest> manifest =
      envelope.ok() ? policy->Verify(*envelope, clock->NowUnix())
                    : absl::StatusOr<release::ReleaseManifest>(envelope.status());
  // Signed by trusted keys: its creation time has passed, whatever the wall clock says.
  if (manifest.ok()) clock->Witness(manifest->created_at);
  if (manifest.ok() && manifest->release == state.current.release && manifest->version == state.current.version) {
    // Installed and served already: the aggregator has not heard so. The
    // report is INSTALLED, pending or sent again — never a refusal.
    if (state.report.outcome == 0 || state.report.release != manifest->release) {
      Conclude(state, manifest->release, v1::InstallReport::INSTALLED, "");
    }
    calls.Sleep(config.poll_interval);
    return;
  }
  // Another release is under way: the live figures of the one on probation
  // no longer matter to any rollout.
  if (manifest.ok()) live.release = 0;
  if (manifest.ok()) {
    absl::Status installable =
        release::CheckInstallable(*manifest, config.model_id, {state.current.version, state.last_release});
    if (installable.ok()) installable = CheckBaseModel(*manifest, state.current, delta);
    if (!installable.ok()) manifest = installable;
  }
  if (!manifest.ok()) {
    // The release number of a refused envelope is not to be believed: the
    // report names what the envelope claims, and the state stays as it was.
    uint64_t claimed = 0;
    if (envelope.ok()) {
      if (auto unverified = release::ReleaseManifest::FromJson(envelope->manifest_json); unverified.ok()) {
        claimed = unverified->release;
      }
    }
    log(StrCat("ota: refusing release ", claimed, ": ", manifest.status().message()));
    Count(&OtaStats::refusals);
    Conclude(state, claimed, v1::InstallReport::REFUSED, std::string(manifest.status().message()));
    return;
  }
  log(StrCat("ota: release ", manifest->release, " (version ", manifest->version, manifest->rollback ? ", a rollback" : "",
             ", ", manifest->artifact_bytes, " bytes) verified; downloading"));
  absl::StatusOr<std::string> artifact = Download(*manifest, delta, state.current);
  if (!artifact.ok()) {
    if (absl::IsDataLoss(artifact.status())) {
      log(StrCat("ota: refusing release ", manifest->release, ": ", artifact.status().message()));
      Count(&OtaStats::refusals);
      Conclude(state, manifest->release, v1::InstallReport::REFUSED, std::string(artifact.status().message()));
    } else if (!calls.stopping()) {
      log(StrCat("ota: release ", manifest->release, ": ", artifact.status().message(), "; will resume"));
      calls.Sleep(config.poll_interval);
    }
    return;
  }
  absl::StatusOr<InstalledVersion> installed = store->Install(*envelope, *manifest, *artifact, state.current);
  if (!installed.ok()) {
    log(StrCat("ota: release ", manifest->release, " cannot be installed: ", installed.status().message()));
    Count(&OtaStats::refusals);
    Conclude(state, manifest->release, v1::InstallReport::REFUSED, std::string(installed.status().message()));
    return;
  }
  // Written down first: a start that finds it knows the daemon died in the test.
  OtaState testing = state;
  const int earlier_attempts = state.smoke.version.release == manifest->release ? state.smoke.attempts : 0;
  testing.smoke = {*installed, manifest->artifact_sha256, earlier_attempts + 1};
  if (absl::Status s = SaveState(testing); !s.ok()) {
    log("ota: " + std::string(s.message()));
    return;
  }
  // Whatever way this ends, a base model loaded for the test and not served goes.
  absl::Cleanup forget_candidate = [this] {
    if (hooks.forget_candidate) hooks.forget_candidate();
  };
  if (installed->is_base()) {
    log(StrCat("ota: release ", manifest->release, ": loading the base model beside the one serving to test it"));
  }
  absl::Status smoke = hooks.smoke_test(FilesOf(*installed));
  std::optional<release::EvaluationFigures> figures;
  if (smoke.ok() && manifest->evaluation) {
    absl::Status evaluated = Evaluate(*installed, *manifest->evaluation, state.current, figures);
    if (absl::IsUnavailable(evaluated)) {
      smoke = evaluated;
    } else if (!evaluated.ok()) {
      // The report carries the figures beside the words.
      const std::string figures_json = figures ? figures->ToJson() : std::string();
      const std::string detail(evaluated.message());
      log(StrCat("ota: release ", manifest->release, " (version ", manifest->version, ") failed its evaluation (",
                 detail, figures ? "; " + release::DescribeFigures(*figures) : std::string(), "); still serving version ",
                 state.current.version));
      Count(&OtaStats::eval_failures);
      state.smoke = {};
      store->Prune();
      Conclude(state, manifest->release, v1::InstallReport::EVAL_FAILED, detail, figures_json);
      return;
    }
  }
  state.smoke = {};
  if (absl::IsUnavailable(smoke)) {
    log(StrCat("ota: release ", manifest->release, ": its test could not run now (", smoke.message(),
               "); will try again"));
    if (absl::Status s = store->ReturnToStaging(*installed, manifest->artifact_sha256); !s.ok()) {
      log("ota: " + std::string(s.message()));
    }
    if (absl::Status s = SaveState(state); !s.ok()) log("ota: " + std::string(s.message()));
    calls.Sleep(std::max(config.poll_interval, std::chrono::milliseconds(1000)));
    return;
  }
  if (absl::IsResourceExhausted(smoke)) {
    // Nothing is wrong with the release: this device cannot hold it now.
    log(StrCat("ota: refusing release ", manifest->release, ": ", smoke.message()));
    Count(&OtaStats::refusals);
    store->Prune();
    Conclude(state, manifest->release, v1::InstallReport::REFUSED, std::string(smoke.message()));
    return;
  }
  if (!smoke.ok()) {
    log(StrCat("ota: release ", manifest->release, " (version ", manifest->version, ") failed its smoke test (",
               smoke.message(), "); still serving version ", state.current.version));
    Count(&OtaStats::smoke_failures);
    store->Prune();
    Conclude(state, manifest->release, v1::InstallReport::SMOKE_FAILED, std::string(smoke.message()));
    return;
  }
  // Durable before serving: a crash from here on finds the new version on
  // probation and restores the one before it.
  OtaState next = state;
  if (state.probation_left_ms == 0 || state.current.release == 0) next.last_good = state.current;
  next.current = *installed;
  next.probation_left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(config.probation).count();
  probation_counted = probation_saved = std::chrono::steady_clock::now();
  if (absl::Status s = SaveState(next); !s.ok()) {
    log("ota: " + std::string(s.message()));
    return;
  }
  if (absl::Status s = Serve(next.current); !s.ok()) {
    log(StrCat("ota: version ", manifest->version, " cannot be served (", s.message(), "); back to version ",
               state.current.version));
    Serve(state.current).IgnoreError();
    Count(&OtaStats::smoke_failures);
    Conclude(state, manifest->release, v1::InstallReport::SMOKE_FAILED, std::string(s.message()));
    return;
  }
  log(StrCat("ota: now serving version ", manifest->version, " (release ", manifest->release,
             installed->is_base() ? ", a new base model" : "", "); on probation for ", config.probation.count(), " s",
             figures ? "; " + release::DescribeFigures(*figures) : std::string()));
  Count(&OtaStats::installs);
  if (installed->is_base()) Count(&OtaStats::base_installs);
  store->Prune();
  const std::string figures_json = figures ? figures->ToJson() : std::string();
  StartLiveWindow(next.current, figures_json);
  Conclude(next, manifest->release, v1::InstallReport::INSTALLED, "", figures_json);
}

void OtaAgent::Impl::StartLiveWindow(const InstalledVersion& version, const std::string& evaluation) {
  if (!hooks.tally) return;
  const release::ServingTally now_tally = hooks.tally();
  const auto now = std::chrono::steady_clock::now();
  live = {};
  live.release = version.release;
  live.version = version.version;
  live.baseline = release::Between(window_tally, now_tally, std::chrono::duration<double>(now - window_start).count());
  live.evaluation = evaluation;
  live.reported = now;
  window_tally = now_tally;
  window_start = now;
}

void OtaAgent::Impl::ReportLive() {
  const OtaState& state = store->state();
  if (live.release == 0 || state.current.release != live.release || state.probation_left_ms <= 0) return;
  // The install report goes first; live figures follow it.
  if (state.report.outcome != 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - live.reported < config.live_report_interval) return;
  const release::LiveFigures figures =
      release::Between(window_tally, hooks.tally(), std::chrono::duration<double>(now - window_start).count());
  if (figures.requests == live.reported_requests) return;
  v1::InstallReport report;
  report.set_device_id(config.device_id);
  report.set_model_id(config.model_id);
  report.set_release(live.release);
  report.set_outcome(v1::InstallReport::INSTALLED);
  report.set_serving_version(live.version);
  if (!live.evaluation.empty()) {
    if (absl::StatusOr<release::EvaluationFigures> f = release::EvaluationFigures::FromJson(live.evaluation); f.ok()) {
      release::ToProto(*f, report.mutable_evaluation());
    }
  }
  release::ToProto(figures, report.mutable_live());
  release::ToProto(live.baseline, report.mutable_live_baseline());
  v1::InstallReportResponse response;
  grpc::Status s = stub->ReportInstall(calls.NewCall(std::chrono::seconds(10)).get(), report, &response);
  // Figures not delivered are sent fresher at the next interval.
  live.reported = now;
  if (!s.ok()) {
    if (!Transient(s)) log("ota: reporting live figures: " + Describe(s));
    return;
  }
  live.reported_requests = figures.requests;
}

absl::Status OtaAgent::Impl::Evaluate(const InstalledVersion& candidate, const release::EvaluationSpec& spec,
                                      const InstalledVersion& served,
                                      std::optional<release::EvaluationFigures>& figures) {
  if (!hooks.evaluate) return absl::FailedPreconditionError("this daemon cannot run a release's evaluation");
  log(StrCat("ota: release ", candidate.release, ": evaluating it against ",
             served.release == 0 ? std::string("the base model") : StrCat("version ", served.version)));
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<release::EvaluationFigures> measured = hooks.evaluate(
      FilesOf(candidate), FilesOf(served), (fs::path(store->PathOf(candidate)) / kEvaluationExamplesFile).string(),
      spec);
  if (!measured.ok()) {
    if (absl::IsUnavailable(measured.status())) return measured.status();
    return absl::FailedPreconditionError(StrCat("the evaluation failed: ", measured.status().message()));
  }
  figures = *measured;
  figures->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return release::Judge(spec, *figures);
}

absl::StatusOr<std::string> OtaAgent::Impl::ConfiguredBaseSha256() {
  if (configured_base_sha256.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(configured_base_sha256, federated::Sha256OfFile(config.base_model_path));
  }
  return configured_base_sha256;
}

absl::Status OtaAgent::Impl::CheckBaseModel(const release::ReleaseManifest& manifest, const InstalledVersion& served,
                                            const v1::BaseDeltaOffer& delta) {
  if (manifest.kind == release::ArtifactKind::kBase) {
    // Room for the download beside everything kept (the model serving and the one to fall back to).
    std::error_code ec;
    const fs::space_info space = fs::space(config.dir, ec);
    const uint64_t part = fs::exists(store->PartPath(manifest.artifact_sha256), ec)
                              ? fs::file_size(store->PartPath(manifest.artifact_sha256), ec)
                              : 0;
    // A delta, if offered, lies beside the file it rebuilds until then.
    const uint64_t needed = manifest.artifact_bytes - std::min(part, manifest.artifact_bytes) +
                            std::min(delta.bytes(), manifest.artifact_bytes) + kDiskReserveBytes;
    if (!ec && space.available < needed) {
      return absl::FailedPreconditionError(StrCat("the base model needs ", (needed >> 20), " MiB free in ", config.dir,
                                                  " (its ", manifest.artifact_bytes >> 20, " MiB and ",
                                                  kDiskReserveBytes >> 20, " MiB to spare); ", space.available >> 20,
                                                  " MiB are free"));
    }
    return absl::OkStatus();
  }
  std::string served_sha = served.base_sha256;
  if (served.base.empty()) {
    if (config.base_model_path.empty()) return absl::OkStatus();
    EDGELLM_ASSIGN_OR_RETURN(served_sha, ConfiguredBaseSha256());
  }
  if (manifest.base_model_sha256 != served_sha) {
    return absl::FailedPreconditionError(StrCat("the release is for the base model with sha256 ",
                                                manifest.base_model_sha256.substr(0, 16), "...; this device serves ",
                                                served_sha.substr(0, 16), "..."));
  }
  return absl::OkStatus();
}

absl::Status OtaAgent::Impl::Fetch(const std::string& sha256, uint64_t bytes, const std::string& path) {
  std::error_code ec;
  uint64_t offset = fs::exists(path) ? fs::file_size(path, ec) : 0;
  if (offset > bytes) {
    fs::remove(path, ec);
    offset = 0;
  }
  if (offset == bytes) return absl::OkStatus();
  if (offset > 0) log(StrCat("ota: resuming the download at byte ", offset));
  v1::FetchArtifactRequest request;
  request.set_device_id(config.device_id);
  request.set_sha256(sha256);
  request.set_offset(offset);
  auto context = calls.NewCall(std::chrono::seconds(300));
  auto reader = stub->FetchArtifact(context.get(), request);
  std::ofstream out(path, std::ios::binary | std::ios::app);
  v1::ArtifactChunk chunk;
  while (reader->Read(&chunk)) {
    if (chunk.offset() != offset || offset + chunk.data().size() > bytes) break;
    out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
    out.flush();
    offset += chunk.data().size();
    MutexLock lock(&mu);
    stats.bytes_fetched += static_cast<int64_t>(chunk.data().size());
  }
  out.close();
  grpc::Status s = reader->Finish();
  if (offset < bytes) {
    return absl::UnavailableError(StrCat("the download stopped at byte ", offset, " of ", bytes,
                                         s.ok() ? std::string(" (the stream ended early)") : ": " + Describe(s)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> OtaAgent::Impl::RebuildFromDelta(const release::ReleaseManifest& manifest,
                                                             const v1::BaseDeltaOffer& delta, const std::string& held) {
  const std::string delta_path = store->PartPath(delta.sha256());
  log(StrCat("ota: release ", manifest.release, ": fetching it as a delta of ", delta.bytes(), " bytes against ",
             fs::path(held).filename().string()));
  EDGELLM_RETURN_IF_ERROR(Fetch(delta.sha256(), delta.bytes(), delta_path));
  std::error_code ec;
  const auto drop = [&](const absl::Status& why) {
    fs::remove(delta_path, ec);
    fs::remove(store->PartPath(manifest.artifact_sha256), ec);
    return absl::DataLossError(why.message());
  };
  EDGELLM_ASSIGN_OR_RETURN(std::string delta_sha, federated::Sha256OfFile(delta_path));
  if (delta_sha != delta.sha256()) return drop(absl::DataLossError("the delta's sha256 is not the one offered"));
  const std::string rebuilt = store->PartPath(manifest.artifact_sha256);
  if (absl::Status s = release::ApplyBaseDelta(held, delta_path, manifest.artifact_bytes, rebuilt); !s.ok()) {
    return drop(s);
  }
  EDGELLM_ASSIGN_OR_RETURN(std::string sha, federated::Sha256OfFile(rebuilt));
  if (sha != manifest.artifact_sha256) {
    return drop(absl::DataLossError(StrCat("the rebuilt file's sha256 is ", sha.substr(0, 16),
                                           "..., the signed manifest says ", manifest.artifact_sha256.substr(0, 16),
                                           "...")));
  }
  fs::remove(delta_path, ec);
  return rebuilt;
}

absl::StatusOr<std::string> OtaAgent::Impl::Download(const release::ReleaseManifest& manifest,
                                                      const v1::BaseDeltaOffer& delta,
                                                      const InstalledVersion& served) {
  if (manifest.kind == release::ArtifactKind::kBase && federated::IsSha256Hex(delta.sha256()) &&
      delta.bytes() < manifest.artifact_bytes) {
    // The base model it applies to, if it is the one this device runs on.
    std::string held;
    if (served.base.empty()) {
      absl::StatusOr<std::string> configured = ConfiguredBaseSha256();
      if (configured.ok() && *configured == delta.from_sha256()) held = config.base_model_path;
    } else if (served.base_sha256 == delta.from_sha256()) {
      held = store->BaseFileOf(served);
    }
    if (!held.empty()) {
      absl::StatusOr<std::string> rebuilt = RebuildFromDelta(manifest, delta, held);
      if (rebuilt.ok() || absl::IsUnavailable(rebuilt.status())) return rebuilt;
      log(StrCat("ota: release ", manifest.release, ": the delta did not rebuild it (", rebuilt.status().message(),
                 "); fetching the whole file"));
    }
  }
  const std::string part = store->PartPath(manifest.artifact_sha256);
  EDGELLM_RETURN_IF_ERROR(Fetch(manifest.artifact_sha256, manifest.artifact_bytes, part));
  std::error_code ec;
  EDGELLM_ASSIGN_OR_RETURN(std::string sha, federated::Sha256OfFile(part));
  if (sha != manifest.artifact_sha256) {
    fs::remove(part, ec);
    return absl::DataLossError(StrCat("the downloaded artifact's sha256 is ", sha.substr(0, 16),
                                      "..., the signed manifest says ", manifest.artifact_sha256.substr(0, 16),
                                      "...: tampered or corrupted"));
  }
  return part;
}

void OtaAgent::Impl::Conclude(OtaState state, uint64_t release, v1::InstallReport::Outcome outcome,
                              const std::string& detail, const std::string& evaluation) {
  if (release > state.last_release && outcome != v1::InstallReport::REFUSED) state.last_release = release;
  state.report = {release, outcome, detail.substr(0, 512), evaluation};
  if (absl::Status s = SaveState(state); !s.ok()) log("ota: " + std::string(s.message()));
  DeliverReport();
}

void OtaAgent::Impl::DeliverReport() {
  const OtaState& state = store->state();
  if (state.report.outcome == 0) return;
  v1::InstallReport report;
  report.set_device_id(config.device_id);
  report.set_model_id(config.model_id);
  report.set_release(state.report.release);
  report.set_outcome(static_cast<v1::InstallReport::Outcome>(state.report.outcome));
  report.set_serving_version(state.current.version);
  report.set_detail(state.report.detail);
  if (!state.report.evaluation.empty()) {
    if (absl::StatusOr<release::EvaluationFigures> f = release::EvaluationFigures::FromJson(state.report.evaluation);
        f.ok()) {
      release::ToProto(*f, report.mutable_evaluation());
    }
  }
  v1::InstallReportResponse response;
  grpc::Status s = stub->ReportInstall(calls.NewCall(std::chrono::seconds(10)).get(), report, &response);
  if (!s.ok()) {
    // Kept for the next poll when the aggregator could not take it now (down,
    // or this device's reports came too fast for it); dropped when refused.
    const bool later = Transient(s) || s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
    if (!Transient(s)) log("ota: reporting " + OutcomeName(state.report.outcome) + ": " + Describe(s));
    if (later) return;
  }
  OtaState delivered = state;
  delivered.report = {};
  if (absl::Status saved = SaveState(delivered); !saved.ok()) log("ota: " + std::string(saved.message()));
}

}  // namespace edgellm::ota
