#include "daemon/engine/text_streamer.h"

#include <algorithm>
#include <utility>

#include "daemon/engine/utf8.h"

namespace edgellm::engine {

TextStreamer::TextStreamer(std::vector<std::string> stop_strings) {
  for (std::string& s : stop_strings) {
    if (!s.empty()) stop_strings_.push_back(std::move(s));
  }
}

std::string TextStreamer::Push(std::string_view piece) {
  if (stopped_) return "";
  pending_.append(piece);
  size_t stop_at = std::string::npos;
  for (const std::string& s : stop_strings_) stop_at = std::min(stop_at, pending_.find(s));
  if (stop_at != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, stop_at);
    pending_.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = IncompleteUtf8Suffix(pending_);
  for (const std::string& s : stop_strings_) {
    for (size_t n = std::min(s.size() - 1, pending_.size()); n > hold; --n) {
      if (pending_.compare(pending_.size() - n, n, s, 0, n) == 0) {
        hold = n;
        break;
      }
    }
  }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string TextStreamer::Flush() {
  if (stopped_) return "";
  return std::exchange(pending_, std::string());
}

}  // namespace edgellm::engine
