// engine/text_index.h — the position of a text in a fixed list of strings:
// the tokenizer's token ids and merge ranks. An open-addressing table of
// 32-bit positions, four bytes a slot, where a hash map with string keys
// copies every string into a node of its own (a Qwen2 vocabulary has 151k
// tokens and as many merges: about 23 MiB that way, 4 MiB this way).
#ifndef EDGELLM_ENGINE_TEXT_INDEX_H_
#define EDGELLM_ENGINE_TEXT_INDEX_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgellm::engine {

class TextIndex {
 public:
  TextIndex() = default;
  // Indexes every string of `texts`, which must outlive the index unchanged;
  // a text listed twice keeps its first position.
  explicit TextIndex(const std::vector<std::string>* texts);

  // The position of `text` in the list, -1 if it is not there.
  int32_t Find(std::string_view text) const;

 private:
  const std::vector<std::string>* texts_ = nullptr;
  std::vector<int32_t> slots_;  // a position, or -1 for an empty slot
  uint64_t mask_ = 0;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_TEXT_INDEX_H_
