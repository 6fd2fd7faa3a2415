#include "daemon/engine/bpe_pretokenizer.h"

#include <unicode/uchar.h>

#include "daemon/engine/utf8.h"

namespace edgellm::engine {
namespace {

enum class CharClass { kLetter, kNumber, kSpace, kOther };

CharClass Classify(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::kLetter;
    if (cp >= '0' && cp <= '9') return CharClass::kNumber;
    if (cp == ' ' || (cp >= '\t' && cp <= '\r')) return CharClass::kSpace;
    return CharClass::kOther;
  }
  const UChar32 c = static_cast<UChar32>(cp);
  if (u_isUWhiteSpace(c)) return CharClass::kSpace;
  const uint32_t mask = U_GET_GC_MASK(c);
  if (mask & U_GC_L_MASK) return CharClass::kLetter;
  if (mask & U_GC_N_MASK) return CharClass::kNumber;
  return CharClass::kOther;
}

struct CodePoint {
  size_t start;
  size_t end;
  CharClass cls;
};

// Length of a contraction ('s 't 're 've 'm 'll 'd) at i, or 0.
size_t ContractionLength(std::string_view text, size_t at) {
  if (text[at] != '\'' || at + 1 >= text.size()) return 0;
  const char a = text[at + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (at + 2 < text.size()) {
    const char b = text[at + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  }
  return 0;
}

// Appends the GPT-2 pattern's pieces of cps[first, last) to `words`.
void SplitRange(std::string_view text, const std::vector<CodePoint>& cps, size_t first, size_t last,
                std::vector<std::string_view>& words) {
  const size_t n = last;
  size_t i = first;
  auto run_end = [&](size_t from, CharClass cls) {
    while (from < n && cps[from].cls == cls) ++from;
    return from;
  };
  while (i < n) {
    size_t end = i;
    if (const size_t c = ContractionLength(text, cps[i].start); c > 0) {
      end = i + c;  // contractions are ASCII: one code point per byte
    } else {
      // " ?X+" for the three non-space classes: an optional ASCII space first.
      size_t body = i;
      if (text[cps[i].start] == ' ' && i + 1 < n && cps[i + 1].cls != CharClass::kSpace) body = i + 1;
      if (cps[body].cls != CharClass::kSpace) {
        end = run_end(body, cps[body].cls);
      } else {
        // \s+(?!\S) | \s+ : a whitespace run, leaving its last character to
        // the next word when a non-space follows.
        end = run_end(i, CharClass::kSpace);
        if (end < n && end - i > 1) --end;
      }
    }
    words.push_back(text.substr(cps[i].start, cps[end - 1].end - cps[i].start));
    i = end;
  }
}

}  // namespace

std::vector<std::string_view> PreTokenizeGpt2(std::string_view text, bool split_digits) {
  std::vector<CodePoint> cps;
  for (size_t pos = 0; pos < text.size();) {
    const size_t start = pos;
    const uint32_t cp = Utf8Next(text, &pos);
    cps.push_back({start, pos, Classify(cp)});
  }
  std::vector<std::string_view> words;
  if (!split_digits) {
    SplitRange(text, cps, 0, cps.size(), words);
    return words;
  }
  size_t first = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (cps[i].cls != CharClass::kNumber) continue;
    SplitRange(text, cps, first, i, words);
    words.push_back(text.substr(cps[i].start, cps[i].end - cps[i].start));
    first = i + 1;
  }
  SplitRange(text, cps, first, cps.size(), words);
  return words;
}

}  // namespace edgellm::engine
