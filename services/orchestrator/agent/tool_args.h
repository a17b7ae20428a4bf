#pragma once
// ParseToolArgs: what a tool call asks for, read from the arguments the model wrote.
//
// The arguments come from the model endpoint as text, so anything may be in them: not JSON,
// JSON nested 100,000 deep, the wrong types, a command with a NUL. What is wrong becomes a
// message for the model (its tool result, exit code 1), never a failure of the run.
//
//   ToolArgs args = ParseToolArgs(call, limits.max_command_bytes);
//   if (const auto* bad = std::get_if<ToolArgsError>(&args)) ... answer the model bad->message
//   if (const auto* terminal = std::get_if<TerminalArgs>(&args)) ... run terminal->command

#include <cstddef>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "services/orchestrator/model/model.h"

namespace qai::orchestrator {

// TerminalArgs: a `terminal` call: a command, not empty, without NUL, at most the limit long.
struct TerminalArgs {
  std::string command;
};

// WriteFilesArgs: a `createOrUpdateFiles` call: the well-formed entries (path, content) in
// order, and how many entries lacked a string path or content (each is reported, the others
// are still written).
struct WriteFilesArgs {
  std::vector<std::pair<std::string, std::string>> files;
  size_t malformed = 0;
};

// ReadFilesArgs: a `readFiles` call: the paths it names (entries that are not strings are
// skipped).
struct ReadFilesArgs {
  std::vector<std::string> paths;
};

// ToolArgsError: why the call cannot run, in words for the model ("error: ...").
struct ToolArgsError {
  std::string message;
};

using ToolArgs = std::variant<TerminalArgs, WriteFilesArgs, ReadFilesArgs, ToolArgsError>;

// ParseToolArgs: the call's arguments for its tool (kToolTerminal, kToolWriteFiles,
// kToolReadFiles), or the error to answer with: arguments that are not a JSON object (or nest
// deeper than common::kMaxUntrustedJsonDepth), a missing or mistyped field, an empty, too long
// (over max_command_bytes) or NUL-holding command, an unknown tool.
[[nodiscard]] ToolArgs ParseToolArgs(const ToolCall& call, size_t max_command_bytes);

}  // namespace qai::orchestrator
