#include "daemon/engine/quant_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/fp16.h"
#include "daemon/engine/legacy_quants.h"
#include "daemon/engine/quant_types.h"
#include "tests/support/kernel_rows.h"
#include "tests/support/random_floats.h"

namespace edgellm::engine::kernels {
namespace {

using edgellm::testing::RandomFloats;

using testing::KernelRows;

// Every kernel set this machine runs, the scalar reference first.
std::vector<const KernelSet*> Available() {
  std::vector<const KernelSet*> sets = {&ScalarKernels()};
  for (const KernelSet* set : {Avx2Kernels(), AvxVnniKernels(), Avx512VnniKernels(), NeonKernels()}) {
    if (set != nullptr) sets.push_back(set);
  }
  return sets;
}

std::vector<uint8_t> QuantizeRow(GgmlType type, const std::vector<float>& row) {
  std::vector<uint8_t> out(RowBytes(type, row.size()));
  EXPECT_TRUE(Quantize(type, row, absl::MakeSpan(out)).ok());
  return out;
}

// The exact dot of a weight row (dequantized) with row r of the quantized activations, in double.
double ReferenceDot(GgmlType type, const std::vector<uint8_t>& w, const KernelRows& a, int64_t r, int64_t n) {
  std::vector<float> weights(static_cast<size_t>(n));
  EXPECT_TRUE(Dequantize(type, w, absl::MakeSpan(weights)).ok());
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += static_cast<double>(weights[i]) * a.Value(r, i);
  return total;
}

const int64_t kSizes[] = {32, 96, 544, 1056, 2048 + 32};  // odd block counts included

// x[0] = 127 and x[i] = ±(i / 2 + 0.5) for i = 1..31: quantized with the
// scale 127 / 127 = 1, each of those is halfway between two integers.
void SetHalfwayValues(float* x) {
  x[0] = 127.0f;
  for (int i = 1; i < 32; ++i) x[i] = (i % 2 == 0 ? 1.0f : -1.0f) * (static_cast<float>(i / 2) + 0.5f);
}
// ... and round to the even one of the two, as nearbyint does (not away from zero).
void ExpectHalfwayValuesRoundToEven(const int8_t* q) {
  EXPECT_EQ(q[0], 127);
  for (int i = 1; i < 32; ++i) {
    const int below = i / 2, even = below % 2 == 0 ? below : below + 1;
    EXPECT_EQ(q[i], (i % 2 == 0 ? 1 : -1) * even) << "value " << i;
  }
}

TEST(QuantKernels, QuantizedActivationsAreIdenticalOnEveryInstructionSet) {
  for (int64_t n : kSizes) {
    std::vector<float> x = RandomFloats(n, static_cast<uint32_t>(n), 3.0f);
    x[0] = 0.0f;
    if (n >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // an all-zero block
    // A block whose scale is exactly 1 (its largest magnitude 127) and whose
    // other values are all halfway between two integers: they round to even.
    if (n >= 96) SetHalfwayValues(&x[64]);
    std::vector<ActivationBlock> reference(static_cast<size_t>(n / kBlock));
    ScalarKernels().quantize(x.data(), reference.data(), n / kBlock);
    for (const KernelSet* set : Available()) {
      std::vector<ActivationBlock> got(reference.size());
      set->quantize(x.data(), got.data(), n / kBlock);
      for (size_t b = 0; b < got.size(); ++b) {
        EXPECT_EQ(got[b].d, reference[b].d) << set->name << " block " << b;
        EXPECT_EQ(got[b].sum_d, reference[b].sum_d) << set->name << " block " << b;
        EXPECT_EQ(got[b].sum_q, reference[b].sum_q) << set->name << " block " << b;
        for (int i = 0; i < kBlock; ++i) ASSERT_EQ(got[b].q[i], reference[b].q[i]) << set->name << " n=" << n;
      }
    }
    if (n >= 96) ExpectHalfwayValuesRoundToEven(reference[2].q);
    // The quantization itself: every value within half a step of its block's
    // scale, and each block's sums those of the values it stores.
    for (int64_t i = 0; i < n; ++i) {
      const ActivationBlock& block = reference[i / kBlock];
      EXPECT_NEAR(block.d * block.q[i % kBlock], x[i], block.d * 0.5f + 1e-7f);
    }
    for (const ActivationBlock& block : reference) {
      int32_t sum = 0;
      for (int8_t q : block.q) sum += q;
      EXPECT_EQ(block.sum_q, sum);
      EXPECT_EQ(block.sum_d, block.d * static_cast<float>(sum));
    }
  }
}

TEST(QuantKernels, SuperBlockActivationsAreIdenticalOnEveryInstructionSetAndCarryTheirGroupSums) {
  for (int64_t n : {256, 512, 2304}) {
    std::vector<float> x = RandomFloats(n, static_cast<uint32_t>(n), 3.0f);
    std::fill(x.begin(), x.begin() + 256, 0.0f);  // an all-zero super-block
    if (n > 300) x[300] = 40.0f;                  // one outlier sets a super-block's scale
    if (n >= 768) SetHalfwayValues(&x[512]);       // a scale of exactly 1 and values halfway
    const int64_t count = n / static_cast<int64_t>(kSuperBlock);
    std::vector<SuperActivationBlock> reference(static_cast<size_t>(count));
    ScalarKernels().quantize_super(x.data(), reference.data(), count);
    for (const KernelSet* set : Available()) {
      std::vector<SuperActivationBlock> got(reference.size());
      set->quantize_super(x.data(), got.data(), count);
      for (size_t b = 0; b < got.size(); ++b) {
        EXPECT_EQ(got[b].d, reference[b].d) << set->name << " super-block " << b;
        EXPECT_EQ(0, std::memcmp(got[b].q, reference[b].q, sizeof(got[b].q))) << set->name << " super-block " << b;
        EXPECT_EQ(0, std::memcmp(got[b].group_sums, reference[b].group_sums, sizeof(got[b].group_sums)))
            << set->name << " super-block " << b;
      }
    }
    if (n >= 768) ExpectHalfwayValuesRoundToEven(reference[2].q);
    for (const SuperActivationBlock& block : reference) {
      for (int g = 0; g < kGroupsPerSuperBlock; ++g) {
        int sum = 0;
        for (int i = 16 * g; i < 16 * g + 16; ++i) sum += block.q[i];
        EXPECT_EQ(block.group_sums[g], sum) << "group " << g;
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      const SuperActivationBlock& block = reference[static_cast<size_t>(i / 256)];
      EXPECT_NEAR(block.d * block.q[i % 256], x[i], block.d * 0.5f + 1e-7f);
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
    EXPECT_EQ(traits->dequantize != nullptr, ScalarKernels().HasDot(traits->type)) << traits->name;
  }
}

TEST(QuantKernels, QuantizedDotsMatchTheExactSum) {
  for (GgmlType type : kQuantTypes) {
    const bool k_type = TraitsOf(type).block_size == 256;
    for (int64_t n : k_type ? std::vector<int64_t>{256, 768, 2048} : std::vector<int64_t>(std::begin(kSizes), std::end(kSizes))) {
      const std::vector<uint8_t> w = QuantizeRow(type, RandomFloats(n, 7 + static_cast<uint32_t>(n)));
      const std::vector<float> x = RandomFloats(n, 11 + static_cast<uint32_t>(n));
      const KernelRows a(ScalarKernels(), type, x.data(), 1, n);
      const double want = ReferenceDot(type, w, a, 0, n);
      for (const KernelSet* set : Available()) {
        ASSERT_TRUE(set->HasDot(type)) << set->name << " " << TraitsOf(type).name;
        const float got = a.Dot(*set, type, w.data(), 0);
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
      const std::vector<uint8_t> w = QuantizeRow(type, RandomFloats(n, 17 + static_cast<uint32_t>(n)));
      const std::vector<float> x = RandomFloats(4 * n, 19 + static_cast<uint32_t>(n));
      const KernelRows a(ScalarKernels(), type, x.data(), 4, n);
      for (const KernelSet* set : Available()) {
        float four[4];
        if (!a.DotFour(*set, type, w.data(), four)) continue;
        ++checked;
        for (int i = 0; i < 4; ++i) {
          EXPECT_EQ(four[i], a.Dot(*set, type, w.data(), i))
              << set->name << " " << TraitsOf(type).name << " n=" << n << " row " << i;
        }
      }
    }
  }
  // Every set has four-row Q8_0 and Q4_0 kernels at least.
  EXPECT_GE(checked, 2 * 5 * static_cast<int>(Available().size()));
}

TEST(QuantKernels, TiledMultiplyGivesExactlyTheSingleRowDots) {
  int checked = 0;
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1,
                        GgmlType::kIQ4_NL}) {
    for (int64_t n : {32, 96, 544, 2048 + 32}) {
      // Below, at and past a tile's four weight rows, and a group of sixteen
      // (the interleaving kernels') with one row over, and two and a half groups.
      for (int64_t out_rows : {1, 3, 4, 9, 17, 40}) {
        const int64_t rows = 1 + out_rows * 3 % 10;  // 1, 2, 3, 4, 8 and 10 activation rows
        std::vector<uint8_t> w = QuantizeRow(type, RandomFloats(out_rows * n, 23 + static_cast<uint32_t>(n)));
        // A Q8_0 row of -128s, which no quantizer writes but files may hold.
        if (type == GgmlType::kQ8_0) std::memset(w.data() + 2, 0x80, kBlock);
        const std::vector<float> x = RandomFloats(rows * n, 29 + static_cast<uint32_t>(out_rows), 2.0f);
        const KernelRows a(ScalarKernels(), type, x.data(), rows, n);
        const uint64_t row_bytes = RowBytes(type, static_cast<uint64_t>(n));
        for (const KernelSet* set : Available()) {
          if (set->Multiply(type) == nullptr) continue;
          ++checked;
          std::vector<float> y(static_cast<size_t>(rows * out_rows), NAN);
          set->Multiply(type)(w.data(), row_bytes, out_rows, a.blocks().data(), rows, n / kBlock, y.data(), out_rows);
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t o = 0; o < out_rows; ++o) {
              ASSERT_EQ(y[r * out_rows + o], a.Dot(*set, type, w.data() + o * row_bytes, r))
                  << set->name << " " << TraitsOf(type).name << " n=" << n << " row " << r << " weight row " << o;
            }
          }
        }
      }
    }
  }
  if (const KernelSet* avx512 = Avx512VnniKernels()) {
    EXPECT_EQ(checked, 6 * 4 * 6) << avx512->name << " has a tiled multiply for every 32-weight block type";
  }
}

// Every row of a packed matrix reads back (KernelSet::unpack_row) as the file had it.
void ExpectEveryRowUnpacks(const KernelSet& set, GgmlType type, const std::vector<uint8_t>& packed,
                           const std::vector<uint8_t>& file, uint64_t row_bytes, int64_t out_rows, int64_t blocks) {
  ASSERT_NE(set.UnpackRow(type), nullptr) << set.name << " " << TraitsOf(type).name;
  std::vector<uint8_t> row(row_bytes);
  for (int64_t o = 0; o < out_rows; ++o) {
    const int p = static_cast<int>(o % kPackedGroupRows);
    set.UnpackRow(type)(packed.data() + (o - p) * row_bytes, p, blocks, row.data());
    ASSERT_EQ(std::memcmp(row.data(), file.data() + o * row_bytes, row_bytes), 0)
        << set.name << " " << TraitsOf(type).name << " row " << o;
  }
}

// A matrix packed at load (KernelSet::pack) multiplies to exactly what its
// rows as the file has them give, for every activation row count, and a
// packed chunk of a matrix (whole groups of sixteen) to that chunk's rows.
TEST(QuantKernels, PackedMatricesGiveExactlyWhatTheirRowsGive) {
  int checked = 0;
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ5_0}) {
    for (int64_t n : {32, 544, 2048 + 32}) {
      for (int64_t out_rows : {16, 48}) {
        const std::vector<uint8_t> w = QuantizeRow(type, RandomFloats(out_rows * n, 41 + static_cast<uint32_t>(n)));
        const uint64_t row_bytes = RowBytes(type, static_cast<uint64_t>(n));
        for (const KernelSet* set : Available()) {
          if (set->Pack(type) == nullptr) continue;
          ASSERT_NE(set->MultiplyPacked(type), nullptr) << set->name;
          std::vector<uint8_t> packed = w;
          set->Pack(type)(packed.data(), row_bytes, out_rows, n / kBlock);
          EXPECT_NE(packed, w) << "packing changed nothing";
          ExpectEveryRowUnpacks(*set, type, packed, w, row_bytes, out_rows, n / kBlock);
          for (int64_t rows : {1, 2, 3, 4, 7, 10}) {
            ++checked;
            const std::vector<float> x = RandomFloats(rows * n, 43 + static_cast<uint32_t>(rows), 2.0f);
            const KernelRows a(ScalarKernels(), type, x.data(), rows, n);
            std::vector<float> expected(static_cast<size_t>(rows * out_rows), NAN), y = expected;
            set->Multiply(type)(w.data(), row_bytes, out_rows, a.blocks().data(), rows, n / kBlock, expected.data(),
                                out_rows);
            set->MultiplyPacked(type)(packed.data(), row_bytes, out_rows, a.blocks().data(), rows, n / kBlock,
                                      y.data(), out_rows);
            EXPECT_EQ(std::memcmp(y.data(), expected.data(), y.size() * sizeof(float)), 0)
                << set->name << " " << TraitsOf(type).name << " n=" << n << " " << out_rows << "x" << rows;
            // The second group alone, as a chunk of the pool's job is handed it.
            if (out_rows > 16) {
              std::vector<float> part(static_cast<size_t>(rows * 16), NAN);
              set->MultiplyPacked(type)(packed.data() + 16 * row_bytes, row_bytes, 16, a.blocks().data(), rows,
                                        n / kBlock, part.data(), 16);
              for (int64_t r = 0; r < rows; ++r) {
                EXPECT_EQ(std::memcmp(&part[r * 16], &expected[r * out_rows + 16], 16 * sizeof(float)), 0)
                    << set->name << " " << TraitsOf(type).name << " row " << r;
              }
            }
          }
        }
      }
    }
  }
  if (const KernelSet* avx512 = Avx512VnniKernels()) {
    EXPECT_EQ(checked, 3 * 3 * 2 * 6) << avx512->name << " packs Q4_0, Q5_0 and Q8_0";
  }
}

