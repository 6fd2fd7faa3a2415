// common/log_text.h — text from the network made safe to write into a log:
// a device or client must not be able to forge log lines (a newline), drive
// a terminal (escape sequences), or flood the log (length).
#ifndef EDGELLM_COMMON_LOG_TEXT_H_
#define EDGELLM_COMMON_LOG_TEXT_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace edgellm {

// `text` with every byte outside printable ASCII written as \xNN (\n, \r and
// \t as themselves escaped) and backslashes doubled, cut after `max_bytes`
// of input with a note of how much was left out.
inline std::string LogText(std::string_view text, size_t max_bytes = 200) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  const std::string_view shown = text.substr(0, max_bytes);
  out.reserve(shown.size());
  for (const char c : shown) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte >= 0x7f) {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    } else {
      out += c;
    }
  }
  if (text.size() > max_bytes) out += "…(" + std::to_string(text.size() - max_bytes) + " more bytes)";
  return out;
}

}  // namespace edgellm

#endif  // EDGELLM_COMMON_LOG_TEXT_H_
