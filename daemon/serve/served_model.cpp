#include "daemon/serve/served_model.h"

#include "daemon/engine/token_trie_of.h"

namespace edgellm::serve {

ServedModel::ServedModel(std::unique_ptr<const engine::LlamaModel> model, std::shared_ptr<engine::KvBlockPool> pool,
                         const SchedulerConfig& scheduler_config, ServeMetrics* metrics,
                         std::optional<chat::ChatFormatter> chat, std::string file, GrammarCacheConfig grammars)
    : model_(std::move(model)),
      kv_bytes_(pool->block_bytes() * static_cast<uint64_t>(pool->block_count())),
      scheduler_(std::make_unique<Scheduler>(*model_, std::move(pool), scheduler_config, metrics)),
      chat_(std::move(chat)),
      grammars_([model = model_.get()] { return engine::TokenTrieOf(model->tokenizer()); }, std::move(grammars)),
      file_(std::move(file)) {
  scheduler_->Start();
}

ServedModel::~ServedModel() { scheduler_->Stop(); }

}  // namespace edgellm::serve
