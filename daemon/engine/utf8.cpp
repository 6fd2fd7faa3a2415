#include "daemon/engine/utf8.h"

namespace edgellm::engine {
namespace {

// Expected length from a lead byte; 0 for a continuation or invalid byte.
size_t LeadLength(uint8_t b) {
  if (b < 0x80) return 1;
  if ((b & 0xe0) == 0xc0) return b >= 0xc2 ? 2 : 0;
  if ((b & 0xf0) == 0xe0) return 3;
  if ((b & 0xf8) == 0xf0) return b <= 0xf4 ? 4 : 0;
  return 0;
}

}  // namespace

size_t Utf8SequenceLength(std::string_view text, size_t pos) {
  const size_t n = LeadLength(static_cast<uint8_t>(text[pos]));
  if (n <= 1 || pos + n > text.size()) return 1;
  for (size_t i = 1; i < n; ++i) {
    if ((static_cast<uint8_t>(text[pos + i]) & 0xc0) != 0x80) return 1;
  }
  return n;
}

uint32_t Utf8Next(std::string_view text, size_t* pos) {
  const size_t n = Utf8SequenceLength(text, *pos);
  const uint8_t b0 = static_cast<uint8_t>(text[*pos]);
  uint32_t cp = b0;
  if (n == 2) cp = b0 & 0x1f;
  if (n == 3) cp = b0 & 0x0f;
  if (n == 4) cp = b0 & 0x07;
  for (size_t i = 1; i < n; ++i) cp = (cp << 6) | (static_cast<uint8_t>(text[*pos + i]) & 0x3f);
  *pos += n;
  return cp;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

std::string ToValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = Utf8SequenceLength(text, pos);
    if (n == 1 && static_cast<uint8_t>(text[pos]) >= 0x80) {
      out += "\xef\xbf\xbd";  // U+FFFD
    } else {
      out.append(text, pos, n);
    }
    pos += n;
  }
  return out;
}

size_t IncompleteUtf8Suffix(std::string_view text) {
  // A sequence is at most 4 bytes: look back at most 3 for its lead byte.
  for (size_t back = 1; back <= 3 && back <= text.size(); ++back) {
    const uint8_t b = static_cast<uint8_t>(text[text.size() - back]);
    if ((b & 0xc0) == 0x80) continue;  // continuation byte: keep looking
    const size_t need = LeadLength(b);
    return need > back ? back : 0;
  }
  return 0;
}

}  // namespace edgellm::engine
