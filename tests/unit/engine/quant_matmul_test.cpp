#include "daemon/engine/quant_matmul.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <vector>

#include "daemon/engine/thread_pool.h"
#include "tests/support/kernel_rows.h"
#include "tests/support/random_floats.h"

namespace edgellm::engine {
namespace {

using edgellm::testing::RandomFloats;

// y = x · Wᵀ in double from the dequantized weight and the activations as the
// kernels see them (quantized per block for the quantized types).
std::vector<double> Reference(GgmlType type, const std::vector<uint8_t>& w, const std::vector<float>& x,
                              MatMulShape s) {
  std::vector<float> weights(static_cast<size_t>(s.out_features * s.in_features));
  EXPECT_TRUE(Dequantize(type, w, absl::MakeSpan(weights)).ok());
  std::vector<float> seen = x;
  if (type != GgmlType::kF32 && type != GgmlType::kF16) {
    const testing::KernelRows a(kernels::ScalarKernels(), type, x.data(), s.rows, s.in_features);
    for (int64_t r = 0; r < s.rows; ++r) {
      for (int64_t i = 0; i < s.in_features; ++i) seen[r * s.in_features + i] = static_cast<float>(a.Value(r, i));
    }
  }
  std::vector<double> y(static_cast<size_t>(s.rows * s.out_features), 0.0);
  for (int64_t r = 0; r < s.rows; ++r) {
    for (int64_t o = 0; o < s.out_features; ++o) {
      double total = 0.0;
      for (int64_t i = 0; i < s.in_features; ++i) {
        total += static_cast<double>(weights[o * s.in_features + i]) * seen[r * s.in_features + i];
      }
      y[r * s.out_features + o] = total;
    }
  }
  return y;
}

// A random [out, in] weight of `type`, as GGUF stores it.
std::vector<uint8_t> RandomWeight(GgmlType type, const MatMulShape& s, uint32_t seed) {
  const std::vector<float> weights = RandomFloats(s.out_features * s.in_features, seed);
  std::vector<uint8_t> w(RowBytes(type, s.in_features) * s.out_features);
  EXPECT_TRUE(Quantize(type, weights, absl::MakeSpan(w)).ok());
  return w;
}

TEST(QuantMatMul, EveryTypeMatchesTheReferenceOnOddShapesAndThreadCounts) {
  const MatMulShape shapes[] = {{1, 32, 1}, {1, 96, 37}, {3, 160, 65}, {7, 576, 129}, {16, 64, 300}};
  ThreadPool one(1), two(2), three(3);
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1,
                        GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kIQ4_NL}) {
    for (const MatMulShape& s : shapes) {
      const std::vector<uint8_t> w = RandomWeight(type, s, 1);
      const std::vector<float> x = RandomFloats(s.rows * s.in_features, 2);
      const std::vector<double> want = Reference(type, w, x, s);
      std::vector<float> first;
      for (ThreadPool* pool : {&one, &two, &three}) {
        std::vector<float> y(want.size(), NAN);
        ASSERT_TRUE(QuantMatMul(type, w.data(), x.data(), y.data(), s, nullptr, pool).ok());
        for (size_t i = 0; i < y.size(); ++i) {
          ASSERT_NEAR(y[i], want[i], 1e-4 * std::sqrt(static_cast<double>(s.in_features)))
              << TraitsOf(type).name << " rows=" << s.rows << " in=" << s.in_features << " out=" << s.out_features;
        }
        // The split over threads never changes a result.
        if (first.empty()) first = y;
        EXPECT_EQ(y, first) << pool->size() << " threads";
      }
    }
  }
}

TEST(QuantMatMul, KQuantsMatchTheReference) {
  const MatMulShape shapes[] = {{1, 256, 3}, {5, 768, 70}};
  for (GgmlType type : {GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K,
                        GgmlType::kIQ4_XS}) {
    for (const MatMulShape& s : shapes) {
      const std::vector<uint8_t> w = RandomWeight(type, s, 8);
      const std::vector<float> x = RandomFloats(s.rows * s.in_features, 9);
      const std::vector<double> want = Reference(type, w, x, s);
      std::vector<float> y(want.size());
      ASSERT_TRUE(QuantMatMul(type, w.data(), x.data(), y.data(), s).ok());
      for (size_t i = 0; i < y.size(); ++i) {
        ASSERT_NEAR(y[i], want[i], 1e-4 * std::sqrt(static_cast<double>(s.in_features))) << TraitsOf(type).name;
      }
    }
  }
}

TEST(QuantMatMul, ARowGetsTheSameResultAloneOrInABatch) {
  const MatMulShape batch{7, 576, 96};
  for (GgmlType type : {GgmlType::kF16, GgmlType::kQ8_0, GgmlType::kQ4_0}) {
    const std::vector<uint8_t> w = RandomWeight(type, batch, 3);
    const std::vector<float> x = RandomFloats(batch.rows * batch.in_features, 4);
    std::vector<float> together(static_cast<size_t>(batch.rows * batch.out_features));
    ASSERT_TRUE(QuantMatMul(type, w.data(), x.data(), together.data(), batch).ok());
    for (int64_t r = 0; r < batch.rows; ++r) {
      std::vector<float> alone(static_cast<size_t>(batch.out_features));
      ASSERT_TRUE(QuantMatMul(type, w.data(), x.data() + r * batch.in_features, alone.data(),
                              {1, batch.in_features, batch.out_features})
                      .ok());
      for (int64_t o = 0; o < batch.out_features; ++o) {
        ASSERT_EQ(alone[o], together[r * batch.out_features + o]) << TraitsOf(type).name << " row " << r;
      }
    }
  }
}

