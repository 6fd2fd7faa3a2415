#include "daemon/engine/quant_types.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "common/fp16.h"
#include "tests/support/random_floats.h"

namespace edgellm::engine {
namespace {

std::vector<float> Ramp(int n, float scale) {
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = (static_cast<float>(i) - n / 2.0f) * scale;
  return x;
}

TEST(QuantTypes, TraitsMatchTheGgufBlockLayouts) {
  EXPECT_EQ(TraitsOf(GgmlType::kQ8_0).block_bytes, 34u);
  EXPECT_EQ(TraitsOf(GgmlType::kQ4_0).block_bytes, 18u);
  EXPECT_EQ(TraitsOf(GgmlType::kQ4_K).block_bytes, 144u);
  EXPECT_EQ(TraitsOf(GgmlType::kQ6_K).block_bytes, 210u);
  EXPECT_EQ(RowBytes(GgmlType::kQ4_0, 64), 36u);
  EXPECT_EQ(RowBytes(GgmlType::kF16, 10), 20u);
  EXPECT_FALSE(TraitsOf(uint32_t{5}).has_value());  // removed Q4_2
  EXPECT_EQ(GgmlTypeFromName("q8_0"), GgmlType::kQ8_0);
  EXPECT_FALSE(GgmlTypeFromName("Q9_9").has_value());
}

// Q8_0: d = max|x| / 127 stored as fp16, q = round(x / d).
TEST(QuantTypes, Q8_0BlockBytesAreExact) {
  const std::vector<float> x = Ramp(32, 0.25f);  // -4.0 .. 3.75
  std::vector<uint8_t> block(34);
  ASSERT_TRUE(Quantize(GgmlType::kQ8_0, x, absl::MakeSpan(block)).ok());
  uint16_t d16;
  std::memcpy(&d16, block.data(), 2);
  EXPECT_EQ(d16, Fp32ToFp16(4.0f / 127.0f));
  const float id = 127.0f / 4.0f;
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(static_cast<int8_t>(block[2 + j]), static_cast<int8_t>(std::roundf(x[j] * (1.0f / (4.0f / 127.0f)))))
        << j;
    EXPECT_NEAR(static_cast<int8_t>(block[2 + j]), x[j] * id, 0.5f + 1e-4f);
  }
  EXPECT_EQ(static_cast<int8_t>(block[2]), -127);
  std::vector<float> y(32);
  ASSERT_TRUE(Dequantize(GgmlType::kQ8_0, block, absl::MakeSpan(y)).ok());
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], static_cast<int8_t>(block[2 + j]) * Fp16ToFp32(d16));
}

// Q4_0: d = (value of largest magnitude) / -8, q = min(15, trunc(x/d + 8.5)),
// weight j in the low nibble of byte j, weight j+16 in the high nibble.
TEST(QuantTypes, Q4_0BlockBytesAreExact) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);  // -16 .. 15: max magnitude -16
  std::vector<uint8_t> block(18);
  ASSERT_TRUE(Quantize(GgmlType::kQ4_0, x, absl::MakeSpan(block)).ok());
  uint16_t d16;
  std::memcpy(&d16, block.data(), 2);
  EXPECT_EQ(Fp16ToFp32(d16), 2.0f);  // -16 / -8
  for (int j = 0; j < 16; ++j) {
    const int lo = std::min(15, static_cast<int>(x[j] / 2.0f + 8.5f));
    const int hi = std::min(15, static_cast<int>(x[j + 16] / 2.0f + 8.5f));
    EXPECT_EQ(block[2 + j], lo | (hi << 4)) << j;
  }
  EXPECT_EQ(block[2] & 0x0f, 0);  // -16 -> q 0
  std::vector<float> y(32);
  ASSERT_TRUE(Dequantize(GgmlType::kQ4_0, block, absl::MakeSpan(y)).ok());
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], ((block[2 + j] & 0x0f) - 8) * 2.0f);
    EXPECT_EQ(y[j + 16], ((block[2 + j] >> 4) - 8) * 2.0f);
  }
}

