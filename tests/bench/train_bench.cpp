// edgellm-bench-train: times LoRA training steps on one GGUF and prints one
// machine-readable line per figure — seconds per optimizer step, tokens per
// second, peak resident memory, and the adapter's size next to the model's:
//
//   bench model=<file> type=<F32|...> threads=<n> metric=<name> value=<number> unit=<unit>
//
// The data is synthetic text from the model's own vocabulary, packed into
// full rows. Step figures are medians over --reps steps after one warm-up
// step (the last step, which also evaluates and saves, is not timed).
#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "daemon/engine/engine.h"
#include "daemon/train/trainer.h"

namespace edgellm::bench {
namespace {

double PeakRssMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

// JSONL text lines, each about `tokens` tokens of random vocabulary.
std::string SyntheticData(const engine::Tokenizer& tokenizer, int lines, int tokens, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out;
  for (int line = 0; line < lines; ++line) {
    std::vector<engine::TokenId> ids;
    while (static_cast<int>(ids.size()) < tokens) {
      const engine::TokenId id = static_cast<engine::TokenId>(rng() % static_cast<uint64_t>(tokenizer.vocab_size()));
      if (!tokenizer.TokenToPiece(id).empty()) ids.push_back(id);
    }
    const nlohmann::json example = {{"text", tokenizer.Decode(ids)}};
    out += example.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += "\n";
  }
  return out;
}

int Run(int argc, char** argv) {
  CLI::App app("Times LoRA training steps on a GGUF model");
  std::string model_path, targets = "all";
  int threads = 2, reps = 3;
  train::TrainerOptions options;
  options.lora.rank = 8;
  options.lora.alpha = 16.0f;
  options.micro_batch = 4;
  options.max_length = 256;
  options.eval_fraction = 0.0;
  options.eval_every = 0;
  options.checkpoint_every = 0;
  app.add_option("--model", model_path, "GGUF model")->required();
  app.add_option("--threads", threads, "Compute threads")->capture_default_str();
  app.add_option("--reps", reps, "Timed steps")->capture_default_str();
  app.add_option("--rank", options.lora.rank, "LoRA rank")->capture_default_str();
  app.add_option("--targets", targets, "all, or attention (q_proj,k_proj,v_proj,o_proj)")->capture_default_str();
  app.add_option("--micro-batch", options.micro_batch, "Rows per step")->capture_default_str();
  app.add_option("--max-length", options.max_length, "Tokens per row")->capture_default_str();
  app.add_option("--memory-budget", options.memory_budget_mib, "MiB (0: no limit)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  options.lora.targets = engine::AllLoraTargets();
  if (targets != "all") options.lora.targets.resize(4);  // q_proj k_proj v_proj o_proj
  options.steps = reps + 2;

  engine::ModelOptions model_options;
  model_options.threads = threads;
  auto model = engine::LlamaModel::Load(model_path, model_options);
  if (!model.ok()) {
    std::cerr << model.status() << "\n";
    return 1;
  }
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("edgellm-bench-train-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string data_path = (dir / "data.jsonl").string();
  std::ofstream(data_path) << SyntheticData((*model)->tokenizer(), options.micro_batch * options.steps * 2,
                                            options.max_length + options.max_length / 4, 1);
  auto trainer = train::LoraTrainer::Create(**model, data_path, options, (dir / "adapter").string());
  if (!trainer.ok()) {
    std::cerr << trainer.status() << "\n";
    return 1;
  }
  std::vector<double> seconds;
  int64_t tokens = 0;
  while (!(*trainer)->done()) {
    auto report = (*trainer)->Step();
    if (!report.ok()) {
      std::cerr << report.status() << "\n";
      return 1;
    }
    if (report->step > 1 && !(*trainer)->done()) {
      seconds.push_back(report->seconds);
      tokens = report->tokens;
    }
  }
  std::sort(seconds.begin(), seconds.end());
  const double step = seconds[seconds.size() / 2];
  const std::string type((*model)->weight_type());
  auto line = [&](const char* metric, double value, const char* unit) {
    std::cout << "bench model=" << std::filesystem::path(model_path).filename().string() << " type=" << type
              << " threads=" << threads << " metric=" << metric << " value=" << value << " unit=" << unit << "\n";
  };
  std::cout << "# rank " << options.lora.rank << " on " << targets << "; plan: " << (*trainer)->plan().Describe()
            << "\n";
  line("train_step", step, "s");
  line("train_tokens_per_second", static_cast<double>(tokens) / step, "tok/s");
  line("train_peak_rss", PeakRssMiB(), "MiB");
  std::error_code ec;
  const auto adapter_bytes = std::filesystem::file_size(dir / "adapter" / "adapter_model.safetensors", ec);
  line("adapter_bytes", static_cast<double>(adapter_bytes), "B");
  line("model_bytes", static_cast<double>(std::filesystem::file_size(model_path, ec)), "B");
  std::filesystem::remove_all(dir, ec);
  return 0;
}

}  // namespace
}  // namespace edgellm::bench

int main(int argc, char** argv) { return edgellm::bench::Run(argc, argv); }
