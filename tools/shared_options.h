// tools/shared_options.h — the options `generate` and `chat` both take, each
// declared once: how to reach a daemon, and how to sample.
#ifndef EDGELLM_TOOLS_SHARED_OPTIONS_H_
#define EDGELLM_TOOLS_SHARED_OPTIONS_H_

#include <CLI/CLI.hpp>
#include <string>

#include "daemon/engine/sampler.h"
#include "tools/remote_generate.h"

namespace edgellm::tools {

// --server (described by `what_server_does`), --tls-ca, --tls-cert, --tls-key.
inline void AddServerOptions(CLI::App& cmd, RemoteTarget& remote, const std::string& what_server_does) {
  cmd.add_option("--server", remote.server, what_server_does + ": unix:///PATH, unix:PATH or HOST:PORT");
  cmd.add_option("--tls-ca", remote.tls_ca, "With --server: PEM CA bundle to verify the daemon by (TLS)");
  cmd.add_option("--tls-cert", remote.tls_cert, "With --server: PEM client certificate (mutual TLS)");
  cmd.add_option("--tls-key", remote.tls_key, "With --server: PEM key of --tls-cert");
}

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n.
inline void AddSamplingOptions(CLI::App& cmd, engine::SamplingParams& sampling) {
  cmd.add_option("--temp", sampling.temperature, "Temperature; 0 is greedy")->capture_default_str();
  cmd.add_option("--top-k", sampling.top_k, "Keep the k most likely tokens; 0 is off")->capture_default_str();
  cmd.add_option("--top-p", sampling.top_p, "Nucleus sampling mass; 1 is off")->capture_default_str();
  cmd.add_option("--min-p", sampling.min_p, "Drop tokens below min-p x the top probability; 0 is off")
      ->capture_default_str();
  cmd.add_option("--repeat-penalty", sampling.repeat_penalty, "Penalty for recent tokens; 1 is off")
      ->capture_default_str();
  cmd.add_option("--repeat-last-n", sampling.repeat_last_n, "Window of the repetition penalty")
      ->capture_default_str();
}

}  // namespace edgellm::tools

#endif  // EDGELLM_TOOLS_SHARED_OPTIONS_H_
