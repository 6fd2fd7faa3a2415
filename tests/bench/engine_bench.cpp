// edgellm-bench-engine: loads one GGUF and prints one machine-readable line per
// figure — load time, prefill and decode throughput, aggregate decode
// throughput of several sequences batched together, resident memory, and the
// decode speed as a fraction of the machine's measured memory read bandwidth:
//
//   bench model=<file> type=<F32|...> threads=<n> metric=<name> value=<number> unit=<unit>
//
// Figures are medians over --reps runs after one warm-up run.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <thread>

#include <CLI/CLI.hpp>

#include "daemon/engine/engine.h"

namespace edgellm::bench {
namespace {

using Clock = std::chrono::steady_clock;
using engine::TokenId;

double Seconds(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double PeakRssMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
}

double CurrentRssMiB() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// Read bandwidth of main memory with `threads` threads: the best of a few
// passes summing a buffer far larger than the caches.
double MeasureReadBandwidthGbS(int threads) {
  const size_t words = size_t{512} << 20 >> 3;  // 512 MiB of uint64
  std::vector<uint64_t> buffer(words, 1);
  double best = 0.0;
  for (int pass = 0; pass < 4; ++pass) {
    std::vector<uint64_t> sums(threads, 0);
    std::vector<std::thread> workers;
    const Clock::time_point start = Clock::now();
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        const size_t begin = words * t / threads, end = words * (t + 1) / threads;
        uint64_t sum = 0;
        for (size_t i = begin; i < end; ++i) sum += buffer[i];
        sums[t] = sum;
      });
    }
    for (std::thread& w : workers) w.join();
    const double seconds = Seconds(start);
    if (std::accumulate(sums.begin(), sums.end(), uint64_t{0}) != words) return 0.0;
    best = std::max(best, static_cast<double>(words * 8) / seconds / 1e9);
  }
  return best;
}

struct Args {
  std::string model;
  int32_t threads = 0;
  int32_t prompt_tokens = 128;   // before decoding
  int32_t prefill_tokens = 512;  // the prompt whose forward prefill_tok_s times
  int32_t decode_tokens = 128;
  int32_t reps = 3;
  bool mmap_weights = false;  // map the file instead of reading it into memory
  std::vector<int32_t> batch_sizes = {1, 4, 16};
  // Time only the decode loop (no prefill, batches, drafting or bandwidth),
  // for a profiler to see decode steps and nothing else.
  bool only_decode = false;
  // Time only this many sequences decoding together (0: off), as only_decode
  // does for one: what a profiler should see of a batched step.
  int32_t only_batch = 0;
  bool unpacked = false;  // leave the weights as the file has them (ModelOptions::pack_weights off)
  std::string kv_type = "f16";  // how the KV caches store keys and values, as edgellmd's kv_type
  // perf's control and acknowledgement FIFOs (perf record --control=fifo:CTL,ACK -D -1):
  // events are enabled around each decode loop only, so a profile sees no
  // load, prompt or cache set-up.
  std::string perf_control, perf_ack;
};

// Switches a `perf record --control` session's events on or off and waits
// until perf says it has, so no sample of what comes before or after lands.
class PerfControl {
 public:
  PerfControl(const std::string& control, const std::string& ack) {
    if (control.empty()) return;
    control_.open(control);
    ack_.open(ack);
  }
  void Enable() { Send("enable"); }
  void Disable() { Send("disable"); }

 private:
  void Send(const char* command) {
    if (!control_.is_open()) return;
    control_ << command << std::endl;
    std::string reply;
    std::getline(ack_, reply);
  }
  std::ofstream control_;
  std::ifstream ack_;
};

