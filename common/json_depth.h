// common/json_depth.h — how deeply a JSON text nests, and where a value in
// it ends, found by scanning its bytes before any parser builds it. Copying, printing or comparing a parsed
// value recurses once per level, so text from the network is refused past a
// depth first: a megabyte of '[' would otherwise exhaust a thread's stack.
#ifndef EDGELLM_COMMON_JSON_DEPTH_H_
#define EDGELLM_COMMON_JSON_DEPTH_H_

#include <cstddef>
#include <string_view>

namespace edgellm {

// The JSON nesting a request may use: far beyond what any chat, schema or
// tool list needs.
inline constexpr size_t kMaxJsonDepth = 128;

namespace internal_json_depth {

// Walks the brackets of `text` from `start` outside strings, calling
// `on_depth` with the depth after each bracket; stops when it returns true
// and gives the position after that bracket, or npos at the end.
template <typename OnDepth>
size_t ScanBrackets(std::string_view text, size_t start, OnDepth on_depth) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = start; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (on_depth(++depth)) return i + 1;
    } else if ((c == '}' || c == ']') && depth > 0) {
      if (on_depth(--depth)) return i + 1;
    }
  }
  return std::string_view::npos;
}

}  // namespace internal_json_depth

// The deepest nesting of objects and arrays in `text` (brackets inside
// strings do not count). Well-formedness is the parser's business.
inline size_t JsonDepth(std::string_view text) {
  size_t deepest = 0;
  internal_json_depth::ScanBrackets(text, 0, [&](size_t depth) {
    deepest = depth > deepest ? depth : deepest;
    return false;
  });
  return deepest;
}

// Where the object or array that opens at `start` ends (one past its closing
// bracket), or npos when it does not close.
inline size_t JsonValueEnd(std::string_view text, size_t start) {
  return internal_json_depth::ScanBrackets(text, start, [](size_t depth) { return depth == 0; });
}

}  // namespace edgellm

#endif  // EDGELLM_COMMON_JSON_DEPTH_H_
