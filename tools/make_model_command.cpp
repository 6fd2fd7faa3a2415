// `edgellm make-model`: write a synthetic GGUF at a real model's shape.
#include <filesystem>
#include <iostream>

#include "common/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/engine/engine.h"
#include "tools/commands.h"

namespace edgellm::tools {
namespace {

std::string ShapeNames() {
  std::vector<std::string> names;
  for (const engine::ModelShape& s : engine::KnownShapes()) names.push_back(s.name);
  return absl::StrJoin(names, ", ");
}

struct MakeModelArgs {
  std::string shape;
  std::string type = "F32";
  std::string out;
  uint64_t seed = 1;
  std::string vocab_from;
  int32_t context = 0;  // 0: the shape's
};

absl::Status RunMakeModel(const MakeModelArgs& args) {
  std::optional<engine::ModelShape> shape = engine::FindShape(args.shape);
  if (!shape) {
    return absl::InvalidArgumentError(edgellm::StrCat("unknown shape '", args.shape, "'; known: ", ShapeNames()));
  }
  if (args.context < 0 || args.context > (1 << 20)) {
    return absl::InvalidArgumentError(edgellm::StrCat("--ctx ", args.context, " is outside 0..1048576"));
  }
  if (args.context > 0) shape->n_ctx = args.context;
  // A mix names the type most of its weights get.
  const std::optional<engine::QuantMix> mix = engine::QuantMixFromName(args.type);
  std::optional<engine::GgmlType> type = mix ? engine::GgmlType::kQ4_K : engine::GgmlTypeFromName(args.type);
  if (!type || !engine::CanQuantize(*type)) {
    return absl::InvalidArgumentError(edgellm::StrCat("type '", args.type, "' cannot be written; use one of ",
                                                      engine::WritableTypeNames(), " or the mix Q4_K_M"));
  }
  if (absl::Status s = engine::WriteSyntheticModel({*shape, *type, args.seed, args.vocab_from}, args.out, mix);
      !s.ok()) {
    return s;
  }
  std::error_code size_error;
  std::cout << "wrote " << args.out << " (" << shape->name << ", " << args.type << ", "
            << std::filesystem::file_size(args.out, size_error) << " bytes)\n";
  return absl::OkStatus();
}

}  // namespace

void AddMakeModelCommand(CLI::App& app, absl::Status* result) {
  auto args = std::make_shared<MakeModelArgs>();
  CLI::App* cmd = app.add_subcommand("make-model", "Write a GGUF model with random weights at a real model's shape");
  cmd->add_option("--shape", args->shape, "One of: " + ShapeNames())->required();
  cmd->add_option("--type", args->type, "Weight type: " + engine::WritableTypeNames() + ", or the mix Q4_K_M")
      ->capture_default_str();
  cmd->add_option("-o,--out", args->out, "Output file")->required();
  cmd->add_option("--seed", args->seed, "Seed of the random weights and vocabulary")->capture_default_str();
  cmd->add_option("--vocab-from", args->vocab_from,
                  "Copy the tokenizer of this GGUF (e.g. a real model's or a vocab-only file) instead of a synthetic one");
  cmd->add_option("--ctx", args->context, "Context length the file declares (default: the shape's)");
  cmd->callback([args, result] { *result = RunMakeModel(*args); });
}

}  // namespace edgellm::tools
