// Chat, logprobs and embeddings end to end: a real edgellmd serving
// stories260K with a real chat template, reached over gRPC and over its
// OpenAI-compatible HTTP API; the prompt the template gives is checked
// against Python's Jinja2.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "edgellm/v1/inference.grpc.pb.h"
#include "tests/support/daemon_process.h"
#include "tests/support/http_client.h"
#include "tests/support/inference_client.h"
#include "tests/support/jinja2_reference.h"
#include "tests/support/test_support.h"

namespace edgellm {
namespace {

using Json = nlohmann::ordered_json;
using testing::DaemonProcess;
using testing::HttpPost;
using testing::MetricValue;

const std::string kModel = testing::SharedPath("models/stories260K.gguf");
const std::string kTemplate = testing::SharedPath("chat-templates/Qwen-Qwen2.5-7B-Instruct.jinja");

const Json kConversation = Json::array({
    {{"role", "system"}, {"content", "You tell short stories."}},
    {{"role", "user"}, {"content", "Once upon a time"}},
    {{"role", "assistant"}, {"content", "there was a cat."}},
    {{"role", "user"}, {"content", "What did the cat do? ☀️"}},
});

v1::ChatRequest GreedyChat(const Json& messages, uint32_t max_tokens) {
  v1::ChatRequest request;
  for (const Json& m : messages) {
    v1::ChatMessage* message = request.add_messages();
    message->set_role(m["role"]);
    message->set_content(m["content"]);
  }
  request.set_max_tokens(max_tokens);
  request.mutable_sampling()->set_temperature(0.0f);
  return request;
}

class DaemonChatTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::TestDir(); }
  // Starts the daemon with the HTTP API and metrics on ports it picks, and
  // the chat template unless `with_template` is false.
  void StartDaemon(std::vector<std::string> args = {}, bool with_template = true) {
    EDGELLM_REQUIRE_SHARED_FILE(kModel);
    EDGELLM_REQUIRE_SHARED_FILE(kTemplate);
    args.insert(args.end(), {"--http-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"});
    if (with_template) args.insert(args.end(), {"--chat-template-file", kTemplate});
    std::string error;
    daemon_ = DaemonProcess::Start(kModel, args, &error);
    ASSERT_NE(daemon_, nullptr) << error;
    stub_ = v1::Inference::NewStub(daemon_->channel());
    http_port_ = daemon_->LoggedPort("HTTP API on port ");
    metrics_port_ = daemon_->LoggedPort("metrics on port ");
    ASSERT_GT(http_port_, 0);
    ASSERT_GT(metrics_port_, 0);
  }
  double Metric(const std::string& series) {
    return MetricValue(testing::HttpGet(metrics_port_, "/metrics").body, series);
  }

  std::filesystem::path dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<v1::Inference::Stub> stub_;
  int http_port_ = -1;
  int metrics_port_ = -1;
};

