// tools/commands.h — the subcommands of the `edgellm` CLI. Each Add*Command
// registers its options on `app` and sets the callback that runs it; a
// callback reports failure by throwing CLI::RuntimeError after printing the
// error, which main() turns into the exit code.
#ifndef EDGELLM_TOOLS_COMMANDS_H_
#define EDGELLM_TOOLS_COMMANDS_H_

#include <CLI/CLI.hpp>

#include "absl/status/status.h"

namespace edgellm::tools {

void AddGenerateCommand(CLI::App& app);
void AddTokenizeCommand(CLI::App& app);
void AddMakeModelCommand(CLI::App& app);

// Prints "edgellm: error: <message>" to stderr and throws CLI::RuntimeError(1)
// when `status` is not OK.
void ExitOnError(const absl::Status& status);

}  // namespace edgellm::tools

#endif  // EDGELLM_TOOLS_COMMANDS_H_
