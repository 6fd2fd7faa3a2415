#include "daemon/base_model_swap.h"

#include <chrono>
#include <cmath>

#include "common/str_cat.h"
#include "daemon/ops/memory_guard.h"
#include "daemon/serve/smoke_test.h"

namespace edgellm {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const engine::LoraAdapter>> LoadAdapterFor(const std::string& dir,
                                                                          const engine::LlamaModel& model) {
  if (dir.empty()) return nullptr;
  absl::StatusOr<engine::LoraAdapter> adapter = engine::LoraAdapter::Load(dir, model.config());
  if (!adapter.ok()) return adapter.status();
  return std::make_shared<const engine::LoraAdapter>(*std::move(adapter));
}

absl::StatusOr<std::shared_ptr<serve::ServedModel>> BaseModelSwap::For(const ota::ServedFiles& files, Load load) {
  const std::string file = files.base.empty() ? args_.model : files.base;
  std::shared_ptr<serve::ServedModel> serving = core_.Current().model;
  if (serving && serving->file() == file) return serving;
  if (candidate_ && candidate_->file() == file) return candidate_;
  if (load == Load::kNo) return absl::FailedPreconditionError(StrCat(file, " is not loaded"));
  candidate_.reset();
  deferred_.clear();
  if (serving) {
    const uint64_t needed = loader_.BytesToLoad(file, *serving);
    const uint64_t reserve = static_cast<uint64_t>(args_.memory_low_mib) << 20;
    if (absl::StatusOr<uint64_t> available = ops::SystemMemory().AvailableBytes();
        available.ok() && *available < needed + reserve) {
      const std::string why =
          StrCat("the base model needs about ", needed >> 20, " MiB beside the one serving (weights and KV cache), and ",
                 reserve >> 20, " MiB must stay free (memory_low_mib); ", *available >> 20, " MiB are available");
      if (load == Load::kDrain) {
        log_(StrCat("ota: ", why, ": draining the model serving (requests in flight finish, new ones are refused ",
                    "until the swap), then swapping"));
        serving.reset();  // holding it would keep its memory
        return DrainAndLoad(file);
      }
      deferred_ = file;
      return absl::UnavailableError(why);
    }
  }
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::shared_ptr<serve::ServedModel>> loaded = loader_.Load(file);
  if (!loaded.ok()) return loaded.status();
  log_(StrCat("ota: loaded ", file, serving ? " beside the model serving" : "", " in ", SecondsSince(start), " s"));
  candidate_ = *std::move(loaded);
  return candidate_;
}

absl::StatusOr<std::shared_ptr<serve::ServedModel>> BaseModelSwap::DrainAndLoad(const std::string& file) {
  serve::Serving before = core_.Current();
  drained_ = Drained{before.model->file(), before.version, before.adapter};
  before = {};  // holding the model would keep its memory
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = serve::Clock::now() + std::chrono::duration_cast<serve::Clock::duration>(
                                                  std::chrono::duration<double>(args_.drain_timeout_seconds));
  if (!core_.Unload(deadline)) log_("ota: the drained model's memory was not returned in time; loading anyway");
  log_(StrCat("ota: the model serving was drained and unloaded in ", SecondsSince(start), " s"));
  absl::StatusOr<std::shared_ptr<serve::ServedModel>> loaded = loader_.Load(file);
  absl::Status usable = loaded.status();
  if (usable.ok()) usable = serve::SmokeTest((*loaded)->scheduler(), (*loaded)->model(), nullptr, args_.ota_smoke_prompt);
  if (!usable.ok()) {
    loaded = usable;  // its memory goes before the model before comes back
    Restore();
    return absl::FailedPreconditionError(StrCat("loaded in place of the drained model: ", usable.message()));
  }
  candidate_ = *std::move(loaded);
  return candidate_;
}

void BaseModelSwap::Restore() {
  candidate_.reset();
  if (!drained_) return;
  const Drained before = *std::exchange(drained_, std::nullopt);
  absl::StatusOr<std::shared_ptr<serve::ServedModel>> model = loader_.Load(before.file);
  if (!model.ok()) {
    log_(StrCat("ota: the drained model ", before.file, " does not load again: ", model.status().message()));
    return;
  }
  core_.SetModelVersion(before.version, before.adapter, *std::move(model));
  log_(StrCat("ota: serving the drained model ", before.file, " again"));
}

absl::Status BaseModelSwap::Serve(const ota::ServedFiles& files, uint64_t version) {
  absl::StatusOr<std::shared_ptr<serve::ServedModel>> model = For(files, Load::kDrain);
  if (!model.ok()) return model.status();
  absl::StatusOr<std::shared_ptr<const engine::LoraAdapter>> adapter = LoadAdapterFor(files.adapter, (*model)->model());
  if (!adapter.ok()) {
    Restore();
    return adapter.status();
  }
  core_.SetModelVersion(files.adapter.empty() && files.base.empty() ? std::string("base") : StrCat("v", version),
                        *std::move(adapter), *model);
  candidate_.reset();
  drained_.reset();
  deferred_.clear();
  return absl::OkStatus();
}

void BaseModelSwap::Forget() {
  deferred_.clear();
  Restore();
}

}  // namespace edgellm
