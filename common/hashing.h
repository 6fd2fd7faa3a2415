// common/hashing.h — small, fixed hash functions whose results must be the
// same on every machine and in every build: seeds derived from seeds, and
// fingerprints of data and options. Not for hash tables.
#ifndef EDGELLM_COMMON_HASHING_H_
#define EDGELLM_COMMON_HASHING_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace edgellm {

inline constexpr uint64_t kFnv1aStart = 0xcbf29ce484222325ULL;

// 64-bit FNV-1a of `size` bytes, continuing from `hash`.
inline uint64_t Fnv1a(const void* data, size_t size, uint64_t hash = kFnv1aStart) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) hash = (hash ^ bytes[i]) * 0x100000001b3ULL;
  return hash;
}
inline uint64_t Fnv1a(std::string_view text, uint64_t hash = kFnv1aStart) {
  return Fnv1a(text.data(), text.size(), hash);
}

// The SplitMix64 finaliser: a well-mixed 64-bit value from any 64-bit value.
inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A seed for the part `part` of what `seed` seeds (a layer, a step, an epoch).
inline uint64_t MixSeeds(uint64_t seed, uint64_t part) { return SplitMix64(seed ^ SplitMix64(part)); }

}  // namespace edgellm

#endif  // EDGELLM_COMMON_HASHING_H_
