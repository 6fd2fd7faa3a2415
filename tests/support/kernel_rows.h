// tests/support/kernel_rows.h — activation rows quantized the way a weight
// type's kernels take them (32-value blocks, or 256-value super-blocks for
// the K types and IQ4_XS), and the dots of one kernel set over them, so a
// test checks every type through one path. Header-only: the aarch64 kernel
// check builds it with nothing but the kernel sources.
#ifndef EDGELLM_TESTS_SUPPORT_KERNEL_ROWS_H_
#define EDGELLM_TESTS_SUPPORT_KERNEL_ROWS_H_

#include <cstdint>
#include <vector>

#include "daemon/engine/quant_kernels.h"

namespace edgellm::testing {

class KernelRows {
 public:
  // `rows` rows of n floats at x, quantized by `set` for `type`'s kernels.
  KernelRows(const engine::kernels::KernelSet& set, engine::GgmlType type, const float* x, int64_t rows, int64_t n)
      : super_(set.SuperDot(type) != nullptr || engine::kernels::ScalarKernels().SuperDot(type) != nullptr) {
    if (super_) {
      per_row_ = n / static_cast<int64_t>(engine::kSuperBlock);
      supers_.resize(static_cast<size_t>(rows * per_row_));
      set.quantize_super(x, supers_.data(), rows * per_row_);
    } else {
      per_row_ = n / engine::kernels::kBlock;
      blocks_.resize(static_cast<size_t>(rows * per_row_));
      set.quantize(x, blocks_.data(), rows * per_row_);
    }
  }

  // Value i of row r as the kernels see it: scale times quantized value.
  double Value(int64_t r, int64_t i) const {
    if (super_) {
      const engine::kernels::SuperActivationBlock& b =
          supers_[static_cast<size_t>(r * per_row_ + i / static_cast<int64_t>(engine::kSuperBlock))];
      return static_cast<double>(b.d) * b.q[i % static_cast<int64_t>(engine::kSuperBlock)];
    }
    const engine::kernels::ActivationBlock& b = blocks_[static_cast<size_t>(r * per_row_ + i / engine::kernels::kBlock)];
    return static_cast<double>(b.d) * b.q[i % engine::kernels::kBlock];
  }

  // `set`'s dot of weight row w with row r.
  float Dot(const engine::kernels::KernelSet& set, engine::GgmlType type, const uint8_t* w, int64_t r) const {
    if (super_) return set.SuperDot(type)(w, supers_.data() + r * per_row_, per_row_);
    return set.Dot(type)(w, blocks_.data() + r * per_row_, per_row_);
  }

  // `set`'s four-row dot of weight row w with rows 0-3; false when it has none.
  bool DotFour(const engine::kernels::KernelSet& set, engine::GgmlType type, const uint8_t* w, float out[4]) const {
    if (super_) {
      if (set.SuperDot4(type) == nullptr) return false;
      set.SuperDot4(type)(w, supers_.data(), per_row_, per_row_, out);
    } else {
      if (set.Dot4(type) == nullptr) return false;
      set.Dot4(type)(w, blocks_.data(), per_row_, per_row_, out);
    }
    return true;
  }

  const std::vector<engine::kernels::ActivationBlock>& blocks() const { return blocks_; }
  const std::vector<engine::kernels::SuperActivationBlock>& super_blocks() const { return supers_; }

 private:
  bool super_;
  int64_t per_row_ = 0;
  std::vector<engine::kernels::ActivationBlock> blocks_;
  std::vector<engine::kernels::SuperActivationBlock> supers_;
};

}  // namespace edgellm::testing

#endif  // EDGELLM_TESTS_SUPPORT_KERNEL_ROWS_H_
