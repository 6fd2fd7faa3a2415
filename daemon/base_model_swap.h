// daemon/base_model_swap.h — the base models the OTA agent's versions run
// on: the one serving, and a new one from a base-model release, loaded
// beside it for its test and served by swapping the two. When the new model
// does not fit beside the one serving (its weights and KV cache, with
// memory_low_mib to spare), it is swapped by draining instead, and the log
// says so: the model serving finishes its requests in flight (new ones are
// refused with UNAVAILABLE meanwhile), its memory is returned, the new one
// is loaded and smoke-tested in its place — and if it is not served in the
// end, the model before is loaded again. The OTA agent's thread only.
#ifndef EDGELLM_DAEMON_BASE_MODEL_SWAP_H_
#define EDGELLM_DAEMON_BASE_MODEL_SWAP_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/engine/lora_adapter.h"
#include "daemon/model_loader.h"
#include "daemon/ops/config.h"
#include "daemon/ota/ota_agent.h"
#include "daemon/serve/inference_core.h"

namespace edgellm {

class BaseModelSwap {
 public:
  using Log = std::function<void(const std::string&)>;
  // Everything given must outlive it.
  BaseModelSwap(const ops::DaemonConfig& args, const ModelLoader& loader, serve::InferenceCore& core, Log log)
      : args_(args), loader_(loader), core_(core), log_(std::move(log)) {}

  // How far For may go to have a model that is not loaded.
  enum class Load {
    kNo,      // FailedPrecondition unless it is loaded
    kBeside,  // beside the one serving; Unavailable with the reason when it does not fit (Deferred())
    kDrain,   // beside the one serving, or in its place by draining it
  };
  // The model `files` runs on: the one serving, the candidate, or a new one
  // as `load` allows (a new one drained in is smoke-tested before it is returned).
  absl::StatusOr<std::shared_ptr<serve::ServedModel>> For(const ota::ServedFiles& files, Load load);
  // True when the last For(kBeside) found no room: the candidate is to be
  // tested once the model serving is drained.
  bool Deferred() const { return !deferred_.empty(); }
  // Serves `files` as `version` (draining the model serving first if need be).
  absl::Status Serve(const ota::ServedFiles& files, uint64_t version);
  // The candidate will not be served: its memory goes, and the model before
  // serves again if it was drained for it.
  void Forget();

 private:
  // Drains and unloads the model serving, then loads and smoke-tests `file` in its place.
  absl::StatusOr<std::shared_ptr<serve::ServedModel>> DrainAndLoad(const std::string& file);
  // Loads the model drained for a candidate again and serves it as before.
  void Restore();

  const ops::DaemonConfig& args_;
  const ModelLoader& loader_;
  serve::InferenceCore& core_;
  const Log log_;
  std::shared_ptr<serve::ServedModel> candidate_;
  std::string deferred_;  // the file of a candidate that did not fit beside
  // While a candidate stands in for a drained model: what served before it.
  struct Drained {
    std::string file;
    std::string version;
    std::shared_ptr<const engine::LoraAdapter> adapter;
  };
  std::optional<Drained> drained_;
};

// The adapter in `dir` for `model`; nullptr for "" (the bare base model).
absl::StatusOr<std::shared_ptr<const engine::LoraAdapter>> LoadAdapterFor(const std::string& dir,
                                                                          const engine::LlamaModel& model);

}  // namespace edgellm

#endif  // EDGELLM_DAEMON_BASE_MODEL_SWAP_H_
