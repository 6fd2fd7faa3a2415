// The NEON kernels against the scalar reference on random rows, odd lengths
// included: integer dots within float rounding of the exact sum, four-row
// dots equal to one-row dots exactly, float dots within tolerance. Built with
// the aarch64 cross compiler and run under qemu-user by check-aarch64.sh
// (no test framework: only the kernel sources are cross-built).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "common/fp16.h"
#include "daemon/engine/iq4_quants.h"
#include "daemon/engine/k_quants.h"
#include "daemon/engine/legacy_quants.h"
#include "daemon/engine/quant_kernels.h"
#include "tests/support/kernel_rows.h"

namespace {

using edgellm::engine::GgmlType;
using edgellm::engine::kIq4XsBytes;
using edgellm::engine::kQ2_KBytes;
using edgellm::engine::kQ3_KBytes;
using edgellm::engine::kQ4_KBytes;
using edgellm::engine::kQ5_KBytes;
using edgellm::engine::kQ6_KBytes;
using edgellm::engine::QuantizeIq4Nl;
using edgellm::engine::QuantizeIq4Xs;
using edgellm::engine::QuantizeQ2_K;
using edgellm::engine::QuantizeQ3_K;
using edgellm::engine::QuantizeQ4_1;
using edgellm::engine::QuantizeQ4_K;
using edgellm::engine::QuantizeQ5_0;
using edgellm::engine::QuantizeQ5_1;
using edgellm::engine::QuantizeQ5_K;
using edgellm::engine::QuantizeQ6_K;
using edgellm::StoreFp16;
using edgellm::testing::KernelRows;
using namespace edgellm::engine::kernels;

int failures = 0, checks = 0;

void Expect(bool ok, const char* what, int64_t n, double got, double want) {
  ++checks;
  if (!ok) {
    ++failures;
    std::printf("FAIL %s n=%lld: got %.9g, want %.9g\n", what, static_cast<long long>(n), got, want);
  }
}

bool Near(double got, double want, double tolerance) { return std::fabs(got - want) <= tolerance; }

}  // namespace

