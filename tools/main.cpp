// The `edgellm` command-line tool.
#include <iostream>

#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"edgellm — run and improve language models on edge nodes"};
  app.require_subcommand(1);
  absl::Status result;
  edgellm::tools::AddGenerateCommand(app, &result);
  edgellm::tools::AddChatCommand(app, &result);
  edgellm::tools::AddTokenizeCommand(app, &result);
  edgellm::tools::AddMakeModelCommand(app, &result);
  edgellm::tools::AddMergeCommand(app, &result);
  edgellm::tools::AddQuantizeCommand(app, &result);
  edgellm::tools::AddTrainCommand(app, &result);
  edgellm::tools::AddReleaseCommands(app, &result);
  CLI11_PARSE(app, argc, argv);
  if (!result.ok()) {
    std::cerr << "edgellm: error: " << result.message() << "\n";
    return 1;
  }
  return 0;
}
