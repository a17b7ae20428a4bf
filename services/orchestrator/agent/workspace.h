#pragma once
// Workspace: what the agent's tools do to a project's workspace, wherever it is. The
// orchestrator runs no untrusted code itself: its workspaces are qai-sandbox's, reached through
// SandboxWorkspace (sandbox_client.h). Every call may fail as a whole (the sandbox is
// unreachable, or the workspace moved): the attempt then stops and the run is retried.
//
//   absl::StatusOr<CommandOutcome> r = workspace.Run("ls -la", cancelled);
//   absl::StatusOr<std::vector<FileResult>> w = workspace.WriteFiles({{"index.html",
//   "<h1>Hi</h1>"}});

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace qai::orchestrator {

// CommandOutcome: how a command ended and what it printed.
struct CommandOutcome {
  // Valid UTF-8; a line saying why the sandbox stopped the command, if it did, comes first.
  std::string output;
  int exit_code = 0;  // 128 + signal when killed
  bool truncated = false;
  bool timed_out = false;
  bool cancelled = false;
};

// FileResult: one file of WriteFiles or ReadFiles: its content (reads) or why it failed.
struct FileResult {
  std::string path;
  std::string content;
  std::string error;  // empty on success
};

// Changes: path -> new content, or nullopt for a removed file.
using FileChanges = std::map<std::string, std::optional<std::string>>;

class Workspace {
 public:
  virtual ~Workspace() = default;
  // Run: `bash -c command` in the workspace; killed when `cancelled` turns true (then the
  // outcome says cancelled).
  [[nodiscard]] virtual absl::StatusOr<CommandOutcome> Run(
      const std::string& command, const std::function<bool()>& cancelled) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::vector<FileResult>> WriteFiles(
      const std::vector<std::pair<std::string, std::string>>& files) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::vector<FileResult>> ReadFiles(
      const std::vector<std::string>& paths, size_t max_bytes) = 0;
  // Changes: what changed since the last look (whatever changed it); nullopt when the
  // workspace is too large to tell.
  [[nodiscard]] virtual absl::StatusOr<std::optional<FileChanges>> Changes() = 0;
};

}  // namespace qai::orchestrator
