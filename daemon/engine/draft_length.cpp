#include "daemon/engine/draft_length.h"

#include <algorithm>

namespace edgellm::engine {

namespace {
constexpr int32_t kMaxPause = 32;
}  // namespace

int32_t DraftLength::Next() {
  if (pause_ > 0) {
    --pause_;
    return 0;
  }
  return length_;
}

void DraftLength::Update(int32_t drafted, int32_t accepted) {
  if (drafted <= 0) return;
  if (accepted >= drafted) {
    length_ = std::min(max_, length_ + 2);
    backoff_ = 1;
  } else if (accepted > 0) {
    length_ = std::min(max_, accepted + 1);
    backoff_ = 1;
  } else {
    length_ = std::min(max_, 1);
    pause_ = backoff_;
    backoff_ = std::min(kMaxPause, backoff_ * 2);
  }
}

}  // namespace edgellm::engine
