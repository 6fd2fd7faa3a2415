#include "federated/channel/aggregator_channel.h"

#include "common/str_cat.h"
#include "federated/protocol/protocol.h"

namespace edgellm::federated {

std::shared_ptr<grpc::Channel> AggregatorChannel(const std::string& target, const ops::TlsFiles& tls) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = tls.client_ca;
  ssl.pem_private_key = tls.private_key;
  ssl.pem_cert_chain = tls.cert_chain;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), args);
}

std::string Describe(const grpc::Status& s) {
  return StrCat("status ", static_cast<int>(s.error_code()), ": ", s.error_message());
}

bool Transient(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::ABORTED:
      return true;
    default:
      return false;
  }
}

void CallTracker::Untrack::operator()(grpc::ClientContext* context) const {
  {
    MutexLock lock(&tracker->mu_);
    tracker->calls_.erase(context);
  }
  delete context;
}

CallTracker::Call CallTracker::NewCall(std::chrono::seconds timeout) {
  Call context(new grpc::ClientContext(), Untrack{this});
  context->set_deadline(std::chrono::system_clock::now() + timeout);
  context->set_wait_for_ready(true);
  MutexLock lock(&mu_);
  if (stopping_) context->TryCancel();
  calls_.insert(context.get());
  return context;
}

bool CallTracker::Sleep(std::chrono::milliseconds duration) {
  MutexLock lock(&mu_);
  const auto until = absl::Now() + absl::FromChrono(duration);
  while (!stopping_ && absl::Now() < until) mu_.AwaitWithDeadline(absl::Condition(&stopping_), until);
  return !stopping_;
}

bool CallTracker::stopping() const {
  MutexLock lock(&mu_);
  return stopping_;
}

void CallTracker::Stop() {
  MutexLock lock(&mu_);
  stopping_ = true;
  for (grpc::ClientContext* call : calls_) call->TryCancel();
}

}  // namespace edgellm::federated
