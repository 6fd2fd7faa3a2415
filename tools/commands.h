// tools/commands.h — the subcommands of the `edgellm` CLI. Each Add*Command
// registers its options on `app` and a callback that runs the command and
// stores its outcome in `*result`, which main() turns into the exit code.
#ifndef EDGELLM_TOOLS_COMMANDS_H_
#define EDGELLM_TOOLS_COMMANDS_H_

#include <CLI/CLI.hpp>

#include "absl/status/status.h"

namespace edgellm::tools {

void AddGenerateCommand(CLI::App& app, absl::Status* result);
void AddChatCommand(CLI::App& app, absl::Status* result);
void AddTokenizeCommand(CLI::App& app, absl::Status* result);
void AddMakeModelCommand(CLI::App& app, absl::Status* result);
void AddMergeCommand(CLI::App& app, absl::Status* result);
void AddQuantizeCommand(CLI::App& app, absl::Status* result);
void AddTrainCommand(CLI::App& app, absl::Status* result);
// keygen, publish, rollout
void AddReleaseCommands(CLI::App& app, absl::Status* result);

}  // namespace edgellm::tools

#endif  // EDGELLM_TOOLS_COMMANDS_H_