// The types stored with an offset (Q4_0's 8, Q5_0's 16, Q8_0's 128 once
// packed) take it off in their integer dots: at the extremes — every weight
// its type's least or greatest value, every activation ±127 — the packed
// multiply gives the exact sums (integers times powers of two), one
// activation row or sixteen, and nothing wraps.
TEST(QuantKernels, PackedOffsetTypesOfExtremeWeightsAndActivationsAreExact) {
  int checked = 0;
  const int64_t n = 2048, out_rows = 16, blocks = n / kBlock;
  for (GgmlType type : {GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ8_0}) {
    const uint64_t row_bytes = RowBytes(type, static_cast<uint64_t>(n)), block_bytes = row_bytes / blocks;
    // Even rows every byte 0x00 (Q8_0: 0x80, its -128), odd rows 0xff (Q8_0: 0x7f); scales 1.
    std::vector<uint8_t> w(out_rows * row_bytes);
    for (int64_t o = 0; o < out_rows; ++o) {
      const uint8_t least = type == GgmlType::kQ8_0 ? 0x80 : 0x00, greatest = type == GgmlType::kQ8_0 ? 0x7f : 0xff;
      std::fill_n(w.begin() + o * row_bytes, row_bytes, o % 2 == 0 ? least : greatest);
      for (int64_t b = 0; b < blocks; ++b) StoreFp16(&w[o * row_bytes + b * block_bytes], 1.0f);
    }
    for (int64_t rows : {1, 16}) {
      std::vector<float> x(static_cast<size_t>(rows * n));
      // ±127/128: q = ±127 and d = 1/128, so every partial sum is exact in floats.
      for (int64_t i = 0; i < rows * n; ++i) x[i] = ((i / n + i % 7) % 3 == 0 ? -127.0f : 127.0f) / 128.0f;
      const KernelRows a(ScalarKernels(), type, x.data(), rows, n);
      for (const KernelSet* set : Available()) {
        if (set->Pack(type) == nullptr) continue;
        ++checked;
        std::vector<uint8_t> packed = w;
        set->Pack(type)(packed.data(), row_bytes, out_rows, blocks);
        std::vector<float> y(static_cast<size_t>(rows * out_rows), NAN);
        set->MultiplyPacked(type)(packed.data(), row_bytes, out_rows, a.blocks().data(), rows, blocks, y.data(),
                                  out_rows);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t o = 0; o < out_rows; ++o) {
            const std::vector<uint8_t> row(w.begin() + o * row_bytes, w.begin() + (o + 1) * row_bytes);
            EXPECT_EQ(y[r * out_rows + o], ReferenceDot(type, row, a, r, n))
                << set->name << " " << TraitsOf(type).name << " weight row " << o << " activation row " << r;
          }
        }
      }
    }
  }
  if (Avx512VnniKernels() != nullptr) {
    EXPECT_EQ(checked, 3 * 2);
  }
}

