#pragma once
// The `qai` program as a function: its command table and the dispatch from a command line to a
// handler, kept out of main() so tests can run whole command lines.
//
//   std::vector<std::string> args(argv + 1, argv + argc);
//   return qai::cli::RunCli(args, qai::common::ProcessEnv, std::cout, std::cerr,
//   qai::cli::StdoutTerminal());

#include <iosfwd>
#include <span>
#include <string>

#include "common/config.h"
#include "tools/qai/args.h"
#include "tools/qai/terminal.h"

namespace qai::cli {

// QaiCli: every command of `qai` with the global flags. New command groups register here.
CliSpec QaiCli();

// RunCli: parses `args` (argv without the program name), runs the command and returns the exit
// code: kExitOk, kExitRpcError, or kExitUsage after printing the error and the relevant usage
// to `err`. `--help` prints that usage to `out` and succeeds. `terminal` describes `out`
// (StdoutTerminal() for std::cout); the default is plain output.
int RunCli(std::span<const std::string> args, const common::EnvLookup& env, std::ostream& out,
           std::ostream& err, const Terminal& terminal = {});

}  // namespace qai::cli
