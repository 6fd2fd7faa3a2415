// libFuzzer target: the validation of what devices and clients send, with
// structured inputs. The bytes choose a request (Register, Heartbeat,
// GetTask, UploadStatus, an upload's header, an install report, a release
// poll, a Generate) and fill its fields — ids, counts, hashes, offsets,
// sampling settings — which then go to the real Coordinator, Rollouts and
// InferenceCore over a small synthetic model, with their state on disk. Any
// answer is fine; a crash, a hang or unbounded memory is not.
#include <fuzzer/FuzzedDataProvider.h>

#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>

#include "daemon/engine/llama_model.h"
#include "daemon/engine/synthetic_model.h"
#include "daemon/ops/metrics.h"
#include "daemon/serve/inference_core.h"
#include "daemon/serve/scheduler.h"
#include "federated/aggregator/aggregator_metrics.h"
#include "federated/aggregator/coordinator.h"
#include "federated/aggregator/rollout.h"
#include "federated/protocol/sha256.h"
#include "federated/release/signing_key.h"

namespace {

namespace fs = std::filesystem;
using namespace edgellm;

// Everything the requests reach, made once.
struct World {
  std::string base_sha;
  ops::MetricsRegistry registry;
  std::unique_ptr<federated::AggregatorMetrics> metrics;
  std::unique_ptr<federated::Coordinator> coordinator;
  std::unique_ptr<federated::Rollouts> rollouts;
  std::unique_ptr<serve::InferenceCore> core;
};

World& TheWorld() {
  static World* world = [] {
    auto* w = new World;
    static const fs::path dir = fs::temp_directory_path() / ("edgellm-fuzz-requests-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    // libFuzzer ends the process with exit(): the state goes with it.
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(dir, ec);
    });
    const std::string model_path = (dir / "model.gguf").string();
    if (!engine::WriteSyntheticModel({*engine::FindShape("test-spm"), engine::GgmlType::kF32, 1, ""}, model_path).ok()) {
      std::abort();
    }
    w->base_sha = *federated::Sha256OfFile(model_path);
    auto key = *release::SigningKey::Generate();
    std::ofstream(dir / "release.pub") << key.PublicPem();
    federated::AggregatorConfig config;
    config.tls_cert = config.tls_key = config.tls_client_ca = "unused";
    config.state_dir = (dir / "state").string();
    config.threads = 1;
    config.release_keys = {(dir / "release.pub").string()};
    federated::ModelConfig m;
    m.id = "m";
    m.base_model = model_path;
    m.rank = 2;
    m.min_devices = 1;
    m.quorum = 1;
    config.models = {m};
    w->metrics = std::make_unique<federated::AggregatorMetrics>(w->registry);
    w->coordinator = *federated::Coordinator::Open(config, *w->metrics, [](const std::string&) {});
    w->rollouts = *federated::Rollouts::Create(*w->coordinator, [](const std::string&) {});
    engine::ModelOptions options;
    options.threads = 1;
    options.context_length = 64;
    std::unique_ptr<engine::LlamaModel> model = *engine::LlamaModel::Load(model_path, options);
    std::shared_ptr<engine::KvBlockPool> pool = *model->NewBlockPool({16, 8, true});
    auto served = std::make_shared<serve::ServedModel>(std::move(model), std::move(pool), serve::SchedulerConfig{},
                                                       nullptr, std::nullopt, model_path);
    serve::InferenceCoreConfig core_config;
    core_config.model_name = "m";
    core_config.max_caller_share = 0.5;
    w->core = std::make_unique<serve::InferenceCore>(std::move(served), core_config);
    return w;
  }();
  return *world;
}

// An id as devices send them: mostly well formed, sometimes anything.
std::string Id(FuzzedDataProvider& in) {
  static const char* kKnown[] = {"dev-a", "dev-b", "m", "", "..", "a.b", "operator"};
  if (in.ConsumeBool()) return kKnown[in.ConsumeIntegralInRange<size_t>(0, 6)];
  return in.ConsumeRandomLengthString(80);
}

