// edgellm-bench-aggregate: the aggregator's per-update work at a real
// adapter's size, and the device's encoding, on the shapes of one GGUF:
//
//   bench model=<file> strategy=<name> metric=<name> value=<number> unit=<unit>
//
// Per update the aggregator hashes the bytes, decodes (zstd + int8/f16),
// checks layout, finiteness and norm, and adds it to the round's aggregate —
// exactly what Coordinator::FinishUpload does besides the disk.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <random>

#include <CLI/CLI.hpp>

#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "federated/adapter/adapter_tensors.h"
#include "federated/aggregator/strategy.h"
#include "federated/protocol/sha256.h"
#include "federated/protocol/update_codec.h"

namespace edgellm::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int Run(int argc, char** argv) {
  CLI::App app("Times the aggregation of federated updates at a real adapter's size");
  std::string model_path, targets = "all", strategy = "fedavg", encoding = "int8";
  int rank = 8, updates = 40;
  bool full = false;
  app.add_option("--model", model_path, "GGUF whose shapes the adapter takes")->required();
  app.add_option("--rank", rank, "LoRA rank")->capture_default_str();
  app.add_option("--targets", targets, "Adapted projections")->capture_default_str();
  app.add_option("--strategy", strategy, "fedavg | fedadam | median | trimmed_mean | krum | dp_fedavg")->capture_default_str();
  app.add_option("--encoding", encoding, "int8 | f16")->capture_default_str();
  app.add_option("--updates", updates, "Updates aggregated")->capture_default_str();
  app.add_flag("--full", full, "A and B (not FFA-LoRA's B only)");
  CLI11_PARSE(app, argc, argv);

  auto model = engine::LlamaModel::Load(model_path, {});
  if (!model.ok()) {
    std::cerr << model.status() << "\n";
    return 1;
  }
  engine::LoraConfig lora;
  lora.rank = rank;
  lora.targets = *engine::ParseLoraTargets(targets);
  auto adapter = engine::LoraAdapter::Create(lora, (*model)->config());
  const federated::TensorSet layout = federated::ZerosLike(federated::AdapterTensors(*adapter, full));
  const auto e = encoding == "f16" ? federated::TensorEncoding::kF16 : federated::TensorEncoding::kInt8;

  // Deltas like a device's: small, dense, different per device.
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal(0.0f, 1e-3f);
  std::vector<std::string> encoded;
  double encode_seconds = 0;
  for (int u = 0; u < updates; ++u) {
    federated::TensorSet delta = layout;
    for (federated::NamedTensor& t : delta) {
      for (float& v : t.values) v = normal(rng);
    }
    const auto start = Clock::now();
    encoded.push_back(federated::EncodeTensors({"m", 1, 1, delta}, e));
    encode_seconds += Seconds(Clock::now() - start);
  }
  federated::StrategyConfig config;
  config.name = strategy;
  config.norm_bound = strategy == "dp_fedavg" ? 1.0 : 0.0;
  config.krum_byzantine = std::max(0, (updates - 3) / 2);
  auto aggregation = federated::NewAggregation(config, layout, 7);
  // What the aggregator does with each upload: the frame's declared size
  // first, then a decode that checks names and shapes before allocating.
  federated::DecodeLimits limits;
  limits.layout = &layout;
  limits.model_id = "m";
  limits.max_decoded_bytes = federated::DecodedSize("m", layout, federated::TensorEncoding::kF32);
  const auto start = Clock::now();
  for (const std::string& bytes : encoded) {
    const std::string sha = federated::Sha256Hex(bytes);
    auto decoded = federated::CheckDeclaredSize(bytes, "m", layout).ok()
                       ? federated::DecodeTensors(bytes, limits)
                       : absl::StatusOr<federated::EncodedTensors>(absl::InvalidArgumentError("size"));
    if (!decoded.ok() || !federated::CheckSameLayout(layout, decoded->tensors).ok() ||
        !federated::FirstNonFinite(decoded->tensors).empty() || sha.empty()) {
      std::cerr << "a generated update did not validate\n";
      return 1;
    }
    federated::L2Norm(decoded->tensors);
    aggregation->Add(decoded->tensors, 1.0);
  }
  const double add_seconds = Seconds(Clock::now() - start);
  const auto finish_start = Clock::now();
  auto result = aggregation->Finish();
  const double finish_seconds = Seconds(Clock::now() - finish_start);
  if (!result.ok()) return 1;

  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const std::string prefix = "bench model=" + std::filesystem::path(model_path).filename().string() +
                             " strategy=" + strategy + " encoding=" + encoding + " values=" +
                             std::to_string(federated::ValueCount(layout)) + " metric=";
  auto line = [&](const std::string& metric, double value, const std::string& unit) {
    std::cout << prefix << metric << " value=" << value << " unit=" << unit << "\n";
  };
  line("update_bytes", static_cast<double>(encoded.front().size()), "B");
  line("model_bytes", static_cast<double>(std::filesystem::file_size(model_path)), "B");
  line("encode_update", 1e3 * encode_seconds / updates, "ms");
  line("aggregate_updates_per_second", updates / add_seconds, "updates/s");
  line("aggregate_megabytes_per_second", static_cast<double>(encoded.front().size()) * updates / add_seconds / 1e6,
       "MB/s");
  line("finish_round", 1e3 * finish_seconds, "ms");
  line("peak_rss", usage.ru_maxrss / 1024.0, "MiB");
  return 0;
}

}  // namespace
}  // namespace edgellm::bench

int main(int argc, char** argv) { return edgellm::bench::Run(argc, argv); }
