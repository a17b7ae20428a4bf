#pragma once
// Where `qai` writes its standard output: an interactive terminal (live views may redraw a
// line in place) or anything else (a pipe, a file, a test's buffer: plain lines only).
//
//   qai::cli::Terminal terminal = qai::cli::StdoutTerminal();
//   if (terminal.tty) { ... "\r\033[2K" + a status line no wider than terminal.columns ... }

namespace qai::cli {

// Terminal: what a command may assume about its standard output.
struct Terminal {
  // Standard output is a terminal that understands ANSI control sequences.
  bool tty = false;
  // Its width; status lines redrawn in place must fit on one line.
  int columns = 80;
};

// StdoutTerminal: the process's standard output as it is now: a terminal when isatty(1) and
// TERM is neither unset nor "dumb"; its width from the terminal itself, else $COLUMNS, else 80.
Terminal StdoutTerminal();

}  // namespace qai::cli
