// serve/session_store.h — the conversations of multi-turn clients.
//
// A Generate with a session id continues that session's conversation: the
// store keeps its text so far (every earlier prompt and reply), the new
// prompt is appended, and the whole conversation runs as one prompt — exactly
// what a client resending the conversation would send, so the answer is the
// same. The KV of the earlier turns is found by the KV pool's prefix matching,
// so only the new turn is computed. One turn at a time per session. A session
// belongs to the caller that began it (its certificate's name, say): to any
// other caller it does not exist. Bounded:
// at most max_sessions (idle ones evicted least recently used first), and a
// session idle for longer than idle_ttl is forgotten.
#ifndef EDGELLM_SERVE_SESSION_STORE_H_
#define EDGELLM_SERVE_SESSION_STORE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/mutex.h"

namespace edgellm::serve {

struct SessionStoreConfig {
  int32_t max_sessions = 256;          // conversations kept at once
  std::chrono::seconds idle_ttl{600};  // a session unused for this long is forgotten
};

// Thread-safe.
class SessionStore {
 public:
  using Clock = std::chrono::steady_clock;
  explicit SessionStore(SessionStoreConfig config, std::function<Clock::time_point()> now = Clock::now)
      : config_(config), now_(std::move(now)) {}

  // Starts a turn of `caller`'s session `id` and returns its conversation so
  // far ("" for a new session). InvalidArgument for a malformed id, NotFound
  // when another caller's session has that id, Aborted while another turn of
  // it is in progress, ResourceExhausted when max_sessions sessions all have a
  // turn in progress.
  absl::StatusOr<std::string> BeginTurn(const std::string& caller, const std::string& id);
  // Ends the turn begun last: `conversation` (the whole text, this turn
  // included) replaces the session's text; nullopt leaves it as it was.
  void EndTurn(const std::string& id, std::optional<std::string> conversation);

  size_t size() const;

 private:
  struct Session {
    std::string caller;
    std::string conversation;
    Clock::time_point last_used;
    bool in_turn = false;
  };
  void DropExpired(Clock::time_point now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SessionStoreConfig config_;
  const std::function<Clock::time_point()> now_;
  mutable Mutex mu_;
  std::map<std::string, Session> sessions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_SESSION_STORE_H_
