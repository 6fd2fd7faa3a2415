// engine/unicode_category.h — the Unicode facts the pre-tokenizers split by:
// a code point's general category (as llama.cpp groups them) and whether it
// is white space. Backed by ICU; thread-safe.
#ifndef EDGELLM_ENGINE_UNICODE_CATEGORY_H_
#define EDGELLM_ENGINE_UNICODE_CATEGORY_H_

#include <cstdint>

namespace edgellm::engine {

// The general-category groups of \p{N}, \p{L}, \p{P}, \p{M} and \p{S}, and the
// rest: separators (Z), controls and formats (C), unassigned code points.
enum class UnicodeCategory : uint8_t {
  kUndefined,
  kNumber,
  kLetter,
  kSeparator,
  kMark,
  kPunctuation,
  kSymbol,
  kControl,
};

UnicodeCategory CategoryOf(uint32_t code_point);
// The Unicode White_Space property (ASCII \t..\r and space, U+0085, U+00A0, U+2000..U+200A, ...).
bool IsUnicodeWhiteSpace(uint32_t code_point);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_UNICODE_CATEGORY_H_
