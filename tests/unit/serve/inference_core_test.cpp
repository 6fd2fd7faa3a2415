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
  auto model = engine::LlamaModel::Load(testing::SyntheticModel("test-spm", engine::GgmlType::kF32), {});
  ASSERT_TRUE(model.ok()) << model.status();
  auto pool = (*model)->NewBlockPool({16, 8, true});
  ASSERT_TRUE(pool.ok());
  SchedulerConfig places;
  places.max_active = 2;
  places.max_waiting = 2;
  Scheduler scheduler(**model, *pool, places);
  InferenceCoreConfig config;
  config.max_caller_share = 0.5;  // 2 of the 4 places
  InferenceCore core(**model, scheduler, config);
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
  engine::ModelOptions options;
  options.threads = 1;
  options.context_length = 64;
  auto model = engine::LlamaModel::Load(testing::SyntheticModel("test-spm", engine::GgmlType::kF32), options);
  ASSERT_TRUE(model.ok()) << model.status();
  auto pool = (*model)->NewBlockPool({16, 8, true});
  ASSERT_TRUE(pool.ok());
  Scheduler scheduler(**model, *pool, {});
  scheduler.Start();
  InferenceCoreConfig config;
  config.model_name = "test";
  config.max_embedding_inputs = 2;
  InferenceCore core(**model, scheduler, config);
  EXPECT_FALSE(core.has_chat_template());
  EXPECT_EQ(core.RenderChat(Json::array(), nullptr).status().code(), absl::StatusCode::kFailedPrecondition);

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
  EXPECT_EQ(ok->embeddings[0].size(), static_cast<size_t>((*model)->config().n_embd));
  EXPECT_GT(ok->prompt_tokens, 2);
  EXPECT_EQ(embed("other", {"x"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(embed("", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(embed("", {"a", "b", "c"}).status().code(), absl::StatusCode::kInvalidArgument);
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += std::string(1, static_cast<char>('a' + i % 26)) + " ";
  EXPECT_EQ(embed("", {long_text}).status().code(), absl::StatusCode::kInvalidArgument)
      << "more tokens than one request may hold";
  scheduler.Stop();
  EXPECT_EQ(embed("", {"x"}).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace edgellm::serve