std::string Sha(FuzzedDataProvider& in, const std::string& real) {
  return in.ConsumeBool() ? real : in.ConsumeRandomLengthString(70);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = TheWorld();
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 0: {
      v1::RegisterRequest r;
      r.set_device_id(Id(in));
      r.set_model_id(Id(in));
      r.set_protocol_version(in.ConsumeIntegral<uint32_t>());
      r.set_daemon_version(in.ConsumeRandomLengthString(100));
      r.set_base_model_sha256(Sha(in, w.base_sha));
      r.mutable_adapter_schema()->set_rank(in.ConsumeIntegral<int32_t>());
      r.mutable_adapter_schema()->add_targets(in.ConsumeBool() ? "q_proj" : in.ConsumeRandomLengthString(20));
      r.mutable_capabilities()->set_local_examples(in.ConsumeIntegral<int64_t>());
      (void)w.coordinator->Register(r);
      break;
    }
    case 1: {
      v1::HeartbeatRequest r;
      r.set_device_id(Id(in));
      r.set_model_id(Id(in));
      r.set_round_id(in.ConsumeIntegral<uint64_t>());
      r.set_state(static_cast<v1::DeviceState>(in.ConsumeIntegralInRange<int>(0, 6)));
      r.set_detail(in.ConsumeRandomLengthString(600));
      (void)w.coordinator->Heartbeat(r);
      break;
    }
    case 2: {
      v1::GetTaskRequest r;
      r.set_device_id(Id(in));
      r.set_model_id(Id(in));
      (void)w.coordinator->GetTask(r);
      break;
    }
    case 3: {
      v1::UploadStatusRequest r;
      r.set_device_id(Id(in));
      r.set_model_id(Id(in));
      r.set_round_id(in.ConsumeIntegral<uint64_t>());
      r.set_idempotency_key(in.ConsumeRandomLengthString(80));
      (void)w.coordinator->UploadStatus(r);
      break;
    }
    case 4: {
      v1::UpdateHeader h;
      h.set_device_id(Id(in));
      h.set_model_id(Id(in));
      h.set_round_id(in.ConsumeIntegral<uint64_t>());
      h.set_idempotency_key(in.ConsumeRandomLengthString(80));
      h.set_example_count(in.ConsumeIntegral<int64_t>());
      h.set_total_bytes(in.ConsumeIntegral<uint64_t>());
      h.set_sha256(Sha(in, std::string(64, 'a')));
      h.set_offset(in.ConsumeIntegral<uint64_t>());
      for (int i = in.ConsumeIntegralInRange<int>(0, 40); i > 0; --i) {
        (*h.mutable_metrics())[in.ConsumeRandomLengthString(20)] = in.ConsumeFloatingPoint<double>();
      }
      absl::StatusOr<federated::UploadTarget> target = w.coordinator->BeginUpload(h);
      // A part file it agreed to take: what the stream would append, then the end of it.
      if (target.ok() && !target->answer) {
        std::ofstream(target->part_path, std::ios::binary | std::ios::app) << in.ConsumeRandomLengthString(4096);
        (void)w.coordinator->FinishUpload(h);
      }
      break;
    }
    case 5: {
      v1::InstallReport r;
      r.set_device_id(Id(in));
      r.set_model_id(Id(in));
      r.set_release(in.ConsumeIntegral<uint64_t>());
      r.set_outcome(static_cast<v1::InstallReport::Outcome>(in.ConsumeIntegralInRange<int>(0, 5)));
      r.set_serving_version(in.ConsumeIntegral<uint64_t>());
      r.set_detail(in.ConsumeRandomLengthString(1000));
      // Figures a lying device makes up, not-a-numbers and infinities among them.
      const auto figure = [&in] {
        switch (in.ConsumeIntegralInRange<int>(0, 3)) {
          case 0: return std::nan("");
          case 1: return std::numeric_limits<double>::infinity();
          default: return in.ConsumeFloatingPoint<double>();
        }
      };
      for (int which = 0; which < 2; ++which) {
        if (!in.ConsumeBool()) continue;
        v1::LiveFigures* live = which == 0 ? r.mutable_live() : r.mutable_live_baseline();
        live->set_requests(in.ConsumeIntegral<uint64_t>());
        live->set_errors(in.ConsumeIntegral<uint64_t>());
        live->set_refusals(in.ConsumeIntegral<uint64_t>());
        live->set_ttft_samples(in.ConsumeIntegral<uint64_t>());
        live->set_ttft_p99_seconds(figure());
        live->set_seconds(figure());
      }
      if (in.ConsumeBool()) {
        v1::EvaluationFigures* e = r.mutable_evaluation();
        e->set_loss(figure());
        e->set_baseline_loss(figure());
        e->set_examples(in.ConsumeIntegral<uint32_t>());
        e->set_exact_matches(in.ConsumeIntegral<uint32_t>());
        e->set_baseline_exact_matches(in.ConsumeIntegral<uint32_t>());
        e->set_cases(in.ConsumeIntegral<uint32_t>());
        e->set_seconds(figure());
      }
      (void)w.rollouts->Report(r);
      break;
    }
    case 6: {
      v1::GetReleaseRequest r;
      r.set_device_id(Id(in));
      r.set_model_id(Id(in));
      r.set_installed_version(in.ConsumeIntegral<uint64_t>());
      r.set_last_release(in.ConsumeIntegral<uint64_t>());
      (void)w.rollouts->ReleaseFor(r);
      break;
    }
    default: {
      serve::CompletionParams p;
      p.model = in.ConsumeBool() ? "m" : in.ConsumeRandomLengthString(20);
      p.adapter = in.ConsumeBool() ? "" : in.ConsumeRandomLengthString(20);
      if (in.ConsumeBool()) p.max_tokens = in.ConsumeIntegral<uint32_t>();
      if (in.ConsumeBool()) p.temperature = in.ConsumeFloatingPoint<float>();
      if (in.ConsumeBool()) p.top_p = in.ConsumeFloatingPoint<float>();
      if (in.ConsumeBool()) p.min_p = in.ConsumeFloatingPoint<float>();
      if (in.ConsumeBool()) p.repeat_penalty = in.ConsumeFloatingPoint<float>();
      if (in.ConsumeBool()) p.top_k = in.ConsumeIntegral<uint32_t>();
      if (in.ConsumeBool()) p.draft_tokens = in.ConsumeIntegral<uint32_t>();
      p.top_logprobs = in.ConsumeIntegral<int32_t>();
      for (int i = in.ConsumeIntegralInRange<int>(0, 8); i > 0; --i) p.stop.push_back(in.ConsumeRandomLengthString(40));
      const std::string caller = Id(in);
      if (w.core->StreamOpened(caller).ok()) {
        (void)w.core->Prepare(w.core->Current(), p, in.ConsumeRandomLengthString(2000), serve::Clock::time_point::max());
        w.core->StreamClosed(caller);
      }
      break;
    }
  }
  return 0;
}
