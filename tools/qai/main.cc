// qai: the command-line client of the QAI services. See cli.h; `qai --help` lists the commands.

#include <iostream>
#include <string>
#include <vector>

#include "common/config.h"
#include "tools/qai/cli.h"
#include "tools/qai/terminal.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return qai::cli::RunCli(args, qai::common::ProcessEnv, std::cout, std::cerr,
                          qai::cli::StdoutTerminal());
}
