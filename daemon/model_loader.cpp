#include "daemon/model_loader.h"

#include <filesystem>

#include "common/read_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/engine/drafter.h"
#include "daemon/serve/inference_core.h"

namespace edgellm {
namespace {

// The model, loaded and warmed up: the first forward pays for allocations and
// thread start-up before any request does.
absl::StatusOr<std::unique_ptr<engine::LlamaModel>> LoadWarm(const ops::DaemonConfig& args, const std::string& file) {
  EDGELLM_ASSIGN_OR_RETURN(const engine::ModelOptions options, ServingModelOptions(args));
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<engine::LlamaModel> model, engine::LlamaModel::Load(file, options));
  const std::vector<engine::TokenId> tokens = model->tokenizer().Encode("warm up");
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<engine::KvCache> cache, model->NewCache(static_cast<int32_t>(tokens.size())));
  std::vector<float> logits;
  if (absl::Status s = model->Forward(tokens, cache.get(), false, &logits); !s.ok()) {
    return absl::InternalError("warm-up failed: " + std::string(s.message()));
  }
  return model;
}

// The KV blocks every sequence draws from, under kv_cache_mib (or room for
// max_active full contexts).
absl::StatusOr<std::shared_ptr<engine::KvBlockPool>> NewKvPool(const ops::DaemonConfig& args,
                                                               const engine::LlamaModel& model) {
  engine::KvPoolOptions options;
  options.block_size = args.kv_block_size;
  options.prefix_caching = args.prefix_caching;
  options.block_count =
      args.kv_cache_mib > 0
          ? engine::KvBlockPool::BlocksInBudget(model.kv_shape(), args.kv_block_size,
                                                static_cast<uint64_t>(args.kv_cache_mib) << 20)
          : args.max_active * ((model.context_length() + args.kv_block_size - 1) / args.kv_block_size);
  absl::StatusOr<std::shared_ptr<engine::KvBlockPool>> pool = model.NewBlockPool(options);
  if (!pool.ok()) {
    return absl::InvalidArgumentError("kv_cache_mib " + std::to_string(args.kv_cache_mib) + ": " +
                                      std::string(pool.status().message()));
  }
  return pool;
}

// The chat template of the model, or of the config's override; nullopt when there is none.
absl::StatusOr<std::optional<chat::ChatFormatter>> ChatTemplate(const ops::DaemonConfig& args,
                                                                const engine::LlamaModel& model) {
  std::string source = args.chat_template;
  if (!args.chat_template_file.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(source, ReadFileToString(args.chat_template_file, "chat_template_file"));
  }
  return serve::LoadChatTemplate(model, source);
}

}  // namespace

absl::StatusOr<engine::ModelOptions> ServingModelOptions(const ops::DaemonConfig& args) {
  engine::ModelOptions options;
  options.threads = args.threads;
  options.context_length = args.context_length;
  options.file_access = args.mmap_weights ? engine::FileAccess::kMapped : engine::FileAccess::kResident;
  // Served by the engine's CPU forward only (training runs in a process of its own).
  options.pack_weights = true;
  EDGELLM_ASSIGN_OR_RETURN(options.kv_type, engine::ParseKvType(args.kv_type));
  return options;
}

ModelLoader::ModelLoader(const ops::DaemonConfig& args, serve::SchedulerConfig scheduler, serve::ServeMetrics* metrics,
                         Log log)
    : args_(args), scheduler_(std::move(scheduler)), metrics_(metrics), log_(std::move(log)) {}

absl::StatusOr<std::shared_ptr<serve::ServedModel>> ModelLoader::Load(const std::string& file) const {
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<engine::LlamaModel> model, LoadWarm(args_, file));
  EDGELLM_ASSIGN_OR_RETURN(std::shared_ptr<engine::KvBlockPool> pool, NewKvPool(args_, *model));
  EDGELLM_ASSIGN_OR_RETURN(std::optional<chat::ChatFormatter> chat, ChatTemplate(args_, *model));
  serve::SchedulerConfig scheduler = scheduler_;
  if (scheduler.draft_model != nullptr) {
    if (absl::Status fits = engine::ModelDrafter::Create(*model, *scheduler.draft_model, {}).status(); !fits.ok()) {
      log_(StrCat(file, ": the draft model cannot draft for it (", fits.message(), "); drafting by prompt lookup"));
      scheduler.draft_model = nullptr;
    }
  }
  const std::string name = std::filesystem::path(file).filename().string();
  log_(StrCat(name, ": ", model->config().architecture, ", ", model->parameter_count(), " parameters, ",
              model->weight_type(), "; KV cache (", args_.kv_type, ") ", pool->block_count(), " blocks of ",
              args_.kv_block_size, " positions, ", (pool->block_bytes() * pool->block_count()) >> 20,
              " MiB; prefix caching ", args_.prefix_caching ? "on" : "off", "; chat template: ",
              !chat ? std::string("none (chat requests are refused)")
                    : (args_.chat_template.empty() && args_.chat_template_file.empty() ? "the model's"
                                                                                         : "from the config")));
  return std::make_shared<serve::ServedModel>(std::move(model), std::move(pool), scheduler, metrics_, std::move(chat),
                                              file);
}

uint64_t ModelLoader::BytesToLoad(const std::string& file, const serve::ServedModel& loaded) const {
  std::error_code ec;
  const uint64_t file_bytes = std::filesystem::file_size(file, ec);
  return (ec ? 0 : file_bytes) + loaded.kv_bytes();
}

}  // namespace edgellm
