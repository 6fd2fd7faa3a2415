// tools/remote_generate.h — `edgellm generate --server`: the same generation,
// streamed from a running edgellmd over gRPC; and the channel to a daemon
// that `edgellm chat --server` uses too.
#ifndef EDGELLM_TOOLS_REMOTE_GENERATE_H_
#define EDGELLM_TOOLS_REMOTE_GENERATE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "daemon/engine/generation_state.h"
#include "tools/output_constraint.h"

namespace edgellm::v1 {
class SamplingParams;
}

namespace edgellm::tools {

// What a generation produced, wherever it ran.
struct GenerateOutcome {
  std::string text;
  std::vector<int64_t> token_ids;
  int64_t prompt_tokens = 0;
  double prefill_tok_s = 0.0;
  double decode_tok_s = 0.0;
  std::string finish_reason;
  int64_t draft_tokens = 0;     // speculative drafts checked
  int64_t accepted_tokens = 0;  // of those, the ones that stood
};

// Where the daemon is and how to reach it.
struct RemoteTarget {
  std::string server;      // unix:///PATH, unix:PATH or HOST:PORT
  std::string tls_ca;      // PEM CA bundle to verify the daemon by: use TLS
  std::string tls_cert;    // PEM client certificate and key, for mutual TLS
  std::string tls_key;
  std::string session_id;  // continue this session's conversation
};

// A channel to the daemon at `target`, with TLS when it names a CA. NotFound
// for an unreadable TLS file, InvalidArgument for a certificate without a CA.
absl::StatusOr<std::shared_ptr<grpc::Channel>> DaemonChannel(const RemoteTarget& target);

// The daemon's form of `from` (every field set, so the daemon's defaults never apply).
void SetSampling(const engine::SamplingParams& from, v1::SamplingParams* to);

// `constraint` in a daemon request (a GenerateRequest or a ChatRequest).
template <typename Request>
void SetConstraint(const OutputConstraint& constraint, Request* to) {
  if (!constraint.grammar.empty()) to->set_grammar(constraint.grammar);
  if (!constraint.json_schema.empty()) to->set_json_schema(constraint.json_schema);
}

// Streams a generation from the daemon at `target`, passing each piece of
// text to `on_text` as it arrives. NotFound for an unreadable TLS file; the
// daemon's status becomes the returned error, its message prefixed "server: ".
// A negative options.draft_tokens leaves the choice to the daemon. `adapter`
// names one of the daemon's adapters; empty: the base model.
absl::StatusOr<GenerateOutcome> GenerateRemotely(const RemoteTarget& target, std::string_view prompt,
                                                 const engine::GenerateOptions& options, std::string_view adapter,
                                                 const OutputConstraint& constraint,
                                                 const std::function<void(std::string_view)>& on_text);

}  // namespace edgellm::tools

#endif  // EDGELLM_TOOLS_REMOTE_GENERATE_H_
