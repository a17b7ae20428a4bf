#pragma once
// RunTool: one tool call of the model run in the project's workspace: a terminal command, files
// written, or files read, with what the model and the run's events are shown of it.
// CaptureChanges: what the tool changed there, for its journal entry (journal.h).
//
//   absl::StatusOr<ToolOutcome> ran = RunTool(call, workspace, limits, cancelled);
//   if (!ran.ok()) ... the workspace could not be reached: the attempt stops
//   absl::StatusOr<journal::Changes> changes = CaptureChanges(workspace, ran->written);

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/orchestrator/agent/agent.h"
#include "services/orchestrator/agent/journal.h"
#include "services/orchestrator/agent/workspace.h"
#include "services/orchestrator/model/model.h"

namespace qai::orchestrator {

// ToolOutcome: what a tool call did: its output (for the model, cut to the limits), its exit
// code, the paths it wrote, and whether the run's cancellation killed its command.
struct ToolOutcome {
  std::string output;
  int exit_code = 0;
  bool truncated = false;
  std::vector<std::string> written;
  bool cancelled = false;
};

// RunTool: the tool's outcome; an error only when the workspace could not be reached (the
// attempt stops), never for what the model asked wrongly (its result says so).
absl::StatusOr<ToolOutcome> RunTool(const ToolCall& call, Workspace& ws, const AgentLimits& limits,
                                    const std::function<bool()>& cancelled);

// CaptureChanges: what a tool changed in the workspace (whatever made the change: a written
// file or a command). When the workspace is too large to tell, the files the tool wrote count.
absl::StatusOr<journal::Changes> CaptureChanges(Workspace& ws,
                                                const std::vector<std::string>& written);

}  // namespace qai::orchestrator
