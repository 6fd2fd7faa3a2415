#include "daemon/engine/llama_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

#include "daemon/engine/cpu_forward.h"
#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/gguf_writer.h"
#include "daemon/engine/quant_kernels.h"
#include "daemon/engine/torch_forward.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/test_support.h"

namespace edgellm::engine {
namespace {

using edgellm::testing::LoadModel;
using edgellm::testing::NewCache;
using edgellm::testing::SyntheticModel;

// The same model running the LibTorch forward on the CPU: an implementation
// independent of the fused pass, to check it against.
std::unique_ptr<LlamaModel> LoadTorchReference(const std::string& path, int32_t context = 0) {
  std::unique_ptr<LlamaModel> model = LoadModel(path, context);
  if (model == nullptr) return nullptr;
  const absl::Status status = UseLibTorch(*model, "cpu");
  EXPECT_TRUE(status.ok()) << status;
  return status.ok() ? std::move(model) : nullptr;
}

std::vector<TokenId> SomeTokens(int n, int vocab) {
  std::vector<TokenId> t;
  for (int i = 0; i < n; ++i) t.push_back((i * 37 + 11) % vocab);
  return t;
}

void ExpectClose(const float* a, const float* b, size_t n, float tolerance, const std::string& what) {
  float worst = 0.0f;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  EXPECT_LE(worst, tolerance) << what;
}

TEST(LlamaModel, ReadsItsConfigFromTheFile) {
  auto model = LoadModel(SyntheticModel("test-spm", GgmlType::kF32));
  ASSERT_NE(model, nullptr);
  const LlamaConfig& c = model->config();
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.n_vocab, 384);
  EXPECT_EQ(model->context_length(), 256);
  // A block of 16 positions: keys and values per layer of [n_head_kv, head_dim] float32.
  EXPECT_EQ(KvBlockPool::BlockBytes(model->kv_shape(), 16), 2u * 2 * 16 * 2 * 16 * 4);
  EXPECT_EQ(model->tokenizer().vocab_size(), 384);
  EXPECT_EQ(model->weight_type(), "F32");
  EXPECT_EQ(model->parameter_count(), 2 * (64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 128 + 2 * 64) + 64 + 2 * 64 * 384);
  // Per layer q, k, v, o, gate, up, down; then the output matrix; as float32.
  const uint64_t per_layer = 64 * 64 + 64 * 32 + 64 * 32 + 64 * 64 + 3 * 64 * 128;
  EXPECT_EQ(model->weight_bytes_per_token(), (2 * per_layer + 64 * 384) * 4);
}

// The fused pass, fed a prefill, a chunk and single tokens, gives the logits
// of one LibTorch forward over all the tokens.
TEST(LlamaModel, CachedDecodingMatchesAFullForward) {
  for (const auto& [shape, type] : {std::pair{"test-spm", GgmlType::kF32}, std::pair{"test-bpe", GgmlType::kF32},
                                    std::pair{"test-spm", GgmlType::kQ8_0}}) {
    const std::string path = SyntheticModel(shape, type);
    auto model = LoadModel(path);
    auto reference = LoadTorchReference(path);
    ASSERT_NE(model, nullptr);
    ASSERT_NE(reference, nullptr);
    const int vocab = model->config().n_vocab;
    const std::vector<TokenId> tokens = SomeTokens(24, vocab);
    std::vector<float> full, fused_full;
    ASSERT_TRUE(reference->ForwardNoCache(tokens, &full).ok());
    ASSERT_EQ(full.size(), tokens.size() * vocab);
    ASSERT_TRUE(model->ForwardNoCache(tokens, &fused_full).ok());
    ExpectClose(fused_full.data(), full.data(), full.size(), 1e-4f, "one forward");

    auto cache = NewCache(*model);
    std::vector<float> logits;
    // A 10-token prefill with every row's logits, a 5-token chunk, then one token at a time.
    ASSERT_TRUE(model->Forward(absl::MakeConstSpan(tokens).subspan(0, 10), cache.get(), true, &logits).ok());
    ExpectClose(logits.data(), full.data(), 10 * vocab, 1e-4f, "prefill");
    ASSERT_TRUE(model->Forward(absl::MakeConstSpan(tokens).subspan(10, 5), cache.get(), false, &logits).ok());
    ExpectClose(logits.data(), full.data() + 14 * vocab, vocab, 1e-4f, "chunk");
    for (size_t i = 15; i < tokens.size(); ++i) {
      ASSERT_TRUE(model->Forward({&tokens[i], 1}, cache.get(), false, &logits).ok());
      ExpectClose(logits.data(), full.data() + i * vocab, vocab, 1e-4f, "step " + std::to_string(i));
    }
    EXPECT_EQ(cache->length(), 24);
  }
}

// The logits of a 10-token prefill (every row's) and then six single steps
// of the model at `path`, loaded with or without packing its weights.
std::vector<float> PrefillAndStepLogits(const std::string& path, bool pack) {
  ModelOptions options;
  options.threads = 2;
  options.pack_weights = pack;
  auto model = LlamaModel::Load(path, options);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  // Seven matrices in each of two layers and the output.
  const bool packs = kernels::BestKernels().Pack((*model)->cpu_weights().output.type) != nullptr;
  EXPECT_EQ((*model)->packed_matrices(), pack && packs ? 2 * 7 + 1 : 0) << path;
  auto cache = NewCache(**model);
  const std::vector<TokenId> tokens = SomeTokens(16, (*model)->config().n_vocab);
  std::vector<float> logits, all;
  EXPECT_TRUE((*model)->Forward(absl::MakeConstSpan(tokens).subspan(0, 10), cache.get(), true, &all).ok());
  for (size_t i = 10; i < tokens.size(); ++i) {
    EXPECT_TRUE((*model)->Forward({&tokens[i], 1}, cache.get(), false, &logits).ok());
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

// Weights packed at load for the kernels compute bit for bit what the file's
// rows compute: a prefill with every row's logits, then single steps; with
// a tied output matrix (test-llama3) too, whose packed rows are the embedding.
TEST(LlamaModel, PackedWeightsComputeExactlyWhatTheFileGives) {
  for (const auto& [shape, type] : std::vector<std::pair<std::string, GgmlType>>{{"test-spm", GgmlType::kQ4_0},
                                                                                {"test-spm", GgmlType::kQ5_0},
                                                                                {"test-spm", GgmlType::kQ8_0},
                                                                                {"test-llama3", GgmlType::kQ4_0},
                                                                                {"test-llama3", GgmlType::kQ8_0}}) {
    const std::string path = SyntheticModel(shape, type);
    const std::vector<float> file = PrefillAndStepLogits(path, false), packed = PrefillAndStepLogits(path, true);
    ASSERT_EQ(file.size(), packed.size());
    ASSERT_FALSE(file.empty());
    EXPECT_EQ(std::memcmp(file.data(), packed.data(), file.size() * sizeof(float)), 0)
        << shape << " " << TraitsOf(type).name;
  }
}

// Q4_K and Q6_K weights packed at load compute what the file's rows compute
// to float rounding (a super-block is scaled once, not in eight partial
// sums), prefill and single steps alike. Through 8-bit activations a
// last-bit difference can round one activation the other way in a later
// layer, which moves the logits by a few thousandths of their range (0.27%
// for Q6_K in the sanitizer build, whose scalar code rounds differently);
// a packing mistake moves them by their whole range.
TEST(LlamaModel, PackedSuperBlockWeightsComputeWhatTheFileGivesToRounding) {
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ6_K}) {
    const std::string path = SyntheticModel("test-k", type);
    const std::vector<float> file = PrefillAndStepLogits(path, false), packed = PrefillAndStepLogits(path, true);
    ASSERT_EQ(file.size(), packed.size());
    ASSERT_FALSE(file.empty());
    float spread = 0.0f;
    for (float v : file) spread = std::max(spread, std::fabs(v));
    ExpectClose(packed.data(), file.data(), file.size(), 5e-3f * spread, std::string(TraitsOf(type).name));
  }
}

TEST(LlamaModel, AMappedFileIsNotPackedAndAPackedModelRefusesLibTorch) {
  const std::string path = SyntheticModel("test-spm", GgmlType::kQ8_0);
  ModelOptions options;
  options.pack_weights = true;
  options.file_access = FileAccess::kMapped;
  auto mapped = LlamaModel::Load(path, options);
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  EXPECT_EQ((*mapped)->packed_matrices(), 0) << "the page cache's pages are not the process's to rewrite";
  if (kernels::BestKernels().Pack(GgmlType::kQ8_0) == nullptr) GTEST_SKIP() << "these kernels pack nothing";
  options.file_access = FileAccess::kResident;
  auto packed = LlamaModel::Load(path, options);
  ASSERT_TRUE(packed.ok()) << packed.status();
  const absl::Status torch = UseLibTorch(**packed, "cpu");
  EXPECT_EQ(torch.code(), absl::StatusCode::kFailedPrecondition) << torch;
}

TEST(LlamaModel, QuantizedWeightsStayCloseToF32) {
  auto f32 = LoadModel(SyntheticModel("test-spm", GgmlType::kF32));
  ASSERT_NE(f32, nullptr);
  const std::vector<TokenId> tokens = SomeTokens(8, f32->config().n_vocab);
  std::vector<float> reference;
  ASSERT_TRUE(f32->ForwardNoCache(tokens, &reference).ok());
  for (GgmlType type : {GgmlType::kF16, GgmlType::kQ8_0, GgmlType::kQ4_0}) {
    auto q = LoadModel(SyntheticModel("test-spm", type));
    ASSERT_NE(q, nullptr);
    std::vector<float> logits;
    ASSERT_TRUE(q->ForwardNoCache(tokens, &logits).ok());
    // Cosine similarity of the logits: quantization noise, not a different model.
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      dot += logits[i] * reference[i];
      na += logits[i] * logits[i];
      nb += reference[i] * reference[i];
    }
    const double cosine = dot / std::sqrt(na * nb);
    EXPECT_GT(cosine, type == GgmlType::kQ4_0 ? 0.95 : 0.999) << TraitsOf(type).name;
    EXPECT_EQ(q->weight_type(), TraitsOf(type).name);
  }
}

