#include "daemon/serve/inference_core.h"

#include <algorithm>
#include <limits>
#include <random>

#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/token_trie_of.h"

namespace edgellm::serve {

namespace {

// How often replaced models are checked for requests still running on them.
constexpr auto kRetireInterval = std::chrono::milliseconds(200);

}  // namespace

InferenceCore::InferenceCore(std::shared_ptr<ServedModel> model, InferenceCoreConfig config, ServeMetrics* metrics)
    : config_(std::move(config)),
      metrics_(metrics),
      sessions_(config_.sessions),
      places_(model->scheduler().config().max_active + model->scheduler().config().max_waiting) {
  serving_.model = std::move(model);
  serving_.version = "local";
  retirer_ = std::thread([this] { RetireModels(); });
}

InferenceCore::~InferenceCore() { Stop(); }

Serving InferenceCore::Current() const {
  MutexLock lock(&adapters_mu_);
  return serving_;
}

absl::StatusOr<Serving> InferenceCore::Acquire() const {
  Serving serving = Current();
  if (!serving.model) {
    return absl::UnavailableError(
        "the daemon is swapping its base model (the new one does not fit beside the old); retry in a few seconds");
  }
  return serving;
}

bool InferenceCore::Unload(Clock::time_point deadline) {
  std::shared_ptr<ServedModel> unloaded;
  {
    MutexLock lock(&adapters_mu_);
    if (!serving_.model) return true;
    unloaded = serving_.model;
    replaced_.push_back(std::exchange(serving_.model, nullptr));
    serving_.version = "swapping";
    serving_.adapter = nullptr;
  }
  // Requests in flight finish (or are cut off at the deadline); the retiring thread then frees it.
  unloaded->scheduler().Drain(deadline);
  std::weak_ptr<ServedModel> gone = unloaded;
  unloaded.reset();
  const auto give_up = deadline + std::chrono::seconds(10);
  while (!gone.expired() && Clock::now() < give_up) std::this_thread::sleep_for(kRetireInterval / 4);
  return gone.expired();
}

std::vector<std::shared_ptr<ServedModel>> InferenceCore::LiveModels() const {
  MutexLock lock(&adapters_mu_);
  std::vector<std::shared_ptr<ServedModel>> models = replaced_;
  if (serving_.model) models.push_back(serving_.model);
  return models;
}

void InferenceCore::RetireModels() {
  for (;;) {
    std::vector<std::shared_ptr<ServedModel>> unused;
    std::function<void(const std::string&)> on_freed;
    {
      MutexLock lock(&adapters_mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(adapters_mu_) { return stopping_; };
      adapters_mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::FromChrono(kRetireInterval));
      if (stopping_) return;
      // Only this list and requests hold a replaced model: when the list's
      // reference is the last, no request can take it again.
      for (auto it = replaced_.begin(); it != replaced_.end();) {
        if (it->use_count() == 1) {
          unused.push_back(std::move(*it));
          it = replaced_.erase(it);
        } else {
          ++it;
        }
      }
      on_freed = on_freed_;
    }
    for (std::shared_ptr<ServedModel>& model : unused) {
      const std::string file = model->file();
      model.reset();
      if (on_freed) on_freed(file);
    }
  }
}

void InferenceCore::Stop() {
  {
    MutexLock lock(&adapters_mu_);
    if (stopping_ && !retirer_.joinable()) return;
    stopping_ = true;
  }
  if (retirer_.joinable()) retirer_.join();
  for (const std::shared_ptr<ServedModel>& model : LiveModels()) model->scheduler().Stop();
}

void InferenceCore::SetMemoryPressure(ops::MemoryPressure pressure) {
  for (const std::shared_ptr<ServedModel>& model : LiveModels()) model->scheduler().SetMemoryPressure(pressure);
}

bool InferenceCore::Alive(Clock::duration max_step) const {
  for (const std::shared_ptr<ServedModel>& model : LiveModels()) {
    if (!model->scheduler().Alive(max_step)) return false;
  }
  return true;
}

int InferenceCore::Drain(Clock::time_point deadline) {
  int cut = 0;
  for (const std::shared_ptr<ServedModel>& model : LiveModels()) cut += model->scheduler().Drain(deadline);
  return cut;
}

int InferenceCore::models_loaded() const {
  MutexLock lock(&adapters_mu_);
  return static_cast<int>(replaced_.size()) + (serving_.model ? 1 : 0);
}

void InferenceCore::set_on_model_freed(std::function<void(const std::string& file)> on_freed) {
  MutexLock lock(&adapters_mu_);
  on_freed_ = std::move(on_freed);
}

absl::Status InferenceCore::CheckModel(const std::string& name) const {
  if (name.empty() || name == config_.model_name) return absl::OkStatus();
  return absl::InvalidArgumentError(edgellm::StrCat("unknown model '", name.substr(0, 128), "'; this daemon serves '",
                                                    config_.model_name, "'"));
}

absl::StatusOr<GenerationRequest> InferenceCore::Prepare(const Serving& serving, const CompletionParams& params,
                                                         const std::string& prompt, Clock::time_point deadline,
                                                         std::string_view what) const {
  const engine::LlamaModel& model = serving.model->model();
  EDGELLM_RETURN_IF_ERROR(CheckModel(params.model));
  if (prompt.size() > config_.max_prompt_bytes) {
    return absl::InvalidArgumentError(
        edgellm::StrCat(what, " has ", prompt.size(), " bytes; the limit is ", config_.max_prompt_bytes));
  }
  const int32_t context = serving.model->scheduler().context_limit();
  if (params.max_tokens && *params.max_tokens == 0) return absl::InvalidArgumentError("max_tokens must be at least 1");
  if (params.max_tokens && *params.max_tokens >= static_cast<uint32_t>(model.context_length())) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("max_tokens ", *params.max_tokens, " does not fit the context of ", model.context_length()));
  }
  GenerationRequest out;
  engine::GenerateOptions& o = out.options;
  if (params.adapter.empty() && serving.adapter) {
    out.adapter = serving.adapter;
    o.adapter = out.adapter.get();
    out.prefix_space = serving.prefix_space;
  }
  if (!params.adapter.empty()) {
    MutexLock lock(&adapters_mu_);
    auto it = std::find_if(adapters_.begin(), adapters_.end(),
                           [&](const LoadedAdapter& a) { return a.served.name == params.adapter; });
    if (it == adapters_.end()) {
      std::vector<std::string> names;
      for (const LoadedAdapter& a : adapters_) names.push_back(a.served.name);
      std::sort(names.begin(), names.end());
      return absl::InvalidArgumentError(edgellm::StrCat(
          "unknown adapter '", params.adapter.substr(0, 64), "'; loaded: ",
          names.empty() ? std::string("none") : absl::StrJoin(names, ", ")));
    }
    // Loaded for the base model served before a base-model release, perhaps.
    if (absl::Status fits = it->served.adapter->CheckFits(model.config()); !fits.ok()) {
      return absl::FailedPreconditionError(edgellm::StrCat("adapter '", it->served.name,
                                                           "' does not fit the base model served now: ",
                                                           fits.message()));
    }
    out.adapter = it->served.adapter;
    o.adapter = out.adapter.get();
    out.prefix_space = it->prefix_space;
  }
  if (params.temperature) o.sampling.temperature = *params.temperature;
  if (params.top_k) o.sampling.top_k = static_cast<int32_t>(std::min<uint32_t>(*params.top_k, 1u << 30));
  if (params.top_p) o.sampling.top_p = *params.top_p;
  if (params.min_p) o.sampling.min_p = *params.min_p;
  if (params.repeat_penalty) o.sampling.repeat_penalty = *params.repeat_penalty;
  o.sampling.seed = params.seed ? *params.seed : std::random_device{}();
  if (params.draft_tokens && *params.draft_tokens > 64) {
    return absl::InvalidArgumentError(edgellm::StrCat("draft_tokens ", *params.draft_tokens, " is above 64"));
  }
  o.draft_tokens = params.draft_tokens ? static_cast<int32_t>(*params.draft_tokens) : config_.draft_tokens;
  if (params.stop.size() > 16) return absl::InvalidArgumentError("at most 16 stop strings");
  for (const std::string& stop : params.stop) {
    if (stop.size() > 256) return absl::InvalidArgumentError("a stop string is longer than 256 bytes");
    if (stop.empty()) return absl::InvalidArgumentError("a stop string is empty");
    o.stop.push_back(stop);
  }
  if (params.top_logprobs > engine::kMaxTopLogprobs) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("top_logprobs ", params.top_logprobs, " is above ", engine::kMaxTopLogprobs));
  }
  o.top_logprobs = params.top_logprobs;
  if (!params.grammar.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(o.grammar, serving.model->grammars().Get(params.grammar));
    o.grammar_trigger = params.grammar_trigger;
  }
  out.prompt_ids = model.tokenizer().Encode(prompt, o.add_special, o.parse_special);
  // Without a limit, the reply may fill what the context leaves after the prompt.
  o.max_tokens = params.max_tokens
                     ? static_cast<int32_t>(*params.max_tokens)
                     : std::max<int32_t>(1, context - static_cast<int32_t>(out.prompt_ids.size()));
  out.deadline = deadline;
  return out;
}

