// engine/fast_exp.h — e^x over an array, vectorizable, and the other passes
// of attention's softmax (a row's maximum; its exponentials and their sum).
#ifndef EDGELLM_ENGINE_FAST_EXP_H_
#define EDGELLM_ENGINE_FAST_EXP_H_

#include <cstdint>

namespace edgellm::engine {

// v[i] = e^v[i] for i < n, within a few units in the last place of std::exp
// on [-87, 88]: x = k·ln 2 + r with |r| <= ln 2 / 2, e^r by its Taylor
// polynomial to r^6, 2^k written into the exponent. Plain arithmetic the
// compiler vectorizes, where std::exp is a call per value (a prompt's
// attention takes tens of millions of them). Below -87 (-inf included) the
// result is 0, above 88 (+inf included) infinite; a NaN stays a NaN.
void ExpInPlace(float* v, int64_t n);

// v[i] = e^(v[i] - shift) for i < n, as ExpInPlace computes it, and returns
// their sum (added in sixteen running sums): a softmax row's exponentials and
// normalizer in one pass.
float ShiftedExpInPlace(float* v, int64_t n, float shift);

// The largest of v[0..n), n > 0 (sixteen lanes at a time); NaNs are not expected.
float MaxOf(const float* v, int64_t n);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_FAST_EXP_H_