TEST(LlamaModel, BadInputsAreErrorsAndLeaveTheCacheAlone) {
  auto model = LoadModel(SyntheticModel("test-spm", GgmlType::kF32), /*context=*/16);
  ASSERT_NE(model, nullptr);
  auto cache = NewCache(*model);
  std::vector<float> logits;
  const std::vector<TokenId> bad = {5, 384};
  absl::Status s = model->Forward(bad, cache.get(), false, &logits);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("384"), absl::string_view::npos) << s;
  EXPECT_EQ(model->Forward({}, cache.get(), false, &logits).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache->length(), 0);
  ASSERT_TRUE(model->Forward(SomeTokens(10, 384), cache.get(), false, &logits).ok());
  EXPECT_EQ(model->Forward(SomeTokens(7, 384), cache.get(), false, &logits).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(cache->length(), 10);
  cache->Truncate(4);
  EXPECT_EQ(cache->length(), 4);
  EXPECT_TRUE(model->Forward(SomeTokens(7, 384), cache.get(), false, &logits).ok());
}

TEST(LlamaModel, ABatchGivesWhatSeparateForwardsGive) {
  auto model = LoadModel(SyntheticModel("test-spm", GgmlType::kF32));
  ASSERT_NE(model, nullptr);
  const int vocab = model->config().n_vocab;
  const std::vector<TokenId> a = SomeTokens(6, vocab), b = SomeTokens(12, vocab + 5), c = SomeTokens(4, vocab - 7);
  // Two histories to continue (5 and 9 tokens in cache) and one fresh sequence.
  auto batch_a = NewCache(*model), batch_b = NewCache(*model), batch_c = NewCache(*model);
  auto solo_a = NewCache(*model), solo_b = NewCache(*model), solo_c = NewCache(*model);
  std::vector<float> ignored;
  for (KvCache* cache : {batch_a.get(), solo_a.get()}) {
    ASSERT_TRUE(model->Forward(absl::MakeConstSpan(a).subspan(0, 5), cache, false, &ignored).ok());
  }
  for (KvCache* cache : {batch_b.get(), solo_b.get()}) {
    ASSERT_TRUE(model->Forward(absl::MakeConstSpan(b).subspan(0, 9), cache, false, &ignored).ok());
  }
  // One decode token, one 3-token prefill chunk, one 4-token prompt: a continuous-batching step.
  const std::vector<BatchItem> items = {{absl::MakeConstSpan(a).subspan(5, 1), batch_a.get()},
                                        {absl::MakeConstSpan(b).subspan(9, 3), batch_b.get()},
                                        {c, batch_c.get()}};
  std::vector<float> batched;
  ASSERT_TRUE(model->ForwardBatch(items, &batched).ok());
  ASSERT_EQ(batched.size(), 3u * vocab);
  std::vector<float> solo;
  ASSERT_TRUE(model->Forward(items[0].tokens, solo_a.get(), false, &solo).ok());
  ExpectClose(batched.data(), solo.data(), vocab, 1e-4f, "decode item");
  ASSERT_TRUE(model->Forward(items[1].tokens, solo_b.get(), false, &solo).ok());
  ExpectClose(batched.data() + vocab, solo.data(), vocab, 1e-4f, "chunk item");
  ASSERT_TRUE(model->Forward(items[2].tokens, solo_c.get(), false, &solo).ok());
  ExpectClose(batched.data() + 2 * vocab, solo.data(), vocab, 1e-4f, "prompt item");
  EXPECT_EQ(batch_a->length(), 6);
  EXPECT_EQ(batch_b->length(), 12);
  EXPECT_EQ(batch_c->length(), 4);
}

