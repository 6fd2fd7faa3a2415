// Google Benchmark micro-benchmarks of the engine's hot spots: the weight
// kernels (per type, per instruction set, one thread), dequantization,
// tokenization, sampling, logprobs and chat-template rendering.
#include <benchmark/benchmark.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <array>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>

#include "daemon/chat/chat_formatter.h"
#include "daemon/engine/attention.h"
#include "daemon/engine/bpe_pretokenizer.h"
#include "daemon/engine/compute_threads.h"
#include "daemon/engine/kv_block_pool.h"
#include "daemon/engine/kv_cache.h"
#include "daemon/engine/quant_kernels.h"
#include "daemon/engine/quant_matmul.h"
#include "daemon/engine/quant_types.h"
#include "daemon/engine/thread_pool.h"
#include "daemon/engine/token_logprobs.h"
#include "daemon/engine/sampler.h"
#include "daemon/engine/synthetic_vocab.h"
#include "daemon/engine/tokenizer.h"
#include "daemon/engine/weight_matrix.h"

namespace edgellm::engine {
namespace {

void BM_Dequantize(benchmark::State& state, GgmlType type) {
  const size_t n = 4096 * 64;
  std::vector<float> x(n);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);
  std::vector<uint8_t> q(RowBytes(type, n));
  (void)Quantize(type, x, absl::MakeSpan(q));
  std::vector<float> y(n);
  for (auto _ : state) {
    benchmark::DoNotOptimize(Dequantize(type, q, absl::MakeSpan(y)));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * q.size());
}
BENCHMARK_CAPTURE(BM_Dequantize, F16, GgmlType::kF16);
BENCHMARK_CAPTURE(BM_Dequantize, Q8_0, GgmlType::kQ8_0);
BENCHMARK_CAPTURE(BM_Dequantize, Q4_0, GgmlType::kQ4_0);
BENCHMARK_CAPTURE(BM_Dequantize, Q4_K, GgmlType::kQ4_K);
BENCHMARK_CAPTURE(BM_Dequantize, Q6_K, GgmlType::kQ6_K);
BENCHMARK_CAPTURE(BM_Dequantize, Q5_0, GgmlType::kQ5_0);
BENCHMARK_CAPTURE(BM_Dequantize, Q5_K, GgmlType::kQ5_K);
BENCHMARK_CAPTURE(BM_Dequantize, IQ4_XS, GgmlType::kIQ4_XS);

// One decode row through a 2048 x 2048 weight (in cache: the kernel's compute
// speed, not memory's), on one thread; "bytes" are weight bytes.
void BM_MatVec(benchmark::State& state, GgmlType type, bool simd) {
  const kernels::KernelSet* set = simd ? &kernels::BestKernels() : &kernels::ScalarKernels();
  state.SetLabel(std::string(set->name));
  const int64_t n = 2048;
  std::vector<float> w(n * n), x(n), y(n);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (float& v : w) v = normal(rng);
  for (float& v : x) v = normal(rng);
  std::vector<uint8_t> q(RowBytes(type, n * n));
  (void)Quantize(type, w, absl::MakeSpan(q));
  ThreadPool one(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(QuantMatMul(type, q.data(), x.data(), y.data(), {1, n, n}, set, &one));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * q.size());
}
BENCHMARK_CAPTURE(BM_MatVec, F32_simd, GgmlType::kF32, true);
BENCHMARK_CAPTURE(BM_MatVec, F16_simd, GgmlType::kF16, true);
BENCHMARK_CAPTURE(BM_MatVec, Q8_0_simd, GgmlType::kQ8_0, true);
BENCHMARK_CAPTURE(BM_MatVec, Q4_0_simd, GgmlType::kQ4_0, true);
BENCHMARK_CAPTURE(BM_MatVec, Q4_1_simd, GgmlType::kQ4_1, true);
BENCHMARK_CAPTURE(BM_MatVec, Q5_0_simd, GgmlType::kQ5_0, true);
BENCHMARK_CAPTURE(BM_MatVec, Q5_1_simd, GgmlType::kQ5_1, true);
BENCHMARK_CAPTURE(BM_MatVec, IQ4_NL_simd, GgmlType::kIQ4_NL, true);
BENCHMARK_CAPTURE(BM_MatVec, Q2_K_simd, GgmlType::kQ2_K, true);
BENCHMARK_CAPTURE(BM_MatVec, Q3_K_simd, GgmlType::kQ3_K, true);
BENCHMARK_CAPTURE(BM_MatVec, Q4_K_simd, GgmlType::kQ4_K, true);
BENCHMARK_CAPTURE(BM_MatVec, Q5_K_simd, GgmlType::kQ5_K, true);
BENCHMARK_CAPTURE(BM_MatVec, Q6_K_simd, GgmlType::kQ6_K, true);
BENCHMARK_CAPTURE(BM_MatVec, IQ4_XS_simd, GgmlType::kIQ4_XS, true);
// The scalar reference, for two types.
BENCHMARK_CAPTURE(BM_MatVec, Q8_0_scalar, GgmlType::kQ8_0, false);
BENCHMARK_CAPTURE(BM_MatVec, Q4_K_scalar, GgmlType::kQ4_K, false);

// One job of two one-task chunks through a pool of two threads: what a
// kernel's hand-off to the other thread and back costs, with no work in it.
// A decode step runs about five such jobs per layer.
void BM_PoolHandOff(benchmark::State& state) {
  ThreadPool pool(2);
  struct alignas(64) Count {
    int64_t chunks = 0;
  };
  Count done[2];  // a line per task, so the chunks share nothing but the pool
  for (auto _ : state) {
    pool.Run(2, 1, [&](int64_t begin, int64_t) { ++done[begin].chunks; });
  }
  if (done[0].chunks + done[1].chunks != 2 * static_cast<int64_t>(state.iterations())) {
    state.SkipWithError("a chunk was lost");
  }
}
BENCHMARK(BM_PoolHandOff);

// A decode row's scores against 4,096 keys of 64 floats (one head of a
// smol-135m-sized cache, 1 MiB: from L2), by the dot of one key at a time
// (arg 0) or by KeyScoresFn's eight keys a pass (arg 1).
void BM_KeyScores(benchmark::State& state) {
  constexpr int64_t kKeys = 4096, kWidth = 64;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> keys(kKeys * kWidth), query(kWidth), scores(kKeys);
  for (float& v : keys) v = normal(rng);
  for (float& v : query) v = normal(rng);
  const kernels::KernelSet& set = kernels::BestKernels();
  const bool batched = state.range(0) == 1;
  for (auto _ : state) {
    if (batched) {
      set.key_scores(keys.data(), kKeys, kWidth, query.data(), kWidth, 1, 0.125f, scores.data(), kKeys);
    } else {
      for (int64_t t = 0; t < kKeys; ++t) {
        scores[t] = 0.125f * set.dot_f32(reinterpret_cast<const uint8_t*>(keys.data() + t * kWidth), query.data(), kWidth);
      }
    }
    benchmark::DoNotOptimize(scores.data());
  }
  state.SetItemsProcessed(state.iterations() * kKeys);
  state.SetLabel(batched ? "eight keys a pass" : "a dot per key");
}
BENCHMARK(BM_KeyScores)->Arg(0)->Arg(1);

// One decode row's attention, one KV head and the query heads sharing it
// (arg 1: 3 as smol-135m, 8 as tinyllama and llama3.2), over 1,024 cached
// positions of 64-wide heads stored as floats (arg 0 = 0), halves (1) or
// Q8_0 (2): the scores, the softmax and the weighted sum of the values, one
// thread. The cache (1,024 positions: 256 KiB of floats) fits in L2, so this
// is the kernels' speed, not memory's.
void BM_DecodeAttention(benchmark::State& state) {
  const KvType type = std::array{KvType::kF32, KvType::kF16, KvType::kQ8_0}.at(static_cast<size_t>(state.range(0)));
  const int32_t group = static_cast<int32_t>(state.range(1));
  constexpr int32_t kPositions = 1024, kHeadDim = 64, kBlockSize = 16;
  LlamaConfig config;
  config.n_layer = 1;
  config.n_head = group;
  config.n_head_kv = 1;
  config.head_dim = kHeadDim;
  config.attention_scale = 0.125f;
  auto pool = KvBlockPool::Create({1, 1, kHeadDim, type}, {.block_size = kBlockSize,
                                                          .block_count = kPositions / kBlockSize + 1,
                                                          .prefix_caching = false});
  if (!pool.ok()) {
    state.SkipWithError(std::string(pool.status().message()).c_str());
    return;
  }
  std::unique_ptr<KvCache> cache = (*pool)->NewCache(kPositions + 1);
  if (!cache->Reserve(kPositions + 1).ok()) {
    state.SkipWithError("no room for the cache");
    return;
  }
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> row(kHeadDim);
  for (int32_t block : cache->block_table()) {
    for (const bool values : {false, true}) {
      for (int32_t slot = 0; slot < kBlockSize; ++slot) {
        for (float& v : row) v = normal(rng);
        (*pool)->StoreHeadRow(row.data(), (*pool)->HeadData(block, 0, 0, values), slot, values);
      }
    }
  }
  cache->Append(std::vector<TokenId>(kPositions, 1));
  std::vector<float> query(static_cast<size_t>(group) * kHeadDim), out(query.size());
  for (float& v : query) v = normal(rng);
  // From a cache line's start, as the engine gives it.
  const size_t scratch_bytes = static_cast<size_t>(AttentionScratch(config, 1, **pool)) * sizeof(float);
  const std::unique_ptr<float, decltype(&std::free)> scratch(
      static_cast<float*>(std::aligned_alloc(64, (scratch_bytes + 63) / 64 * 64)), &std::free);
  if (scratch == nullptr) {
    state.SkipWithError("no memory for the scratch");
    return;
  }
  const CpuSequence seq{0, 1, cache.get(), false};
  for (auto _ : state) {
    AttendOneKvHead(config, seq, kPositions, 0, 0, 0, query.data(), scratch.get(), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * (kPositions + 1) * group);
  state.SetLabel(std::string(KvTypeName(type)) + ", " + std::to_string(group) + " query heads");
}
BENCHMARK(BM_DecodeAttention)->ArgsProduct({{0, 1, 2}, {3, 8}});

// One decode row through 256 MiB of weights (far past any cache: rows of
// 2304, as gemma2-2b's, made of one quantized 2304 x 2304 matrix repeated),
// on one thread: how much of memory's bandwidth the kernel turns into
// results. "bytes" are weight bytes.
void BM_MatVecFromMemory(benchmark::State& state, GgmlType type) {
  const int64_t in = 2304, tile_rows = 2304;
  std::vector<float> w(tile_rows * in), x(in);
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  for (float& v : w) v = normal(rng);
  for (float& v : x) v = normal(rng);
  std::vector<uint8_t> tile(RowBytes(type, w.size()));
  (void)Quantize(type, w, absl::MakeSpan(tile));
  const int64_t tiles = (int64_t{256} << 20) / static_cast<int64_t>(tile.size()), out = tiles * tile_rows;
  std::vector<uint8_t> q(tile.size() * tiles);
  for (int64_t t = 0; t < tiles; ++t) std::copy(tile.begin(), tile.end(), q.begin() + t * tile.size());
  std::vector<float> y(out);
  ThreadPool pool(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(QuantMatMul(type, q.data(), x.data(), y.data(), {1, in, out}, nullptr, &pool));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * q.size());
}
BENCHMARK_CAPTURE(BM_MatVecFromMemory, Q8_0, GgmlType::kQ8_0)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_MatVecFromMemory, Q4_0, GgmlType::kQ4_0)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_MatVecFromMemory, Q4_K, GgmlType::kQ4_K)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_MatVecFromMemory, Q6_K, GgmlType::kQ6_K)->Arg(1)->Arg(2);

