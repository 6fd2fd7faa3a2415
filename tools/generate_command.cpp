// `edgellm generate`: stream a completion of a prompt from a GGUF model.
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "daemon/engine/engine.h"
#include "daemon/engine/torch_forward.h"
#include "tools/commands.h"
#include "tools/output_constraint.h"
#include "tools/remote_generate.h"
#include "tools/shared_options.h"

namespace edgellm::tools {
namespace {

struct GenerateArgs {
  std::string model;
  RemoteTarget remote;
  std::string prompt;
  int32_t max_tokens = 128;
  engine::SamplingParams sampling;
  int64_t seed = -1;
  std::vector<std::string> stop;
  int32_t threads = 0;
  int32_t context = 0;
  std::string kv_type = "f16";  // as edgellmd's kv_type
  std::string device = "cpu";
  int32_t draft_tokens = -1;  // unset: off here, the daemon's choice with --server
  std::string draft_model;
  std::string adapter;  // a PEFT directory here; an adapter's name with --server
  OutputConstraintFiles constraint_files;
  bool json = false;
};

absl::StatusOr<GenerateOutcome> GenerateLocally(const GenerateArgs& args, const engine::GenerateOptions& options,
                                                const OutputConstraint& constraint, const engine::TextSink& sink) {
  if (args.model.empty()) return absl::InvalidArgumentError("--model FILE or --server ADDRESS is required");
  engine::ModelOptions model_options;
  model_options.threads = args.threads;
  model_options.context_length = args.context;
  EDGELLM_ASSIGN_OR_RETURN(model_options.kv_type, engine::ParseKvType(args.kv_type));
  model_options.pack_weights = args.device == "cpu";  // LibTorch reads the weights as the file has them
  auto model = engine::LlamaModel::Load(args.model, model_options);
  if (!model.ok()) return model.status();
  // The CPU runs the engine's own pass; any other device, LibTorch's.
  if (args.device != "cpu") {
    if (absl::Status s = engine::UseLibTorch(**model, args.device); !s.ok()) return s;
  }
  engine::GenerateOptions local = options;
  EDGELLM_ASSIGN_OR_RETURN(local.grammar, CompileOutputConstraint(constraint, **model));
  absl::StatusOr<engine::LoraAdapter> adapter;
  if (!args.adapter.empty()) {
    adapter = engine::LoraAdapter::Load(args.adapter, (*model)->config());
    if (!adapter.ok()) return adapter.status();
    local.adapter = &*adapter;
  }
  local.draft_tokens = std::max(options.draft_tokens, 0);
  absl::StatusOr<std::unique_ptr<engine::LlamaModel>> draft_model;
  if (!args.draft_model.empty()) {
    draft_model = engine::LlamaModel::Load(args.draft_model, model_options);
    if (!draft_model.ok()) return draft_model.status();
    local.draft_model = draft_model->get();
    if (options.draft_tokens < 0) local.draft_tokens = 4;
  }
  if (local.draft_tokens > 0) local.draft_row_cost = engine::MeasureRowCost(**model);
  auto result = engine::Generate(**model, args.prompt, local, sink);
  if (!result.ok()) return result.status();
  GenerateOutcome outcome;
  outcome.text = result->text;
  outcome.token_ids.assign(result->token_ids.begin(), result->token_ids.end());
  outcome.prompt_tokens = static_cast<int64_t>(result->prompt_ids.size());
  outcome.prefill_tok_s = result->prefill_tokens_per_second();
  outcome.decode_tok_s = result->decode_tokens_per_second();
  outcome.finish_reason = std::string(engine::FinishReasonName(result->finish_reason));
  outcome.draft_tokens = result->drafted_tokens;
  outcome.accepted_tokens = result->accepted_tokens;
  return outcome;
}

absl::Status RunGenerate(const GenerateArgs& args) {
  engine::GenerateOptions options;
  options.max_tokens = args.max_tokens;
  options.sampling = args.sampling;
  options.sampling.seed = args.seed >= 0 ? static_cast<uint64_t>(args.seed) : std::random_device{}();
  options.stop = args.stop;
  options.draft_tokens = args.draft_tokens;
  auto print = [](std::string_view text) {
    std::cout << text << std::flush;
    return true;
  };
  EDGELLM_ASSIGN_OR_RETURN(const OutputConstraint constraint, ReadOutputConstraint(args.constraint_files));
  absl::StatusOr<GenerateOutcome> outcome =
      args.remote.server.empty()
          ? GenerateLocally(args, options, constraint, args.json ? engine::TextSink() : engine::TextSink(print))
          : GenerateRemotely(args.remote, args.prompt, options, args.adapter, constraint,
                             args.json ? std::function<void(std::string_view)>() : [&](std::string_view t) { print(t); });
  if (!outcome.ok()) return outcome.status();

  if (args.json) {
    nlohmann::json out = {
        {"text", outcome->text},
        {"token_ids", outcome->token_ids},
        {"prompt_tokens", outcome->prompt_tokens},
        {"generated_tokens", outcome->token_ids.size()},
        {"prefill_tok_s", outcome->prefill_tok_s},
        {"decode_tok_s", outcome->decode_tok_s},
        {"finish_reason", outcome->finish_reason},
        {"draft_tokens", outcome->draft_tokens},
        {"accepted_tokens", outcome->accepted_tokens},
        {"seed", options.sampling.seed},
    };
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return absl::OkStatus();
  }
  std::cout << std::endl;
  const std::string speculation =
      outcome->draft_tokens > 0
          ? absl::StrFormat(" drafted=%d accepted=%d", outcome->draft_tokens, outcome->accepted_tokens)
          : "";
  std::cerr << absl::StrFormat(
      "[prompt_tokens=%d generated_tokens=%d prefill_tok_s=%.1f decode_tok_s=%.1f finish=%s seed=%d%s]\n",
      outcome->prompt_tokens, outcome->token_ids.size(), outcome->prefill_tok_s, outcome->decode_tok_s,
      outcome->finish_reason, options.sampling.seed, speculation);
  return absl::OkStatus();
}

}  // namespace

void AddGenerateCommand(CLI::App& app, absl::Status* result) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text from a prompt, streaming it as it is produced");
  cmd->add_option("-m,--model", args->model, "GGUF model file (runs in this process)");
  AddServerOptions(*cmd, args->remote, "Stream from a running edgellmd instead");
  cmd->add_option("--session", args->remote.session_id,
                  "With --server: continue this session's conversation (multi-turn)");
  cmd->add_option("-p,--prompt", args->prompt, "Prompt text (the model's BOS is added)");
  cmd->add_option("-n,--max-tokens", args->max_tokens, "Tokens to generate at most")->capture_default_str();
  AddSamplingOptions(*cmd, args->sampling);
  cmd->add_option("-s,--seed", args->seed, "Random seed; the same seed gives the same output (default: random)");
  cmd->add_option("--stop", args->stop, "Stop before this string (repeatable)");
  cmd->add_option("-t,--threads", args->threads, "Compute threads (default: one per core)");
  cmd->add_option("-c,--ctx", args->context, "Context length (default: the model's, at most 4096)");
  cmd->add_option("--kv-type", args->kv_type,
                  "With --model: f16, f32 or q8_0 keys and values in the KV cache, as edgellmd's kv_type")
      ->capture_default_str();
  cmd->add_option("--device", args->device, "cpu (the engine's own kernels) or a LibTorch device: cuda, cuda:N")->capture_default_str();
  cmd->add_option("--draft", args->draft_tokens,
                  "Speculative decoding: tokens drafted per step, by prompt lookup or --draft-model (0: off; "
                  "default: off, 4 with --draft-model, the daemon's choice with --server)");
  cmd->add_option("--draft-model", args->draft_model,
                  "A smaller GGUF with the same vocabulary that drafts tokens for --model");
  cmd->add_option("--adapter", args->adapter,
                  "LoRA adapter applied unmerged: a PEFT directory (adapter_config.json + "
                  "adapter_model.safetensors); with --server, the name of one of the daemon's adapters");
  AddOutputConstraintOptions(*cmd, args->constraint_files);
  cmd->add_flag("--json", args->json, "Print one JSON object instead of streaming text");
  cmd->callback([args, result] { *result = RunGenerate(*args); });
}

}  // namespace edgellm::tools
