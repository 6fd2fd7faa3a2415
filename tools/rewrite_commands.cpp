// `edgellm merge` and `edgellm quantize`: write a new GGUF from a model, with
// a LoRA adapter merged into its weights and/or its weights converted.
#include <filesystem>
#include <iostream>

#include "common/str_cat.h"
#include "daemon/engine/engine.h"
#include "tools/commands.h"

namespace edgellm::tools {
namespace {

struct RewriteArgs {
  std::string model;
  std::string adapter;
  std::string type;
  std::string out;
};

absl::Status RunRewrite(const RewriteArgs& args) {
  auto reader = engine::GgufReader::Open(args.model);
  if (!reader.ok()) return reader.status();
  auto config = engine::LlamaConfig::FromGguf(**reader);
  if (!config.ok()) return config.status();
  engine::RewriteOptions options;
  if (!args.type.empty()) {
    options.mix = engine::QuantMixFromName(args.type);
    if (!options.mix) options.type = engine::GgmlTypeFromName(args.type);
    if (!options.mix && (!options.type || !engine::CanQuantize(*options.type))) {
      return absl::InvalidArgumentError(edgellm::StrCat("type '", args.type, "' cannot be written; use one of ",
                                                        engine::WritableTypeNames(), " or the mix Q4_K_M"));
    }
  }
  absl::StatusOr<engine::LoraAdapter> adapter;
  if (!args.adapter.empty()) {
    adapter = engine::LoraAdapter::Load(args.adapter, *config);
    if (!adapter.ok()) return adapter.status();
    options.adapter = &*adapter;
  }
  if (absl::Status s = engine::RewriteModel(**reader, *config, options, args.out); !s.ok()) return s;
  std::error_code size_error;
  std::cout << "wrote " << args.out << " (" << std::filesystem::file_size(args.out, size_error) << " bytes";
  if (options.adapter != nullptr) std::cout << ", adapter " << args.adapter << " merged";
  if (options.type) std::cout << ", weights " << engine::TraitsOf(*options.type).name;
  if (options.mix) std::cout << ", weights " << args.type;
  std::cout << ")\n";
  return absl::OkStatus();
}

}  // namespace

void AddMergeCommand(CLI::App& app, absl::Status* result) {
  auto args = std::make_shared<RewriteArgs>();
  CLI::App* cmd = app.add_subcommand(
      "merge", "Merge a LoRA adapter into a model's weights and write a new GGUF, re-quantized to the base's types");
  cmd->add_option("-m,--model", args->model, "Base GGUF model")->required();
  cmd->add_option("--adapter", args->adapter, "PEFT adapter directory")->required();
  cmd->add_option("--type", args->type, "Also convert the weights to this type (default: keep each weight's)");
  cmd->add_option("-o,--out", args->out, "Output GGUF file")->required();
  cmd->callback([args, result] { *result = RunRewrite(*args); });
}

void AddQuantizeCommand(CLI::App& app, absl::Status* result) {
  auto args = std::make_shared<RewriteArgs>();
  CLI::App* cmd = app.add_subcommand(
      "quantize", "Convert a model's weights to another type (rows that are not whole blocks keep theirs)");
  cmd->add_option("-m,--model", args->model, "GGUF model")->required();
  cmd->add_option("--type", args->type, engine::WritableTypeNames() + ", or the mix Q4_K_M")->required();
  cmd->add_option("-o,--out", args->out, "Output GGUF file")->required();
  cmd->callback([args, result] { *result = RunRewrite(*args); });
}

}  // namespace edgellm::tools