// Aggregate decode speed of `batch` sequences decoding together, one batched
// forward per step, each after its own prompt: tokens of all sequences / time.
// `perf`, when given, is enabled around the timed steps only.
absl::StatusOr<double> BatchDecodeTokensPerSecond(const engine::LlamaModel& model, const Args& args,
                                                  const std::vector<TokenId>& prompt, int32_t batch,
                                                  PerfControl* perf = nullptr) {
  std::vector<std::unique_ptr<engine::KvCache>> caches;
  std::vector<TokenId> next(batch);
  std::vector<engine::BatchItem> items;
  std::vector<float> logits;
  for (int32_t b = 0; b < batch; ++b) {
    absl::StatusOr<std::unique_ptr<engine::KvCache>> cache = model.NewCache(args.prompt_tokens + args.decode_tokens + 1);
    if (!cache.ok()) return cache.status();
    caches.push_back(std::move(*cache));
    if (absl::Status s = model.Forward(prompt, caches.back().get(), false, &logits); !s.ok()) return s;
    next[b] = prompt[b % prompt.size()];
    items.push_back({{&next[b], 1}, caches.back().get()});
  }
  const int32_t vocab = model.config().n_vocab;
  if (perf != nullptr) perf->Enable();
  const Clock::time_point start = Clock::now();
  absl::Status status;
  for (int32_t step = 0; status.ok() && step < args.decode_tokens; ++step) {
    status = model.ForwardBatch(items, &logits);
    for (int32_t b = 0; status.ok() && b < batch; ++b) {
      const float* row = logits.data() + static_cast<size_t>(b) * vocab;
      next[b] = engine::ArgMax({row, static_cast<size_t>(vocab)});
    }
  }
  const double seconds = Seconds(start);
  if (perf != nullptr) perf->Disable();
  if (!status.ok()) return status;
  return static_cast<double>(batch) * args.decode_tokens / seconds;
}

// Tasks for speculative decoding: one that repeats its input (a passage quoted
// back), one of free text.
constexpr char kRepetitivePrompt[] =
    "Copy the list. Milk, eggs, bread, apples, rice, beans, cheese, butter, salt, tea, honey, oats. "
    "Copy the list. Milk, eggs, bread, apples, rice, beans, cheese, butter, salt, tea, honey, oats. "
    "Copy the list. Milk, eggs,";
constexpr char kFreePrompt[] = "Once upon a time";

struct SpeculativeFigures {
  double speedup = 0.0;          // greedy tok/s with drafts ÷ without
  double acceptance_rate = 0.0;  // accepted ÷ drafted
};

// Greedy generation of `tokens` tokens with and without prompt-lookup drafts;
// the outputs are the same, only the time differs.
absl::StatusOr<SpeculativeFigures> MeasureSpeculative(const engine::LlamaModel& model, const std::string& prompt,
                                                      int32_t tokens, int32_t draft) {
  engine::GenerateOptions options;
  options.max_tokens = tokens;
  options.sampling.temperature = 0.0f;
  options.ignore_eos = true;
  options.draft_row_cost = engine::MeasureRowCost(model);
  auto timed = [&](int32_t draft_tokens) -> absl::StatusOr<std::pair<double, engine::GenerateResult>> {
    options.draft_tokens = draft_tokens;
    const Clock::time_point start = Clock::now();
    absl::StatusOr<engine::GenerateResult> result = engine::Generate(model, prompt, options);
    if (!result.ok()) return result.status();
    return std::make_pair(Seconds(start), *std::move(result));
  };
  auto plain = timed(0);
  if (!plain.ok()) return plain.status();
  auto speculative = timed(draft);
  if (!speculative.ok()) return speculative.status();
  SpeculativeFigures figures;
  figures.speedup = plain->first / speculative->first;
  const engine::GenerateResult& r = speculative->second;
  figures.acceptance_rate = r.drafted_tokens > 0 ? static_cast<double>(r.accepted_tokens) / r.drafted_tokens : 0.0;
  return figures;
}

