// engine/draft_length.h — how many tokens to draft next, from how the last
// drafts fared.
//
// Checking a draft costs a row of compute in the verifying forward whether
// it stands or not, so a sequence whose drafts keep failing should draft less
// and then not at all for a while. After a step whose drafts all stood the
// length grows by two (up to the maximum); after one that kept some, it
// becomes one more than the number kept; after one that kept none, drafting
// pauses for a number of steps that doubles with each such step (up to 32)
// and starts again with one token.
#ifndef EDGELLM_ENGINE_DRAFT_LENGTH_H_
#define EDGELLM_ENGINE_DRAFT_LENGTH_H_

#include <cstdint>

namespace edgellm::engine {

class DraftLength {
 public:
  explicit DraftLength(int32_t max_tokens) : max_(max_tokens), length_(max_tokens) {}

  // Tokens to draft this step (0: do not draft). Call once per step.
  int32_t Next();
  // What the step's check found; a step without drafts changes nothing.
  void Update(int32_t drafted, int32_t accepted);

 private:
  int32_t max_;
  int32_t length_;
  int32_t pause_ = 0;    // steps left without drafting
  int32_t backoff_ = 1;  // the pause after the next step that keeps nothing
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_DRAFT_LENGTH_H_
