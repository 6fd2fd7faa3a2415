// `edgellm chat`: a conversation with a model in the terminal, rendered
// through the model's chat template — in this process (--model) or through a
// running edgellmd (--server, whose session keeps the history and its KV).
// Interactive by default: /reset starts over, /exit (or Ctrl-D) quits, and
// Ctrl-C stops the reply being written, not the program. With --prompt it
// answers one message and exits, for scripts.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <random>
#include <thread>

#include "common/read_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/engine/engine.h"
#include "daemon/serve/inference_core.h"
#include "edgellm/v1/inference.grpc.pb.h"
#include "tools/commands.h"
#include "tools/output_constraint.h"
#include "tools/remote_generate.h"
#include "tools/shared_options.h"

namespace edgellm::tools {
namespace {

using Json = nlohmann::ordered_json;

struct ChatArgs {
  std::string model;
  RemoteTarget remote;
  std::string system;
  std::string prompt;  // one-shot
  std::string chat_template_file;
  int32_t max_tokens = 512;
  engine::SamplingParams sampling;
  int64_t seed = -1;
  int32_t threads = 0;
  int32_t context = 0;
  std::string kv_type = "f16";  // as edgellmd's kv_type
  std::string adapter;
  OutputConstraintFiles constraint_files;
};

// Set by Ctrl-C; the reply being written stops at its next token.
std::atomic<bool> interrupted{false};

void OnInterrupt(int) { interrupted = true; }

// One side of the conversation: a reply to `messages`, streamed to `on_text`.
class ChatBackend {
 public:
  virtual ~ChatBackend() = default;
  // Returns the reply (cut short if interrupted).
  virtual absl::StatusOr<std::string> Reply(const Json& messages, const std::function<void(std::string_view)>& on_text) = 0;
  // Forgets the conversation (a remote session starts anew).
  virtual void Reset() {}
};

class LocalChat final : public ChatBackend {
 public:
  static absl::StatusOr<std::unique_ptr<LocalChat>> Create(const ChatArgs& args, const engine::GenerateOptions& options,
                                                           const OutputConstraint& constraint) {
    engine::ModelOptions model_options;
    model_options.threads = args.threads;
    model_options.context_length = args.context;
    EDGELLM_ASSIGN_OR_RETURN(model_options.kv_type, engine::ParseKvType(args.kv_type));
    model_options.pack_weights = true;
    auto chat = std::unique_ptr<LocalChat>(new LocalChat());
    EDGELLM_ASSIGN_OR_RETURN(chat->model_, engine::LlamaModel::Load(args.model, model_options));
    std::string override_source;
    if (!args.chat_template_file.empty()) {
      EDGELLM_ASSIGN_OR_RETURN(override_source, ReadFileToString(args.chat_template_file, "--chat-template-file"));
    }
    EDGELLM_ASSIGN_OR_RETURN(std::optional<chat::ChatFormatter> formatter,
                             serve::LoadChatTemplate(*chat->model_, override_source));
    if (!formatter) {
      return absl::FailedPreconditionError(
          edgellm::StrCat(args.model, " has no chat template (tokenizer.chat_template): give --chat-template-file"));
    }
    chat->formatter_.emplace(*std::move(formatter));
    if (!args.adapter.empty()) {
      EDGELLM_ASSIGN_OR_RETURN(engine::LoraAdapter adapter, engine::LoraAdapter::Load(args.adapter, chat->model_->config()));
      chat->adapter_ = std::make_unique<engine::LoraAdapter>(std::move(adapter));
    }
    chat->options_ = options;
    chat->options_.adapter = chat->adapter_.get();
    EDGELLM_ASSIGN_OR_RETURN(chat->options_.grammar, CompileOutputConstraint(constraint, *chat->model_));
    return chat;
  }

  absl::StatusOr<std::string> Reply(const Json& messages, const std::function<void(std::string_view)>& on_text) override {
    EDGELLM_ASSIGN_OR_RETURN(std::string prompt, formatter_->Render(messages, nullptr, true));
    EDGELLM_ASSIGN_OR_RETURN(engine::GenerateResult result,
                             engine::Generate(*model_, prompt, options_, [&](std::string_view text) {
                               on_text(text);
                               return !interrupted.load();
                             }));
    return result.text;
  }

