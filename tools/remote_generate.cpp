#include "tools/remote_generate.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "edgellm/v1/inference.grpc.pb.h"

namespace edgellm::tools {
absl::StatusOr<std::shared_ptr<grpc::Channel>> DaemonChannel(const RemoteTarget& target) {
  if (target.tls_ca.empty()) {
    if (!target.tls_cert.empty()) return absl::InvalidArgumentError("--tls-cert needs --tls-ca");
    return grpc::CreateChannel(target.server, grpc::InsecureChannelCredentials());
  }
  grpc::SslCredentialsOptions ssl;
  EDGELLM_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFileToString(target.tls_ca, "--tls-ca"));
  if (!target.tls_cert.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadFileToString(target.tls_cert, "--tls-cert"));
    EDGELLM_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadFileToString(target.tls_key, "--tls-key"));
  }
  return grpc::CreateChannel(target.server, grpc::SslCredentials(ssl));
}

void SetSampling(const engine::SamplingParams& from, v1::SamplingParams* to) {
  to->set_temperature(from.temperature);
  to->set_top_k(static_cast<uint32_t>(std::max(from.top_k, 0)));
  to->set_top_p(from.top_p);
  to->set_min_p(from.min_p);
  to->set_repeat_penalty(from.repeat_penalty);
  to->set_seed(from.seed);
}

absl::StatusOr<GenerateOutcome> GenerateRemotely(const RemoteTarget& target, std::string_view prompt,
                                                 const engine::GenerateOptions& options, std::string_view adapter,
                                                 const OutputConstraint& constraint,
                                                 const std::function<void(std::string_view)>& on_text) {
  EDGELLM_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, DaemonChannel(target));
  auto stub = v1::Inference::NewStub(std::move(channel));
  v1::GenerateRequest request;
  request.set_session_id(target.session_id);
  request.set_prompt(std::string(prompt));
  request.set_adapter(std::string(adapter));
  request.set_max_tokens(static_cast<uint32_t>(std::max(options.max_tokens, 0)));
  SetSampling(options.sampling, request.mutable_sampling());
  for (const std::string& stop : options.stop) request.add_stop(stop);
  if (options.draft_tokens >= 0) request.set_draft_tokens(static_cast<uint32_t>(options.draft_tokens));
  SetConstraint(constraint, &request);

  grpc::ClientContext context;
  auto reader = stub->Generate(&context, request);
  GenerateOutcome outcome;
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
    if (on_text && !response.text().empty()) on_text(response.text());
    outcome.text += response.text();
    outcome.token_ids.insert(outcome.token_ids.end(), response.token_ids().begin(), response.token_ids().end());
    if (response.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      outcome.prompt_tokens = response.usage().prompt_tokens();
      // Time to first token covers queueing and the prompt's forward.
      const double ttft = response.timings().time_to_first_token_seconds();
      outcome.prefill_tok_s = ttft > 0 ? outcome.prompt_tokens / ttft : 0.0;
      outcome.decode_tok_s = response.timings().decode_tokens_per_second();
      outcome.draft_tokens = response.usage().draft_tokens();
      outcome.accepted_tokens = response.usage().accepted_tokens();
      const std::string name = v1::FinishReason_Name(response.finish_reason());
      outcome.finish_reason = absl::AsciiStrToLower(name.substr(std::string("FINISH_REASON_").size()));
    }
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        edgellm::StrCat("server: ", status.error_message()));
  }
  return outcome;
}

}  // namespace edgellm::tools
