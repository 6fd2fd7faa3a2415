// federated/aggregator/stream_deadlines.h — a server-side deadline on every
// stream. A device that trickles an upload a byte a minute, or opens a
// download and never reads it, holds one of the synchronous server's few
// threads for as long as it likes; keepalive pings do not catch it (its
// connection is alive). Each stream is watched from its start: one that has
// not finished `limit` later is cancelled (its blocked Read or Write
// returns), logged and counted. A device resumes an upload or a download
// where it stopped, so an honest but slow one loses nothing.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_STREAM_DEADLINES_H_
#define EDGELLM_FEDERATED_AGGREGATOR_STREAM_DEADLINES_H_

#include <grpcpp/server_context.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"
#include "daemon/ops/metrics.h"

namespace edgellm::federated {

class StreamDeadlines {
 public:
  using Log = std::function<void(const std::string&)>;
  // Each cut is logged and counted in `cut`.
  StreamDeadlines(std::chrono::milliseconds limit, Log log, ops::Counter& cut);
  ~StreamDeadlines();  // stops watching; cancels nothing more
  StreamDeadlines(const StreamDeadlines&) = delete;
  StreamDeadlines& operator=(const StreamDeadlines&) = delete;

  // Watches one stream until destroyed (before the handler returns: the
  // context must outlive it).
  class Watch {
   public:
    Watch(Watch&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)), id_(other.id_) {}
    Watch& operator=(Watch&&) = delete;
    ~Watch() {
      if (owner_ != nullptr) owner_->Forget(id_);
    }

   private:
    friend class StreamDeadlines;
    Watch(StreamDeadlines* owner, uint64_t id) : owner_(owner), id_(id) {}
    StreamDeadlines* owner_;
    uint64_t id_;
  };
  // `what` names the stream in the log line of a cut ("FetchArtifact of dev-a").
  Watch Start(grpc::ServerContext* context, std::string what);

  std::chrono::milliseconds limit() const { return limit_; }

 private:
  struct Stream {
    std::chrono::steady_clock::time_point deadline;
    grpc::ServerContext* context;
    std::string what;
  };
  void Forget(uint64_t id);
  void Run();

  const std::chrono::milliseconds limit_;
  const Log log_;
  ops::Counter& cut_;
  Mutex mu_;
  // Ids count up and every stream has the same limit: the first is the
  // earliest deadline.
  std::map<uint64_t, Stream> streams_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watcher_;
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_STREAM_DEADLINES_H_