 private:
  LocalChat() = default;
  std::unique_ptr<engine::LlamaModel> model_;
  std::optional<chat::ChatFormatter> formatter_;
  std::unique_ptr<engine::LoraAdapter> adapter_;
  engine::GenerateOptions options_;
};

// Through a daemon's Chat RPC. Interactive chats keep a session there, so
// each turn sends only the new message and reuses the earlier turns' KV.
class RemoteChat final : public ChatBackend {
 public:
  RemoteChat(std::shared_ptr<grpc::Channel> channel, const ChatArgs& args, const engine::GenerateOptions& options,
             OutputConstraint constraint, bool keep_session)
      : stub_(v1::Inference::NewStub(std::move(channel))),
        args_(args),
        options_(options),
        constraint_(std::move(constraint)),
        keep_session_(keep_session) {
    Reset();
  }

  void Reset() override {
    if (!keep_session_) return;
    std::random_device random;
    session_ = StrCat("cli-", random(), "-", random());
    sent_ = 0;
  }

  absl::StatusOr<std::string> Reply(const Json& messages, const std::function<void(std::string_view)>& on_text) override {
    v1::ChatRequest request;
    request.set_session_id(session_);
    request.set_adapter(args_.adapter);
    request.set_max_tokens(static_cast<uint32_t>(std::max(options_.max_tokens, 0)));
    SetSampling(options_.sampling, request.mutable_sampling());
    SetConstraint(constraint_, &request);
    // With a session the daemon holds what was sent before (and its replies).
    for (size_t i = session_.empty() ? 0 : sent_; i < messages.size(); ++i) {
      if (messages[i]["role"] == "assistant" && !session_.empty()) continue;
      v1::ChatMessage* m = request.add_messages();
      m->set_role(messages[i]["role"]);
      m->set_content(messages[i]["content"]);
    }
    std::string reply;
    grpc::Status status;
    // A turn stopped by Ctrl-C ends here at once, and on the daemon as soon as
    // the cancellation reaches it: a next turn sent in between finds the
    // session busy (ABORTED) and retries, backing off, a bounded number of times.
    for (int attempt = 1;; ++attempt) {
      grpc::ClientContext context;
      auto reader = stub_->Chat(&context, request);
      v1::GenerateResponse response;
      while (reader->Read(&response)) {
        if (interrupted) context.TryCancel();
        on_text(response.text());
        reply += response.text();
      }
      status = reader->Finish();
      if (status.error_code() != grpc::StatusCode::ABORTED || !reply.empty() || attempt == 10) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(25 << std::min(attempt, 5)));
    }
    if (!status.ok() && !(interrupted && status.error_code() == grpc::StatusCode::CANCELLED)) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()), StrCat("server: ", status.error_message()));
    }
    // A cancelled turn is not kept by the daemon: the next one resends it.
    if (status.ok()) sent_ = messages.size() + 1;
    return reply;
  }

 private:
  std::unique_ptr<v1::Inference::Stub> stub_;
  const ChatArgs& args_;
  const engine::GenerateOptions options_;
  const OutputConstraint constraint_;
  const bool keep_session_;
  std::string session_;
  size_t sent_ = 0;  // messages the daemon's session already holds
};

