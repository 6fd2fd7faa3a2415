// serve/served_model.h — one base model as the daemon serves it: its weights,
// the KV blocks and scheduler that run them, its chat template and the
// grammars compiled over its vocabulary. A daemon swapping its base model
// holds two for a while: requests keep the one they were tokenized for until
// they end, new ones get the new one.
#ifndef EDGELLM_SERVE_SERVED_MODEL_H_
#define EDGELLM_SERVE_SERVED_MODEL_H_

#include <memory>
#include <optional>
#include <string>

#include "daemon/chat/chat_formatter.h"
#include "daemon/engine/llama_model.h"
#include "daemon/serve/grammar_cache.h"
#include "daemon/serve/scheduler.h"

namespace edgellm::serve {

class ServedModel {
 public:
  // Starts a scheduler for `model` on `pool`. `file` names where the model
  // came from (its GGUF path).
  ServedModel(std::unique_ptr<const engine::LlamaModel> model, std::shared_ptr<engine::KvBlockPool> pool,
              const SchedulerConfig& scheduler_config, ServeMetrics* metrics,
              std::optional<chat::ChatFormatter> chat, std::string file, GrammarCacheConfig grammars = {});
  // Ends every request still running with Unavailable and joins the
  // scheduler's thread: never from that thread.
  ~ServedModel();
  ServedModel(const ServedModel&) = delete;
  ServedModel& operator=(const ServedModel&) = delete;

  const engine::LlamaModel& model() const { return *model_; }
  Scheduler& scheduler() const { return *scheduler_; }
  const std::optional<chat::ChatFormatter>& chat() const { return chat_; }
  GrammarCache& grammars() const { return grammars_; }
  const std::string& file() const { return file_; }
  // The bytes its KV blocks may take.
  uint64_t kv_bytes() const { return kv_bytes_; }

 private:
  std::unique_ptr<const engine::LlamaModel> model_;
  uint64_t kv_bytes_;
  std::unique_ptr<Scheduler> scheduler_;
  std::optional<chat::ChatFormatter> chat_;
  mutable GrammarCache grammars_;
  std::string file_;
};

}  // namespace edgellm::serve

#endif  // EDGELLM_SERVE_SERVED_MODEL_H_
