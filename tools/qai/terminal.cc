#include "tools/qai/terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include "absl/strings/numbers.h"

namespace qai::cli {

Terminal StdoutTerminal() {
  Terminal terminal;
  const char* term = std::getenv("TERM");
  terminal.tty = isatty(STDOUT_FILENO) == 1 && term != nullptr && std::string_view(term) != "dumb";
  if (!terminal.tty) return terminal;
  winsize size{};
  int columns = 0;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    terminal.columns = size.ws_col;
  } else if (const char* env = std::getenv("COLUMNS");
             env != nullptr && absl::SimpleAtoi(env, &columns) && columns > 0) {
    terminal.columns = columns;
  }
  return terminal;
}

}  // namespace qai::cli