int Run(const Args& args) {
  engine::ModelOptions options;
  options.threads = args.threads;
  options.file_access = args.mmap_weights ? engine::FileAccess::kMapped : engine::FileAccess::kResident;
  options.pack_weights = !args.unpacked;
  absl::StatusOr<engine::KvType> kv_type = engine::ParseKvType(args.kv_type);
  if (!kv_type.ok()) {
    std::cerr << "edgellm-bench-engine: " << kv_type.status().message() << "\n";
    return 1;
  }
  options.kv_type = *kv_type;
  const Clock::time_point load_start = Clock::now();
  auto loaded = engine::LlamaModel::Load(args.model, options);
  if (!loaded.ok()) {
    std::cerr << "edgellm-bench-engine: " << loaded.status().message() << "\n";
    return 1;
  }
  const double load_seconds = Seconds(load_start);
  const engine::LlamaModel& model = **loaded;
  const int threads = args.threads > 0 ? args.threads : static_cast<int>(std::thread::hardware_concurrency());
  const std::string prefix = "bench model=" + std::filesystem::path(args.model).filename().string() +
                             " type=" + std::string(model.weight_type()) + " threads=" + std::to_string(threads);
  auto print = [&](const char* metric, double value, const char* unit) {
    std::printf("%s metric=%s value=%.6g unit=%s\n", prefix.c_str(), metric, value, unit);
    std::fflush(stdout);
  };
  print("load_s", load_seconds, "s");
  print("packed_matrices", model.packed_matrices(), "matrices");
  print("rss_after_load_mib", CurrentRssMiB(), "MiB");

  const int32_t vocab = model.config().n_vocab;
  auto make_prompt = [&](int32_t n) {
    std::vector<TokenId> tokens(n);
    for (int32_t i = 0; i < n; ++i) tokens[i] = static_cast<TokenId>((i * 7919 + 17) % vocab);
    return tokens;
  };
  const std::vector<TokenId> prompt = make_prompt(args.prompt_tokens);
  const std::vector<TokenId> long_prompt = make_prompt(args.prefill_tokens);
  std::vector<float> logits;

  std::vector<double> prefill_rates, decode_rates;
  PerfControl perf(args.perf_control, args.perf_ack);
  if (args.only_batch > 0) {
    std::vector<double> rates;
    for (int rep = 0; rep <= args.reps; ++rep) {  // rep 0 is the warm-up
      absl::StatusOr<double> rate =
          BatchDecodeTokensPerSecond(model, args, prompt, args.only_batch, rep > 0 ? &perf : nullptr);
      if (!rate.ok()) {
        std::cerr << "edgellm-bench-engine: " << rate.status().message() << "\n";
        return 1;
      }
      if (rep > 0) rates.push_back(*rate);
    }
    print(("batch" + std::to_string(args.only_batch) + "_decode_tok_s").c_str(), Median(rates), "tok/s");
    return 0;
  }
  // One cache for each, emptied before every repetition: as a server reuses
  // its pool's blocks (and llama.cpp its KV buffer), so a repetition's
  // forwards do not fault fresh pages in.
  absl::StatusOr<std::unique_ptr<engine::KvCache>> prefill_cache = model.NewCache(args.prefill_tokens);
  absl::StatusOr<std::unique_ptr<engine::KvCache>> cache = model.NewCache(args.prompt_tokens + args.decode_tokens + 1);
  for (const auto* made : {&prefill_cache, &cache}) {
    if (!made->ok()) {
      std::cerr << "edgellm-bench-engine: " << made->status().message() << "\n";
      return 1;
    }
  }
  for (int rep = 0; rep <= args.reps; ++rep) {  // rep 0 is the warm-up
    absl::Status s;
    if (!args.only_decode) {
      (*prefill_cache)->Truncate(0);
      const Clock::time_point start = Clock::now();
      s = model.Forward(long_prompt, prefill_cache->get(), false, &logits);
      if (rep > 0) prefill_rates.push_back(args.prefill_tokens / Seconds(start));
    }
    (*cache)->Truncate(0);
    if (s.ok()) s = model.Forward(prompt, cache->get(), false, &logits);
    if (rep > 0) perf.Enable();
    const Clock::time_point start = Clock::now();
    for (int32_t i = 0; s.ok() && i < args.decode_tokens; ++i) {
      const TokenId next = engine::ArgMax(logits);
      s = model.Forward({&next, 1}, cache->get(), false, &logits);
    }
    const double decode_seconds = Seconds(start);
    if (rep > 0) perf.Disable();
    if (!s.ok()) {
      std::cerr << "edgellm-bench-engine: " << s.message() << "\n";
      return 1;
    }
    if (rep > 0) decode_rates.push_back(args.decode_tokens / decode_seconds);
  }
  const double decode = Median(decode_rates);
  if (args.only_decode) {
    print("decode_tok_s", decode, "tok/s");
    return 0;
  }
  print("prefill_tok_s", Median(prefill_rates), "tok/s");
  print("decode_tok_s", decode, "tok/s");
  // Weight bytes streamed per second while decoding: compare with the machine's memory bandwidth.
  const double weight_gb_s = decode * static_cast<double>(model.weight_bytes_per_token()) / 1e9;
  print("decode_weight_read_gb_s", weight_gb_s, "GB/s");
  // One sequence's footprint: sampled before the batches add their caches.
  print("peak_rss_mib", PeakRssMiB(), "MiB");
  // The machine's read bandwidth varies from minute to minute: the better of
  // a measurement here and one at the end is the limit. (After the peak RSS:
  // the measurement's buffer would count in it.)
  const double bandwidth_early = MeasureReadBandwidthGbS(threads);
  for (int32_t batch : args.batch_sizes) {
    absl::StatusOr<double> rate = BatchDecodeTokensPerSecond(model, args, prompt, batch);
    if (!rate.ok()) {
      std::cerr << "edgellm-bench-engine: " << rate.status().message() << "\n";
      return 1;
    }
    print(("batch" + std::to_string(batch) + "_decode_tok_s").c_str(), *rate, "tok/s");
  }
  for (const auto& [name, prompt] : {std::pair<std::string, std::string>{"repetitive", kRepetitivePrompt},
                                     std::pair<std::string, std::string>{"free", kFreePrompt}}) {
    absl::StatusOr<SpeculativeFigures> spec = MeasureSpeculative(model, prompt, args.decode_tokens, 6);
    if (!spec.ok()) {
      std::cerr << "edgellm-bench-engine: " << spec.status().message() << "\n";
      return 1;
    }
    print(("speculative_" + name + "_speedup").c_str(), spec->speedup, "ratio");
    print(("speculative_" + name + "_acceptance").c_str(), spec->acceptance_rate, "ratio");
  }
  const double bandwidth = std::max(bandwidth_early, MeasureReadBandwidthGbS(threads));
  print("memory_read_gb_s", bandwidth, "GB/s");
  // 1.0 would be decoding as fast as the weights can be read from memory.
  print("decode_fraction_of_bandwidth", weight_gb_s / bandwidth, "ratio");
  return 0;
}

}  // namespace
}  // namespace edgellm::bench

