// daemon/model_loader.h — how edgellmd turns a GGUF file into a model it
// serves: loaded with the configured options and warmed up, its KV blocks
// under the configured budget, its chat template (or the config's), drafting
// by the draft model when it shares the vocabulary, and a running scheduler.
// Used at start and for each base-model release.
#ifndef EDGELLM_DAEMON_MODEL_LOADER_H_
#define EDGELLM_DAEMON_MODEL_LOADER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/engine/llama_model.h"
#include "daemon/ops/config.h"
#include "daemon/serve/served_model.h"

namespace edgellm {

// How edgellmd loads a model it serves (or drafts with): its threads,
// context, file access and KV cache type from `args`, weights packed.
// InvalidArgument for a KV cache type the engine does not know.
absl::StatusOr<engine::ModelOptions> ServingModelOptions(const ops::DaemonConfig& args);

class ModelLoader {
 public:
  using Log = std::function<void(const std::string&)>;
  // `scheduler` is what every model's scheduler starts from (its
  // draft_model, checked per model, must outlive the loader); `args` and
  // `metrics` (which may be null) must outlive it too.
  ModelLoader(const ops::DaemonConfig& args, serve::SchedulerConfig scheduler, serve::ServeMetrics* metrics, Log log);

  // InvalidArgument when the configuration does not suit the model (KV
  // budget, chat template); other codes when the file does not load or run.
  absl::StatusOr<std::shared_ptr<serve::ServedModel>> Load(const std::string& file) const;
  // The memory loading `file` beside `loaded` would take: the file's bytes
  // (weights are read resident) and as much KV cache as `loaded` holds.
  uint64_t BytesToLoad(const std::string& file, const serve::ServedModel& loaded) const;

 private:
  const ops::DaemonConfig& args_;
  const serve::SchedulerConfig scheduler_;
  serve::ServeMetrics* const metrics_;
  const Log log_;
};

}  // namespace edgellm

#endif  // EDGELLM_DAEMON_MODEL_LOADER_H_
