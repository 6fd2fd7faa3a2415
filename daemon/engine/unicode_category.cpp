#include "daemon/engine/unicode_category.h"

#include <unicode/uchar.h>

namespace edgellm::engine {

UnicodeCategory CategoryOf(uint32_t code_point) {
  const uint32_t mask = U_GET_GC_MASK(static_cast<UChar32>(code_point));
  if (mask & U_GC_N_MASK) return UnicodeCategory::kNumber;
  if (mask & U_GC_L_MASK) return UnicodeCategory::kLetter;
  if (mask & U_GC_Z_MASK) return UnicodeCategory::kSeparator;
  if (mask & U_GC_M_MASK) return UnicodeCategory::kMark;
  if (mask & U_GC_P_MASK) return UnicodeCategory::kPunctuation;
  if (mask & U_GC_S_MASK) return UnicodeCategory::kSymbol;
  if (mask & U_GC_CN_MASK) return UnicodeCategory::kUndefined;
  return UnicodeCategory::kControl;
}

bool IsUnicodeWhiteSpace(uint32_t code_point) {
  if (code_point < 0x80) return code_point == ' ' || (code_point >= '\t' && code_point <= '\r');
  return u_isUWhiteSpace(static_cast<UChar32>(code_point));
}

}  // namespace edgellm::engine
