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

#include "daemon/engine/fp16.h"
#include "daemon/engine/k_quants.h"
#include "daemon/engine/legacy_quants.h"
#include "daemon/engine/quant_kernels.h"
#include "tests/support/kernel_rows.h"

namespace {

using edgellm::engine::GgmlType;
using edgellm::engine::kQ4_KBytes;
using edgellm::engine::kQ6_KBytes;
using edgellm::engine::QuantizeQ4_K;
using edgellm::engine::QuantizeQ5_0;
using edgellm::engine::QuantizeQ6_K;
using edgellm::engine::StoreFp16;
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

    // Rows of the types Q4_K_M files hold, quantized from random weights.
    std::vector<float> weights(n);
    for (float& v : weights) v = normal(rng);
    struct Quantized {
      const char* name;
      GgmlType type;
      size_t block_size, block_bytes;
      void (*quantize)(const float*, uint8_t*, size_t);
    };
    const Quantized quantized[] = {{"Q5_0", GgmlType::kQ5_0, 32, 22, QuantizeQ5_0},
                                   {"Q4_K", GgmlType::kQ4_K, 256, kQ4_KBytes, QuantizeQ4_K},
                                   {"Q6_K", GgmlType::kQ6_K, 256, kQ6_KBytes, QuantizeQ6_K}};
    for (const Quantized& q : quantized) {
      if (n % static_cast<int64_t>(q.block_size) != 0) continue;
      std::vector<uint8_t> row(n / q.block_size * q.block_bytes);
      q.quantize(weights.data(), row.data(), n / q.block_size);
      const KernelRows rows(scalar, q.type, x.data(), 4, n);
      const double want = rows.Dot(scalar, q.type, row.data(), 0);
      const double got = rows.Dot(*neon, q.type, row.data(), 0);
      Expect(Near(got, want, 1e-5 * (std::fabs(want) + std::sqrt(static_cast<double>(n)))), q.name, n, got, want);
      float four[4];
      Expect(rows.DotFour(*neon, q.type, row.data(), four), "a four-row kernel", n, 0, 0);
      for (int i = 0; i < 4; ++i) {
        const float single = rows.Dot(*neon, q.type, row.data(), i);
        Expect(four[i] == single, "four rows equal one row", n, four[i], single);
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