absl::StatusOr<std::string> InferenceCore::RenderChat(const Serving& serving, const nlohmann::ordered_json& messages,
                                                      const nlohmann::ordered_json& tools,
                                                      bool add_generation_prompt) const {
  const std::optional<chat::ChatFormatter>& chat = serving.model->chat();
  if (!chat) {
    return absl::FailedPreconditionError(edgellm::StrCat(
        "model '", config_.model_name,
        "' has no chat template (tokenizer.chat_template); set chat_template or chat_template_file in the config"));
  }
  const chat::ToolCallFormat format = chat->tool_call_format();
  absl::StatusOr<std::string> prompt =
      chat->Render(chat::MessagesForFormat(format, messages, tools), tools, add_generation_prompt);
  // Templates without a system role (Gemma's) take the generic format's
  // description of the tools in the first user turn instead.
  if (!prompt.ok() && format == chat::ToolCallFormat::kGeneric && tools.is_array() && !tools.empty()) {
    absl::StatusOr<std::string> without_system = chat->Render(
        chat::MessagesForFormat(format, messages, tools, /*system_role=*/false), tools, add_generation_prompt);
    if (without_system.ok()) return without_system;
  }
  return prompt;
}

void InferenceCore::Embed(const std::string& model, std::vector<std::string> inputs,
                          std::function<void(absl::StatusOr<EmbedResult>)> done) const {
  if (absl::Status s = CheckModel(model); !s.ok()) return done(s);
  if (inputs.empty()) return done(absl::InvalidArgumentError("input is empty: give at least one text"));
  if (inputs.size() > static_cast<size_t>(config_.max_embedding_inputs)) {
    return done(absl::InvalidArgumentError(edgellm::StrCat("input has ", inputs.size(), " texts; the limit is ",
                                                           config_.max_embedding_inputs)));
  }
  uint64_t bytes = 0;
  for (const std::string& text : inputs) bytes += text.size();
  if (bytes > config_.max_prompt_bytes) {
    return done(absl::InvalidArgumentError(
        edgellm::StrCat("input has ", bytes, " bytes; the limit is ", config_.max_prompt_bytes)));
  }
  absl::StatusOr<Serving> serving = Acquire();
  if (!serving.ok()) return done(serving.status());
  const std::shared_ptr<ServedModel> served = serving->model;
  auto tokens = std::make_shared<std::vector<std::vector<engine::TokenId>>>();
  int64_t total = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    tokens->push_back(served->model().tokenizer().Encode(inputs[i]));
    if (tokens->back().empty()) {
      return done(absl::InvalidArgumentError(edgellm::StrCat("input[", i, "] is empty")));
    }
    total += static_cast<int64_t>(tokens->back().size());
  }
  // The inputs run as one forward beside the KV pool: bounded by what one request may hold.
  if (total > served->scheduler().context_limit()) {
    return done(absl::InvalidArgumentError(edgellm::StrCat("input has ", total, " tokens in all; the limit is ",
                                                           served->scheduler().context_limit())));
  }
  auto shared_done = std::make_shared<std::function<void(absl::StatusOr<EmbedResult>)>>(std::move(done));
  // The task holds no reference to the model: it runs on that model's own
  // scheduler, which the model outlives.
  const engine::LlamaModel* weights = &served->model();
  absl::Status queued = served->scheduler().SubmitTask([weights, tokens, shared_done, total](absl::Status runnable) {
    if (!runnable.ok()) return (*shared_done)(runnable);
    std::vector<float> flat;
    if (absl::Status s = weights->Embed(*tokens, &flat); !s.ok()) return (*shared_done)(s);
    EmbedResult result;
    const size_t d = static_cast<size_t>(weights->config().n_embd);
    for (size_t i = 0; i < tokens->size(); ++i) result.embeddings.emplace_back(flat.begin() + i * d, flat.begin() + (i + 1) * d);
    result.prompt_tokens = static_cast<int32_t>(total);
    (*shared_done)(std::move(result));
  });
  if (!queued.ok()) (*shared_done)(queued);
}