// Runs `tokens` through `cache` one chunk of `chunk` at a time and compares
// each chunk's last logits with the reference (no cache) at that position.
void ExpectCachedRunMatches(const LlamaModel& model, KvCache* cache, const std::vector<TokenId>& tokens,
                            const std::vector<float>& reference, size_t chunk, const std::string& what) {
  const size_t vocab = static_cast<size_t>(model.config().n_vocab);
  std::vector<float> logits;
  for (size_t at = static_cast<size_t>(cache->length()); at < tokens.size(); at += chunk) {
    const size_t n = std::min(chunk, tokens.size() - at);
    ASSERT_TRUE(model.Forward(absl::MakeConstSpan(tokens).subspan(at, n), cache, false, &logits).ok()) << what;
    ExpectClose(logits.data(), reference.data() + (at + n - 1) * vocab, vocab, 1e-4f, what);
  }
}

TEST(LlamaModel, CachesSharingPrefixBlocksEachContinueExactly) {
  auto model = LoadModel(SyntheticModel("test-spm", GgmlType::kF32));
  ASSERT_NE(model, nullptr);
  auto pool = model->NewBlockPool({.block_size = 16, .block_count = 16});
  ASSERT_TRUE(pool.ok()) << pool.status();
  const std::vector<TokenId> first = SomeTokens(40, 384);
  std::vector<TokenId> second(first.begin(), first.begin() + 35);  // diverges inside the third block
  for (TokenId t : SomeTokens(10, 383)) second.push_back(t + 1);
  const std::vector<TokenId> third(first.begin(), first.begin() + 32);  // ends on a block boundary
  std::vector<float> first_ref, second_ref, third_ref;
  auto reference = LoadTorchReference(SyntheticModel("test-spm", GgmlType::kF32));
  ASSERT_NE(reference, nullptr);
  ASSERT_TRUE(reference->ForwardNoCache(first, &first_ref).ok());
  ASSERT_TRUE(reference->ForwardNoCache(second, &second_ref).ok());
  ASSERT_TRUE(reference->ForwardNoCache(third, &third_ref).ok());

  auto a = (*pool)->NewCache(64);
  ExpectCachedRunMatches(*model, a.get(), std::vector<TokenId>(first.begin(), first.begin() + 36), first_ref, 7,
                         "first, computed");
  auto b = (*pool)->NewCacheWithPrefix(second, 64, static_cast<int32_t>(second.size()) - 1);
  EXPECT_EQ(b->length(), 32);  // the two full blocks both begin with
  EXPECT_EQ(b->block_table()[1], a->block_table()[1]);
  ExpectCachedRunMatches(*model, b.get(), second, second_ref, 5, "second, from shared blocks");
  // Reuse stops one token short of the prompt, inside a shared block: it is copied before the write.
  auto c = (*pool)->NewCacheWithPrefix(third, 64, static_cast<int32_t>(third.size()) - 1);
  EXPECT_EQ(c->length(), 31);
  ExpectCachedRunMatches(*model, c.get(), third, third_ref, 1, "third, after a copy");
  // The copy, completed with the same token, was merged back into the original.
  EXPECT_EQ(c->block_table()[1], a->block_table()[1]);
  // The sharers never wrote into the first cache's blocks.
  ExpectCachedRunMatches(*model, a.get(), first, first_ref, 1, "first, continued");
}