int main(int argc, char** argv) {
  edgellm::bench::Args args;
  CLI::App app{"Engine benchmark: load time, prefill and decode tok/s, memory"};
  app.add_option("-m,--model", args.model, "GGUF model file")->required();
  app.add_option("-t,--threads", args.threads, "Compute threads (default: one per core)");
  app.add_option("--prompt-tokens", args.prompt_tokens, "Prompt length before decoding")->capture_default_str();
  app.add_option("--prefill-tokens", args.prefill_tokens, "Prompt length for prefill_tok_s")->capture_default_str();
  app.add_option("--decode-tokens", args.decode_tokens, "Tokens to decode")->capture_default_str();
  app.add_flag("--mmap-weights", args.mmap_weights, "Map the model from the page cache instead of reading it in");
  app.add_flag("--unpacked", args.unpacked, "Leave the weights as the file has them instead of packing them at load");
  app.add_option("--kv-type", args.kv_type, "KV cache element type: f16, f32 or q8_0")->capture_default_str();
  app.add_flag("--only-decode", args.only_decode,
               "Time only the decode loop (no prefill, batches, drafting or bandwidth): what a profiler should see");
  app.add_option("--only-batch", args.only_batch,
                 "Time only this many sequences decoding together (each after its own prompt): what a profiler "
                 "should see of a batched step")
      ->check(CLI::Range(1, 256));
  CLI::Option* perf_control = app.add_option(
      "--perf-control", args.perf_control,
      "perf record's control FIFO: events are enabled around each measured decode loop only");
  CLI::Option* perf_ack =
      app.add_option("--perf-ack", args.perf_ack, "perf record's acknowledgement FIFO, with --perf-control");
  perf_control->needs(perf_ack);
  perf_ack->needs(perf_control);
  app.add_option("--reps", args.reps, "Measured repetitions (after one warm-up)")->capture_default_str();
  app.add_option("--batch-sizes", args.batch_sizes, "Sequences decoding together, for aggregate decode tok/s")
      ->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  return edgellm::bench::Run(args);
}
