#pragma once
// Command-line parsing for the `qai` client: a tree of commands (`projects create`), each with
// positional arguments and `--flags`, plus global flags accepted anywhere on the line.
//
// A command is declared once as a CommandSpec; the parser picks it from the leading words,
// resolves every flag it may use (line, then environment, then default), validates, and hands
// the result to the command's handler. Usage text is generated from the same declarations.
//
//   CommandLine line = ParseCommandLine(cli, {"--json", "projects", "get", "3f0c..."});
//   if (!line.error.empty()) { ... print line.error and Usage(cli, line.words), exit 2 ... }
//   line.args.positional(0);  // "3f0c..."
//   line.args.Switch("json");  // true

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "common/config.h"
#include "tools/qai/terminal.h"

namespace qai::cli {

// Exit codes of the `qai` program.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRpcError = 1;
inline constexpr int kExitUsage = 2;

// Members carry `{}` initialisers so declarations may name only the fields they need.

// FlagSpec: one `--name` option. Given as `--name value` or `--name=value`; a switch (empty
// `value_name`) is given as plain `--name` and reads back as "true".
struct FlagSpec {
  std::string name{};
  // Placeholder in usage text, e.g. "ID"; empty makes the flag a switch.
  std::string value_name{};
  std::string help{};
  // Environment variable consulted when the flag is absent from the line; empty for none.
  std::string env{};
  std::string default_value{};
  // Parsing fails when the resolved value is empty.
  bool required = false;
  // Extra check of a non-empty value: returns why it is invalid, or "" (see common/config.h).
  std::function<std::string(std::string_view)> validate{};
};

// Args: the resolved values of every flag the chosen command accepts, and its positionals.
class Args {
 public:
  // Get: the value of a declared flag, "" when unset. Asking for an undeclared flag is a bug.
  const std::string& Get(std::string_view name) const;
  // Switch: whether a switch flag was given.
  bool Switch(std::string_view name) const { return Get(name) == "true"; }
  // GetInt / GetDuration: typed views, for flags whose validator guarantees the form
  // (common::IsInt, common::IsDuration); an unset or malformed value reads as zero.
  int64_t GetInt(std::string_view name) const;
  absl::Duration GetDuration(std::string_view name) const;

  const std::vector<std::string>& positionals() const { return positionals_; }
  const std::string& positional(size_t i) const { return positionals_.at(i); }

  void Set(std::string name, std::string value) { values_[std::move(name)] = std::move(value); }
  void AddPositional(std::string value) { positionals_.push_back(std::move(value)); }

 private:
  std::map<std::string, std::string, std::less<>> values_;
  std::vector<std::string> positionals_;
};

// Invocation: what a command handler gets: its arguments and where to write.
struct Invocation {
  const Args& args;
  std::ostream& out;
  std::ostream& err;
  // What `out` is: live views redraw in place only on a terminal.
  Terminal terminal{};
};

// CommandSpec: one leaf command, e.g. path {"projects", "rename"} with positionals {"ID", "NAME"}.
// Every positional is required. The handler returns the process exit code; when it returns
// kExitUsage the dispatcher adds the command's usage text after whatever it printed.
struct CommandSpec {
  std::vector<std::string> path{};
  std::vector<std::string> positionals{};
  std::vector<FlagSpec> flags{};
  std::string summary{};
  std::function<int(const Invocation&)> run{};
};

// CliSpec: the whole program: its name, the flags valid on every command, and the commands.
struct CliSpec {
  std::string program{};
  std::vector<FlagSpec> global_flags{};
  std::vector<CommandSpec> commands{};
};

// CommandLine: the outcome of parsing one command line.
struct CommandLine {
  // The command words recognised so far, e.g. {"projects"}; usage text is scoped to them.
  std::vector<std::string> words;
  // The chosen command; null when the words name only a group (or nothing) or on error.
  const CommandSpec* command = nullptr;
  // `--help` or `-h` appeared; the rest of the line is then not validated.
  bool help = false;
  Args args;
  // Why the line is unusable; empty when it is valid (or help was asked for).
  std::string error;
};

// IsInt32: a FlagSpec::validate for flags that fill an int32 request field, which a larger
// number would silently overflow.
std::string IsInt32(std::string_view value);

// ParseCommandLine: parses `args` (argv without the program name) against `cli`. Words pick
// the command until a leaf is reached; later words are its positionals. Flags may appear
// anywhere: global ones always, a command's own once the command is known. `--` ends flags.
[[nodiscard]] CommandLine ParseCommandLine(const CliSpec& cli, std::span<const std::string> args,
                                           const common::EnvLookup& env = common::ProcessEnv);

// Usage: help for the commands under `words` ({} = all of them; a leaf's path = that command),
// with its flags and the global ones.
[[nodiscard]] std::string Usage(const CliSpec& cli, std::span<const std::string> words);

}  // namespace qai::cli