// The kernels read the weights in place and quantize activations per block of
// 32; the reference dequantizes the weights to float32 at load.
TEST(LlamaModel, KernelsAgreeWithTheDequantizedReference) {
  for (GgmlType type : {GgmlType::kF16, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0,
                        GgmlType::kQ5_1, GgmlType::kIQ4_NL, GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K,
                        GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kIQ4_XS}) {
    const bool k_type = TraitsOf(type).block_size == 256;
    const std::string path = SyntheticModel(k_type ? "test-k" : "test-spm", type);
    auto kernels = LoadModel(path);
    ModelOptions reference_options;
    reference_options.threads = 2;
    reference_options.dequantize_weights = true;
    auto reference = LlamaModel::Load(path, reference_options);
    ASSERT_NE(kernels, nullptr);
    ASSERT_TRUE(reference.ok()) << reference.status();
    EXPECT_LT(kernels->weight_bytes_per_token(), (*reference)->weight_bytes_per_token());
    const std::vector<TokenId> tokens = SomeTokens(24, 384);
    auto a = NewCache(*kernels), b = NewCache(**reference);
    std::vector<float> got, want;
    ASSERT_TRUE(kernels->Forward(tokens, a.get(), true, &got).ok());
    ASSERT_TRUE((*reference)->Forward(tokens, b.get(), true, &want).ok());
    ASSERT_EQ(got.size(), want.size());
    // Per token: logits close relative to their spread, and the same top token.
    const size_t vocab = 384;
    int same_top = 0;
    for (size_t t = 0; t < tokens.size(); ++t) {
      const float* g = got.data() + t * vocab;
      const float* w = want.data() + t * vocab;
      float spread = 0.0f, worst = 0.0f;
      for (size_t i = 0; i < vocab; ++i) {
        spread = std::max(spread, std::fabs(w[i]));
        worst = std::max(worst, std::fabs(g[i] - w[i]));
      }
      const float tolerance = type == GgmlType::kF16 ? 1e-4f : 0.05f;
      EXPECT_LE(worst, tolerance * spread) << TraitsOf(type).name << " token " << t;
      same_top += std::max_element(g, g + vocab) - g == std::max_element(w, w + vocab) - w;
    }
    EXPECT_GE(same_top, 22) << TraitsOf(type).name;
  }
}

TEST(LlamaModel, AForwardThePoolCannotHoldIsRefusedAndChangesNothing) {
  auto model = LoadModel(SyntheticModel("test-spm", GgmlType::kF32));
  ASSERT_NE(model, nullptr);
  auto pool = model->NewBlockPool({.block_size = 16, .block_count = 2});
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto a = (*pool)->NewCache(64), b = (*pool)->NewCache(64);
  const std::vector<TokenId> tokens = SomeTokens(20, 384);
  std::vector<float> logits;
  ASSERT_TRUE(model->Forward(tokens, a.get(), false, &logits).ok());
  absl::Status s = model->ForwardBatch({{{tokens.data(), 1}, a.get()}, {tokens, b.get()}}, &logits);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(a->length(), 20);
  EXPECT_EQ(b->length(), 0);
  EXPECT_EQ((*pool)->used_blocks(), 2);
}

TEST(LlamaModel, ABadBatchItemIsNamedAndNoCacheChanges) {
  auto model = LoadModel(SyntheticModel("test-spm", GgmlType::kF32), /*context=*/16);
  ASSERT_NE(model, nullptr);
  auto first = NewCache(*model), second = NewCache(*model);
  const std::vector<TokenId> good = {5, 6}, bad = {7, -1}, long_prompt = SomeTokens(17, 384);
  std::vector<float> logits;
  absl::Status s = model->ForwardBatch({{good, first.get()}, {bad, second.get()}}, &logits);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("batch item 1"), absl::string_view::npos) << s;
  s = model->ForwardBatch({{good, first.get()}, {good, first.get()}}, &logits);
  EXPECT_NE(s.message().find("appears twice"), absl::string_view::npos) << s;
  EXPECT_EQ(model->ForwardBatch({{good, first.get()}, {long_prompt, second.get()}}, &logits).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(model->ForwardBatch({}, &logits).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(first->length(), 0);
  EXPECT_EQ(second->length(), 0);
}

// Copies a model file with one byte string replaced by another of equal length.
std::string PatchedCopy(const std::string& path, const std::string& from, const std::string& to) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = bytes.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  bytes.replace(at, from.size(), to);
  const std::string out = (edgellm::testing::TestDir() / "patched.gguf").string();
  std::ofstream(out, std::ios::binary) << bytes;
  return out;
}

