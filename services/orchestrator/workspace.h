#pragma once
// Workspace: a project's persistent sandbox directory, and the only way the agent touches it.
//
// Every project has one directory under the sandbox root; it outlives runs, so a follow-up
// prompt edits what the previous run built. Paths the model names are confined to it: absolute
// paths, `..` and symlinks leading outside are refused. Commands run in it under a Sandbox
// (sandbox.h: clean environment, resource limits, a user of the project's own, bubblewrap when
// chosen), with a timeout and capped output, and are killed when the run is cancelled.
//
//   auto ws = Workspace::Open("/var/lib/qai/sandboxes", project_id);
//   (*ws)->WriteFile("index.html", "<h1>Hi</h1>");
//   CommandResult r = (*ws)->Run("ls -la", {.timeout = absl::Seconds(30), .sandbox = sandbox},
//                                [] { return false; });

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/orchestrator/process.h"
#include "services/orchestrator/sandbox.h"

namespace qai::orchestrator {

struct CommandOptions {
  absl::Duration timeout = absl::Seconds(60);
  // Output (stdout and stderr interleaved) beyond this is dropped; the result says so.
  size_t max_output = 64 << 10;
  // A command still printing after this many bytes is killed.
  size_t max_output_read = 16 << 20;
  // How commands are confined; null means Sandbox::Default().
  std::shared_ptr<const Sandbox> sandbox;
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

  // WriteFile: creates or replaces a file (and its parent directories), owned by the
  // workspace's owner. INVALID_ARGUMENT for a path that is empty, absolute, climbs out, passes
  // through or names a symlink, names a file with other hard links that the workspace's owner
  // does not own (it may be a file from outside), or is not valid UTF-8 (or has NUL, or more
  // than 512 bytes); FAILED_PRECONDITION when a directory or another non-regular file is in the
  // way. The same rules hold for ReadFile.
  [[nodiscard]] absl::Status WriteFile(std::string_view path, std::string_view content);
  // ReadFile: a file's content; NOT_FOUND when missing; OUT_OF_RANGE when over max_bytes.
  [[nodiscard]] absl::StatusOr<std::string> ReadFile(std::string_view path, size_t max_bytes = 1 << 20) const;
  // Run: `bash -c command` in the workspace under options.sandbox. `cancelled` is polled while
  // it runs; when it turns true, or the timeout passes, the command's whole process group is
  // killed (SIGTERM, SIGKILL a second later). Background jobs do not outlive the command: once
  // it exits, the group is killed (in bwrap mode, everything it started). When the sandbox
  // runs the project's commands as a user of their own, the workspace is first handed to that
  // user (once: its files too). A command the sandbox stopped (its output, a limit's signal)
  // has a line saying why at the start of its output, where a caller that shortens the output
  // does not cut it.
  CommandResult Run(const std::string& command, const CommandOptions& options,
                    const std::function<bool()>& cancelled) const;
  // Snapshot: every regular file (relative path with '/' -> content), skipping `.git` and
  // `node_modules`, symlinks, files ReadFile would refuse, and binary files (with a NUL byte or
  // not valid UTF-8: fragments store text); FAILED_PRECONDITION, naming the limit, when the
  // limits are exceeded.
  [[nodiscard]] absl::StatusOr<std::map<std::string, std::string>> Snapshot(const SnapshotLimits& limits = {}) const;

  // Rebuilding a workspace from what the database knows (see WorkerPool): RemoveFile deletes
  // a file (the same path rules as WriteFile; a missing one is fine); Reset makes the
  // workspace hold exactly `files`, everything else removed. Version names the state the
  // directory is known to hold (kept next to it, out of the commands' reach when sandboxed);
  // empty when unknown, e.g. while a run is changing it.
  [[nodiscard]] absl::Status RemoveFile(std::string_view path);
  [[nodiscard]] absl::Status Reset(const std::map<std::string, std::string>& files);
  std::string Version() const;
  [[nodiscard]] absl::Status SetVersion(std::string_view version);

 private:
  Workspace(std::string dir, std::string project_id) : dir_(std::move(dir)), project_id_(std::move(project_id)) {}
  // HandTo: makes user the owner of the workspace and everything in it (a directory only it
  // can enter), unless it already is.
  absl::Status HandTo(const SandboxUser& user) const;

  std::string dir_;
  std::string project_id_;  // lower case
};

}  // namespace qai::orchestrator
