#include "daemon/engine/weight_matrix.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "daemon/engine/quant_kernels.h"
#include "tests/support/random_floats.h"

namespace edgellm::engine {
namespace {

using edgellm::testing::RandomFloats;

struct Weight {
  std::vector<uint8_t> bytes;
  WeightMatrix matrix;
};

Weight RandomWeight(GgmlType type, int64_t in, int64_t out, uint32_t seed) {
  Weight w;
  w.bytes.resize(RowBytes(type, in) * out);
  EXPECT_TRUE(Quantize(type, RandomFloats(in * out, seed), absl::MakeSpan(w.bytes)).ok());
  w.matrix = {type, w.bytes.data(), in, out};
  return w;
}

const GgmlType kQuantized[] = {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ4_K,
                               GgmlType::kQ6_K, GgmlType::kQ5_K};

// A prompt's rows get exactly what each row gets alone (a decode step) where
// the kernels take a prefill chunk: a prefix cached by a prefill and one
// built token by token hold the same keys and values.
TEST(WeightMatrix, APrefillRowGetsExactlyWhatItGetsAlone) {
  const kernels::KernelSet& best = kernels::BestKernels();
  const int64_t in = 512, out = 48, rows = 70;  // past any few-rows limit, not a multiple of 4
  int checked = 0;
  for (GgmlType type : kQuantized) {
    if (!best.prefill_in_kernels || !best.HasDot4(type)) continue;
    ++checked;
    const Weight w = RandomWeight(type, in, out, 5);
    const std::vector<float> x = RandomFloats(rows * in, 6);
    std::vector<float> together(static_cast<size_t>(rows * out)), alone(static_cast<size_t>(out));
    Multiply(w.matrix, x.data(), together.data(), rows);
    for (int64_t r = 0; r < rows; ++r) {
      Multiply(w.matrix, x.data() + r * in, alone.data(), 1);
      for (int64_t o = 0; o < out; ++o) {
        ASSERT_EQ(alone[o], together[r * out + o]) << TraitsOf(type).name << " row " << r;
      }
    }
  }
  if (best.prefill_in_kernels) {
    EXPECT_GE(checked, 5) << best.name;  // Q8_0, Q4_0, Q5_0, Q4_K and Q6_K have four-row kernels
  }
}

// Weights that read the same activations give together what each gives
// alone, of one type (one job for the pool) or of a mix (one Multiply each,
// as a Q4_K_M layer's Q4_K query and Q6_K value projections are), and so
// they do when their rows are prepared inside them (each row once).
TEST(WeightMatrix, SharedActivationsGiveWhatEachWeightGivesAlone) {
  const int64_t in = 512;
  for (const std::vector<GgmlType>& types : std::vector<std::vector<GgmlType>>{
           {GgmlType::kQ4_0, GgmlType::kQ4_0, GgmlType::kQ4_0},
           {GgmlType::kQ4_K, GgmlType::kQ4_K, GgmlType::kQ6_K},
           {GgmlType::kQ8_0, GgmlType::kQ8_0}}) {
    for (int64_t rows : {1, 5, 40}) {
      std::vector<Weight> weights;
      std::vector<const WeightMatrix*> matrices;
      std::vector<std::vector<float>> together, alone;
      std::vector<float*> outputs;
      for (size_t i = 0; i < types.size(); ++i) {
        weights.push_back(RandomWeight(types[i], in, 32 * static_cast<int64_t>(i + 1), 9 + static_cast<uint32_t>(i)));
        together.emplace_back(static_cast<size_t>(rows * 32 * static_cast<int64_t>(i + 1)), NAN);
        alone.emplace_back(together.back().size(), NAN);
      }
      for (size_t i = 0; i < types.size(); ++i) {
        matrices.push_back(&weights[i].matrix);
        outputs.push_back(together[i].data());
      }
      const std::vector<float> x = RandomFloats(rows * in, 10);
      MultiplyShared(matrices, x.data(), outputs.data(), rows);
      // The same rows written by prepare_rows inside the products, into a
      // buffer of NaNs that a read before the write would carry through.
      std::vector<float> prepared(x.size(), NAN);
      std::vector<std::vector<float>> fused;
      std::vector<float*> fused_outputs;
      for (const std::vector<float>& t : together) fused.emplace_back(t.size(), NAN);
      for (std::vector<float>& f : fused) fused_outputs.push_back(f.data());
      std::atomic<int64_t> rows_prepared{0};
      const auto prepare = [&](int64_t begin, int64_t end) {
        std::copy(x.begin() + begin * in, x.begin() + end * in, prepared.begin() + begin * in);
        rows_prepared += end - begin;
      };
      MultiplyShared(matrices, prepared.data(), fused_outputs.data(), rows, prepare);
      EXPECT_EQ(rows_prepared.load(), rows);
      for (size_t i = 0; i < types.size(); ++i) {
        Multiply(weights[i].matrix, x.data(), alone[i].data(), rows);
        for (size_t j = 0; j < alone[i].size(); ++j) {
          ASSERT_EQ(together[i][j], alone[i][j]) << TraitsOf(types[i]).name << " rows " << rows << " weight " << i;
          ASSERT_EQ(fused[i][j], alone[i][j]) << TraitsOf(types[i]).name << " rows " << rows << " weight " << i
                                              << ", rows prepared in the product";
        }
      }
    }
  }
}

// Float activations give the product with the dequantized weight, for any
// row count: what training's backward pass (MultiplyTransposed) differentiates.
TEST(WeightMatrix, FloatActivationsGiveTheDequantizedProduct) {
  const int64_t in = 512, out = 40;
  for (GgmlType type : kQuantized) {
    const Weight w = RandomWeight(type, in, out, 7);
    std::vector<float> dequantized(static_cast<size_t>(in * out));
    ASSERT_TRUE(Dequantize(type, w.bytes, absl::MakeSpan(dequantized)).ok());
    for (int64_t rows : {3, 70}) {
      const std::vector<float> x = RandomFloats(rows * in, 8);
      std::vector<float> exact(static_cast<size_t>(rows * out)), int8(static_cast<size_t>(rows * out));
      Multiply(w.matrix, x.data(), exact.data(), rows, ActivationPrecision::kFloat);
      Multiply(w.matrix, x.data(), int8.data(), rows, ActivationPrecision::kInt8);
      double worst_float = 0.0, worst_int8 = 0.0;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t o = 0; o < out; ++o) {
          double want = 0.0;
          for (int64_t i = 0; i < in; ++i) want += static_cast<double>(dequantized[o * in + i]) * x[r * in + i];
          worst_float = std::max(worst_float, std::fabs(exact[r * out + o] - want));
          worst_int8 = std::max(worst_int8, std::fabs(int8[r * out + o] - want));
        }
      }
      EXPECT_LT(worst_float, 1e-3) << TraitsOf(type).name << " rows " << rows;
      // 8-bit activations (one scale per 32 values, or per 256 for the K
      // types) are close, but not that close: where the kernels take the rows
      // (a few rows, or a type with a four-row kernel) the option matters.
      EXPECT_LT(worst_int8, 1.0) << TraitsOf(type).name << " rows " << rows;
      const kernels::KernelSet& best = kernels::BestKernels();
      if (rows == 3 || (best.prefill_in_kernels && best.HasDot4(type))) {
        EXPECT_GT(worst_int8, worst_float) << TraitsOf(type).name << " rows " << rows;
      }
    }
  }
}

}  // namespace
}  // namespace edgellm::engine