TEST(LlamaModel, RefusesFilesThatAreNotWhatTheyClaim) {
  const std::string good = SyntheticModel("test-spm", GgmlType::kF32);
  absl::Status arch = LlamaModel::Load(PatchedCopy(good, "llama", "llamb"), {}).status();
  EXPECT_EQ(arch.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(arch.message().find("llamb"), absl::string_view::npos) << arch;

  // blk.0.attn_q.weight is [64, 64]: claim [64, 32] instead.
  std::string name = "blk.0.attn_q.weight";
  std::string dims(4 + 16, '\0');
  dims[0] = 2;
  dims[4] = 64;
  dims[12] = 64;
  std::string smaller = dims;
  smaller[12] = 32;
  absl::Status shape = LlamaModel::Load(PatchedCopy(good, name + dims, name + smaller), {}).status();
  EXPECT_EQ(shape.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(shape.message().find("blk.0.attn_q.weight has shape [64, 32], expected [64, 64]"),
            absl::string_view::npos)
      << shape;

  EXPECT_EQ(LlamaModel::Load("/nonexistent/model.gguf", {}).status().code(), absl::StatusCode::kNotFound);
  auto model = LoadModel(good);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(UseLibTorch(*model, "quantum").code(), absl::StatusCode::kInvalidArgument);
}

// Copies a model file and adds a tensor `rope_freqs.weight` holding `factors` (F32).
std::string WithRopeFactors(const std::string& path, const std::vector<float>& factors, const std::string& name) {
  auto gguf = GgufReader::Open(path);
  EXPECT_TRUE(gguf.ok()) << gguf.status();
  GgufWriter writer((*gguf)->alignment());
  for (const auto& [key, value] : (*gguf)->metadata()) writer.Set(key, value);
  for (const GgufTensorInfo& t : (*gguf)->tensors()) {
    EXPECT_TRUE(writer.AddTensor(t.name, t.type, t.dims, (*gguf)->TensorData(t)).ok());
  }
  EXPECT_TRUE(writer
                  .AddTensor("rope_freqs.weight", GgmlType::kF32, {factors.size()},
                             absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(factors.data()),
                                                 factors.size() * sizeof(float)))
                  .ok());
  const std::string out = (edgellm::testing::TestDir() / name).string();
  EXPECT_TRUE(writer.Write(out).ok());
  return out;
}

// Llama 3.x files divide the rotary angle of each frequency by rope_freqs.weight.
TEST(LlamaModel, Llama3RopeFactorsDivideTheAngleOfEachFrequency) {
  const std::string plain = SyntheticModel("test-spm", GgmlType::kF32);
  auto base = LoadModel(plain);
  ASSERT_NE(base, nullptr);
  const int32_t half = base->config().rope_dims / 2;
  const std::vector<TokenId> tokens = SomeTokens(20, 384);
  std::vector<float> without, with_ones, scaled, reference;
  ASSERT_TRUE(base->ForwardNoCache(tokens, &without).ok());

  // Factors of 1 change nothing.
  auto ones = LoadModel(WithRopeFactors(plain, std::vector<float>(half, 1.0f), "rope-ones.gguf"));
  ASSERT_NE(ones, nullptr);
  ASSERT_TRUE(ones->ForwardNoCache(tokens, &with_ones).ok());
  EXPECT_EQ(with_ones, without);

  // Other factors: the tables hold cos and sin of pos * base^(-2i/d) / factor[i].
  std::vector<float> factors(half);
  for (int32_t i = 0; i < half; ++i) factors[i] = 1.0f + static_cast<float>(i);
  const std::string path = WithRopeFactors(plain, factors, "rope-factors.gguf");
  auto model = LoadModel(path);
  ASSERT_NE(model, nullptr);
  const CpuModelWeights& w = model->cpu_weights();
  for (int32_t pos : {1, 7, 100}) {
    for (int32_t i = 0; i < half; ++i) {
      const double angle = pos * std::pow(static_cast<double>(model->config().rope_freq_base),
                                          -2.0 * i / model->config().rope_dims) / factors[i];
      EXPECT_NEAR(w.rope_cos[pos * half + i], std::cos(angle), 5e-4) << pos << " " << i;
      EXPECT_NEAR(w.rope_sin[pos * half + i], std::sin(angle), 5e-4) << pos << " " << i;
    }
  }
  ASSERT_TRUE(model->ForwardNoCache(tokens, &scaled).ok());
  EXPECT_NE(scaled, without);
  // The LibTorch forward computes with the same factors.
  auto torch = LoadTorchReference(path);
  ASSERT_NE(torch, nullptr);
  ASSERT_TRUE(torch->ForwardNoCache(tokens, &reference).ok());
  ExpectClose(scaled.data(), reference.data(), scaled.size(), 1e-3f, "rope factors, fused vs LibTorch");

  // A factor table of the wrong length, or a factor that is not positive, is refused by name.
  absl::Status wrong = LlamaModel::Load(WithRopeFactors(plain, std::vector<float>(half + 1, 1.0f), "rope-long.gguf"), {}).status();
  EXPECT_EQ(wrong.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.message().find("rope_freqs.weight"), absl::string_view::npos) << wrong;
  std::vector<float> zero(half, 1.0f);
  zero[1] = 0.0f;
  absl::Status bad = LlamaModel::Load(WithRopeFactors(plain, zero, "rope-zero.gguf"), {}).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("rope_freqs.weight[1]"), absl::string_view::npos) << bad;
}

// One sequence of a batched step: `cached` tokens of history already in its
// cache, then `tokens` more, with every row's logits or the last row's.
struct StepItem {
  int cached;
  int tokens;
  bool all_logits;
};

// A continuous-batching step that mixes a prefill chunk, single decode
// tokens and a speculative check that wants every row's logits.
constexpr StepItem kMixedStep[] = {{0, 9, false}, {20, 1, false}, {33, 4, true}};
// A decode step: one row for each sequence, whose heads the fused pass
// positions inside their attention tasks rather than in a job of their own.
constexpr StepItem kDecodeStep[] = {{8, 1, false}, {20, 1, false}, {33, 1, false}};

// The step `items` (histories of SomeTokens(37)) in the model at `path` by
// the fused pass and by the LibTorch forward.
void ExpectABatchedStepMatchesTheLibTorchForward(const std::string& path, float tolerance,
                                                 absl::Span<const StepItem> items = kMixedStep) {
  auto fused = LoadModel(path);
  auto reference = LoadTorchReference(path);
  ASSERT_NE(fused, nullptr);
  ASSERT_NE(reference, nullptr);
  const int32_t vocab = fused->config().n_vocab;
  const std::vector<TokenId> history = SomeTokens(37, vocab);
  size_t rows = 0;
  for (const StepItem& item : items) rows += item.all_logits ? item.tokens : 1;
  std::vector<float> got, want;
  for (LlamaModel* model : {fused.get(), reference.get()}) {
    std::vector<std::unique_ptr<KvCache>> caches;
    std::vector<BatchItem> step;
    for (const StepItem& item : items) {
      caches.push_back(NewCache(*model));
      std::vector<float> ignored;
      if (item.cached > 0) {
        ASSERT_TRUE(
            model->Forward(absl::MakeConstSpan(history).subspan(0, item.cached), caches.back().get(), false, &ignored)
                .ok());
      }
      step.push_back({absl::MakeConstSpan(history).subspan(item.cached, item.tokens), caches.back().get(),
                      item.all_logits});
    }
    ASSERT_TRUE(model->ForwardBatch(step, model == fused.get() ? &got : &want).ok());
  }
  ASSERT_EQ(got.size(), rows * vocab);
  ASSERT_EQ(want.size(), got.size());
  float spread = 0.0f;
  for (float w : want) spread = std::max(spread, std::fabs(w));
  ExpectClose(got.data(), want.data(), got.size(), tolerance * spread, path);
}