TEST(QuantTypes, AllZeroBlocksStayZero) {
  const std::vector<float> zeros(64, 0.0f);
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0}) {
    std::vector<uint8_t> q(RowBytes(type, 64));
    ASSERT_TRUE(Quantize(type, zeros, absl::MakeSpan(q)).ok());
    std::vector<float> y(64, 1.0f);
    ASSERT_TRUE(Dequantize(type, q, absl::MakeSpan(y)).ok());
    for (float v : y) EXPECT_EQ(v, 0.0f);
  }
}

TEST(QuantTypes, RoundTripErrorIsWithinHalfAStep) {
  const std::vector<float> x = edgellm::testing::RandomFloats(4096, 3);
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1,
                        GgmlType::kQ5_0, GgmlType::kQ5_1}) {
    std::vector<uint8_t> q(RowBytes(type, x.size()));
    ASSERT_TRUE(Quantize(type, x, absl::MakeSpan(q)).ok());
    std::vector<float> y(x.size());
    ASSERT_TRUE(Dequantize(type, q, absl::MakeSpan(y)).ok());
    for (size_t b = 0; b < x.size(); b += 32) {
      float amax = 0.0f;
      for (size_t j = b; j < b + 32; ++j) amax = std::max(amax, std::fabs(x[j]));
      // Half a quantization step of the block (a whole one for Q4_0, whose
      // positive end clips at 7 steps), plus the fp16 rounding of the scale.
      // The asymmetric types step (max - min) / levels, at most 2·amax / levels.
      const float step = type == GgmlType::kQ8_0   ? amax / 127.0f
                         : type == GgmlType::kQ4_0 ? amax / 8.0f
                         : type == GgmlType::kQ5_0 ? amax / 16.0f
                         : type == GgmlType::kQ4_1 ? 2.0f * amax / 15.0f
                         : type == GgmlType::kQ5_1 ? 2.0f * amax / 31.0f
                         : type == GgmlType::kF16  ? amax / 1024.0f
                                                   : 0.0f;
      const bool clips = type == GgmlType::kQ4_0 || type == GgmlType::kQ5_0;
      for (size_t j = b; j < b + 32; ++j) {
        const float allowed = (clips ? step : step * 0.5f) + amax * 1e-3f;
        ASSERT_LE(std::fabs(x[j] - y[j]), allowed) << TraitsOf(type).name << " at " << j;
      }
    }
  }
}

TEST(QuantTypes, KQuantsRoundTripCloseToTheInput) {
  const std::vector<float> x = edgellm::testing::RandomFloats(4096, 5);
  const std::pair<GgmlType, double> kExpected[] = {
      {GgmlType::kQ2_K, 0.4},   {GgmlType::kQ3_K, 0.25},   {GgmlType::kQ4_K, 0.12},
      {GgmlType::kQ5_K, 0.05},  {GgmlType::kQ6_K, 0.03},   {GgmlType::kIQ4_NL, 0.11},
      {GgmlType::kIQ4_XS, 0.11}};
  for (const auto& [type, relative_rms] : kExpected) {
    std::vector<uint8_t> q(RowBytes(type, x.size()));
    ASSERT_EQ(q.size(), x.size() / TraitsOf(type).block_size * TraitsOf(type).block_bytes);
    ASSERT_TRUE(Quantize(type, x, absl::MakeSpan(q)).ok());
    std::vector<float> y(x.size());
    ASSERT_TRUE(Dequantize(type, q, absl::MakeSpan(y)).ok());
    double error = 0.0, signal = 0.0;
    for (size_t i = 0; i < x.size(); ++i) {
      error += (x[i] - y[i]) * (x[i] - y[i]);
      signal += x[i] * x[i];
    }
    EXPECT_LT(std::sqrt(error / signal), relative_rms) << TraitsOf(type).name;
  }
}

