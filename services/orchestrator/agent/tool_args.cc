#include "services/orchestrator/agent/tool_args.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/json.h"
#include "services/orchestrator/model/prompts.h"

namespace qai::orchestrator {
namespace {

using nlohmann::json;

ToolArgsError Error(std::string message) { return {.message = std::move(message)}; }

ToolArgs Terminal(const json& args, size_t max_command_bytes) {
  if (!args.contains("command") || !args["command"].is_string())
    return Error("error: missing \"command\"");
  std::string command = args["command"].get<std::string>();
  if (command.empty()) return Error("error: \"command\" is empty");
  if (command.size() > max_command_bytes) {
    return Error(absl::StrCat("error: \"command\" is longer than ", max_command_bytes, " bytes"));
  }
  if (command.find('\0') != std::string::npos) return Error("error: \"command\" contains NUL");
  return TerminalArgs{.command = std::move(command)};
}

ToolArgs WriteFiles(const json& args) {
  if (!args.contains("files") || !args["files"].is_array())
    return Error("error: missing \"files\"");
  WriteFilesArgs out;
  for (const json& f : args["files"]) {
    if (!f.is_object() || !f.contains("path") || !f["path"].is_string() || !f.contains("content") ||
        !f["content"].is_string()) {
      ++out.malformed;
      continue;
    }
    out.files.emplace_back(f["path"].get<std::string>(), f["content"].get<std::string>());
  }
  return out;
}

ToolArgs ReadFiles(const json& args) {
  if (!args.contains("files") || !args["files"].is_array())
    return Error("error: missing \"files\"");
  ReadFilesArgs out;
  for (const json& p : args["files"]) {
    if (p.is_string()) out.paths.push_back(p.get<std::string>());
  }
  return out;
}

}  // namespace

ToolArgs ParseToolArgs(const ToolCall& call, size_t max_command_bytes) {
  const json args = common::ParseUntrustedJson(call.arguments_json);
  if (args.is_discarded() &&
      common::JsonNestedDeeperThan(call.arguments_json, common::kMaxUntrustedJsonDepth)) {
    return Error(absl::StrCat("error: the arguments nest deeper than ",
                              common::kMaxUntrustedJsonDepth, " levels"));
  }
  if (!args.is_object()) return Error("error: the arguments are not a JSON object");
  if (call.name == kToolTerminal) return Terminal(args, max_command_bytes);
  if (call.name == kToolWriteFiles) return WriteFiles(args);
  if (call.name == kToolReadFiles) return ReadFiles(args);
  return Error(absl::StrCat("error: unknown tool ", call.name));
}

}  // namespace qai::orchestrator
