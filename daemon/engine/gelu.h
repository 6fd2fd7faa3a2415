// engine/gelu.h — GELU with the tanh approximation, computed as ggml's CPU
// backend computes it: the input rounded to F16, the function of that value
// rounded to F16 again (a table of all 65536 halves), and exact past ±10.
// Gemma's MLP uses it; matching the rounding keeps greedy output llama.cpp's.
#ifndef EDGELLM_ENGINE_GELU_H_
#define EDGELLM_ENGINE_GELU_H_

#include <cstdint>

namespace edgellm::engine {

// 0.5·x·(1 + tanh(√(2/π)·x·(1 + 0.044715·x²))) in float, unrounded.
float GeluTanh(float x);

// GeluTanh as ggml rounds it (see above).
float GeluTanhAsGgml(float x);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_GELU_H_
