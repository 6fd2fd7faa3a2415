// daemon/ota_wiring.h — the OTA agent inside edgellmd: how it smoke-tests,
// evaluates and serves versions with the daemon's inference core (loading a
// base-model release beside the model serving, memory permitting), and the
// figures it publishes.
#ifndef EDGELLM_DAEMON_OTA_WIRING_H_
#define EDGELLM_DAEMON_OTA_WIRING_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/model_loader.h"
#include "daemon/ops/config.h"
#include "daemon/ops/metrics.h"
#include "daemon/ota/ota_agent.h"
#include "daemon/serve/inference_core.h"

namespace edgellm {

// The OTA agent, serving the installed version through `core` and loading
// base models with `loader`; its figures go to `registry`. Everything given
// must outlive it.
absl::StatusOr<std::unique_ptr<ota::OtaAgent>> StartOta(const ops::DaemonConfig& args, const std::string& model_name,
                                                         const ModelLoader& loader, serve::InferenceCore& core,
                                                         ops::MetricsRegistry& registry,
                                                         std::function<void(const std::string&)> log);

}  // namespace edgellm

#endif  // EDGELLM_DAEMON_OTA_WIRING_H_
