#include "daemon/engine/text_index.h"

#include <functional>

namespace edgellm::engine {
namespace {

uint64_t HashOf(std::string_view text) { return std::hash<std::string_view>{}(text); }

}  // namespace

TextIndex::TextIndex(const std::vector<std::string>* texts) : texts_(texts) {
  // At most half full, so a probe ends after a slot or two on average.
  uint64_t capacity = 16;
  while (capacity < 2 * texts->size()) capacity *= 2;
  slots_.assign(capacity, -1);
  mask_ = capacity - 1;
  for (size_t i = 0; i < texts->size(); ++i) {
    const std::string& text = (*texts)[i];
    for (uint64_t slot = HashOf(text) & mask_;; slot = (slot + 1) & mask_) {
      if (slots_[slot] < 0) {
        slots_[slot] = static_cast<int32_t>(i);
        break;
      }
      if ((*texts)[static_cast<size_t>(slots_[slot])] == text) break;  // the first position stays
    }
  }
}

int32_t TextIndex::Find(std::string_view text) const {
  if (slots_.empty()) return -1;
  for (uint64_t slot = HashOf(text) & mask_;; slot = (slot + 1) & mask_) {
    const int32_t position = slots_[slot];
    if (position < 0 || (*texts_)[static_cast<size_t>(position)] == text) return position;
  }
}

}  // namespace edgellm::engine
