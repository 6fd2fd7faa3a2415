// engine/forward_backend.h — another implementation of a model's forward
// that a loaded LlamaModel can hand its forwards to (see
// LlamaModel::AttachBackend); torch_forward.h is the one there is: the
// LibTorch forward, for other devices and as an independent reference.
#ifndef EDGELLM_ENGINE_FORWARD_BACKEND_H_
#define EDGELLM_ENGINE_FORWARD_BACKEND_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "daemon/engine/cpu_forward.h"

namespace edgellm::engine {

class ForwardBackend {
 public:
  virtual ~ForwardBackend() = default;
  // As CpuForward, and a sequence's cache may be nullptr: its rows then sit
  // at positions 0 onward and attend only to each other. Must be safe to
  // call concurrently on different caches.
  virtual absl::Status Forward(absl::Span<const TokenId> tokens, absl::Span<const CpuSequence> sequences,
                               std::vector<float>* logits) const = 0;
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_FORWARD_BACKEND_H_