// A K-type matrix packed at load multiplies to the exact sums of its rows
// (within the float rounding of one super-block's scaling), the same as its
// rows give through the row-wise kernels to that rounding, gives a row the
// same value bit for bit whatever the number of activation rows, and a packed
// chunk of the matrix (whole groups of sixteen) that chunk's rows. Extreme
// bytes (every scale, min and quant at its largest) overflow nothing.
TEST(QuantKernels, PackedSuperBlockMatricesGiveTheirRowsSumsForAnyRowCount) {
  int checked = 0;
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ6_K}) {
    for (int64_t n : {256, 768, 2048 + 256}) {
      for (int64_t out_rows : {16, 48}) {
        std::vector<uint8_t> w = QuantizeRow(type, RandomFloats(out_rows * n, 47 + static_cast<uint32_t>(n)));
        const uint64_t row_bytes = RowBytes(type, static_cast<uint64_t>(n));
        if (n == 768) {
          // The second row's bytes all 0xff but its scales (d and dmin 1): the largest sums.
          std::memset(w.data() + row_bytes, 0xff, row_bytes);
          for (uint64_t b = row_bytes; b < 2 * row_bytes; b += RowBytes(type, 256)) {
            StoreFp16(&w[b + (type == GgmlType::kQ6_K ? 208 : 0)], 1.0f);
            if (type == GgmlType::kQ4_K) StoreFp16(&w[b + 2], 1.0f);
          }
        }
        const int64_t count = n / static_cast<int64_t>(kSuperBlock);
        for (const KernelSet* set : Available()) {
          if (set->Pack(type) == nullptr) continue;
          ASSERT_NE(set->SuperMultiplyPacked(type), nullptr) << set->name;
          std::vector<uint8_t> packed = w;
          set->Pack(type)(packed.data(), row_bytes, out_rows, count);
          EXPECT_NE(packed, w) << "packing changed nothing";
          ExpectEveryRowUnpacks(*set, type, packed, w, row_bytes, out_rows, count);
          const std::vector<float> x = RandomFloats(10 * n, 53 + static_cast<uint32_t>(n), 2.0f);
          const KernelRows a(ScalarKernels(), type, x.data(), 10, n);
          std::vector<float> ten(static_cast<size_t>(10 * out_rows), NAN);
          set->SuperMultiplyPacked(type)(packed.data(), row_bytes, out_rows, a.super_blocks().data(), 10, count,
                                         ten.data(), out_rows);
          for (int64_t r = 0; r < 10; ++r) {
            for (int64_t o = 0; o < out_rows; ++o) {
              const std::vector<uint8_t> row(w.begin() + o * row_bytes, w.begin() + (o + 1) * row_bytes);
              const double want = ReferenceDot(type, row, a, r, n);
              const float got = ten[r * out_rows + o];
              ASSERT_NEAR(got, want, 1e-5 * (std::fabs(want) + std::sqrt(static_cast<double>(n))))
                  << set->name << " " << TraitsOf(type).name << " n=" << n << " row " << r << " weight row " << o;
              EXPECT_NEAR(got, a.Dot(*set, type, w.data() + o * row_bytes, r),
                          1e-5 * (std::fabs(want) + std::sqrt(static_cast<double>(n))));
            }
          }
          for (int64_t rows : {1, 2, 3, 4, 7}) {
            ++checked;
            std::vector<float> y(static_cast<size_t>(rows * out_rows), NAN);
            set->SuperMultiplyPacked(type)(packed.data(), row_bytes, out_rows, a.super_blocks().data(), rows, count,
                                           y.data(), out_rows);
            EXPECT_EQ(std::memcmp(y.data(), ten.data(), y.size() * sizeof(float)), 0)
                << set->name << " " << TraitsOf(type).name << " n=" << n << " " << out_rows << "x" << rows;
            if (out_rows > 16) {
              std::vector<float> part(static_cast<size_t>(rows * 16), NAN);
              set->SuperMultiplyPacked(type)(packed.data() + 16 * row_bytes, row_bytes, 16, a.super_blocks().data(),
                                             rows, count, part.data(), 16);
              for (int64_t r = 0; r < rows; ++r) {
                EXPECT_EQ(std::memcmp(&part[r * 16], &ten[r * out_rows + 16], 16 * sizeof(float)), 0)
                    << set->name << " " << TraitsOf(type).name << " row " << r;
              }
            }
          }
        }
      }
    }
  }
  if (const KernelSet* avx512 = Avx512VnniKernels()) {
    EXPECT_EQ(checked, 2 * 3 * 2 * 5) << avx512->name << " packs Q4_K and Q6_K";
  }
}

