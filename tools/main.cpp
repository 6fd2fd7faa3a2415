// The `edgellm` command-line tool.
#include <iostream>

#include "tools/commands.h"

namespace edgellm::tools {

void ExitOnError(const absl::Status& status) {
  if (status.ok()) return;
  std::cerr << "edgellm: error: " << status.message() << "\n";
  throw CLI::RuntimeError(1);
}

}  // namespace edgellm::tools

int main(int argc, char** argv) {
  CLI::App app{"edgellm — run and improve language models on edge nodes"};
  app.require_subcommand(1);
  edgellm::tools::AddGenerateCommand(app);
  edgellm::tools::AddTokenizeCommand(app);
  edgellm::tools::AddMakeModelCommand(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
