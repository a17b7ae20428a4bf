#include "services/orchestrator/agent/tool_runner.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "services/orchestrator/agent/tool_args.h"

namespace qai::orchestrator {
using common::TruncateUtf8;
namespace {

// The largest file a tool's journal entry keeps when changes are read file by file: the most
// qai-sandbox's ReadFiles returns of one file.
constexpr size_t kMaxJournaledFileBytes = 1 << 20;

ToolOutcome Failed(std::string message) {
  ToolOutcome out;
  out.output = std::move(message);
  out.exit_code = 1;
  return out;
}

absl::StatusOr<ToolOutcome> RunTerminal(const TerminalArgs& args, Workspace& ws,
                                        const AgentLimits& limits,
                                        const std::function<bool()>& cancelled) {
  ToolOutcome out;
  QAI_ASSIGN_OR_RETURN(CommandOutcome r, ws.Run(args.command, cancelled));
  out.output = TruncateUtf8(r.output, limits.max_tool_output_chars, &out.truncated);
  out.truncated = out.truncated || r.truncated;
  out.exit_code = r.exit_code;
  out.cancelled = r.cancelled;
  if (r.timed_out) {
    absl::StrAppend(&out.output, "\n[command timed out]");
  } else if (r.exit_code != 0 && !r.cancelled) {
    // A command that fails silently must still tell the model it failed.
    absl::StrAppend(&out.output, "\n[exit code ", r.exit_code, "]");
  }
  return out;
}

absl::StatusOr<ToolOutcome> WriteFiles(const WriteFilesArgs& args, Workspace& ws,
                                       const AgentLimits& limits) {
  ToolOutcome out;
  std::vector<std::string> lines(args.malformed,
                                 "error: each file needs a string path and content");
  if (args.malformed > 0) out.exit_code = 1;
  if (!args.files.empty()) {
    QAI_ASSIGN_OR_RETURN(std::vector<FileResult> written, ws.WriteFiles(args.files));
    for (const FileResult& r : written) {
      if (r.error.empty()) {
        out.written.push_back(r.path);
        lines.push_back(absl::StrCat("wrote ", r.path));
      } else {
        lines.push_back(absl::StrCat("error: ", r.path, ": ", r.error));
        out.exit_code = 1;
      }
    }
  }
  out.output =
      TruncateUtf8(absl::StrJoin(lines, "\n"), limits.max_tool_output_chars, &out.truncated);
  return out;
}

absl::StatusOr<ToolOutcome> ReadFiles(const ReadFilesArgs& args, Workspace& ws,
                                      const AgentLimits& limits) {
  ToolOutcome out;
  nlohmann::json result = nlohmann::json::array();
  if (!args.paths.empty()) {
    QAI_ASSIGN_OR_RETURN(std::vector<FileResult> read,
                         ws.ReadFiles(args.paths, limits.max_read_bytes));
    for (const FileResult& r : read) {
      if (r.error.empty()) {
        result.push_back({{"path", r.path}, {"content", r.content}});
      } else {
        result.push_back({{"path", r.path}, {"error", r.error}});
      }
    }
  }
  out.output = TruncateUtf8(result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                            limits.max_read_bytes * 4, &out.truncated);
  return out;
}

}  // namespace

absl::StatusOr<ToolOutcome> RunTool(const ToolCall& call, Workspace& ws, const AgentLimits& limits,
                                    const std::function<bool()>& cancelled) {
  ToolArgs args = ParseToolArgs(call, limits.max_command_bytes);
  if (const auto* terminal = std::get_if<TerminalArgs>(&args))
    return RunTerminal(*terminal, ws, limits, cancelled);
  if (const auto* files = std::get_if<WriteFilesArgs>(&args)) return WriteFiles(*files, ws, limits);
  if (const auto* files = std::get_if<ReadFilesArgs>(&args)) return ReadFiles(*files, ws, limits);
  return Failed(std::get<ToolArgsError>(std::move(args)).message);
}

absl::StatusOr<journal::Changes> CaptureChanges(Workspace& ws,
                                                const std::vector<std::string>& written) {
  QAI_ASSIGN_OR_RETURN(std::optional<journal::Changes> changes, ws.Changes());
  if (changes) return *std::move(changes);
  journal::Changes fallback;
  if (written.empty()) return fallback;
  QAI_ASSIGN_OR_RETURN(std::vector<FileResult> read, ws.ReadFiles(written, kMaxJournaledFileBytes));
  for (FileResult& r : read) {
    if (r.error.empty()) fallback[r.path] = std::move(r.content);
  }
  return fallback;
}

}  // namespace qai::orchestrator
