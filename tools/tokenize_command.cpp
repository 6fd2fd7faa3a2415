// `edgellm tokenize`: print the token ids of a text.
#include <iostream>

#include <nlohmann/json.hpp>

#include "daemon/engine/engine.h"
#include "tools/commands.h"

namespace edgellm::tools {
namespace {

struct TokenizeArgs {
  std::string model;
  std::string prompt;
  bool no_bos = false;
  bool no_parse_special = false;
  bool json = false;
};

absl::Status RunTokenize(const TokenizeArgs& args) {
  // Only the tokenizer is needed: read the metadata, not the weights.
  auto gguf = engine::GgufReader::Open(args.model);
  if (!gguf.ok()) return gguf.status();
  auto tokenizer = engine::Tokenizer::FromGguf(**gguf);
  if (!tokenizer.ok()) return tokenizer.status();
  const std::vector<engine::TokenId> ids = (*tokenizer)->Encode(args.prompt, !args.no_bos, !args.no_parse_special);
  if (args.json) {
    std::vector<std::string> pieces;
    for (engine::TokenId id : ids) pieces.push_back((*tokenizer)->vocab().tokens[id]);
    const nlohmann::json out = {{"text", args.prompt}, {"token_ids", ids}, {"pieces", pieces}, {"count", ids.size()}};
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return absl::OkStatus();
  }
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
  std::cout << "\n";
  return absl::OkStatus();
}

}  // namespace

void AddTokenizeCommand(CLI::App& app, absl::Status* result) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text");
  cmd->add_option("-m,--model", args->model, "GGUF model file")->required();
  cmd->add_option("-p,--prompt", args->prompt, "Text to tokenize")->required();
  cmd->add_flag("--no-bos", args->no_bos, "Do not add BOS/EOS");
  cmd->add_flag("--no-parse-special", args->no_parse_special, "Treat special-token text (\"<s>\") as plain text");
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->callback([args, result] { *result = RunTokenize(*args); });
}

}  // namespace edgellm::tools
