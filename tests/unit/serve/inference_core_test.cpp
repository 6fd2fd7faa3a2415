#include "daemon/serve/inference_core.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/mutex.h"
#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/synthetic_model.h"
#include "tests/support/jinja2_reference.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/test_support.h"

namespace edgellm::serve {
namespace {

using Json = nlohmann::ordered_json;

// `file` served as the daemon serves a model: its own pool and scheduler.
std::shared_ptr<ServedModel> Served(const std::string& file, SchedulerConfig places = {}, int32_t context = 64) {
  engine::ModelOptions options;
  options.threads = 1;
  options.context_length = context;
  auto model = engine::LlamaModel::Load(file, options);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return nullptr;
  auto pool = (*model)->NewBlockPool({16, 8, true});
  EXPECT_TRUE(pool.ok()) << pool.status();
  if (!pool.ok()) return nullptr;
  return std::make_shared<ServedModel>(*std::move(model), *std::move(pool), places, nullptr, std::nullopt, file);
}

// A model whose file carries Llama 3's vocabulary and chat template (from
// llama.cpp's vocab-only file), as a real Llama 3 GGUF does.
std::unique_ptr<engine::LlamaModel> Llama3WithItsTemplate(const std::filesystem::path& dir, const std::string& vocab) {
  std::optional<engine::ModelShape> shape = engine::FindShape("test-llama3");
  EXPECT_TRUE(shape.has_value());
  const std::string path = (dir / "llama3.gguf").string();
  const absl::Status written = engine::WriteSyntheticModel({*shape, engine::GgmlType::kF32, 1, vocab}, path);
  EXPECT_TRUE(written.ok()) << written;
  return testing::LoadModel(path);
}

TEST(LoadChatTemplate, RendersTheTemplateTheFileCarriesAsJinja2Does) {
  const std::filesystem::path dir = testing::TestDir();
  const std::string vocab = testing::SharedPath("vocab-tests/ggml-vocab-llama-bpe.gguf");
  EDGELLM_REQUIRE_SHARED_FILE(vocab);
  std::unique_ptr<engine::LlamaModel> model = Llama3WithItsTemplate(dir, vocab);
  ASSERT_NE(model, nullptr);
  absl::StatusOr<std::optional<chat::ChatFormatter>> formatter = LoadChatTemplate(*model, "");
  ASSERT_TRUE(formatter.ok()) << formatter.status();
  ASSERT_TRUE(formatter->has_value()) << "the file has tokenizer.chat_template";
  const Json messages = Json::parse(R"([{"role": "system", "content": "Be kind."},
                                        {"role": "user", "content": "Hello there"}])");
  absl::StatusOr<std::string> prompt = (*formatter)->Render(messages, nullptr, true);
  ASSERT_TRUE(prompt.ok()) << prompt.status();