// A product's operands: `rows` activation rows of normal random values, an
// [out, in] weight of them quantized to `type`, and room for the result.
struct RandomProduct {
  std::vector<float> x, y;
  std::vector<uint8_t> weight;
};
RandomProduct MakeRandomProduct(GgmlType type, int64_t rows, int64_t in, int64_t out, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> w(static_cast<size_t>(out * in));
  for (float& v : w) v = normal(rng);
  RandomProduct p;
  p.x.resize(static_cast<size_t>(rows * in));
  p.y.resize(static_cast<size_t>(rows * out));
  p.weight.resize(RowBytes(type, w.size()));
  for (float& v : p.x) v = normal(rng);
  (void)Quantize(type, w, absl::MakeSpan(p.weight));
  return p;
}

// A prefill chunk: 128 activation rows through a 2048 x 1024 weight, on one
// thread: float activations against dequantized tiles through BLAS (Multiply
// with ActivationPrecision::kFloat), or 8-bit activations through the
// engine's kernels of the best set or of the AVX2 one. Items are multiply-adds.
enum class PrefillPath { kFloatBlas, kBestKernels, kAvx2Kernels };
void BM_PrefillMatMul(benchmark::State& state, GgmlType type, PrefillPath path) {
  const kernels::KernelSet* set =
      path == PrefillPath::kAvx2Kernels ? kernels::Avx2Kernels() : &kernels::BestKernels();
  if (set == nullptr) {
    state.SkipWithError("no AVX2 on this CPU");
    return;
  }
  const int64_t rows = 128, in = 2048, out = 1024;
  RandomProduct p = MakeRandomProduct(type, rows, in, out, 4);
  ConfigureComputeThreads(1);  // the pool and BLAS both
  const WeightMatrix matrix{type, p.weight.data(), in, out};
  for (auto _ : state) {
    if (path == PrefillPath::kFloatBlas) {
      Multiply(matrix, p.x.data(), p.y.data(), rows, ActivationPrecision::kFloat);
    } else {
      benchmark::DoNotOptimize(QuantMatMul(type, p.weight.data(), p.x.data(), p.y.data(), {rows, in, out}, set));
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * rows * in * out);
  state.SetLabel(std::string(set->name));
}
#define EDGELLM_PREFILL_BENCHMARKS(type)                                                             \
  BENCHMARK_CAPTURE(BM_PrefillMatMul, type##_float_blas, GgmlType::k##type, PrefillPath::kFloatBlas); \
  BENCHMARK_CAPTURE(BM_PrefillMatMul, type##_kernels, GgmlType::k##type, PrefillPath::kBestKernels); \
  BENCHMARK_CAPTURE(BM_PrefillMatMul, type##_avx2_kernels, GgmlType::k##type, PrefillPath::kAvx2Kernels)
EDGELLM_PREFILL_BENCHMARKS(Q8_0);
EDGELLM_PREFILL_BENCHMARKS(Q4_0);
EDGELLM_PREFILL_BENCHMARKS(Q5_0);
EDGELLM_PREFILL_BENCHMARKS(Q4_K);
EDGELLM_PREFILL_BENCHMARKS(Q5_K);
EDGELLM_PREFILL_BENCHMARKS(Q6_K);

// Sixteen rows of 2,048 activations quantized to int8 as a batch's products
// take them (ActivationBlock, 32 a block, or SuperActivationBlock, 256),
// by the AVX2 kernels or the best set. Items are activations.
void BM_QuantizeActivations(benchmark::State& state, bool super_blocks, bool avx2) {
  const kernels::KernelSet* set = avx2 ? kernels::Avx2Kernels() : &kernels::BestKernels();
  if (set == nullptr) {
    state.SkipWithError("no AVX2 on this CPU");
    return;
  }
  constexpr int64_t kValues = 16 * 2048;
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(kValues);
  for (float& v : x) v = normal(rng);
  std::vector<kernels::ActivationBlock> blocks(kValues / kernels::kBlock);
  std::vector<kernels::SuperActivationBlock> supers(kValues / kSuperBlock);
  for (auto _ : state) {
    if (super_blocks) {
      set->quantize_super(x.data(), supers.data(), static_cast<int64_t>(supers.size()));
      benchmark::DoNotOptimize(supers.data());
    } else {
      set->quantize(x.data(), blocks.data(), static_cast<int64_t>(blocks.size()));
      benchmark::DoNotOptimize(blocks.data());
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kValues);
  state.SetLabel(std::string(set->name));
}
BENCHMARK_CAPTURE(BM_QuantizeActivations, blocks_avx2, false, true);
BENCHMARK_CAPTURE(BM_QuantizeActivations, blocks_best, false, false);
BENCHMARK_CAPTURE(BM_QuantizeActivations, super_blocks_avx2, true, true);
BENCHMARK_CAPTURE(BM_QuantizeActivations, super_blocks_best, true, false);

// Sixteen decode streams' rows through one packed Q4_0 or Q8_0 weight (as
// a model's matrices are packed at load), on one thread: 2048 inputs, 1024
// outputs (a weight that stays in cache) or 5632 (tinyllama-1.1b's gate,
// streamed from memory). Items are multiply-adds, to set against
// Int8MultiplyAddPeak: the share of a core's peak a batch's product reaches.
void BM_BatchMatMul(benchmark::State& state, GgmlType type, int64_t out) {
  const kernels::KernelSet& set = kernels::BestKernels();
  if (set.Pack(type) == nullptr) {
    state.SkipWithError("no packed form in this CPU's kernel set");
    return;
  }
  const int64_t rows = 16, in = 2048;
  RandomProduct p = MakeRandomProduct(type, rows, in, out, 5);
  set.Pack(type)(p.weight.data(), RowBytes(type, static_cast<uint64_t>(in)), out, in / 32);
  ConfigureComputeThreads(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        QuantMatMul(type, p.weight.data(), p.x.data(), p.y.data(), {rows, in, out, /*packed=*/true}, &set));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * rows * in * out);
}
BENCHMARK_CAPTURE(BM_BatchMatMul, Q4_0_in_cache, GgmlType::kQ4_0, 1024);
BENCHMARK_CAPTURE(BM_BatchMatMul, Q4_0_from_memory, GgmlType::kQ4_0, 5632);
BENCHMARK_CAPTURE(BM_BatchMatMul, Q8_0_from_memory, GgmlType::kQ8_0, 5632);

constexpr char kText[] =
    "The farmer liked the robot because it never needed the internet to think. It kept its own notes, "
    "and each night it got a little better at guessing when the rain would come. Caf\xc3\xa9 \xf0\x9f\x98\x80 123.";

void BM_Encode(benchmark::State& state, bool bpe) {
  auto vocab = bpe ? MakeBpeVocab(32000, 1) : MakeSpmVocab(32000, 1);
  auto tokenizer = Tokenizer::FromVocab(*vocab);
  const std::string text = kText;
  for (auto _ : state) benchmark::DoNotOptimize((*tokenizer)->Encode(text));
  state.SetBytesProcessed(state.iterations() * text.size());
}
BENCHMARK_CAPTURE(BM_Encode, Spm32k, false);
BENCHMARK_CAPTURE(BM_Encode, Bpe32k, true);

// A pre-tokenizer over 1 MiB: ordinary text, or a hostile run of spaces that
// ends in a digit (which \s+$ in deepseek-llm's patterns cannot match).
void BM_PreTokenize(benchmark::State& state, const char* name, bool hostile) {
  auto pre = PreTokenizer::ForName(name);
  std::string text;
  if (hostile) {
    text.assign(1 << 20, ' ');
    text += '5';
  } else {
    while (text.size() < (1 << 20)) text += kText;
  }
  for (auto _ : state) benchmark::DoNotOptimize((*pre)->Split(text));
  state.SetBytesProcessed(state.iterations() * text.size());
}
BENCHMARK_CAPTURE(BM_PreTokenize, gpt2_text, "gpt-2", false);
BENCHMARK_CAPTURE(BM_PreTokenize, llama_bpe_text, "llama-bpe", false);
BENCHMARK_CAPTURE(BM_PreTokenize, qwen2_text, "qwen2", false);
BENCHMARK_CAPTURE(BM_PreTokenize, deepseek_llm_text, "deepseek-llm", false);
BENCHMARK_CAPTURE(BM_PreTokenize, deepseek_llm_hostile, "deepseek-llm", true);
BENCHMARK_CAPTURE(BM_PreTokenize, llama_bpe_hostile, "llama-bpe", true);

// One draw over a vocabulary of state.range(0) tokens, with top-k state.range(1) (0: off).
void BM_Sample(benchmark::State& state) {
  std::vector<float> logits(state.range(0));
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (float& v : logits) v = normal(rng);
  SamplingParams params;  // temperature 0.8, top-k 40, top-p 0.95, min-p 0.05
  params.repeat_penalty = 1.1f;
  params.top_k = static_cast<int32_t>(state.range(1));
  Sampler sampler(params);
  const std::vector<TokenId> history(64, 7);
  for (auto _ : state) benchmark::DoNotOptimize(sampler.Sample(logits, history));
}
BENCHMARK(BM_Sample)->ArgsProduct({{32000, 49152, 151936}, {40, 0}});

// Logprobs of the chosen token and the top 5, over a vocabulary: what
// `logprobs` adds to each generated token.
void BM_TokenLogprobs(benchmark::State& state) {
  std::vector<float> logits(state.range(0));
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (float& v : logits) v = normal(rng);
  for (auto _ : state) benchmark::DoNotOptimize(ComputeLogprobs(logits, 17, 5));
}
BENCHMARK(BM_TokenLogprobs)->Arg(32000)->Arg(151936);

// A 20-turn conversation (system prompt, ten user and ten assistant turns of
// a few sentences) rendered through a real chat template: what a chat request
// costs before its prompt is tokenized.
void BM_RenderChat(benchmark::State& state, const char* file) {
  std::ifstream in(std::string(EDGELLM_SHARED_DIR) + "/chat-templates/" + file);
  const std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  absl::StatusOr<chat::ChatFormatter> formatter = chat::ChatFormatter::Create(source, "<s>", "</s>", false);
  if (source.empty() || !formatter.ok()) {
    state.SkipWithError("the template is missing or does not parse");
    return;
  }
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  messages.push_back({{"role", "system"}, {"content", "You are a helpful assistant on a factory floor."}});
  for (int turn = 0; turn < 10; ++turn) {
    messages.push_back({{"role", "user"},
                        {"content", "Line " + std::to_string(turn) + " reports a pressure of 4.2 bar and a "
                                    "temperature of 71 C. Is that within the limits for the press?"}});
    messages.push_back({{"role", "assistant"},
                        {"content", "Yes: the press runs between 3.5 and 5 bar, and up to 80 C. Keep an eye on "
                                    "the temperature if it keeps rising."}});
  }
  messages.erase(messages.size() - 1);
  messages.push_back({{"role", "user"}, {"content", "Thanks. Anything else?"}});
  size_t bytes = 0;
  for (auto _ : state) {
    absl::StatusOr<std::string> prompt = formatter->Render(messages, nullptr, true);
    if (!prompt.ok()) {
      state.SkipWithError(std::string(prompt.status().message()).c_str());
      return;
    }
    bytes = prompt->size();
  }
  state.counters["prompt_bytes"] = static_cast<double>(bytes);
}
BENCHMARK_CAPTURE(BM_RenderChat, llama3_1, "meta-llama-Llama-3.1-8B-Instruct.jinja")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_RenderChat, qwen2_5, "Qwen-Qwen2.5-7B-Instruct.jinja")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_RenderChat, hermes3_tool_use, "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_RenderChat, phi3_5, "microsoft-Phi-3.5-mini-instruct.jinja")->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace edgellm::engine

#if defined(__x86_64__)
// The most 8-bit multiply-adds a core can do: sixteen independent chains of
// AVX-512 VNNI dot products (vpdpbusd, 64 per instruction) with nothing to
// load. A batch of decode streams or a prompt is bounded by this times the
// cores; items are multiply-adds.
__attribute__((target("avx512f,avx512vnni"))) void BM_Int8MultiplyAddPeak(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx512vnni")) {
    state.SkipWithError("no AVX-512 VNNI on this CPU");
    return;
  }
  constexpr int kChains = 16, kRounds = 1024;
  __m512i acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_epi32(c);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  for (auto _ : state) {
    for (int round = 0; round < kRounds; ++round) {
      for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
    }
    for (int c = 0; c < kChains; ++c) benchmark::DoNotOptimize(acc[c]);
  }
  state.SetItemsProcessed(state.iterations() * kRounds * kChains * 64);
}
BENCHMARK(BM_Int8MultiplyAddPeak);
#endif

BENCHMARK_MAIN();