// The fused pass and the LibTorch forward agree on all of a batched step, for every weight type.
TEST(LlamaModel, ABatchedStepMatchesTheLibTorchForward) {
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K}) {
    // Quantized types quantize activations per block, where a last-bit
    // difference upstream can round a value the other way.
    const bool quantized = type != GgmlType::kF32 && type != GgmlType::kF16;
    ExpectABatchedStepMatchesTheLibTorchForward(SyntheticModel(type == GgmlType::kQ4_K ? "test-k" : "test-spm", type),
                                                quantized ? 1e-2f : 1e-4f);
  }
}

// A batched step (a prompt of nine, a decode row, a speculative check of
// four) of the F32 model at `path` with its KV cache kept as `kv_type`,
// through the fused pass or the LibTorch forward: its logits (empty after a
// failure, which is reported).
std::vector<float> BatchedStepLogits(const std::string& path, KvType kv_type, bool libtorch) {
  ModelOptions options;
  options.threads = 2;
  options.kv_type = kv_type;
  auto model = LlamaModel::Load(path, options);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok() || (libtorch && !UseLibTorch(**model, "cpu").ok())) return {};
  const std::vector<TokenId> history = SomeTokens(37, (*model)->config().n_vocab);
  auto a = NewCache(**model), b = NewCache(**model), c = NewCache(**model);
  EXPECT_EQ(a->pool().shape().type, kv_type);
  std::vector<float> ignored, logits;
  if (!(*model)->Forward(absl::MakeConstSpan(history).subspan(0, 20), b.get(), false, &ignored).ok() ||
      !(*model)->Forward(absl::MakeConstSpan(history).subspan(0, 33), c.get(), false, &ignored).ok()) {
    ADD_FAILURE() << path << ": a prompt's forward failed";
    return {};
  }
  const std::vector<BatchItem> step = {{absl::MakeConstSpan(history).subspan(0, 9), a.get(), false},
                                       {absl::MakeConstSpan(history).subspan(20, 1), b.get(), false},
                                       {absl::MakeConstSpan(history).subspan(33, 4), c.get(), true}};
  EXPECT_TRUE((*model)->ForwardBatch(step, &logits).ok()) << path;
  return logits;
}

// A cache of `type` moves the float cache's logits by at most `tolerance`
// of the largest one (and by something: its values are read), and the fused
// pass and the LibTorch forward read it alike.
void ExpectARoundedCacheKeepsTheFloatLogits(const char* shape, KvType type, float tolerance) {
  const std::string path = SyntheticModel(shape, GgmlType::kF32);
  const std::vector<float> floats = BatchedStepLogits(path, KvType::kF32, false);
  const std::vector<float> rounded = BatchedStepLogits(path, type, false);
  const std::vector<float> through_libtorch = BatchedStepLogits(path, type, true);
  ASSERT_FALSE(floats.empty()) << shape;
  ASSERT_EQ(rounded.size(), floats.size()) << shape;
  ASSERT_EQ(through_libtorch.size(), floats.size()) << shape;
  float spread = 0.0f, moved = 0.0f;
  for (size_t i = 0; i < floats.size(); ++i) {
    spread = std::max(spread, std::fabs(floats[i]));
    moved = std::max(moved, std::fabs(rounded[i] - floats[i]));
  }
  EXPECT_GT(moved, 0.0f) << shape << ": the " << KvTypeName(type) << " values were never read";
  ExpectClose(rounded.data(), floats.data(), floats.size(), tolerance * spread, shape);
  ExpectClose(rounded.data(), through_libtorch.data(), floats.size(), 3e-4f * spread, shape);
}

// Halves keep 11 significant bits, so the logits move by thousandths.
TEST(LlamaModel, AHalfPrecisionCacheGivesTheFloatCachesLogitsToItsRounding) {
  for (const char* shape : {"test-spm", "test-qwen3", "test-gemma2"}) {
    ExpectARoundedCacheKeepsTheFloatLogits(shape, KvType::kF16, 5e-3f);
  }
}

// Q8_0 keeps each value as one of 255 steps of its block's largest, so the
// logits move by hundredths (shapes whose heads are a multiple of 32). A
// model whose heads are not is refused at load, naming the way out.
TEST(LlamaModel, AQ8_0CacheGivesTheFloatCachesLogitsToItsRounding) {
  for (const char* shape : {"test-qwen3", "test-gemma2"}) {
    ExpectARoundedCacheKeepsTheFloatLogits(shape, KvType::kQ8_0, 3e-2f);
  }
  ModelOptions q8;
  q8.kv_type = KvType::kQ8_0;
  const absl::Status refused = LlamaModel::Load(SyntheticModel("test-spm", GgmlType::kF32), q8).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("use kv_type f16"), std::string_view::npos) << refused;
}