  // The reference: Python's Jinja2 on the same template text.
  const std::string source = (dir / "template.jinja").string();
  std::ofstream(source) << *model->gguf().GetString("tokenizer.chat_template");
  const std::string want = testing::Jinja2Renders(
      source, {{"messages", messages}, {"add_generation_prompt", true}, {"bos_token", "<|begin_of_text|>"},
               {"eos_token", "<|end_of_text|>"}},
      dir);
  ASSERT_EQ(want.rfind("<|begin_of_text|>", 0), 0u) << want;
  // The tokenizer adds BOS itself, so the prompt leaves it out: one BOS, as llama.cpp gives.
  EXPECT_EQ(*prompt, want.substr(std::string("<|begin_of_text|>").size()));
  const std::vector<engine::TokenId> ids = model->tokenizer().Encode(*prompt);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), model->tokenizer().bos_id()), 1);

  // An override replaces it; a broken one is refused naming the template.
  absl::StatusOr<std::optional<chat::ChatFormatter>> custom = LoadChatTemplate(*model, "{{ messages[0].content }}");
  ASSERT_TRUE(custom.ok() && custom->has_value());
  EXPECT_EQ(*(*custom)->Render(messages, nullptr, true), "Be kind.");
  EXPECT_EQ(LoadChatTemplate(*model, "{% if %}").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(InferenceCore, NoCallerHoldsMoreThanItsShareOfThePlaces) {
  SchedulerConfig places;
  places.max_active = 2;
  places.max_waiting = 2;
  std::shared_ptr<ServedModel> model = Served(testing::SyntheticModel("test-spm", engine::GgmlType::kF32), places);
  ASSERT_NE(model, nullptr);
  InferenceCoreConfig config;
  config.max_caller_share = 0.5;  // 2 of the 4 places
  InferenceCore core(model, config);
  ASSERT_TRUE(core.StreamOpened("cert:app-a").ok());
  ASSERT_TRUE(core.StreamOpened("cert:app-a").ok());
  const absl::Status third = core.StreamOpened("cert:app-a");
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(third.message().find("max_caller_share"), std::string::npos) << third;
  EXPECT_TRUE(core.StreamOpened("cert:app-b").ok());  // another caller still gets in
  core.StreamClosed("cert:app-a");
  EXPECT_TRUE(core.StreamOpened("cert:app-a").ok());  // a place handed back is its own again
  for (const char* caller : {"cert:app-a", "cert:app-a", "cert:app-b"}) core.StreamClosed(caller);
  EXPECT_TRUE(core.WaitForStreams(Clock::now()));  // the refused one was never counted
}

TEST(InferenceCore, EmbeddingsRunBetweenStepsAndBadOnesNeverQueue) {
  std::shared_ptr<ServedModel> model = Served(testing::SyntheticModel("test-spm", engine::GgmlType::kF32));
  ASSERT_NE(model, nullptr);
  InferenceCoreConfig config;
  config.model_name = "test";
  config.max_embedding_inputs = 2;
  InferenceCore core(model, config);
  EXPECT_FALSE(core.has_chat_template());
  EXPECT_EQ(core.RenderChat(core.Current(), Json::array(), nullptr).status().code(),
            absl::StatusCode::kFailedPrecondition);

  const auto embed = [&](const std::string& name, std::vector<std::string> inputs) {
    Notification done;
    absl::StatusOr<EmbedResult> out = absl::UnknownError("not called");
    core.Embed(name, std::move(inputs), [&](absl::StatusOr<EmbedResult> result) {
      out = std::move(result);
      done.Notify();
    });
    done.WaitForNotification();
    return out;
  };
  absl::StatusOr<EmbedResult> ok = embed("test", {"hello world", "hi"});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->embeddings.size(), 2u);
  EXPECT_EQ(ok->embeddings[0].size(), static_cast<size_t>(model->model().config().n_embd));
  EXPECT_GT(ok->prompt_tokens, 2);
  EXPECT_EQ(embed("other", {"x"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(embed("", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(embed("", {"a", "b", "c"}).status().code(), absl::StatusCode::kInvalidArgument);
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += std::string(1, static_cast<char>('a' + i % 26)) + " ";
  EXPECT_EQ(embed("", {long_text}).status().code(), absl::StatusCode::kInvalidArgument)
      << "more tokens than one request may hold";
  core.Stop();
  EXPECT_EQ(embed("", {"x"}).status().code(), absl::StatusCode::kUnavailable);
}

// The events of one generation, collected until its last.
struct Collected {
  Mutex mu;
  std::vector<engine::TokenId> tokens ABSL_GUARDED_BY(mu);
  std::optional<absl::Status> status ABSL_GUARDED_BY(mu);
  EventSink Sink() {
    return [this](GenerationEvent e) {
      MutexLock lock(&mu);
      tokens.insert(tokens.end(), e.token_ids.begin(), e.token_ids.end());
      if (e.last) status = e.status;
    };
  }
  absl::Status Wait() {
    MutexLock lock(&mu);
    mu.Await(absl::Condition(+[](std::optional<absl::Status>* s) { return s->has_value(); }, &status));
    return *status;
  }
  size_t token_count() {
    MutexLock lock(&mu);
    return tokens.size();
  }
};

TEST(InferenceCore, ASwappedBaseModelFinishesTheRequestsOnItThenIsFreed) {
  const std::string old_file = testing::SyntheticModel("test-spm", engine::GgmlType::kF32);
  const std::string new_file = testing::SyntheticModel("test-spm", engine::GgmlType::kQ8_0, 2);
  std::shared_ptr<ServedModel> old_model = Served(old_file, {}, 256);
  std::shared_ptr<ServedModel> new_model = Served(new_file, {}, 256);
  ASSERT_TRUE(old_model && new_model);
  std::weak_ptr<ServedModel> old_weak = old_model;
  InferenceCore core(std::move(old_model), {});
  Mutex freed_mu;
  std::vector<std::string> freed;
  core.set_on_model_freed([&](const std::string& file) {
    MutexLock lock(&freed_mu);
    freed.push_back(file);
  });
  const CompletionParams params = [] {
    CompletionParams p;
    p.max_tokens = 100;
    p.temperature = 0.0f;
    return p;
  }();

  // A long request on the old model, under way when the swap comes.
  Serving before = core.Current();
  absl::StatusOr<GenerationRequest> long_request = core.Prepare(before, params, "Once upon a time", Clock::time_point::max());
  ASSERT_TRUE(long_request.ok()) << long_request.status();
  long_request->options.ignore_eos = true;
  Collected on_old;
  ASSERT_TRUE(before.model->scheduler().Submit(*std::move(long_request), on_old.Sink()).ok());
  core.SetModelVersion("v2", nullptr, new_model);
  EXPECT_EQ(core.Describe().quantization, "Q8_0");
  EXPECT_EQ(core.Describe().version, "v2");
  EXPECT_EQ(core.models_loaded(), 2);

  // A new request runs on the new model meanwhile.
  const Serving after = core.Current();
  EXPECT_EQ(after.model, new_model);
  absl::StatusOr<GenerationRequest> short_request = core.Prepare(after, params, "Hello", Clock::time_point::max());
  ASSERT_TRUE(short_request.ok());
  short_request->options.max_tokens = 4;
  short_request->options.ignore_eos = true;
  Collected on_new;
  ASSERT_TRUE(after.model->scheduler().Submit(*std::move(short_request), on_new.Sink()).ok());
  EXPECT_TRUE(on_new.Wait().ok());
  EXPECT_EQ(on_new.token_count(), 4u);

  // The old one runs to its end, none cut off; then its memory goes.
  EXPECT_TRUE(on_old.Wait().ok());
  EXPECT_EQ(on_old.token_count(), 100u);
  {
    MutexLock lock(&freed_mu);
    EXPECT_TRUE(freed.empty()) << "`before` still holds it";
  }
  before.model.reset();  // the last holder outside the core
  MutexLock lock(&freed_mu);
  freed_mu.AwaitWithTimeout(absl::Condition(+[](std::vector<std::string>* f) { return !f->empty(); }, &freed),
                            absl::Seconds(30));
  ASSERT_EQ(freed.size(), 1u);
  EXPECT_EQ(freed[0], old_file);
  EXPECT_TRUE(old_weak.expired());
  EXPECT_EQ(core.models_loaded(), 1);
}

TEST(InferenceCore, UnloadingDrainsTheModelRefusesNewRequestsSayingWhyAndReturnsItsMemory) {
  const std::string old_file = testing::SyntheticModel("test-spm", engine::GgmlType::kF32);
  std::shared_ptr<ServedModel> old_model = Served(old_file, {}, 256);
  ASSERT_NE(old_model, nullptr);
  std::weak_ptr<ServedModel> old_weak = old_model;
  InferenceCore core(std::move(old_model), {});
  CompletionParams params;
  params.max_tokens = 60;
  absl::StatusOr<Serving> before = core.Acquire();
  ASSERT_TRUE(before.ok());
  absl::StatusOr<GenerationRequest> request = core.Prepare(*before, params, "Once upon a time", Clock::time_point::max());
  ASSERT_TRUE(request.ok());
  request->options.ignore_eos = true;
  Collected in_flight;
  ASSERT_TRUE(before->model->scheduler().Submit(*std::move(request), in_flight.Sink()).ok());
  before = absl::UnavailableError("released");  // the caller lets go of it, as a front end does once submitted

  EXPECT_TRUE(core.Unload(Clock::now() + std::chrono::seconds(60)));
  EXPECT_TRUE(in_flight.Wait().ok()) << "the request in flight finished";
  EXPECT_EQ(in_flight.token_count(), 60u);
  EXPECT_TRUE(old_weak.expired()) << "its memory is returned";
  const absl::StatusOr<Serving> refused = core.Acquire();
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("swapping its base model"), std::string::npos) << refused.status();
  EXPECT_EQ(core.Describe().version, "swapping");
  EXPECT_FALSE(core.has_chat_template());
  Notification embedded;
  core.Embed("", {"x"}, [&](absl::StatusOr<EmbedResult> result) {
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
    embedded.Notify();
  });
  embedded.WaitForNotification();

  std::shared_ptr<ServedModel> new_model = Served(testing::SyntheticModel("test-spm", engine::GgmlType::kQ8_0, 2));
  ASSERT_NE(new_model, nullptr);
  core.SetModelVersion("v2", nullptr, std::move(new_model));
  ASSERT_TRUE(core.Acquire().ok());
  EXPECT_EQ(core.Describe().quantization, "Q8_0");
}

}  // namespace
}  // namespace edgellm::serve