TEST(QuantKernels, SuperBlockMultiplyGivesExactlyTheSingleRowDots) {
  int checked = 0;
  for (GgmlType type : {GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K,
                        GgmlType::kIQ4_XS}) {
    for (int64_t n : {256, 768, 2048 + 256}) {
      const int64_t out_rows = 3;
      const std::vector<uint8_t> w = QuantizeRow(type, RandomFloats(out_rows * n, 31 + static_cast<uint32_t>(n)));
      const uint64_t row_bytes = RowBytes(type, static_cast<uint64_t>(n));
      for (int64_t rows : {4, 8, 13, 21}) {  // eight at a time, then four, then one
        const std::vector<float> x = RandomFloats(rows * n, 37 + static_cast<uint32_t>(rows), 2.0f);
        const KernelRows a(ScalarKernels(), type, x.data(), rows, n);
        for (const KernelSet* set : Available()) {
          if (set->SuperMultiply(type) == nullptr) continue;
          ++checked;
          std::vector<float> y(static_cast<size_t>(rows * out_rows), NAN);
          set->SuperMultiply(type)(w.data(), row_bytes, out_rows, a.super_blocks().data(), rows,
                                   n / static_cast<int64_t>(kSuperBlock), y.data(), out_rows);
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t o = 0; o < out_rows; ++o) {
              ASSERT_EQ(y[r * out_rows + o], a.Dot(*set, type, w.data() + o * row_bytes, r))
                  << set->name << " " << TraitsOf(type).name << " n=" << n << " row " << r << " weight row " << o;
            }
          }
        }
      }
    }
  }
  if (Avx512VnniKernels() != nullptr) {
    EXPECT_GE(checked, 3 * 3 * 4) << "Q4_K, Q5_K and Q6_K at least";
  }
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
  a.sum_q = 2 * 127;  // the sum of q, and d times it, as Quantize writes them
  a.sum_d = 2 * 127;
  for (const KernelSet* set : Available()) {
    EXPECT_EQ(set->Dot(GgmlType::kQ8_0)(w.data(), &a, 1), -128.0f * 127 * 2) << set->name;
  }
}

