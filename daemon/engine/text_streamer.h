// engine/text_streamer.h — turns token pieces into text that is safe to show.
//
// Holds back a partial UTF-8 character and any tail that could still grow
// into a stop string, so a stop string never reaches the reader and a
// multi-byte character never arrives in halves. Not thread-safe.
#ifndef EDGELLM_ENGINE_TEXT_STREAMER_H_
#define EDGELLM_ENGINE_TEXT_STREAMER_H_

#include <string>
#include <string_view>
#include <vector>

namespace edgellm::engine {

class TextStreamer {
 public:
  explicit TextStreamer(std::vector<std::string> stop_strings);

  // Adds a piece; returns the text that may be shown now. After a stop string
  // is found, stopped() is true and the text before it is the last returned.
  std::string Push(std::string_view piece);
  // Everything still held back (call once at the end of a generation that did not stop).
  std::string Flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stop_strings_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_TEXT_STREAMER_H_
