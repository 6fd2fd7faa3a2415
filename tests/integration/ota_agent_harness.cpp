// The real OTA agent in a process of its own whose smoke test dies or
// passes on demand: what a release that crashes edgellmd during its smoke
// test does to a device, without a release able to crash the daemon.
//
//   ota_agent_harness AGGREGATOR PKI_DIR DEVICE RELEASE_KEY OTA_DIR MODEL die|pass
//
// Runs until SIGTERM (a clean stop) or until a smoke test dies (SIGABRT).
// Logs the agent's lines, "smoke-testing DIR" and "serving VERSION" to stderr.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "daemon/ota/ota_agent.h"

int main(int argc, char** argv) {
  if (argc != 8) {
    std::cerr << "usage: ota_agent_harness AGGREGATOR PKI_DIR DEVICE RELEASE_KEY OTA_DIR MODEL die|pass\n";
    return 2;
  }
  const std::string pki = argv[2];
  const std::string device = argv[3];
  const bool die = std::string(argv[7]) == "die";
  edgellm::ota::OtaAgentConfig config;
  config.aggregator = argv[1];
  config.ca_file = pki + "/ca.pem";
  config.cert_file = pki + "/" + device + ".pem";
  config.key_file = pki + "/" + device + ".key";
  config.model_id = "stories260K";
  config.release_keys = {argv[4]};
  config.dir = argv[5];
  config.base_model_path = argv[6];
  config.poll_interval = std::chrono::milliseconds(100);
  edgellm::ota::ServingHooks hooks;
  hooks.smoke_test = [die](const edgellm::ota::ServedFiles& files) {
    std::cerr << "smoke-testing " << files.adapter << files.base << std::endl;
    if (die) std::abort();
    return absl::OkStatus();
  };
  hooks.serve = [](const edgellm::ota::ServedFiles&, uint64_t version) {
    if (version == 0) {
      std::cerr << "serving base" << std::endl;
    } else {
      std::cerr << "serving v" << version << std::endl;
    }
    return absl::OkStatus();
  };
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  auto agent = edgellm::ota::OtaAgent::Create(config, hooks, [](const std::string& line) { std::cerr << line << std::endl; });
  if (!agent.ok()) {
    std::cerr << agent.status() << std::endl;
    return 1;
  }
  (*agent)->Start();
  int signal = 0;
  sigwait(&stop, &signal);
  (*agent)->Stop();
  return 0;
}
