// The decode step allocates nothing on the heap once warm: the forward of a
// batch of sequences (plain steps and speculative checks, some with a LoRA
// adapter applied unmerged) and the sampling of
// its logits. This binary replaces malloc and its relatives with counting
// versions, so every allocation of the process is seen, whoever makes it
// (operator new, BLAS, the thread pool's workers).
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/engine/sampler.h"
#include "tests/support/model_fixtures.h"

namespace {

std::atomic<bool> counting{false};
std::atomic<int64_t> allocations{0};

void Count() {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* pointer, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void __libc_free(void* pointer);

void* malloc(size_t size) noexcept {
  Count();
  return __libc_malloc(size);
}
void* calloc(size_t count, size_t size) noexcept {
  Count();
  return __libc_calloc(count, size);
}
void* realloc(void* pointer, size_t size) noexcept {
  Count();
  return __libc_realloc(pointer, size);
}
void free(void* pointer) noexcept { __libc_free(pointer); }
void* memalign(size_t alignment, size_t size) noexcept {
  Count();
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(size_t alignment, size_t size) noexcept {
  Count();
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, size_t alignment, size_t size) noexcept {
  Count();
  void* pointer = __libc_memalign(alignment, size);
  if (pointer == nullptr) return ENOMEM;
  *out = pointer;
  return 0;
}
}  // extern "C"

namespace edgellm::engine {
namespace {

using edgellm::testing::NewCache;
using edgellm::testing::SyntheticModel;

// Allocations made while `fn` runs, on any thread.
template <typename Fn>
int64_t AllocationsDuring(Fn fn) {
  allocations.store(0);
  counting.store(true);
  fn();
  counting.store(false);
  return allocations.load();
}

// Where the counter's test allocations go, so the compiler cannot elide them.
std::vector<int>* volatile sink = nullptr;

TEST(HeapCounter, SeesAllocationsOnAnyThread) {
  EXPECT_EQ(AllocationsDuring([] { sink = new std::vector<int>(100); }), 2);
  delete sink;
  EXPECT_GE(AllocationsDuring([] { std::thread([] { sink = new std::vector<int>(); }).join(); }), 1);
  delete sink;
}

struct Case {
  const char* shape;
  GgmlType type;
  KvType kv_type = KvType::kF32;
};

class DecodeAllocation : public ::testing::TestWithParam<Case> {};

TEST_P(DecodeAllocation, AWarmDecodeStepAllocatesNothing) {
  ModelOptions options;
  options.threads = 2;
  options.kv_type = GetParam().kv_type;
  auto loaded = LlamaModel::Load(SyntheticModel(GetParam().shape, GetParam().type), options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const LlamaModel& model = **loaded;
  const int32_t vocab = model.config().n_vocab;

  constexpr int kSequences = 4, kDraft = 3;
  std::vector<std::unique_ptr<KvCache>> caches;
  std::vector<std::vector<TokenId>> prompts;
  std::vector<float> logits;
  for (int s = 0; s < kSequences; ++s) {
    caches.push_back(NewCache(model));
    prompts.push_back({});
    for (int i = 0; i < 5 + 3 * s; ++i) prompts.back().push_back((i * 31 + s * 7 + 1) % vocab);
    ASSERT_TRUE(model.Forward(prompts.back(), caches.back().get(), false, &logits).ok());
  }
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  SamplingParams sampled;  // top-k, top-p, min-p and a repetition penalty
  sampled.repeat_penalty = 1.1f;
  sampled.seed = 7;
  std::vector<Sampler> samplers = {Sampler(greedy), Sampler(sampled), Sampler(greedy), Sampler(sampled)};

  // Sequences 1 and 3 run with a LoRA adapter on every projection, unmerged.
  LoraConfig lora;
  lora.targets = AllLoraTargets();
  auto made = LoraAdapter::Create(lora, model.config());
  ASSERT_TRUE(made.ok()) << made.status();
  const LoraAdapter adapter = *std::move(made);
  auto adapter_of = [&](int s) { return s % 2 == 1 ? &adapter : nullptr; };

  std::vector<TokenId> next(kSequences, 1);
  std::vector<TokenId> drafts(kSequences * kDraft, 2);
  std::vector<BatchItem> batch(kSequences);
  absl::Status status;
  // One decode step of every sequence, then sampling each one's next token.
  auto decode_step = [&] {
    for (int s = 0; s < kSequences; ++s) {
      batch[s] = {absl::MakeConstSpan(&next[s], 1), caches[s].get(), false, adapter_of(s)};
    }
    status.Update(model.ForwardBatch(batch, &logits));
    for (int s = 0; s < kSequences; ++s) {
      next[s] = samplers[s].Sample(absl::MakeConstSpan(logits).subspan(s * vocab, vocab), caches[s]->tokens());
    }
  };
  // A speculative check: every sequence runs three drafts, all of whose
  // logits come back; the drafts are then rejected and truncated.
  auto check_drafts = [&] {
    for (int s = 0; s < kSequences; ++s) {
      batch[s] = {absl::MakeConstSpan(drafts).subspan(s * kDraft, kDraft), caches[s].get(), true, adapter_of(s)};
    }
    status.Update(model.ForwardBatch(batch, &logits));
    for (int s = 0; s < kSequences; ++s) caches[s]->Truncate(caches[s]->length() - kDraft);
  };
  // A lone sequence, as a quiet daemon or the CLI runs it.
  auto single_step = [&] {
    status.Update(model.Forward(absl::MakeConstSpan(&next[0], 1), caches[0].get(), false, &logits));
    next[0] = samplers[0].Sample(logits, caches[0]->tokens());
  };

  for (int warm = 0; warm < 2; ++warm) {
    decode_step();
    check_drafts();
    single_step();
  }
  ASSERT_TRUE(status.ok()) << status;
  // Thirty-two steps cross several KV block boundaries (16 positions each).
  EXPECT_EQ(AllocationsDuring([&] {
              for (int step = 0; step < 32; ++step) {
                decode_step();
                check_drafts();
                single_step();
              }
            }),
            0);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_GT(caches[0]->length(), 64);
}

INSTANTIATE_TEST_SUITE_P(Types, DecodeAllocation,
                         ::testing::Values(Case{"test-spm", GgmlType::kF32}, Case{"test-spm", GgmlType::kF16},
                                           Case{"test-spm", GgmlType::kQ8_0}, Case{"test-spm", GgmlType::kQ4_0},
                                           Case{"test-spm", GgmlType::kQ5_0}, Case{"test-spm", GgmlType::kIQ4_NL},
                                           Case{"test-k", GgmlType::kQ4_K}, Case{"test-k", GgmlType::kQ5_K},
                                           Case{"test-k", GgmlType::kQ6_K},
                                           Case{"test-spm", GgmlType::kQ4_0, KvType::kF16},
                                           Case{"test-qwen3", GgmlType::kQ4_0, KvType::kQ8_0}),
                         [](const auto& info) {
                           const KvType kv = info.param.kv_type;
                           return std::string(TraitsOf(info.param.type).name) +
                                  (kv == KvType::kF32 ? "" : kv == KvType::kF16 ? "_F16Cache" : "_Q8_0Cache");
                         });

}  // namespace
}  // namespace edgellm::engine
