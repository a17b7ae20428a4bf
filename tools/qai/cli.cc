#include "tools/qai/cli.h"

#include <ostream>

#include "tools/qai/global_options.h"
#include "tools/qai/messages_commands.h"
#include "tools/qai/projects_commands.h"
#include "tools/qai/runs_commands.h"
#include "tools/qai/token_command.h"
#include "tools/qai/versions_commands.h"

namespace qai::cli {

CliSpec QaiCli() {
  CliSpec cli{.program = "qai", .global_flags = GlobalFlags(), .commands = {TokenCommand()}};
  for (CommandSpec& command : ProjectCommands()) cli.commands.push_back(std::move(command));
  for (CommandSpec& command : MessageCommands()) cli.commands.push_back(std::move(command));
  for (CommandSpec& command : RunCommands()) cli.commands.push_back(std::move(command));
  for (CommandSpec& command : VersionCommands()) cli.commands.push_back(std::move(command));
  return cli;
}

int RunCli(std::span<const std::string> args, const common::EnvLookup& env, std::ostream& out,
           std::ostream& err, const Terminal& terminal) {
  const CliSpec cli = QaiCli();
  const CommandLine line = ParseCommandLine(cli, args, env);
  if (line.help) {
    out << Usage(cli, line.words);
    return kExitOk;
  }
  if (!line.error.empty()) {
    err << "error: " << line.error << "\n\n" << Usage(cli, line.words);
    return kExitUsage;
  }
  const int code = line.command->run(
      Invocation{.args = line.args, .out = out, .err = err, .terminal = terminal});
  if (code == kExitUsage) err << "\n" << Usage(cli, line.words);
  return code;
}

}  // namespace qai::cli