// The largest products each super-block kernel can meet: nothing saturates
// or overflows on the way (maddubs pairs, int32 super-block sums).
TEST(QuantKernels, SuperBlocksOfExtremeWeightsAndActivationsAreExact) {
  const int64_t n = 512;
  for (GgmlType type : {GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K,
                        GgmlType::kIQ4_XS}) {
    for (uint8_t fill : {0x00, 0xff, 0x88, 0x77}) {
      // Every byte `fill` (all scales, mins and quants at an extreme), with d and dmin 1.
      std::vector<uint8_t> w(RowBytes(type, n), fill);
      const size_t block_bytes = RowBytes(type, 256);
      for (size_t b = 0; b < w.size(); b += block_bytes) {
        const size_t d_at = type == GgmlType::kQ2_K ? 80 : type == GgmlType::kQ3_K ? 108
                            : type == GgmlType::kQ6_K ? 208 : 0;
        StoreFp16(&w[b + d_at], 1.0f);
        if (type == GgmlType::kQ2_K || type == GgmlType::kQ4_K || type == GgmlType::kQ5_K) {
          StoreFp16(&w[b + d_at + 2], 1.0f);
        }
      }
      for (float sign : {1.0f, -1.0f}) {
        std::vector<float> x(n);
        for (int64_t i = 0; i < n; ++i) x[i] = (i % 3 == 0 ? -sign : sign) * 2.0f;
        const KernelRows a(ScalarKernels(), type, x.data(), 1, n);
        const double want = ReferenceDot(type, w, a, 0, n);
        for (const KernelSet* set : Available()) {
          EXPECT_NEAR(a.Dot(*set, type, w.data(), 0), want, 1e-6 * std::fabs(want) + 1e-3)
              << set->name << " " << TraitsOf(type).name << " fill " << int{fill};
        }
      }
    }
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

// One query row, a smol-135m group (3), and a tinyllama one (8): the wide
// kernels take several rows at once, with a stride past their width. The x86
// sets add the same products in the same order per value whatever their
// registers' width, so a model decodes the same tokens on an AVX2 machine as
// on an AVX-512 one.
TEST(QuantKernels, WeightedRowSumsMatchTheExactSumForEveryQueryRowAndAgreeAcrossX86Sets) {
  const KernelSet* avx2 = Avx2Kernels();
  int against_avx2 = 0;
  for (int64_t width : {1, 8, 16, 24, 31, 32, 40, 64, 80, 128, 257}) {
    for (int64_t count : {0, 1, 2, 7, 16}) {
      for (int64_t queries : {1, 3, 8}) {
        const int64_t weight_stride = count + 3, out_stride = width + 5;
        const std::vector<float> weights = RandomFloats(queries * weight_stride, 11 + static_cast<uint32_t>(count));
        const std::vector<float> rows = RandomFloats(count * width, 13 + static_cast<uint32_t>(width));
        const std::vector<float> start = RandomFloats(queries * out_stride, 17);
        std::vector<float> avx2_out = start;
        if (avx2 != nullptr) {
          avx2->weighted_row_sum(weights.data(), weight_stride, queries, rows.data(), count, width, avx2_out.data(),
                                 out_stride);
        }
        for (const KernelSet* set : Available()) {
          std::vector<float> out = start;
          set->weighted_row_sum(weights.data(), weight_stride, queries, rows.data(), count, width, out.data(),
                                out_stride);
          if (avx2 != nullptr && (set == AvxVnniKernels() || set == Avx512VnniKernels())) {
            ASSERT_EQ(out, avx2_out) << set->name << " against avx2, width=" << width << " count=" << count
                                     << " queries=" << queries;
            ++against_avx2;
          }
          // Rows taken together add the same terms in the same order as one at a time.
          std::vector<float> one_at_a_time = start;
          for (int64_t q = 0; q < queries; ++q) {
            set->weighted_row_sum(weights.data() + q * weight_stride, weight_stride, 1, rows.data(), count, width,
                                  one_at_a_time.data() + q * out_stride, out_stride);
          }
          ASSERT_EQ(out, one_at_a_time) << set->name << " width=" << width << " count=" << count;
          for (int64_t q = 0; q < queries; ++q) {
            for (int64_t j = 0; j < out_stride; ++j) {
              const size_t at = static_cast<size_t>(q * out_stride + j);
              if (j >= width) {
                ASSERT_EQ(out[at], start[at]) << set->name << ": wrote past row " << q << "'s width";
                continue;
              }
              double want = start[at];
              for (int64_t t = 0; t < count; ++t) {
                want += static_cast<double>(weights[q * weight_stride + t]) * rows[t * width + j];
              }
              ASSERT_NEAR(out[at], want, 1e-5 * (count + 1))
                  << set->name << " width=" << width << " count=" << count << " row " << q << " of " << queries
                  << " j=" << j;
            }
          }
        }
      }
    }
  }
  if (avx2 != nullptr && Avx512VnniKernels() != nullptr) {
    EXPECT_EQ(against_avx2, 11 * 5 * 3 * (AvxVnniKernels() != nullptr ? 2 : 1)) << "every case met the AVX2 set";
  }
}

TEST(QuantKernels, HalvesAreStoredAsFp16RoundsThemAndReadBackExactly) {
  for (int64_t n : {0, 1, 7, 8, 31, 64, 257}) {
    std::vector<float> values = RandomFloats(n, 13 + static_cast<uint32_t>(n));
    values.push_back(1e-8f);      // below the smallest half: a tail of its own
    values.push_back(70000.0f);   // past the largest: infinity
    values.push_back(-0.0f);
    for (const KernelSet* set : Available()) {
      std::vector<uint8_t> halves(2 * values.size());
      set->store_f16(values.data(), static_cast<int64_t>(values.size()), halves.data());
      std::vector<float> held(values.size());
      set->load_f16(halves.data(), static_cast<int64_t>(held.size()), held.data());
      for (size_t i = 0; i < values.size(); ++i) {
        ASSERT_EQ(LoadFp16(halves.data() + 2 * i), Fp16ToFp32(Fp32ToFp16(values[i]))) << set->name << " " << values[i];
        ASSERT_EQ(std::signbit(held[i]), std::signbit(values[i])) << set->name << " " << values[i];
        ASSERT_EQ(held[i], Fp16ToFp32(Fp32ToFp16(values[i]))) << set->name << " " << values[i];
      }
    }
  }
}

TEST(QuantKernels, Q8_0RowsAreStoredAsGgmlsQuantizerStoresThemAndReadBackAsItReads) {
  for (int64_t n : {0, 32, 64, 256}) {
    std::vector<float> values = RandomFloats(n, 29 + static_cast<uint32_t>(n));
    if (n >= 64) {
      // Exact halves of a step, where roundf goes away from zero and a
      // round-to-even would not: the block's largest is 127 steps of 1.
      for (int j = 32; j < 64; ++j) values[j] = static_cast<float>(j - 48) + 0.5f;
      values[32] = 127.0f;
      std::fill(values.begin(), values.begin() + 8, 0.0f);  // a run of zeros in a block with others
    }
    std::vector<uint8_t> expected(static_cast<size_t>(n / 32 * 34));
    QuantizeQ8_0(values.data(), expected.data(), static_cast<size_t>(n / 32));
    std::vector<float> expected_read(values.size());
    DequantizeQ8_0(expected.data(), expected_read.data(), static_cast<size_t>(n / 32));
    for (const KernelSet* set : Available()) {
      std::vector<uint8_t> stored(expected.size());
      set->store_q8_0(values.data(), n, stored.data());
      ASSERT_EQ(stored, expected) << set->name << " " << n;
      std::vector<float> read(values.size());
      set->load_q8_0(stored.data(), n, read.data());
      ASSERT_EQ(read, expected_read) << set->name << " " << n;
    }
  }
}

TEST(QuantKernels, KeyScoresMatchTheExactDotOfEachKeyForEveryQueryRow) {
  for (int64_t width : {8, 24, 32, 64, 80, 128, 256, 7}) {
    for (int64_t count : {0, 1, 7, 8, 16, 19}) {
      for (int64_t queries : {1, 2, 3, 8}) {
        const int64_t query_stride = width + 4, score_stride = count + 2;
        const std::vector<float> keys = RandomFloats(count * width, 19 + static_cast<uint32_t>(width));
        const std::vector<float> rows = RandomFloats(queries * query_stride, 23);
        for (const KernelSet* set : Available()) {
          std::vector<float> scores(static_cast<size_t>(queries * score_stride), -7.0f);
          set->key_scores(keys.data(), count, width, rows.data(), query_stride, queries, 0.125f, scores.data(),
                          score_stride);
          // Rows taken together reduce each key's dot as one at a time does.
          std::vector<float> one_at_a_time(scores.size(), -7.0f);
          for (int64_t q = 0; q < queries; ++q) {
            set->key_scores(keys.data(), count, width, rows.data() + q * query_stride, query_stride, 1, 0.125f,
                            one_at_a_time.data() + q * score_stride, score_stride);
          }
          ASSERT_EQ(scores, one_at_a_time) << set->name << " width=" << width << " count=" << count;
          for (int64_t q = 0; q < queries; ++q) {
            for (int64_t t = 0; t < count; ++t) {
              double want = 0.0;
              for (int64_t j = 0; j < width; ++j) {
                want += static_cast<double>(keys[t * width + j]) * rows[q * query_stride + j];
              }
              ASSERT_NEAR(scores[q * score_stride + t], 0.125 * want, 2e-6 * std::sqrt(static_cast<double>(width)))
                  << set->name << " width=" << width << " key " << t << " of " << count << ", row " << q << " of "
                  << queries;
            }
            EXPECT_EQ(scores[q * score_stride + count], -7.0f) << set->name << ": wrote past row " << q << "'s last key";
          }
        }
      }
    }
  }
}

// A set that reads a cache of halves or of Q8_0 blocks where it lies gives,
// for every width it takes, each score and weighted sum bit for bit what its
// float kernels give on the same rows widened — runs of keys with and
// without a last partial eight, one query row to eight (more than attention
// hands it) — and takes no width it cannot.
TEST(QuantKernels, RowsReadInPlaceGiveExactlyWhatTheirWideningGives) {
  EXPECT_TRUE(ReadsInPlace(64, 1) && ReadsInPlace(128, 2) && ReadsInPlace(kMaxInPlaceWidth, 3));
  EXPECT_FALSE(ReadsInPlace(80, 1) || ReadsInPlace(96, 1) || ReadsInPlace(kMaxInPlaceWidth + 64, 1));
  EXPECT_FALSE(ReadsInPlace(64, kMaxInPlaceRows + 1));
  struct Format {
    std::string_view name;
    int64_t bytes_per_32;
    void (*store)(const float* from, int64_t count, uint8_t* to);  // StoreHalvesFn or StoreQ8_0Fn
    void (*load)(const uint8_t* from, int64_t count, float* to);    // LoadHalvesFn or LoadQ8_0Fn
    KeyScoresInPlaceFn KernelSet::*scores;
    WeightedRowSumInPlaceFn KernelSet::*sums;
  };
  const Format formats[] = {
      {"f16", 64, ScalarKernels().store_f16, ScalarKernels().load_f16, &KernelSet::key_scores_f16,
       &KernelSet::weighted_row_sum_f16},
      {"q8_0", 34, ScalarKernels().store_q8_0, ScalarKernels().load_q8_0, &KernelSet::key_scores_q8_0,
       &KernelSet::weighted_row_sum_q8_0},
  };
  for (const Format& format : formats) {
    int checked = 0;
    for (int64_t width : {64, 128, 256}) {
      for (int64_t count : {1, 7, 8, 16, 19}) {
        std::vector<uint8_t> stored(static_cast<size_t>(count * width / 32 * format.bytes_per_32));
        const std::vector<float> values = RandomFloats(count * width, 29 + static_cast<uint32_t>(count));
        format.store(values.data(), count * width, stored.data());
        std::vector<float> widened(values.size());
        format.load(stored.data(), count * width, widened.data());
        for (int64_t queries : {1, 2, 3, 4, 8}) {
          const int64_t query_stride = width + 4, score_stride = count + 2, out_stride = width + 8;
          const std::vector<float> rows = RandomFloats(queries * query_stride, 31);
          const std::vector<float> weights = RandomFloats(queries * score_stride, 37);
          for (const KernelSet* set : Available()) {
            const KeyScoresInPlaceFn scores_in_place = set->*format.scores;
            const WeightedRowSumInPlaceFn sums_in_place = set->*format.sums;
            if (scores_in_place == nullptr) continue;
            ASSERT_NE(sums_in_place, nullptr) << set->name << " " << format.name;
            ++checked;
            std::vector<float> scores(static_cast<size_t>(queries * score_stride), -7.0f), want_scores = scores;
            scores_in_place(stored.data(), count, width, rows.data(), query_stride, queries, 0.125f, scores.data(),
                            score_stride);
            set->key_scores(widened.data(), count, width, rows.data(), query_stride, queries, 0.125f,
                            want_scores.data(), score_stride);
            ASSERT_EQ(scores, want_scores) << set->name << " " << format.name << " width=" << width
                                           << " count=" << count;
            std::vector<float> sums = RandomFloats(queries * out_stride, 41), want_sums = sums;
            sums_in_place(weights.data(), score_stride, queries, stored.data(), count, width, sums.data(), out_stride);
            set->weighted_row_sum(weights.data(), score_stride, queries, widened.data(), count, width,
                                  want_sums.data(), out_stride);
            ASSERT_EQ(sums, want_sums) << set->name << " " << format.name << " width=" << width
                                       << " count=" << count;
          }
        }
      }
    }
    if (Avx512VnniKernels() != nullptr) {
      EXPECT_EQ(checked, 3 * 5 * 5) << "the AVX-512 set reads " << format.name << " in place";
    }
  }
}

// Keys stored transposed (value j of a block's position t at j · block_size
// + t) score as the float kernel scores the same keys in rows, within the
// rounding of a sum in another order, for blocks of one run of sixteen and
// of two, a last block partly filled or not, and one query row to eight; the
// scores past the last key are left alone.
TEST(QuantKernels, TransposedKeysScoreAsTheirRowsDo) {
  int checked = 0;
  for (const KernelSet* set : Available()) {
    if (set->key_scores_f16_transposed == nullptr) continue;
    for (int64_t block_size : {16, 32}) {
      for (int64_t width : {8, 24, 64, 128}) {
        for (int64_t count : {1, 15, 16, 17, 64, 100, 128}) {
          const int64_t blocks = (count + block_size - 1) / block_size;
          const std::vector<float> rows = RandomFloats(count * width, 43 + static_cast<uint32_t>(count));
          std::vector<uint16_t> transposed(static_cast<size_t>(blocks * block_size * width), 0x7e00);  // NaN
          std::vector<float> widened(rows.size());
          for (int64_t t = 0; t < count; ++t) {
            for (int64_t j = 0; j < width; ++j) {
              const uint16_t half = Fp32ToFp16(rows[t * width + j]);
              transposed[(t / block_size * width + j) * block_size + t % block_size] = half;
              widened[t * width + j] = Fp16ToFp32(half);
            }
          }
          std::vector<const uint8_t*> block_starts;
          for (int64_t b = 0; b < blocks; ++b) {
            block_starts.push_back(reinterpret_cast<const uint8_t*>(transposed.data() + b * block_size * width));
          }
          for (int64_t queries : {1, 2, 3, 4, 8}) {
            const int64_t query_stride = width + 4, score_stride = count + 2;
            const std::vector<float> query_rows = RandomFloats(queries * query_stride, 47);
            std::vector<float> scores(static_cast<size_t>(queries * score_stride), -7.0f), want = scores;
            set->key_scores_f16_transposed(block_starts.data(), count, block_size, width, query_rows.data(),
                                           query_stride, queries, 0.125f, scores.data(), score_stride);
            set->key_scores(widened.data(), count, width, query_rows.data(), query_stride, queries, 0.125f,
                            want.data(), score_stride);
            for (size_t i = 0; i < scores.size(); ++i) {
              const int64_t t = static_cast<int64_t>(i) % score_stride;
              if (t >= count) {
                EXPECT_EQ(scores[i], -7.0f) << "past the last key";
                continue;
              }
              // Each product is exact in float; sums of width products of magnitude up to ~16 differ by a few ulps.
              EXPECT_NEAR(scores[i], want[i], 1e-5f * static_cast<float>(width) + 1e-5f * std::abs(want[i]))
                  << set->name << " block_size=" << block_size << " width=" << width << " count=" << count
                  << " queries=" << queries << " at " << i;
            }
            ++checked;
          }
        }
      }
    }
  }
  if (Avx512VnniKernels() != nullptr) {
    EXPECT_EQ(checked, 2 * 4 * 7 * 5) << "the AVX-512 set scores transposed keys";
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
