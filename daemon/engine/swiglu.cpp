#include "daemon/engine/swiglu.h"

#include <algorithm>

#include "daemon/engine/cpu_clones.h"
#include "daemon/engine/fast_exp.h"

namespace edgellm::engine {

EDGELLM_CPU_CLONES void SwiGluInPlace(float* gate, const float* up, int64_t n) {
  constexpr int64_t kChunk = 256;  // on the stack: the decode step allocates nothing
  float negated_exp[kChunk];
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t count = std::min(kChunk, n - begin);
    float* g = gate + begin;
    const float* u = up + begin;
    for (int64_t i = 0; i < count; ++i) negated_exp[i] = -g[i];
    ExpInPlace(negated_exp, count);
    for (int64_t i = 0; i < count; ++i) g[i] = g[i] / (1.0f + negated_exp[i]) * u[i];
  }
}

}  // namespace edgellm::engine