TEST_F(DaemonChatTest, GrpcChatEqualsGenerateOnThePromptJinja2RendersAndHttpChatEqualsBoth) {
  StartDaemon();
  if (HasFatalFailure() || IsSkipped()) return;
  const std::string prompt = testing::Jinja2Renders(
      kTemplate, {{"messages", kConversation}, {"add_generation_prompt", true}, {"bos_token", "<s>"}, {"eos_token", "</s>"}},
      dir_);
  ASSERT_NE(prompt.find("<|im_start|>assistant\n"), std::string::npos) << prompt;
  const testing::Stream generated = testing::Generate(*stub_, testing::Greedy(prompt, 24));
  ASSERT_TRUE(generated.status.ok()) << generated.status.error_message();
  const testing::Stream chatted = testing::Chat(*stub_, GreedyChat(kConversation, 24));
  ASSERT_TRUE(chatted.status.ok()) << chatted.status.error_message();
  EXPECT_EQ(chatted.token_ids, generated.token_ids);
  EXPECT_EQ(chatted.text, generated.text);
  EXPECT_EQ(chatted.last.usage().prompt_tokens(), generated.last.usage().prompt_tokens());

  const Json body = {{"model", "stories260K"}, {"messages", kConversation}, {"max_tokens", 24}, {"temperature", 0}};
  const testing::HttpAnswer whole = HttpPost(http_port_, "/v1/chat/completions", body.dump());
  ASSERT_EQ(whole.status, 200) << whole.body << whole.error;
  const Json answer = Json::parse(whole.body);
  EXPECT_EQ(answer["object"], "chat.completion");
  EXPECT_EQ(answer["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(answer["choices"][0]["message"]["content"], generated.text);
  EXPECT_EQ(answer["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(answer["usage"]["completion_tokens"], 24);
  EXPECT_EQ(answer["usage"]["prompt_tokens"], generated.last.usage().prompt_tokens());

  Json streamed_body = body;
  streamed_body["stream"] = true;
  streamed_body["stream_options"] = {{"include_usage", true}};
  const testing::HttpAnswer streamed = HttpPost(http_port_, "/v1/chat/completions", streamed_body.dump());
  ASSERT_EQ(streamed.status, 200) << streamed.error;
  EXPECT_EQ(streamed.headers.at("Content-Type"), "text/event-stream");
  const std::vector<std::string> events = testing::SseData(streamed.body);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  std::string finish;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const Json chunk = Json::parse(events[i]);
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
    EXPECT_EQ(chunk["id"], Json::parse(events[0])["id"]);
    if (chunk["choices"].empty()) {
      EXPECT_EQ(i + 2, events.size()) << "the usage chunk comes last";
      EXPECT_EQ(chunk["usage"]["completion_tokens"], 24);
      continue;
    }
    const Json& choice = chunk["choices"][0];
    if (i == 0) {
      EXPECT_EQ(choice["delta"]["role"], "assistant");
    }
    if (choice["delta"].contains("content")) text += choice["delta"]["content"].get<std::string>();
    if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"];
  }
  EXPECT_EQ(text, generated.text);
  EXPECT_EQ(finish, "length");
  v1::ListModelsResponse models;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->ListModels(&context, {}, &models).ok());
  EXPECT_TRUE(models.models(0).has_chat_template());
  EXPECT_EQ(models.models(0).embedding_length(), 64u);
}

TEST_F(DaemonChatTest, LogprobsAreTheModelsOwnOnBothApis) {
  StartDaemon();
  if (HasFatalFailure() || IsSkipped()) return;
  v1::GenerateRequest request = testing::Greedy("Once upon a time", 8);
  request.set_top_logprobs(3);
  grpc::ClientContext context;
  auto reader = stub_->Generate(&context, request);
  std::vector<v1::TokenLogprobs> logprobs;
  std::vector<uint32_t> ids;
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
    ids.insert(ids.end(), response.token_ids().begin(), response.token_ids().end());
    logprobs.insert(logprobs.end(), response.logprobs().begin(), response.logprobs().end());
  }
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_EQ(logprobs.size(), 8u);
  ASSERT_EQ(ids.size(), 8u);
  for (size_t i = 0; i < logprobs.size(); ++i) {
    const v1::TokenLogprobs& l = logprobs[i];
    EXPECT_EQ(l.token().token_id(), ids[i]);
    ASSERT_EQ(l.top_size(), 3);
    // Greedy: the chosen token is the likeliest one.
    EXPECT_EQ(l.top(0).token_id(), ids[i]);
    EXPECT_FLOAT_EQ(l.top(0).logprob(), l.token().logprob());
    EXPECT_LE(l.token().logprob(), 0.0f);
    EXPECT_GE(l.top(0).logprob(), l.top(1).logprob());
    EXPECT_GE(l.top(1).logprob(), l.top(2).logprob());
  }

  const Json body = {{"prompt", "Once upon a time"}, {"max_tokens", 8}, {"temperature", 0}, {"logprobs", 3}};
  const testing::HttpAnswer answer = HttpPost(http_port_, "/v1/completions", body.dump());
  ASSERT_EQ(answer.status, 200) << answer.body;
  const Json lp = Json::parse(answer.body)["choices"][0]["logprobs"];
  ASSERT_EQ(lp["token_logprobs"].size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    // This request starts from the first one's cached prompt blocks and runs
    // its last prompt token alone, a decode step, whose attention adds in
    // another order than the first request's prefill: the same model's
    // figures, to float rounding.
    EXPECT_NEAR(lp["token_logprobs"][i].get<float>(), logprobs[i].token().logprob(), 1e-5);
    EXPECT_EQ(lp["tokens"][i], logprobs[i].token().piece());
    EXPECT_EQ(lp["top_logprobs"][i].size(), 3u);
  }
  EXPECT_EQ(lp["text_offset"][0], 0);

  const Json chat = {{"messages", kConversation}, {"max_tokens", 4}, {"temperature", 0}, {"logprobs", true},
                     {"top_logprobs", 2}};
  const Json chat_answer = Json::parse(HttpPost(http_port_, "/v1/chat/completions", chat.dump()).body);
  const Json& content = chat_answer["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 4u) << chat_answer.dump();
  for (const Json& entry : content) {
    EXPECT_EQ(entry["top_logprobs"].size(), 2u);
    EXPECT_EQ(entry["top_logprobs"][0]["logprob"], entry["logprob"]);
    EXPECT_FALSE(entry["bytes"].empty());
  }
}

TEST_F(DaemonChatTest, EmbeddingsAreUnitLengthBatchedAsAloneAndAgreeAcrossApis) {
  StartDaemon();
  if (HasFatalFailure() || IsSkipped()) return;
  v1::EmbedRequest request;
  request.add_inputs("The cat sat on the mat.");
  request.add_inputs("A dog ran in the park, far away from home.");
  v1::EmbedResponse both;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->Embed(&context, request, &both).ok());
  }
  ASSERT_EQ(both.embeddings_size(), 2);
  ASSERT_EQ(both.embeddings(0).values_size(), 64);
  for (const v1::Embedding& e : both.embeddings()) {
    double norm = 0;
    for (float v : e.values()) norm += static_cast<double>(v) * v;
    EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-5);
  }
  double dot = 0;
  for (int i = 0; i < 64; ++i) dot += both.embeddings(0).values(i) * both.embeddings(1).values(i);
  EXPECT_LT(dot, 0.9999) << "different texts, different embeddings";
  v1::EmbedRequest second_alone;
  second_alone.add_inputs(request.inputs(1));
  v1::EmbedResponse alone;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->Embed(&context, second_alone, &alone).ok());
  }
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(alone.embeddings(0).values(i), both.embeddings(1).values(i), 1e-5);

  const Json body = {{"input", {request.inputs(0), request.inputs(1)}}, {"model", "stories260K"}};
  const testing::HttpAnswer floats = HttpPost(http_port_, "/v1/embeddings", body.dump());
  ASSERT_EQ(floats.status, 200) << floats.body;
  const Json parsed = Json::parse(floats.body);
  EXPECT_EQ(parsed["usage"]["prompt_tokens"], both.prompt_tokens());
  for (int i = 0; i < 64; ++i) EXPECT_FLOAT_EQ(parsed["data"][1]["embedding"][i].get<float>(), both.embeddings(1).values(i));
  Json base64_body = body;
  base64_body["encoding_format"] = "base64";
  const Json encoded = Json::parse(HttpPost(http_port_, "/v1/embeddings", base64_body.dump()).body);
  const std::string text = encoded["data"][0]["embedding"];
  EXPECT_EQ(text.size(), 4 * ((64 * 4 + 2) / 3));
}

