#pragma once
// Workspace: a project's persistent sandbox directory, and the only way the agent touches it.
//
// Every project has one directory under the sandbox root; it outlives runs, so a follow-up
// prompt edits what the previous run built. Paths the model names are confined to it: absolute
// paths, `..` and symlinks leading outside are refused. Commands run with the directory as
// their working directory, in their own process group, with a timeout and capped output, and
// are killed (the whole group) when the run is cancelled.
//
//   auto ws = Workspace::Open("/var/lib/qai/sandboxes", project_id);
//   (*ws)->WriteFile("index.html", "<h1>Hi</h1>");
//   CommandResult r = (*ws)->Run("ls -la", {.timeout = absl::Seconds(30)}, [] { return false; });

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/orchestrator/process.h"

namespace qai::orchestrator {

struct CommandOptions {
  absl::Duration timeout = absl::Seconds(60);
  // Output (stdout and stderr interleaved) beyond this is dropped; the result says so.
  size_t max_output = 64 << 10;
  // A command still printing after this many bytes is killed.
  size_t max_output_read = 16 << 20;
};

struct SnapshotLimits {
  size_t max_files = 1000;
  size_t max_bytes = 3 << 20;  // total content
};

class Workspace {
 public:
  // Open: the workspace of project_id (a UUID) under root, created if missing.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Workspace>> Open(const std::string& root,
                                                                       const std::string& project_id);

  const std::string& dir() const { return dir_; }

  // WriteFile: creates or replaces a file (and its parent directories). INVALID_ARGUMENT for a
  // path that is empty, absolute, climbs out, passes through or names a symlink, or is not valid
  // UTF-8 (or has NUL, or more than 512 bytes); FAILED_PRECONDITION when a directory or another
  // non-regular file is in the way. The same rules hold for ReadFile.
  [[nodiscard]] absl::Status WriteFile(std::string_view path, std::string_view content);
  // ReadFile: a file's content; NOT_FOUND when missing; OUT_OF_RANGE when over max_bytes.
  [[nodiscard]] absl::StatusOr<std::string> ReadFile(std::string_view path, size_t max_bytes = 1 << 20) const;
  // Run: `bash -c command` in the workspace. `cancelled` is polled while it runs; when it turns
  // true, or the timeout passes, the command's whole process group is killed (SIGTERM, SIGKILL
  // a second later). Background jobs do not outlive the command: once it exits, the group is
  // killed. Commands see only PATH, HOME (the workspace), LANG and TERM, never the service's
  // environment and its secrets. Processes that leave the group (setsid) are out of reach.
  CommandResult Run(const std::string& command, const CommandOptions& options,
                    const std::function<bool()>& cancelled) const;
  // Snapshot: every regular file (relative path with '/' -> content), skipping `.git` and
  // `node_modules`, symlinks and binary files (with a NUL byte or not valid UTF-8: fragments
  // store text); FAILED_PRECONDITION, naming the limit, when the limits are exceeded.
  [[nodiscard]] absl::StatusOr<std::map<std::string, std::string>> Snapshot(const SnapshotLimits& limits = {}) const;

 private:
  explicit Workspace(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace qai::orchestrator
