// federated/channel/aggregator_channel.h — how a device talks to the
// aggregator: one mutual-TLS channel, and calls that a stopping daemon
// cancels at once instead of waiting out their deadlines. Shared by the
// federated client and the OTA agent.
#ifndef EDGELLM_FEDERATED_CHANNEL_AGGREGATOR_CHANNEL_H_
#define EDGELLM_FEDERATED_CHANNEL_AGGREGATOR_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"
#include "daemon/ops/tls_files.h"

namespace edgellm::federated {

// A channel to `target` (HOST:PORT) presenting the device certificate in
// `tls` and trusting its CA; reconnects with a short backoff.
std::shared_ptr<grpc::Channel> AggregatorChannel(const std::string& target, const ops::TlsFiles& tls);

// "status N: message" of a failed call, for logs.
std::string Describe(const grpc::Status& status);
// True for failures worth retrying: the aggregator unreachable, restarting
// or out of time.
bool Transient(const grpc::Status& status);

// Thread-safe.
class CallTracker {
 public:
  struct Untrack {
    CallTracker* tracker;
    void operator()(grpc::ClientContext* context) const;
  };
  using Call = std::unique_ptr<grpc::ClientContext, Untrack>;

  // A context for one call, cancelled by Stop() while it runs. The call waits
  // for a restarting aggregator within `timeout` rather than failing at once.
  Call NewCall(std::chrono::seconds timeout);
  // Sleeps up to `duration`; false once Stop() was called.
  bool Sleep(std::chrono::milliseconds duration);
  bool stopping() const;
  // Cancels every call in flight and wakes every sleeper; later calls start cancelled.
  void Stop();

 private:
  mutable Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_CHANNEL_AGGREGATOR_CHANNEL_H_