// Each architecture's own tensors and rules (Qwen2's biases, Qwen3's per-head
// norms and wider heads, Llama 3's and Phi-3's rope factors, Phi-3's fused
// projections, Gemma's scaled embeddings, post-norms, GELU, soft caps and
// sliding windows of 8 over 37 tokens) enter both forwards alike, in a mixed
// step and in a decode step.
TEST(LlamaModel, EveryArchitectureMatchesTheLibTorchForward) {
  for (const char* shape : {"test-llama3", "test-qwen2", "test-qwen3", "test-phi3", "test-gemma2", "test-gemma3"}) {
    // F32 within 3e-4 of the largest logit: OpenBLAS picks its kernels by CPU
    // (LibTorch's side), and their summation orders differ by up to ~1.3e-4
    // through Gemma 3's norms on an AVX-512 machine.
    ExpectABatchedStepMatchesTheLibTorchForward(SyntheticModel(shape, GgmlType::kF32), 3e-4f);
    ExpectABatchedStepMatchesTheLibTorchForward(SyntheticModel(shape, GgmlType::kQ8_0), 1e-2f);
    ExpectABatchedStepMatchesTheLibTorchForward(SyntheticModel(shape, GgmlType::kF32), 3e-4f, kDecodeStep);
  }
}

TEST(LlamaModel, ReadsEachArchitecturesHyperparameters) {
  auto qwen3 = LoadModel(SyntheticModel("test-qwen3", GgmlType::kF32));
  ASSERT_NE(qwen3, nullptr);
  const LlamaConfig& c = qwen3->config();
  EXPECT_EQ(c.architecture, "qwen3");
  EXPECT_EQ(c.arch->rope, RopeStyle::kHalves);
  EXPECT_EQ(c.head_dim, 32) << "attention.key_length, wider than n_embd / n_head = 16";
  EXPECT_EQ(c.rope_dims, 32);
  EXPECT_FLOAT_EQ(c.rope_freq_base, 1e6f);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-6f);
  EXPECT_NE(qwen3->cpu_weights().layers[1].q_norm, nullptr);
  EXPECT_EQ(qwen3->cpu_weights().layers[1].q_bias, nullptr);
  auto qwen2 = LoadModel(SyntheticModel("test-qwen2", GgmlType::kF32));
  ASSERT_NE(qwen2, nullptr);
  EXPECT_EQ(qwen2->config().head_dim, 16);
  EXPECT_NE(qwen2->cpu_weights().layers[0].v_bias, nullptr);
  EXPECT_EQ(qwen2->cpu_weights().layers[0].k_norm, nullptr);
}

// GGUF lets a file align its tensors to 2 bytes: its F32 tensors may then
// start mid-float. They are copied rather than read as misaligned floats
// (which UBSan flags), and the model computes what the aligned file does.
TEST(LlamaModel, TensorsAlignedToTwoBytesComputeAsTheAlignedFile) {
  const std::string aligned = SyntheticModel("test-qwen2", GgmlType::kF32);
  auto gguf = GgufReader::Open(aligned);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  std::string odd;
  // A padding key of some length puts the tensor data 2 bytes past a float boundary.
  for (const std::string padding : {"", "x", "xx", "xxx"}) {
    GgufWriter writer(2);
    for (const auto& [key, value] : (*gguf)->metadata()) {
      if (key != "general.alignment") writer.Set(key, value);
    }
    writer.Set("general.alignment", GgufValue::Uint32(2));
    writer.Set("general.padding", GgufValue::String(padding));
    for (const GgufTensorInfo& t : (*gguf)->tensors()) {
      ASSERT_TRUE(writer.AddTensor(t.name, t.type, t.dims, (*gguf)->TensorData(t)).ok());
    }
    const std::string path = (edgellm::testing::TestDir() / "odd.gguf").string();
    ASSERT_TRUE(writer.Write(path).ok());
    auto written = GgufReader::Open(path);
    ASSERT_TRUE(written.ok()) << written.status();
    const uint8_t* first = (*written)->TensorData((*written)->tensors().front()).data();
    if (reinterpret_cast<uintptr_t>(first) % alignof(float) != 0) {
      odd = path;
      break;
    }
  }
  ASSERT_FALSE(odd.empty()) << "no padding misaligned the tensors";
  auto reference = LoadModel(aligned);
  auto model = LoadModel(odd);
  ASSERT_NE(reference, nullptr);
  ASSERT_NE(model, nullptr);
  const std::vector<TokenId> tokens = SomeTokens(12, 512);
  std::vector<float> want, got;
  ASSERT_TRUE(reference->ForwardNoCache(tokens, &want).ok());
  ASSERT_TRUE(model->ForwardNoCache(tokens, &got).ok());
  EXPECT_EQ(got, want);
}

// Copies the model at `path` without tensor `drop`, with metadata `key` set
// to `value` when `key` is not empty.
std::string Rewritten(const std::string& path, const std::string& drop, const std::string& key,
                      const GgufValue& value, const std::string& name) {
  auto gguf = GgufReader::Open(path);
  EXPECT_TRUE(gguf.ok()) << gguf.status();
  GgufWriter writer((*gguf)->alignment());
  for (const auto& [k, v] : (*gguf)->metadata()) writer.Set(k, k == key ? value : v);
  if (!key.empty()) writer.Set(key, value);
  for (const GgufTensorInfo& t : (*gguf)->tensors()) {
    if (t.name != drop) {
      EXPECT_TRUE(writer.AddTensor(t.name, t.type, t.dims, (*gguf)->TensorData(t)).ok());
    }
  }
  const std::string out = (edgellm::testing::TestDir() / name).string();
  EXPECT_TRUE(writer.Write(out).ok());
  return out;
}

void ExpectRefusedNaming(const std::string& path, const std::string& words) {
  const absl::Status status = LlamaModel::Load(path, {}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(words), absl::string_view::npos) << status;
}