TEST(QuantMatMul, SharedProductsGiveExactlyWhatEachGivesAlone) {
  const int64_t in = 512;
  const int64_t widths[] = {96, 32, 64};  // a query, key and value projection's shapes
  ThreadPool pool(2);
  for (GgmlType type : {GgmlType::kF16, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ4_K,
                        GgmlType::kQ6_K}) {
    for (int64_t rows : {1, 3, 7}) {
      const std::vector<float> x = RandomFloats(rows * in, 41 + static_cast<uint32_t>(rows));
      std::vector<std::vector<uint8_t>> weights;
      std::vector<std::vector<float>> shared_y, alone_y;
      std::vector<SharedProduct> products;
      for (int64_t width : widths) {
        weights.push_back(RandomWeight(type, {rows, in, width}, 43 + static_cast<uint32_t>(width)));
        shared_y.emplace_back(static_cast<size_t>(rows * width), NAN);
        alone_y.emplace_back(static_cast<size_t>(rows * width), NAN);
      }
      for (size_t p = 0; p < weights.size(); ++p) products.push_back({weights[p].data(), widths[p], shared_y[p].data()});
      ASSERT_TRUE(QuantMatMulShared(type, products, x.data(), rows, in, nullptr, &pool).ok());
      for (size_t p = 0; p < weights.size(); ++p) {
        ASSERT_TRUE(
            QuantMatMul(type, weights[p].data(), x.data(), alone_y[p].data(), {rows, in, widths[p]}, nullptr, &pool).ok());
        for (size_t i = 0; i < alone_y[p].size(); ++i) {
          ASSERT_EQ(shared_y[p][i], alone_y[p][i]) << TraitsOf(type).name << " rows " << rows << " product " << p;
        }
      }
    }
  }
}

TEST(QuantMatMul, RowsPreparedInTheProductGiveWhatRowsPreparedBeforeItGive) {
  const int64_t in = 256, out = 48;
  ThreadPool pool(2);
  for (GgmlType type : {GgmlType::kF32, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K}) {
    for (int64_t rows : {1, 5, 16}) {
      const std::vector<uint8_t> w = RandomWeight(type, {rows, in, out}, 51);
      const std::vector<float> source = RandomFloats(rows * in, 52 + static_cast<uint32_t>(rows));
      // Rows the product would read as NaN if it read one before it was prepared.
      std::vector<float> x(source.size(), NAN), prepared_first(source.size());
      std::vector<std::atomic<int>> times_prepared(static_cast<size_t>(rows));
      const auto prepare = [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          for (int64_t i = 0; i < in; ++i) x[r * in + i] = 2.0f * source[r * in + i] + static_cast<float>(r);
          times_prepared[r].fetch_add(1);
        }
      };
      for (size_t i = 0; i < source.size(); ++i) prepared_first[i] = 2.0f * source[i] + static_cast<float>(i / in);
      std::vector<float> fused(static_cast<size_t>(rows * out)), apart(fused.size());
      ASSERT_TRUE(QuantMatMul(type, w.data(), x.data(), fused.data(), {rows, in, out}, nullptr, &pool, prepare).ok());
      ASSERT_TRUE(
          QuantMatMul(type, w.data(), prepared_first.data(), apart.data(), {rows, in, out}, nullptr, &pool).ok());
      for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(times_prepared[r].load(), 1) << "row " << r;
      for (size_t i = 0; i < fused.size(); ++i) {
        ASSERT_EQ(fused[i], apart[i]) << TraitsOf(type).name << " rows " << rows << " output " << i;
      }
    }
  }
}

TEST(QuantMatMul, RefusesWhatItCannotCompute) {
  std::vector<uint8_t> w(1024);
  std::vector<float> x(64), y(64);
  EXPECT_EQ(QuantMatMul(GgmlType::kIQ2_XXS, w.data(), x.data(), y.data(), {1, 256, 1}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QuantMatMul(GgmlType::kQ4_K, w.data(), x.data(), y.data(), {1, 96, 1}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QuantMatMul(GgmlType::kQ8_0, w.data(), x.data(), y.data(), {1, 48, 1}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QuantMatMulShared(GgmlType::kQ8_0, {}, x.data(), 1, 32).code(), absl::StatusCode::kInvalidArgument);
  const SharedProduct five[5] = {{w.data(), 1, y.data()}, {w.data(), 1, y.data()}, {w.data(), 1, y.data()},
                                 {w.data(), 1, y.data()}, {w.data(), 1, y.data()}};
  EXPECT_EQ(QuantMatMulShared(GgmlType::kQ8_0, five, x.data(), 1, 32).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(HasMatMulKernel(GgmlType::kBF16));
  EXPECT_TRUE(HasMatMulKernel(GgmlType::kQ4_0));
}

}  // namespace
}  // namespace edgellm::engine