ModelDescription InferenceCore::Describe() const {
  const Serving serving = Current();
  ModelDescription d;
  d.name = config_.model_name;
  d.version = serving.version;
  {
    MutexLock lock(&adapters_mu_);
    for (const LoadedAdapter& a : adapters_) d.adapters.push_back(a.served.name);
  }
  std::sort(d.adapters.begin(), d.adapters.end());
  if (!serving.model) return d;
  const engine::LlamaModel& model = serving.model->model();
  d.architecture = model.config().architecture;
  d.parameters = model.parameter_count();
  d.quantization = std::string(model.weight_type());
  d.context_length = model.context_length();
  d.embedding_length = model.config().n_embd;
  d.has_chat_template = serving.model->chat().has_value();
  return d;
}

void InferenceCore::AddAdapter(ServedAdapter adapter) {
  MutexLock lock(&adapters_mu_);
  LoadedAdapter loaded{std::move(adapter), next_prefix_space_++};
  auto it = std::find_if(adapters_.begin(), adapters_.end(),
                         [&](const LoadedAdapter& a) { return a.served.name == loaded.served.name; });
  if (it != adapters_.end()) {
    *it = std::move(loaded);
  } else {
    adapters_.push_back(std::move(loaded));
  }
}

void InferenceCore::SetModelVersion(std::string version, std::shared_ptr<const engine::LoraAdapter> adapter,
                                    std::shared_ptr<ServedModel> model) {
  MutexLock lock(&adapters_mu_);
  if (model && model != serving_.model) {
    std::shared_ptr<ServedModel> before = std::exchange(serving_.model, std::move(model));
    if (before) replaced_.push_back(std::move(before));
  }
  serving_.version = std::move(version);
  serving_.prefix_space = adapter ? next_prefix_space_++ : 0;
  serving_.adapter = std::move(adapter);
}

