#include "daemon/engine/quant_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "daemon/engine/fp16.h"
#include "daemon/engine/quant_types.h"

namespace edgellm::engine::kernels {
namespace {

// Every kernel set this machine runs, the scalar reference first.
std::vector<const KernelSet*> Available() {
  std::vector<const KernelSet*> sets = {&ScalarKernels()};
  for (const KernelSet* set : {Avx2Kernels(), AvxVnniKernels(), Avx512VnniKernels(), NeonKernels()}) {
    if (set != nullptr) sets.push_back(set);
  }
  return sets;
}

std::vector<float> RandomFloats(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = normal(rng);
  return v;
}

std::vector<uint8_t> QuantizeRow(GgmlType type, const std::vector<float>& row) {
  std::vector<uint8_t> out(RowBytes(type, row.size()));
  EXPECT_TRUE(Quantize(type, row, absl::MakeSpan(out)).ok());
  return out;
}

// The exact dot of a weight row (dequantized) with quantized activations, in double.
double ReferenceDot(GgmlType type, const std::vector<uint8_t>& w, const std::vector<ActivationBlock>& a, int64_t n) {
  std::vector<float> weights(static_cast<size_t>(n));
  EXPECT_TRUE(Dequantize(type, w, absl::MakeSpan(weights)).ok());
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    total += static_cast<double>(weights[i]) * a[i / kBlock].d * a[i / kBlock].q[i % kBlock];
  }
  return total;
}

const int64_t kSizes[] = {32, 96, 544, 1056, 2048 + 32};  // odd block counts included

TEST(QuantKernels, QuantizedActivationsAreIdenticalOnEveryInstructionSet) {
  for (int64_t n : kSizes) {
    std::vector<float> x = RandomFloats(n, static_cast<uint32_t>(n), 3.0f);
    x[0] = 0.0f;
    if (n >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // an all-zero block
    std::vector<ActivationBlock> reference(static_cast<size_t>(n / kBlock));
    ScalarKernels().quantize(x.data(), reference.data(), n / kBlock);
    for (const KernelSet* set : Available()) {
      std::vector<ActivationBlock> got(reference.size());
      set->quantize(x.data(), got.data(), n / kBlock);
      for (size_t b = 0; b < got.size(); ++b) {
        EXPECT_EQ(got[b].d, reference[b].d) << set->name << " block " << b;
        EXPECT_EQ(got[b].sum_d, reference[b].sum_d) << set->name << " block " << b;
        for (int i = 0; i < kBlock; ++i) ASSERT_EQ(got[b].q[i], reference[b].q[i]) << set->name << " n=" << n;
      }
    }
    // The quantization itself: every value within half a step of its block's scale.
    for (int64_t i = 0; i < n; ++i) {
      const ActivationBlock& block = reference[i / kBlock];
      EXPECT_NEAR(block.d * block.q[i % kBlock], x[i], block.d * 0.5f + 1e-7f);
    }
  }
}

// Every type with a quantized kernel.
const GgmlType kQuantTypes[] = {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0,  GgmlType::kQ5_1,
                                GgmlType::kQ8_0, GgmlType::kQ2_K, GgmlType::kQ3_K,  GgmlType::kQ4_K,
                                GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kIQ4_NL, GgmlType::kIQ4_XS};

TEST(QuantKernels, EveryTypeThatConvertsHasAScalarKernel) {
  for (uint32_t id = 2; id < kTypeSlots; ++id) {
    const std::optional<GgmlTypeTraits> traits = TraitsOf(id);
    if (!traits || traits->block_size == 1) continue;  // unknown, or a float or integer type
    EXPECT_EQ(traits->dequantize != nullptr, ScalarKernels().Dot(traits->type) != nullptr) << traits->name;
  }
}

TEST(QuantKernels, QuantizedDotsMatchTheExactSum) {
  for (GgmlType type : kQuantTypes) {
    const bool k_type = TraitsOf(type).block_size == 256;
    for (int64_t n : k_type ? std::vector<int64_t>{256, 768, 2048} : std::vector<int64_t>(std::begin(kSizes), std::end(kSizes))) {
      const std::vector<uint8_t> w = QuantizeRow(type, RandomFloats(n, 7 + static_cast<uint32_t>(n)));
      const std::vector<float> x = RandomFloats(n, 11 + static_cast<uint32_t>(n));
      std::vector<ActivationBlock> a(static_cast<size_t>(n / kBlock));
      ScalarKernels().quantize(x.data(), a.data(), n / kBlock);
      const double want = ReferenceDot(type, w, a, n);
      for (const KernelSet* set : Available()) {
        const DotQuantFn dot = set->Dot(type);
        ASSERT_NE(dot, nullptr) << set->name << " " << TraitsOf(type).name;
        const float got = dot(w.data(), a.data(), n / kBlock);
        // Integer sums per block are exact; only the float accumulation of blocks rounds.
        EXPECT_NEAR(got, want, 1e-5 * (std::fabs(want) + std::sqrt(static_cast<double>(n))))
            << set->name << " " << TraitsOf(type).name << " n=" << n;
      }
    }
  }
}

TEST(QuantKernels, FourRowsAtOnceGiveExactlyTheSingleRowDots) {
  int checked = 0;
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1,
                        GgmlType::kIQ4_NL, GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K,
                        GgmlType::kQ6_K, GgmlType::kIQ4_XS}) {
    for (int64_t n : {32, 96, 256, 544, 1024, 2048 + 32, 2048 + 256}) {
      if (n % TraitsOf(type).block_size != 0) continue;
      const int64_t blocks = n / kBlock;
      const std::vector<uint8_t> w = QuantizeRow(type, RandomFloats(n, 17 + static_cast<uint32_t>(n)));
      const std::vector<float> x = RandomFloats(4 * n, 19 + static_cast<uint32_t>(n));
      std::vector<ActivationBlock> a(static_cast<size_t>(4 * blocks));
      ScalarKernels().quantize(x.data(), a.data(), 4 * blocks);
      for (const KernelSet* set : Available()) {
        const DotQuantFn dot = set->Dot(type);
        const DotQuant4Fn dot4 = set->Dot4(type);
        if (dot4 == nullptr) continue;
        ++checked;
        float four[4];
        dot4(w.data(), a.data(), blocks, blocks, four);
        for (int i = 0; i < 4; ++i) {
          EXPECT_EQ(four[i], dot(w.data(), a.data() + i * blocks, blocks))
              << set->name << " " << TraitsOf(type).name << " n=" << n << " row " << i;
        }
      }
    }
  }
  // Every set has four-row Q8_0 and Q4_0 kernels at least.
  EXPECT_GE(checked, 2 * 5 * static_cast<int>(Available().size()));
}