int main() {
  const KernelSet* neon = NeonKernels();
  if (neon == nullptr) {
    std::printf("FAIL: this build has no NEON kernels\n");
    return 1;
  }
  Expect(BestKernels().name == "neon", "BestKernels is the NEON set", 0, 0, 0);
  const KernelSet& scalar = ScalarKernels();
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> byte(0, 255);
  for (int64_t n : {32, 64, 96, 256, 544, 2048, 4128, 4352}) {
    const int64_t blocks = n / kBlock;
    std::vector<float> x(4 * n);
    for (float& v : x) v = normal(rng);
    std::vector<ActivationBlock> a(4 * blocks);
    scalar.quantize(x.data(), a.data(), 4 * blocks);

    // Random Q8_0 and Q4_0 rows: an fp16 scale, then the quants.
    std::vector<uint8_t> q8(34 * blocks), q4(18 * blocks);
    for (int64_t b = 0; b < blocks; ++b) {
      StoreFp16(&q8[34 * b], 0.01f + 0.001f * static_cast<float>(b % 7));
      StoreFp16(&q4[18 * b], 0.02f + 0.001f * static_cast<float>(b % 5));
      for (int i = 0; i < 32; ++i) q8[34 * b + 2 + i] = static_cast<uint8_t>(byte(rng));
      for (int i = 0; i < 16; ++i) q4[18 * b + 2 + i] = static_cast<uint8_t>(byte(rng));
    }
    const std::pair<const char*, std::vector<uint8_t>*> rows[] = {{"Q8_0", &q8}, {"Q4_0", &q4}};
    for (const auto& [name, row] : rows) {
      const bool is_q8 = row == &q8;
      const GgmlType type = is_q8 ? GgmlType::kQ8_0 : GgmlType::kQ4_0;
      const DotQuantFn dot = neon->Dot(type);
      const DotQuantFn reference = scalar.Dot(type);
      const DotQuant4Fn dot4 = neon->Dot4(type);
      const double want = reference(row->data(), a.data(), blocks);
      const double got = dot(row->data(), a.data(), blocks);
      Expect(Near(got, want, 1e-5 * (std::fabs(want) + std::sqrt(static_cast<double>(n)))), name, n, got, want);
      float four[4];
      dot4(row->data(), a.data(), blocks, blocks, four);
      for (int i = 0; i < 4; ++i) {
        const float single = dot(row->data(), a.data() + i * blocks, blocks);
        Expect(four[i] == single, "four rows equal one row", n, four[i], single);
      }
    }

    // Rows of every other quantized type: quantized from random weights, and
    // random bytes (every scale, min and bit pattern) with sane fp16 fields.
    std::vector<float> weights(n);
    for (float& v : weights) v = normal(rng);
    struct Quantized {
      const char* name;
      GgmlType type;
      size_t block_size, block_bytes;
      void (*quantize)(const float*, uint8_t*, size_t);
      std::vector<size_t> fp16_fields;  // byte offsets in a block
    };
    const Quantized quantized[] = {
        {"Q4_1", GgmlType::kQ4_1, 32, 20, QuantizeQ4_1, {0, 2}},
        {"Q5_0", GgmlType::kQ5_0, 32, 22, QuantizeQ5_0, {0}},
        {"Q5_1", GgmlType::kQ5_1, 32, 24, QuantizeQ5_1, {0, 2}},
        {"IQ4_NL", GgmlType::kIQ4_NL, 32, 18, QuantizeIq4Nl, {0}},
        {"Q2_K", GgmlType::kQ2_K, 256, kQ2_KBytes, QuantizeQ2_K, {80, 82}},
        {"Q3_K", GgmlType::kQ3_K, 256, kQ3_KBytes, QuantizeQ3_K, {108}},
        {"Q4_K", GgmlType::kQ4_K, 256, kQ4_KBytes, QuantizeQ4_K, {0, 2}},
        {"Q5_K", GgmlType::kQ5_K, 256, kQ5_KBytes, QuantizeQ5_K, {0, 2}},
        {"Q6_K", GgmlType::kQ6_K, 256, kQ6_KBytes, QuantizeQ6_K, {208}},
        {"IQ4_XS", GgmlType::kIQ4_XS, 256, kIq4XsBytes, QuantizeIq4Xs, {0}}};
    for (const Quantized& q : quantized) {
      if (n % static_cast<int64_t>(q.block_size) != 0) continue;
      const size_t blocks = static_cast<size_t>(n) / q.block_size;
      std::vector<uint8_t> from_weights(blocks * q.block_bytes), random_bytes(blocks * q.block_bytes);
      q.quantize(weights.data(), from_weights.data(), blocks);
      for (uint8_t& b : random_bytes) b = static_cast<uint8_t>(byte(rng));
      for (size_t b = 0; b < blocks; ++b) {
        for (size_t field : q.fp16_fields) StoreFp16(&random_bytes[b * q.block_bytes + field], 0.01f);
      }
      const KernelRows rows(scalar, q.type, x.data(), 4, n);
      for (const std::vector<uint8_t>* row : {&from_weights, &random_bytes}) {
        const double want = rows.Dot(scalar, q.type, row->data(), 0);
        const double got = rows.Dot(*neon, q.type, row->data(), 0);
        Expect(Near(got, want, 1e-5 * (std::fabs(want) + std::sqrt(static_cast<double>(n)))), q.name, n, got, want);
        float four[4];
        Expect(rows.DotFour(*neon, q.type, row->data(), four), "a four-row kernel", n, 0, 0);
        for (int i = 0; i < 4; ++i) {
          const float single = rows.Dot(*neon, q.type, row->data(), i);
          Expect(four[i] == single, "four rows equal one row", n, four[i], single);
        }
      }
    }

    std::vector<uint8_t> f16(2 * n), f32(4 * n);
    for (int64_t i = 0; i < n; ++i) {
      const float w = normal(rng);
      StoreFp16(&f16[2 * i], w);
      std::memcpy(&f32[4 * i], &w, sizeof(w));
    }
    const double tolerance = 1e-4 * std::sqrt(static_cast<double>(n));
    double want = scalar.dot_f16(f16.data(), x.data(), n), got = neon->dot_f16(f16.data(), x.data(), n);
    Expect(Near(got, want, tolerance), "F16", n, got, want);
    want = scalar.dot_f32(f32.data(), x.data(), n);
    got = neon->dot_f32(f32.data(), x.data(), n);
    Expect(Near(got, want, tolerance), "F32", n, got, want);
  }
  std::printf("%s: %d of %d checks passed\n", failures == 0 ? "ok" : "FAILED", checks - failures, checks);
  return failures == 0 ? 0 : 1;
}