// Each bad request gets its status and a message naming the problem, and
// none reaches the scheduler (no prompt token is ever counted).
TEST_F(DaemonChatTest, BadRequestsGetTheirStatusAndNeverReachTheScheduler) {
  StartDaemon();
  if (HasFatalFailure() || IsSkipped()) return;
  struct Case {
    std::string path, body;
    int status;
    std::string param, message;
  };
  const std::vector<Case> cases = {
      {"/v1/chat/completions", "{\"messages\": [", 400, "", "not valid JSON"},
      {"/v1/chat/completions", "[1, 2]", 400, "", "JSON object"},
      {"/v1/chat/completions", R"({"messages": []})", 400, "messages", "is empty"},
      {"/v1/chat/completions", R"({"max_tokens": 4})", 400, "messages", "is required"},
      {"/v1/chat/completions", R"({"messages": [{"role": "wizard", "content": "hi"}]})", 400, "messages[0].role",
       "'wizard' is not one of"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": 7}]})", 400, "messages[0].content",
       "must be a string"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"})", 400,
       "temperature", "must be a number"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "n": 3})", 400, "n",
       "at most 1"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0})", 400,
       "max_tokens", ""},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "top_p": 7})", 400, "top_p", ""},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2})", 400,
       "top_logprobs", "needs logprobs"},
      {"/v1/chat/completions", R"({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})", 404,
       "", "model 'gpt-4o' does not exist"},
      {"/v1/chat/completions", R"({"model": "stories260K:pirate", "messages": [{"role": "user", "content": "hi"}]})",
       404, "", "no adapter of that name"},
      {"/v1/completions", R"({"prompt": 42})", 400, "prompt", "must be a string"},
      {"/v1/completions", R"({"prompt": "hi", "stop": [1]})", 400, "stop", ""},
      {"/v1/embeddings", R"({"input": {"a": 1}})", 400, "input", ""},
      {"/v1/embeddings", R"({"input": "hi", "encoding_format": "hex"})", 400, "encoding_format", ""},
      {"/v1/nothing", "{}", 404, "", "no such endpoint"},
  };
  for (const Case& c : cases) {
    const testing::HttpAnswer answer = HttpPost(http_port_, c.path, c.body);
    EXPECT_EQ(answer.status, c.status) << c.body << " -> " << answer.body;
    const Json error = Json::parse(answer.body, nullptr, false);
    ASSERT_TRUE(error.is_object() && error.contains("error")) << answer.body;
    EXPECT_NE(error["error"]["message"].get<std::string>().find(c.message), std::string::npos) << answer.body;
    if (!c.param.empty()) {
      EXPECT_EQ(error["error"]["param"], c.param) << answer.body;
    }
  }
  EXPECT_EQ(testing::HttpCall(http_port_, "GET", "/v1/chat/completions").status, 405);
  EXPECT_EQ(Metric("edgellm_prompt_tokens_total{model=\"stories260K\"}"), 0);
  // The daemon is unharmed.
  EXPECT_EQ(HttpPost(http_port_, "/v1/completions", R"({"prompt": "hi", "max_tokens": 2})").status, 200);
}