absl::Status InferenceCore::StreamOpened(const std::string& caller) {
  const int share = config_.max_caller_share >= 1.0
                        ? std::numeric_limits<int>::max()
                        : std::max(1, static_cast<int>(config_.max_caller_share * places_));
  MutexLock lock(&streams_mu_);
  int& held = streams_by_caller_[caller];
  if (held >= share) {
    return absl::ResourceExhaustedError(edgellm::StrCat("caller '", caller, "' already has ", held,
                                                        " requests in flight, its share (max_caller_share); retry later"));
  }
  ++held;
  ++open_streams_;
  return absl::OkStatus();
}

void InferenceCore::StreamClosed(const std::string& caller) {
  MutexLock lock(&streams_mu_);
  --open_streams_;
  auto it = streams_by_caller_.find(caller);
  if (it != streams_by_caller_.end() && --it->second <= 0) streams_by_caller_.erase(it);
}

bool InferenceCore::WaitForStreams(Clock::time_point deadline) {
  MutexLock lock(&streams_mu_);
  auto none_open = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(streams_mu_) { return open_streams_ == 0; };
  return streams_mu_.AwaitWithTimeout(absl::Condition(&none_open), absl::FromChrono(deadline - Clock::now()));
}

absl::StatusOr<std::optional<chat::ChatFormatter>> LoadChatTemplate(const engine::LlamaModel& model,
                                                                    const std::string& override_source) {
  std::string source = override_source;
  if (source.empty()) {
    const engine::GgufValue* value = model.gguf().Find("tokenizer.chat_template");
    if (value == nullptr) return std::optional<chat::ChatFormatter>();
    absl::StatusOr<std::string> text = model.gguf().GetString("tokenizer.chat_template");
    if (!text.ok()) return text.status();
    source = *std::move(text);
  }
  const engine::Tokenizer& tokenizer = model.tokenizer();
  const auto token_text = [&](engine::TokenId id) {
    return id >= 0 && id < tokenizer.vocab_size() ? tokenizer.vocab().tokens[static_cast<size_t>(id)] : std::string();
  };
  // The tokenizer adds BOS itself where the model asks, so a template's own BOS text would double it.
  EDGELLM_ASSIGN_OR_RETURN(chat::ChatFormatter formatter,
                           chat::ChatFormatter::Create(source, token_text(tokenizer.bos_id()),
                                                       token_text(tokenizer.eos_id()), tokenizer.vocab().add_bos));
  return std::optional<chat::ChatFormatter>(std::move(formatter));
}

}  // namespace edgellm::serve