absl::Status RunChat(const ChatArgs& args) {
  if (args.model.empty() == args.remote.server.empty()) {
    return absl::InvalidArgumentError("give one of --model FILE and --server ADDRESS");
  }
  engine::GenerateOptions options;
  options.max_tokens = args.max_tokens;
  options.sampling = args.sampling;
  options.sampling.seed = args.seed >= 0 ? static_cast<uint64_t>(args.seed) : std::random_device{}();
  EDGELLM_RETURN_IF_ERROR(options.sampling.Validate());
  EDGELLM_ASSIGN_OR_RETURN(OutputConstraint constraint, ReadOutputConstraint(args.constraint_files));
  const bool one_shot = !args.prompt.empty();
  std::unique_ptr<ChatBackend> backend;
  if (!args.model.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(backend, LocalChat::Create(args, options, constraint));
  } else {
    EDGELLM_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, DaemonChannel(args.remote));
    backend = std::make_unique<RemoteChat>(std::move(channel), args, options, std::move(constraint), !one_shot);
  }
  Json messages = Json::array();
  const auto start_over = [&] {
    messages = Json::array();
    if (!args.system.empty()) messages.push_back({{"role", "system"}, {"content", args.system}});
  };
  start_over();
  const auto print = [](std::string_view text) { std::cout << text << std::flush; };
  if (one_shot) {
    messages.push_back({{"role", "user"}, {"content", args.prompt}});
    EDGELLM_ASSIGN_OR_RETURN(std::string reply, backend->Reply(messages, print));
    std::cout << std::endl;
    return absl::OkStatus();
  }
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigaction(SIGINT, &action, nullptr);
  const bool terminal = ::isatty(STDIN_FILENO) != 0;
  if (terminal) std::cerr << "Chatting; /reset starts over, /exit or Ctrl-D quits, Ctrl-C stops a reply.\n";
  std::string line;
  while (true) {
    if (terminal) std::cout << "> " << std::flush;
    interrupted = false;
    if (!std::getline(std::cin, line)) {
      // Ctrl-C at the prompt interrupts the read: a fresh prompt, not the end.
      if (interrupted && std::cin.bad() == false && !std::cin.eof()) {
        std::cin.clear();
        std::cout << "\n";
        continue;
      }
      break;
    }
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      start_over();
      backend->Reset();
      if (terminal) std::cerr << "(a new conversation)\n";
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({{"role", "user"}, {"content", line}});
    absl::StatusOr<std::string> reply = backend->Reply(messages, print);
    std::cout << std::endl;
    if (!reply.ok()) {
      // The conversation stays as it was before this message.
      messages.erase(messages.size() - 1);
      std::cerr << "error: " << reply.status().message() << "\n";
      continue;
    }
    if (interrupted) {
      // As the daemon does with a cancelled turn: the conversation stays as it was.
      messages.erase(messages.size() - 1);
      std::cerr << "(stopped; this turn is not kept)\n";
      continue;
    }
    messages.push_back({{"role", "assistant"}, {"content", *reply}});
  }
  return absl::OkStatus();
}

}  // namespace

void AddChatCommand(CLI::App& app, absl::Status* result) {
  auto args = std::make_shared<ChatArgs>();
  CLI::App* cmd = app.add_subcommand(
      "chat", "Chat with a model in the terminal, through its chat template (interactive, or one message with -p)");
  cmd->add_option("-m,--model", args->model, "GGUF model file (runs in this process)");
  AddServerOptions(*cmd, args->remote, "Chat through a running edgellmd instead");
  cmd->add_option("--system", args->system, "A system message that starts the conversation");
  cmd->add_option("-p,--prompt", args->prompt, "Answer this one message and exit");
  cmd->add_option("--chat-template-file", args->chat_template_file,
                  "With --model: a Jinja chat template instead of the file's tokenizer.chat_template");
  cmd->add_option("-n,--max-tokens", args->max_tokens, "Tokens per reply at most")->capture_default_str();
  AddSamplingOptions(*cmd, args->sampling);
  cmd->add_option("-s,--seed", args->seed, "Random seed (default: random)");
  cmd->add_option("-t,--threads", args->threads, "With --model: compute threads (default: one per core)");
  cmd->add_option("-c,--ctx", args->context, "With --model: context length (default: the model's, at most 4096)");
  cmd->add_option("--kv-type", args->kv_type,
                  "With --model: f16, f32 or q8_0 keys and values in the KV cache, as edgellmd's kv_type")
      ->capture_default_str();
  cmd->add_option("--adapter", args->adapter,
                  "LoRA adapter: a PEFT directory with --model, an adapter's name with --server");
  AddOutputConstraintOptions(*cmd, args->constraint_files);
  cmd->callback([args, result] { *result = RunChat(*args); });
}

}  // namespace edgellm::tools
