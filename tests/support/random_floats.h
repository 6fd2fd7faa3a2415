// tests/support/random_floats.h — reproducible normally distributed test data.
#ifndef EDGELLM_TESTS_SUPPORT_RANDOM_FLOATS_H_
#define EDGELLM_TESTS_SUPPORT_RANDOM_FLOATS_H_

#include <cstdint>
#include <random>
#include <vector>

namespace edgellm::testing {

// n draws from N(0, stddev²), the same for the same seed on every platform's
// libstdc++ (mt19937 is fully specified; the distribution is libstdc++'s).
inline std::vector<float> RandomFloats(int64_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = normal(rng);
  return v;
}

}  // namespace edgellm::testing

#endif  // EDGELLM_TESTS_SUPPORT_RANDOM_FLOATS_H_
