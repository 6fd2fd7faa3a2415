// engine/utf8.h — small UTF-8 helpers used by the tokenizers and the text streamer.
#ifndef EDGELLM_ENGINE_UTF8_H_
#define EDGELLM_ENGINE_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgellm::engine {

// Length of the UTF-8 sequence starting at text[pos], if it is a complete,
// valid sequence; 1 for an invalid or truncated one (the byte stands alone).
size_t Utf8SequenceLength(std::string_view text, size_t pos);

// Decodes one code point at text[pos], advancing pos; an invalid byte decodes
// to itself (0x80..0xFF) so that nothing is lost.
uint32_t Utf8Next(std::string_view text, size_t* pos);

void AppendUtf8(uint32_t code_point, std::string* out);

// `text` with every byte that is not part of a valid UTF-8 sequence replaced
// by U+FFFD, for places that require valid UTF-8 (protobuf strings, JSON).
std::string ToValidUtf8(std::string_view text);

// Number of trailing bytes of `text` that start a UTF-8 sequence that is not
// yet complete (0 if `text` ends on a boundary). Used to hold back partial
// characters while streaming.
size_t IncompleteUtf8Suffix(std::string_view text);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_UTF8_H_
