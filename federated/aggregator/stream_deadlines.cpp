#include "federated/aggregator/stream_deadlines.h"

#include "common/str_cat.h"

namespace edgellm::federated {

StreamDeadlines::StreamDeadlines(std::chrono::milliseconds limit, Log log, ops::Counter& cut)
    : limit_(limit), log_(std::move(log)), cut_(cut), watcher_([this] { Run(); }) {}

StreamDeadlines::~StreamDeadlines() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  watcher_.join();
}

StreamDeadlines::Watch StreamDeadlines::Start(grpc::ServerContext* context, std::string what) {
  MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  streams_.emplace(id, Stream{std::chrono::steady_clock::now() + limit_, context, std::move(what)});
  return Watch(this, id);
}

void StreamDeadlines::Forget(uint64_t id) {
  MutexLock lock(&mu_);
  streams_.erase(id);
}

void StreamDeadlines::Run() {
  MutexLock lock(&mu_);
  while (!stopping_) {
    const auto now = std::chrono::steady_clock::now();
    while (!streams_.empty() && streams_.begin()->second.deadline <= now) {
      // Cancelled under the lock: the handler cannot have returned (its Watch
      // would have taken the stream out first), so its context is alive.
      Stream& stream = streams_.begin()->second;
      stream.context->TryCancel();
      cut_.Add();
      log_(StrCat("cut the ", stream.what, " stream: still running after ", limit_.count() / 1000.0,
                  " s (max_stream_seconds)"));
      streams_.erase(streams_.begin());
    }
    const auto wake = streams_.empty() ? now + std::chrono::seconds(1) : streams_.begin()->second.deadline;
    const auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::FromChrono(wake - now));
  }
}

}  // namespace edgellm::federated