// Blocks built by hand, byte by byte, decode as the GGML layouts say.
TEST(QuantTypes, KQuantBlockBytesAreExact) {
  std::vector<uint8_t> q4k(144, 0);
  const uint16_t one = Fp32ToFp16(1.0f), half = Fp32ToFp16(0.5f);
  std::memcpy(q4k.data(), &one, 2);       // d
  std::memcpy(q4k.data() + 2, &half, 2);  // dmin
  // Sub-block 1: scale 3, min 4 (packed in bytes 1 and 5); sub-block 5:
  // scale 33 = 0b100001 and min 18 = 0b010010, split over bytes 1, 5 and 9.
  q4k[4 + 1] = 3 | ((33 >> 4) << 6);
  q4k[4 + 5] = 4 | ((18 >> 4) << 6);
  q4k[4 + 9] = (33 & 0x0f) | ((18 & 0x0f) << 4);
  q4k[16 + 0] = 0x70;       // weight 32 (sub-block 1, high nibble of byte 0) = 7
  q4k[16 + 64 + 2] = 0x90;  // weight 160 + 2 (sub-block 5, high nibble of byte 66) = 9
  std::vector<float> y(256);
  ASSERT_TRUE(Dequantize(GgmlType::kQ4_K, q4k, absl::MakeSpan(y)).ok());
  EXPECT_EQ(y[32], 1.0f * 3 * 7 - 0.5f * 4);
  EXPECT_EQ(y[33], -0.5f * 4);
  EXPECT_EQ(y[162], 1.0f * 33 * 9 - 0.5f * 18);
  EXPECT_EQ(y[0], 0.0f);

  std::vector<uint8_t> q6k(210, 0);
  std::memcpy(q6k.data() + 208, &half, 2);  // d
  q6k[192 + 9] = static_cast<uint8_t>(static_cast<int8_t>(-2));  // scale of weights 144..159
  // Weight 150: second half, p = 22, quarter 0, l = 22: low nibble of ql[64 + 22], bits 0-1 of qh[32 + 22].
  q6k[64 + 22] = 0x05;
  q6k[128 + 32 + 22] = 0x02;  // q = 5 | 2 << 4 = 37
  ASSERT_TRUE(Dequantize(GgmlType::kQ6_K, q6k, absl::MakeSpan(y)).ok());
  EXPECT_EQ(y[150], 0.5f * -2 * (37 - 32));
  EXPECT_EQ(y[151], 0.5f * -2 * (0 - 32));
}