// A file whose metadata and tensors disagree, or that lacks a tensor its
// architecture needs, is refused naming the key or the tensor.
TEST(LlamaModel, RefusesFamilyFilesThatContradictThemselves) {
  const std::string qwen2 = SyntheticModel("test-qwen2", GgmlType::kF32);
  const std::string qwen3 = SyntheticModel("test-qwen3", GgmlType::kF32);
  const GgufValue none = GgufValue::Uint32(0);
  ExpectRefusedNaming(Rewritten(qwen2, "blk.1.attn_k.bias", "", none, "no-bias.gguf"),
                      "missing tensor blk.1.attn_k.bias (a qwen2 model has it)");
  ExpectRefusedNaming(Rewritten(qwen3, "blk.0.attn_q_norm.weight", "", none, "no-norm.gguf"),
                      "missing tensor blk.0.attn_q_norm.weight");
  ExpectRefusedNaming(Rewritten(qwen2, "", "qwen2.block_count", GgufValue::Uint32(1), "fewer-blocks.gguf"),
                      "tensor blk.1.attn_norm.weight is not part of a qwen2 model of 1 layers");
  ExpectRefusedNaming(Rewritten(qwen3, "", "qwen3.attention.head_count", GgufValue::Uint32(8), "heads.gguf"),
                      "blk.0.attn_q.weight has shape [64, 128], expected [64, 256]");
  ExpectRefusedNaming(Rewritten(qwen3, "", "qwen3.attention.key_length", GgufValue::Uint32(48), "key-length.gguf"),
                      "qwen3.attention.value_length = 32 differs from the key length 48");
  ExpectRefusedNaming(Rewritten(qwen2, "", "qwen2.vocab_size", GgufValue::Uint32(500), "vocab-size.gguf"),
                      "qwen2.vocab_size = 500 but token_embd.weight has 512 rows");
  ExpectRefusedNaming(Rewritten(qwen2, "", "qwen2.attention.head_count_kv", GgufValue::Uint32(3), "kv-heads.gguf"),
                      "qwen2.attention.head_count_kv = 3 does not divide qwen2.attention.head_count = 4");
  ExpectRefusedNaming(Rewritten(qwen2, "", "qwen2.rope.dimension_count", GgufValue::Uint32(18), "rope-dims.gguf"),
                      "qwen2.rope.dimension_count = 18");
  ExpectRefusedNaming(Rewritten(qwen2, "", "general.architecture", GgufValue::String("mamba"), "mamba.gguf"),
                      "general.architecture 'mamba' is not supported (llama, qwen2, qwen3, phi3, gemma2, gemma3 are)");
}

}  // namespace
}  // namespace edgellm::engine

namespace edgellm::engine {
namespace {

// The output matrix of an F32 model, [n_vocab][n_embd].
std::vector<float> OutputMatrix(const LlamaModel& model) {
  const GgufTensorInfo* info = model.gguf().FindTensor("output.weight");
  if (info == nullptr) info = model.gguf().FindTensor("token_embd.weight");
  EXPECT_NE(info, nullptr);
  EXPECT_EQ(info->type, GgmlType::kF32);
  const absl::Span<const uint8_t> bytes = model.gguf().TensorData(*info);
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

// The logits are the output matrix times each token's final hidden state, so
// the mean of a text's logits is that matrix times the mean hidden state: the
// direction the embedding must point in, computed here through the LibTorch
// forward.
TEST(LlamaModel, AnEmbeddingIsTheUnitMeanOfTheHiddenStatesTheLogitsComeFrom) {
  const std::string path = SyntheticModel("test-spm", GgmlType::kF32);
  auto model = LoadModel(path);
  auto reference = LoadTorchReference(path);
  ASSERT_NE(model, nullptr);
  ASSERT_NE(reference, nullptr);
  const int32_t vocab = model->config().n_vocab, d = model->config().n_embd;
  const std::vector<std::vector<TokenId>> inputs = {SomeTokens(9, vocab), {5, 17, 42}};
  std::vector<float> embeddings;
  ASSERT_TRUE(model->Embed(inputs, &embeddings).ok());
  ASSERT_EQ(embeddings.size(), inputs.size() * d);
  const std::vector<float> w = OutputMatrix(*model);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const float* e = embeddings.data() + i * d;
    double norm = 0;
    for (int32_t j = 0; j < d; ++j) norm += static_cast<double>(e[j]) * e[j];
    EXPECT_NEAR(norm, 1.0, 1e-5);
    std::vector<float> logits;
    ASSERT_TRUE(reference->ForwardNoCache(inputs[i], &logits).ok());
    std::vector<double> mean(vocab, 0.0), projected(vocab, 0.0);
    for (size_t r = 0; r < inputs[i].size(); ++r) {
      for (int32_t v = 0; v < vocab; ++v) mean[v] += logits[r * vocab + v] / inputs[i].size();
    }
    for (int32_t v = 0; v < vocab; ++v) {
      for (int32_t j = 0; j < d; ++j) projected[v] += static_cast<double>(w[static_cast<size_t>(v) * d + j]) * e[j];
    }
    double dot = 0, a = 0, b = 0;
    for (int32_t v = 0; v < vocab; ++v) {
      dot += mean[v] * projected[v];
      a += mean[v] * mean[v];
      b += projected[v] * projected[v];
    }
    EXPECT_NEAR(dot / std::sqrt(a * b), 1.0, 1e-4) << "input " << i;
  }
  // Batched or alone, the same.
  std::vector<float> alone;
  ASSERT_TRUE(model->Embed({inputs[1]}, &alone).ok());
  ExpectClose(alone.data(), embeddings.data() + d, d, 1e-5f, "the second input alone");
}

TEST(LlamaModel, EmbedRefusesEmptyAndOutOfVocabularyInputsNamingThem) {
  auto model = LoadModel(SyntheticModel("test-spm", GgmlType::kF32), /*context=*/16);
  ASSERT_NE(model, nullptr);
  std::vector<float> out;
  EXPECT_EQ(model->Embed({}, &out).code(), absl::StatusCode::kInvalidArgument);
  absl::Status s = model->Embed({{1, 2}, {}}, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("input 1"), absl::string_view::npos) << s;
  s = model->Embed({{1, 100000}}, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model->Embed({SomeTokens(17, 384)}, &out).code(), absl::StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace edgellm::engine
