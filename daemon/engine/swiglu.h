// engine/swiglu.h — the SwiGLU feed-forward's gate: gate·σ(gate)·up.
#ifndef EDGELLM_ENGINE_SWIGLU_H_
#define EDGELLM_ENGINE_SWIGLU_H_

#include <cstdint>

namespace edgellm::engine {

// gate[i] = gate[i] / (1 + e^-gate[i]) · up[i] for i < n, the exponential by
// ExpInPlace (a few units in the last place of std::exp; vectorized, where
// std::exp is a call per value: a 16-sequence step of a small model makes
// millions). Past the exponential's range the gate saturates as the exact
// function does: 0 far below zero, the gate itself far above it.
void SwiGluInPlace(float* gate, const float* up, int64_t n);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_SWIGLU_H_