TEST(QuantTypes, SizeMismatchesAreErrors) {
  std::vector<float> x(33);
  std::vector<uint8_t> q(34);
  EXPECT_EQ(Quantize(GgmlType::kQ8_0, x, absl::MakeSpan(q)).code(), absl::StatusCode::kInvalidArgument);
  std::vector<float> y(32);
  std::vector<uint8_t> short_block(33);
  EXPECT_EQ(Dequantize(GgmlType::kQ8_0, short_block, absl::MakeSpan(y)).code(), absl::StatusCode::kInvalidArgument);
  std::vector<uint8_t> k_block(143);
  std::vector<float> k_out(256);
  EXPECT_EQ(Dequantize(GgmlType::kQ4_K, k_block, absl::MakeSpan(k_out)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Dequantize(GgmlType::kIQ2_XXS, std::vector<uint8_t>(66), absl::MakeSpan(k_out)).code(),
            absl::StatusCode::kInvalidArgument);
}

void PutFp16(std::vector<uint8_t>& block, size_t at, float value) {
  const uint16_t h = Fp32ToFp16(value);
  std::memcpy(block.data() + at, &h, 2);
}

std::vector<float> DequantizeBlock(GgmlType type, const std::vector<uint8_t>& block) {
  std::vector<float> y(TraitsOf(type).block_size);
  EXPECT_TRUE(Dequantize(type, block, absl::MakeSpan(y)).ok());
  return y;
}

// The 4-bit value of weight i of a 32-weight block whose nibbles start at `qs`:
// weight i < 16 in the low nibble of byte i, weight i >= 16 in the high nibble of byte i - 16.
int Nibble(const std::vector<uint8_t>& block, size_t qs, int i) {
  return i < 16 ? block[qs + i] & 0x0f : block[qs + i - 16] >> 4;
}

TEST(QuantTypes, LegacyBlockBytesAreExact) {
  std::vector<uint8_t> q41(20);
  PutFp16(q41, 0, 0.5f);
  PutFp16(q41, 2, -1.0f);
  for (int j = 0; j < 16; ++j) q41[4 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  std::vector<float> y = DequantizeBlock(GgmlType::kQ4_1, q41);
  for (int i = 0; i < 32; ++i) ASSERT_EQ(y[i], 0.5f * static_cast<float>(Nibble(q41, 4, i)) - 1.0f) << i;
  EXPECT_EQ(y[3], 0.5f);   // 3 * 0.5 - 1
  EXPECT_EQ(y[16], 6.5f);  // 15 * 0.5 - 1

  // Q5: the fifth bit of weight i is bit i of the little-endian qh.
  const uint8_t qh[4] = {0x55, 0x55, 0xaa, 0xaa};
  auto fifth = [&](int i) { return (qh[i / 8] >> (i % 8)) & 1; };
  std::vector<uint8_t> q50(22);
  PutFp16(q50, 0, 0.25f);
  std::memcpy(q50.data() + 2, qh, 4);
  for (int j = 0; j < 16; ++j) q50[6 + j] = static_cast<uint8_t>((j * 7) & 0xff);
  y = DequantizeBlock(GgmlType::kQ5_0, q50);
  for (int i = 0; i < 32; ++i) {
    ASSERT_EQ(y[i], 0.25f * static_cast<float>(Nibble(q50, 6, i) + 16 * fifth(i) - 16)) << i;
  }
  EXPECT_EQ(y[0], 0.25f * (0 + 16 - 16));   // nibble 0, fifth bit 1
  EXPECT_EQ(y[17], 0.25f * (0 + 16 - 16));  // byte 1 = 7: high nibble 0; bit 17 of 0xaaaa5555 is 1

  std::vector<uint8_t> q51(24);
  PutFp16(q51, 0, 2.0f);
  PutFp16(q51, 2, -3.0f);
  std::memcpy(q51.data() + 4, qh, 4);
  for (int j = 0; j < 16; ++j) q51[8 + j] = static_cast<uint8_t>(0xf0 | j);
  y = DequantizeBlock(GgmlType::kQ5_1, q51);
  for (int i = 0; i < 32; ++i) {
    ASSERT_EQ(y[i], 2.0f * static_cast<float>(Nibble(q51, 8, i) + 16 * fifth(i)) - 3.0f) << i;
  }
  EXPECT_EQ(y[31], 2.0f * 31 - 3.0f);  // nibble 15, fifth bit 1
}

TEST(QuantTypes, Iq4BlockBytesAreExact) {
  const int kValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  std::vector<uint8_t> nl(18);
  PutFp16(nl, 0, 0.5f);
  for (int j = 0; j < 16; ++j) nl[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  std::vector<float> y = DequantizeBlock(GgmlType::kIQ4_NL, nl);
  for (int i = 0; i < 32; ++i) ASSERT_EQ(y[i], 0.5f * static_cast<float>(kValues[Nibble(nl, 2, i)])) << i;
  EXPECT_EQ(y[0], -63.5f);
  EXPECT_EQ(y[16], 56.5f);

  // IQ4_XS: d, scales_h, scales_l[4], then 16 bytes per sub-block of 32.
  std::vector<uint8_t> xs(136);
  PutFp16(xs, 0, 0.25f);
  xs[2] = 0x02;  // sub-block 0: high bits 2; the others 0
  xs[4] = 0x21;  // sub-block 0: low bits 1 (scale 33); sub-block 1: 2 (scale 2)
  xs[7] = 0xf0;  // sub-block 7: low bits 15 (scale 15)
  for (int b = 0; b < 128; ++b) xs[8 + b] = static_cast<uint8_t>(b * 37);
  y = DequantizeBlock(GgmlType::kIQ4_XS, xs);
  const int scale[8] = {33, 2, 0, 0, 0, 0, 0, 15};
  for (int i = 0; i < 256; ++i) {
    const int sub = i / 32, l = i % 32;
    const uint8_t byte = xs[8 + 16 * sub + l % 16];
    const int index = l < 16 ? byte & 0x0f : byte >> 4;
    ASSERT_EQ(y[i], 0.25f * static_cast<float>(scale[sub] - 32) * static_cast<float>(kValues[index])) << i;
  }
}

TEST(QuantTypes, Q2_KQ3_KQ5_KBlockBytesAreExact) {
  // Weight i = 128k + 32j + 16h + l has its two low bits at bit 2j of qs[32k + 16h + l].
  auto low2 = [](const std::vector<uint8_t>& block, size_t qs, int i) {
    const int k = i / 128, j = (i % 128) / 32, hl = i % 32;
    return (block[qs + 32 * k + hl] >> (2 * j)) & 3;
  };
  std::vector<uint8_t> q2(84);
  for (int g = 0; g < 16; ++g) q2[g] = static_cast<uint8_t>(g | ((15 - g) << 4));  // scale g, min 15 - g
  for (int b = 0; b < 64; ++b) q2[16 + b] = static_cast<uint8_t>(b * 29 + 3);
  PutFp16(q2, 80, 1.0f);
  PutFp16(q2, 82, 0.5f);
  std::vector<float> y = DequantizeBlock(GgmlType::kQ2_K, q2);
  for (int i = 0; i < 256; ++i) {
    const int g = i / 16;
    ASSERT_EQ(y[i], 1.0f * static_cast<float>(g) * static_cast<float>(low2(q2, 16, i)) - 0.5f * (15 - g)) << i;
  }

  // Q3_K: scales 1, 17, 34, 50 for groups 0-3, 4-7, 8-11, 12-15 (stored with +32: -31, -15, 2, 18).
  std::vector<uint8_t> q3(110);
  for (int b = 0; b < 32; ++b) q3[b] = 0x0f;  // high bits set for k = 0 (bits 0-3), clear for k = 1
  for (int b = 0; b < 64; ++b) q3[32 + b] = 0xe4;  // j = 0..3 -> 0, 1, 2, 3
  for (int b = 0; b < 8; ++b) q3[96 + b] = 0x21;
  for (int b = 8; b < 12; ++b) q3[96 + b] = 0xe4;
  PutFp16(q3, 108, 0.5f);
  y = DequantizeBlock(GgmlType::kQ3_K, q3);
  const int scale[4] = {1, 17, 34, 50};
  for (int i = 0; i < 256; ++i) {
    const int k = i / 128, j = (i % 128) / 32;
    const int q = j - (k == 0 ? 0 : 4);
    ASSERT_EQ(y[i], 0.5f * static_cast<float>(scale[i / 64] - 32) * static_cast<float>(q)) << i;
  }

  // Q5_K: as Q4_K, with bit j of qh[l] the fifth bit of weight l of sub-block j.
  std::vector<uint8_t> q5(176);
  PutFp16(q5, 0, 1.0f);
  PutFp16(q5, 2, 0.5f);
  q5[4 + 1] = 3;  // sub-block 1: scale 3, min 4
  q5[4 + 5] = 4;
  for (int l = 0; l < 32; ++l) q5[16 + l] = static_cast<uint8_t>(1 << (l % 8));
  for (int b = 0; b < 128; ++b) q5[48 + b] = static_cast<uint8_t>(b);
  y = DequantizeBlock(GgmlType::kQ5_K, q5);
  for (int l = 0; l < 32; ++l) {
    const int q = (q5[48 + l] >> 4) + ((l % 8) == 1 ? 16 : 0);  // sub-block 1: high nibbles of bytes 0..31
    ASSERT_EQ(y[32 + l], 3.0f * static_cast<float>(q) - 0.5f * 4) << l;
  }
  EXPECT_EQ(y[0], 0.0f);  // sub-block 0: scale 0, min 0
}

TEST(QuantTypes, EveryConvertingTypeRoundTripsItsOwnBlocks) {
  // Dequantize then quantize again: a block that is exactly representable comes back unchanged.
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (uint32_t id = 0; id < 40; ++id) {
    const std::optional<GgmlTypeTraits> traits = TraitsOf(id);
    if (!traits || traits->quantize == nullptr || traits->block_size == 1) continue;
    std::vector<float> x(1024);
    for (float& v : x) v = normal(rng);
    std::vector<uint8_t> once(RowBytes(traits->type, x.size())), twice(once.size());
    ASSERT_TRUE(Quantize(traits->type, x, absl::MakeSpan(once)).ok());
    std::vector<float> y(x.size()), z(x.size());
    ASSERT_TRUE(Dequantize(traits->type, once, absl::MakeSpan(y)).ok());
    ASSERT_TRUE(Quantize(traits->type, y, absl::MakeSpan(twice)).ok());
    ASSERT_TRUE(Dequantize(traits->type, twice, absl::MakeSpan(z)).ok());
    double drift = 0.0, signal = 0.0;
    for (size_t i = 0; i < y.size(); ++i) {
      drift += (y[i] - z[i]) * (y[i] - z[i]);
      signal += y[i] * y[i];
    }
    EXPECT_LT(std::sqrt(drift / signal), 0.05) << traits->name;
  }
}

}  // namespace
}  // namespace edgellm::engine
