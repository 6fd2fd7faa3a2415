// `edgellm generate`: stream a completion of a prompt from a GGUF model.
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "daemon/engine/engine.h"
#include "tools/commands.h"

namespace edgellm::tools {
namespace {

struct GenerateArgs {
  std::string model;
  std::string prompt;
  int32_t max_tokens = 128;
  engine::SamplingParams sampling;
  int64_t seed = -1;
  std::vector<std::string> stop;
  int32_t threads = 0;
  int32_t context = 0;
  std::string device = "cpu";
  bool json = false;
};

absl::Status RunGenerate(const GenerateArgs& args) {
  engine::ModelOptions model_options;
  model_options.device = args.device;
  model_options.threads = args.threads;
  model_options.context_length = args.context;
  auto model = engine::LlamaModel::Load(args.model, model_options);
  if (!model.ok()) return model.status();

  engine::GenerateOptions options;
  options.max_tokens = args.max_tokens;
  options.sampling = args.sampling;
  options.sampling.seed = args.seed >= 0 ? static_cast<uint64_t>(args.seed) : std::random_device{}();
  options.stop = args.stop;
  const engine::TextSink print = [](std::string_view text) {
    std::cout << text << std::flush;
    return true;
  };
  auto result = engine::Generate(**model, args.prompt, options, args.json ? engine::TextSink() : print);
  if (!result.ok()) return result.status();

  if (args.json) {
    nlohmann::json out = {
        {"text", result->text},
        {"token_ids", result->token_ids},
        {"prompt_token_ids", result->prompt_ids},
        {"prompt_tokens", result->prompt_ids.size()},
        {"generated_tokens", result->token_ids.size()},
        {"prefill_tok_s", result->prefill_tokens_per_second()},
        {"decode_tok_s", result->decode_tokens_per_second()},
        {"finish_reason", engine::FinishReasonName(result->finish_reason)},
        {"seed", options.sampling.seed},
    };
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return absl::OkStatus();
  }
  std::cout << "\n";
  std::cerr << absl::StrFormat(
      "[prompt_tokens=%d generated_tokens=%d prefill_tok_s=%.1f decode_tok_s=%.1f finish=%s seed=%d]\n",
      result->prompt_ids.size(), result->token_ids.size(), result->prefill_tokens_per_second(),
      result->decode_tokens_per_second(), engine::FinishReasonName(result->finish_reason), options.sampling.seed);
  return absl::OkStatus();
}

}  // namespace

void AddGenerateCommand(CLI::App& app, absl::Status* result) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text from a prompt, streaming it as it is produced");
  cmd->add_option("-m,--model", args->model, "GGUF model file")->required();
  cmd->add_option("-p,--prompt", args->prompt, "Prompt text (the model's BOS is added)");
  cmd->add_option("-n,--max-tokens", args->max_tokens, "Tokens to generate at most")->capture_default_str();
  cmd->add_option("--temp", args->sampling.temperature, "Temperature; 0 is greedy")->capture_default_str();
  cmd->add_option("--top-k", args->sampling.top_k, "Keep the k most likely tokens; 0 is off")->capture_default_str();
  cmd->add_option("--top-p", args->sampling.top_p, "Nucleus sampling mass; 1 is off")->capture_default_str();
  cmd->add_option("--min-p", args->sampling.min_p, "Drop tokens below min-p x the top probability; 0 is off")
      ->capture_default_str();
  cmd->add_option("--repeat-penalty", args->sampling.repeat_penalty, "Penalty for recent tokens; 1 is off")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", args->sampling.repeat_last_n, "Window of the repetition penalty")
      ->capture_default_str();
  cmd->add_option("-s,--seed", args->seed, "Random seed; the same seed gives the same output (default: random)");
  cmd->add_option("--stop", args->stop, "Stop before this string (repeatable)");
  cmd->add_option("-t,--threads", args->threads, "Compute threads (default: one per core)");
  cmd->add_option("-c,--ctx", args->context, "Context length (default: the model's, at most 4096)");
  cmd->add_option("--device", args->device, "LibTorch device: cpu, cuda, cuda:N")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print one JSON object instead of streaming text");
  cmd->callback([args, result] { *result = RunGenerate(*args); });
}

}  // namespace edgellm::tools