TEST_F(DaemonChatTest, AModelWithoutAChatTemplateRefusesChatAndSaysHowToGiveOne) {
  StartDaemon({}, /*with_template=*/false);
  if (HasFatalFailure() || IsSkipped()) return;
  const testing::Stream chatted = testing::Chat(*stub_, GreedyChat(kConversation, 4));
  EXPECT_EQ(chatted.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(chatted.status.error_message().find("chat_template"), std::string::npos);
  const testing::HttpAnswer answer =
      HttpPost(http_port_, "/v1/chat/completions", Json{{"messages", kConversation}}.dump());
  EXPECT_EQ(answer.status, 400);
  EXPECT_NE(answer.body.find("has no chat template"), std::string::npos) << answer.body;
  v1::ListModelsResponse models;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->ListModels(&context, {}, &models).ok());
  EXPECT_FALSE(models.models(0).has_chat_template());
}

TEST_F(DaemonChatTest, ATemplateThatRefusesAConversationIsABadRequestInItsOwnWords) {
  const std::string strict = (dir_ / "strict.jinja").string();
  std::ofstream(strict) << "{% for m in messages %}{% if m.role == 'system' %}"
                           "{{ raise_exception('System messages are not supported') }}{% endif %}"
                           "{{ m.content }}{% endfor %}";
  StartDaemon({"--chat-template-file", strict}, /*with_template=*/false);
  if (HasFatalFailure() || IsSkipped()) return;
  const testing::Stream chatted = testing::Chat(*stub_, GreedyChat(kConversation, 4));
  EXPECT_EQ(chatted.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(chatted.status.error_message().find("System messages are not supported"), std::string::npos)
      << chatted.status.error_message();
  const testing::HttpAnswer answer =
      HttpPost(http_port_, "/v1/chat/completions", Json{{"messages", kConversation}}.dump());
  EXPECT_EQ(answer.status, 400);
  EXPECT_NE(answer.body.find("System messages are not supported"), std::string::npos) << answer.body;
}

TEST_F(DaemonChatTest, ChatSessionsKeepTheMessagesAndEqualResendingThem) {
  StartDaemon();
  if (HasFatalFailure() || IsSkipped()) return;
  v1::ChatRequest first = GreedyChat(Json::array({kConversation[0], kConversation[1]}), 6);
  first.set_session_id("chat-1");
  const testing::Stream one = testing::Chat(*stub_, first);
  ASSERT_TRUE(one.status.ok()) << one.status.error_message();
  v1::ChatRequest second = GreedyChat(Json::array({kConversation[3]}), 6);
  second.set_session_id("chat-1");
  const testing::Stream two = testing::Chat(*stub_, second);
  ASSERT_TRUE(two.status.ok()) << two.status.error_message();
  const Json whole = Json::array({kConversation[0], kConversation[1], {{"role", "assistant"}, {"content", one.text}},
                                  kConversation[3]});
  const testing::Stream resent = testing::Chat(*stub_, GreedyChat(whole, 6));
  EXPECT_EQ(two.token_ids, resent.token_ids);
}

TEST_F(DaemonChatTest, ApiKeysAreRequiredAndCheckedWhenConfigured) {
  const std::string keys = (dir_ / "keys").string();
  std::ofstream(keys) << "# the fleet's apps\nsk-first-key\n\n  sk-second-key  \n";
  StartDaemon({"--http-api-keys-file", keys});
  if (HasFatalFailure() || IsSkipped()) return;
  EXPECT_EQ(testing::HttpCall(http_port_, "GET", "/v1/models").status, 401);
  const testing::HttpAnswer wrong =
      testing::HttpCall(http_port_, "GET", "/v1/models", "", {{"Authorization", "Bearer sk-first-kez"}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(Json::parse(wrong.body)["error"]["code"], "invalid_api_key");
  EXPECT_EQ(wrong.headers.at("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(testing::HttpCall(http_port_, "GET", "/v1/models", "", {{"Authorization", "sk-first-key"}}).status, 401);
  for (const char* key : {"sk-first-key", "sk-second-key"}) {
    const testing::HttpAnswer ok =
        testing::HttpCall(http_port_, "GET", "/v1/models", "", {{"Authorization", std::string("Bearer ") + key}});
    EXPECT_EQ(ok.status, 200) << key;
    EXPECT_EQ(Json::parse(ok.body)["data"][0]["id"], "stories260K");
  }
}

// The OpenAI SDKs keep connections alive: requests, whole and streamed, one
// after another on one connection.
TEST_F(DaemonChatTest, AKeptAliveConnectionServesRequestAfterRequest) {
  StartDaemon();
  if (HasFatalFailure() || IsSkipped()) return;
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(http_port_)});
  beast::flat_buffer buffer;
  const auto exchange = [&](http::verb verb, const std::string& target, const std::string& body) {
    http::request<http::string_body> request(verb, target, 11);
    request.set(http::field::host, "localhost");
    request.body() = body;
    request.prepare_payload();
    http::write(stream, request);
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    EXPECT_TRUE(response.keep_alive());
    return response;
  };
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(exchange(http::verb::get, "/v1/models", "").result_int(), 200u);
    const auto streamed = exchange(http::verb::post, "/v1/completions",
                                   R"({"prompt": "Once upon", "max_tokens": 3, "stream": true})");
    EXPECT_EQ(streamed.result_int(), 200u);
    EXPECT_NE(streamed.body().find("data: [DONE]"), std::string::npos) << streamed.body();
    const auto bad = exchange(http::verb::post, "/v1/completions", R"({"prompt": 1})");
    EXPECT_EQ(bad.result_int(), 400u);
    EXPECT_EQ(exchange(http::verb::post, "/v1/embeddings", R"({"input": "hi"})").result_int(), 200u);
  }
}

// A raw connection to the API, for clients that misbehave.
int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return -1;
  return fd;
}

std::string ReadSome(int fd) {
  char buffer[4096];
  const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
}

TEST_F(DaemonChatTest, OversizedBodiesSlowClientsAndDisconnectsAreHandled) {
  const std::string config = (dir_ / "edgellmd.yaml").string();
  std::ofstream(config) << "http_max_body_kib: 1\nhttp_request_timeout_seconds: 0.5\nhttp_idle_timeout_seconds: 0.5\n";
  StartDaemon({"--config", config});
  if (HasFatalFailure() || IsSkipped()) return;
  // 413 from the declared length, before the body is read.
  const testing::HttpAnswer big =
      HttpPost(http_port_, "/v1/completions", Json{{"prompt", std::string(4000, 'a')}}.dump());
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(Json::parse(big.body)["error"]["code"], "request_too_large");

  // A client that never finishes its headers gets 408 and the connection closes.
  int fd = Connect(http_port_);
  ASSERT_GE(fd, 0);
  const std::string partial = "POST /v1/completions HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(::send(fd, partial.data(), partial.size(), 0), static_cast<ssize_t>(partial.size()));
  EXPECT_EQ(ReadSome(fd).substr(0, 12), "HTTP/1.1 408");
  ::close(fd);

  // A kept-alive connection that sends nothing more is closed after the idle timeout.
  fd = Connect(http_port_);
  ASSERT_GE(fd, 0);
  const std::string models = "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, models.data(), models.size(), 0), static_cast<ssize_t>(models.size()));
  EXPECT_EQ(ReadSome(fd).substr(0, 12), "HTTP/1.1 200");
  timeval wait_at_most{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait_at_most, sizeof(wait_at_most));
  char byte;
  EXPECT_EQ(::recv(fd, &byte, 1, 0), 0) << "the daemon closes the idle connection";
  ::close(fd);

  // A streaming client that disconnects frees its slot at once.
  fd = Connect(http_port_);
  ASSERT_GE(fd, 0);
  const std::string body = Json{{"prompt", "The cat"}, {"max_tokens", 1900}, {"temperature", 0}, {"stream", true}}.dump();
  const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  EXPECT_EQ(ReadSome(fd).substr(0, 12), "HTTP/1.1 200");
  const std::string m = "{model=\"stories260K\"}";
  double running = -1;
  for (int attempt = 0; attempt < 250 && running != 1; ++attempt) running = Metric("edgellm_num_requests_running" + m);
  EXPECT_EQ(running, 1);
  ::close(fd);
  for (int attempt = 0; attempt < 250 && running != 0; ++attempt) {
    running = Metric("edgellm_num_requests_running" + m);
    if (running != 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(running, 0);
  EXPECT_LT(Metric("edgellm_generation_tokens_total" + m), 1900);
  EXPECT_EQ(MetricValue(testing::HttpGet(metrics_port_, "/metrics").body,
                        "edgellm_request_success_total{finished_reason=\"abort\",model=\"stories260K\"}"),
            1);
}

TEST_F(DaemonChatTest, AFullQueueIs429WithRetryAfterAndDrainingIs503) {
  StartDaemon({"--max-active", "1", "--max-waiting", "1", "--drain-timeout", "30"});
  if (HasFatalFailure() || IsSkipped()) return;
  // One request runs and one waits: the queue is full.
  grpc::ClientContext context, waiting_context;
  auto stream = stub_->Generate(&context, testing::Greedy("The cat", 1900));
  v1::GenerateResponse response;
  ASSERT_TRUE(stream->Read(&response));
  auto waiting = stub_->Generate(&waiting_context, testing::Greedy("The dog", 1900));
  double queued = -1;
  for (int attempt = 0; attempt < 250 && queued != 1; ++attempt) {
    queued = Metric("edgellm_num_requests_waiting{model=\"stories260K\"}");
    if (queued != 1) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(queued, 1);
  const testing::HttpAnswer refused = HttpPost(http_port_, "/v1/completions", R"({"prompt": "hi"})");
  EXPECT_EQ(refused.status, 429) << refused.body;
  EXPECT_EQ(refused.headers.at("Retry-After"), "1");
  EXPECT_EQ(Json::parse(refused.body)["error"]["type"], "rate_limit_error");
  // SIGTERM: the running stream keeps the daemon draining; new requests are refused.
  daemon_->SendSigterm();
  int status = 0;
  for (int attempt = 0; attempt < 250 && status != 503; ++attempt) {
    status = HttpPost(http_port_, "/v1/completions", R"({"prompt": "hi"})").status;
    if (status != 503) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(status, 503);
  context.TryCancel();
  waiting_context.TryCancel();
  while (stream->Read(&response)) {
  }
  while (waiting->Read(&response)) {
  }
  stream->Finish();
  waiting->Finish();
  EXPECT_EQ(daemon_->Wait(), 0);
}

}  // namespace
}  // namespace edgellm