TEST(QuantKernels, AWeightOfMinus128IsHandled) {
  // GGUF files from other quantizers may hold -128 in a Q8_0 block.
  std::vector<uint8_t> w(34, 0);
  const uint16_t one = Fp32ToFp16(1.0f);
  std::memcpy(w.data(), &one, 2);
  for (int i = 0; i < kBlock; ++i) w[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(-128));
  ActivationBlock a{};
  a.d = 1.0f;
  for (int i = 0; i < kBlock; ++i) a.q[i] = (i % 2 == 0) ? 127 : -127;
  a.q[0] = 127;
  a.q[1] = 127;
  for (const KernelSet* set : Available()) {
    EXPECT_EQ(set->Dot(GgmlType::kQ8_0)(w.data(), &a, 1), -128.0f * 127 * 2) << set->name;
  }
}

TEST(QuantKernels, FloatDotsMatchTheExactSum) {
  for (GgmlType type : {GgmlType::kF16, GgmlType::kF32}) {
    for (int64_t n : kSizes) {
      const std::vector<uint8_t> w = QuantizeRow(type, RandomFloats(n, 3 + static_cast<uint32_t>(n)));
      const std::vector<float> x = RandomFloats(n, 5 + static_cast<uint32_t>(n));
      std::vector<float> weights(static_cast<size_t>(n));
      ASSERT_TRUE(Dequantize(type, w, absl::MakeSpan(weights)).ok());
      double want = 0.0;
      for (int64_t i = 0; i < n; ++i) want += static_cast<double>(weights[i]) * x[i];
      for (const KernelSet* set : Available()) {
        const DotFloatFn dot = type == GgmlType::kF16 ? set->dot_f16 : set->dot_f32;
        EXPECT_NEAR(dot(w.data(), x.data(), n), want, 1e-4 * std::sqrt(static_cast<double>(n)))
            << set->name << " " << TraitsOf(type).name << " n=" << n;
      }
    }
  }
}

TEST(QuantKernels, TheBestSetIsOneThisMachineRuns) {
  const KernelSet& best = BestKernels();
  bool found = false;
  for (const KernelSet* set : Available()) found = found || set == &best;
  EXPECT_TRUE(found) << best.name;
  // On a CPU with AVX2, FMA and F16C (any x86-64 of the last decade) that is
  // an x86 set, with VNNI where the CPU has it.
  if (Avx512VnniKernels() != nullptr) {
    EXPECT_EQ(best.name, "avx512vnni");
  } else if (AvxVnniKernels() != nullptr) {
    EXPECT_EQ(best.name, "avxvnni");
  } else if (Avx2Kernels() != nullptr) {
    EXPECT_EQ(best.name, "avx2");
  }
}

}  // namespace
}  // namespace edgellm::engine::kernels
