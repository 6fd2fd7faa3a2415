#include "daemon/serve/session_store.h"

#include <algorithm>

#include "common/str_cat.h"

namespace edgellm::serve {
namespace {

absl::Status CheckId(const std::string& id) {
  if (id.empty() || id.size() > 128) {
    return absl::InvalidArgumentError(edgellm::StrCat("session_id must have 1 to 128 bytes, not ", id.size()));
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == ':' || c == '-';
    if (!ok) return absl::InvalidArgumentError("session_id may only hold [A-Za-z0-9._:-]");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> SessionStore::BeginTurn(const std::string& caller, const std::string& id) {
  if (absl::Status s = CheckId(id); !s.ok()) return s;
  const Clock::time_point now = now_();
  MutexLock lock(&mu_);
  DropExpired(now);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    if (static_cast<int32_t>(sessions_.size()) >= config_.max_sessions) {
      auto idle = sessions_.end();
      for (auto s = sessions_.begin(); s != sessions_.end(); ++s) {
        if (!s->second.in_turn && (idle == sessions_.end() || s->second.last_used < idle->second.last_used)) idle = s;
      }
      if (idle == sessions_.end()) {
        return absl::ResourceExhaustedError(edgellm::StrCat("all ", config_.max_sessions,
                                                            " sessions have a turn in progress; retry later"));
      }
      sessions_.erase(idle);
    }
    it = sessions_.emplace(id, Session{caller, "", now, false}).first;
  } else if (it->second.caller != caller) {
    // Another caller's conversation is neither shown nor continued.
    return absl::NotFoundError(edgellm::StrCat("no session '", id, "' of this caller"));
  } else if (it->second.in_turn) {
    return absl::AbortedError(edgellm::StrCat("session '", id, "' already has a turn in progress"));
  }
  it->second.in_turn = true;
  it->second.last_used = now;
  return it->second.conversation;
}

void SessionStore::EndTurn(const std::string& id, std::optional<std::string> conversation) {
  const Clock::time_point now = now_();
  MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  it->second.in_turn = false;
  it->second.last_used = now;
  if (conversation) it->second.conversation = std::move(*conversation);
}

size_t SessionStore::size() const {
  MutexLock lock(&mu_);
  return sessions_.size();
}

void SessionStore::DropExpired(Clock::time_point now) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (!it->second.in_turn && now - it->second.last_used > config_.idle_ttl) {
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace edgellm::serve
