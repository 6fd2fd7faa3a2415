#include "daemon/engine/quant_types.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "daemon/engine/fp16.h"

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
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(4096);
  for (float& v : x) v = normal(rng);
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kQ8_0, GgmlType::kQ4_0}) {
    std::vector<uint8_t> q(RowBytes(type, x.size()));
    ASSERT_TRUE(Quantize(type, x, absl::MakeSpan(q)).ok());
    std::vector<float> y(x.size());
    ASSERT_TRUE(Dequantize(type, q, absl::MakeSpan(y)).ok());
    for (size_t b = 0; b < x.size(); b += 32) {
      float amax = 0.0f;
      for (size_t j = b; j < b + 32; ++j) amax = std::max(amax, std::fabs(x[j]));
      // Half a quantization step of the block (a whole one for Q4_0, whose
      // positive end clips at 7 steps), plus the fp16 rounding of the scale.
      const float step = type == GgmlType::kQ8_0 ? amax / 127.0f
                         : type == GgmlType::kQ4_0 ? amax / 8.0f
                         : type == GgmlType::kF16  ? amax / 1024.0f
                                                   : 0.0f;
      for (size_t j = b; j < b + 32; ++j) {
        const float allowed = (type == GgmlType::kQ4_0 ? step : step * 0.5f) + amax * 1e-3f;
        ASSERT_LE(std::fabs(x[j] - y[j]), allowed) << TraitsOf(type).name << " at " << j;
      }
    }
  }
}

TEST(QuantTypes, KQuantsRoundTripCloseToTheInput) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(4096);
  for (float& v : x) v = normal(rng);
  for (const auto& [type, relative_rms] : {std::pair{GgmlType::kQ4_K, 0.12}, std::pair{GgmlType::kQ6_K, 0.03}}) {
    std::vector<uint8_t> q(RowBytes(type, x.size()));
    ASSERT_EQ(q.size(), x.size() / 256 * (type == GgmlType::kQ4_K ? 144 : 210));
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
  EXPECT_EQ(Dequantize(GgmlType::kQ5_K, std::vector<uint8_t>(176), absl::MakeSpan(k_out)).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgellm::engine
