#pragma once
// Workspace: a project's persistent sandbox directory, and the only way anything touches it.
//
// Every project has one directory, <root>/workspaces/<project id>, owned by the project's own
// user (mode 0700) from its creation; it outlives runs, so a follow-up prompt edits what the
// previous run built. The root (0711) and workspaces/ (0711) belong to the service, so no
// project can list, rename or plant a workspace; the service's marks (which snapshot a
// workspace holds) live in <root>/state (0700), out of every project's reach. Paths the model names
// are confined to it: absolute paths, `..` and symlinks leading outside are refused. Commands run
// in it under a Sandbox (sandbox.h: clean environment, resource limits, a user of the project's
// own, bubblewrap when chosen), with a timeout and capped output, and are killed when the run is
// cancelled.
//
//   auto ws = Workspace::Open("/var/lib/qai/sandboxes", project_id, SandboxUser{.uid = 1000000007,
//   .gid = 1000000007});
//   (*ws)->WriteFile("index.html", "<h1>Hi</h1>");
//   CommandResult r = (*ws)->Run("ls -la", {.timeout = absl::Seconds(30), .sandbox = sandbox},
//                                [] { return false; });

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/sandbox/disk_quota.h"
#include "services/sandbox/process.h"
#include "services/sandbox/sandbox.h"

namespace qai::sandbox {

struct CommandOptions {
  absl::Duration timeout = absl::Seconds(60);
  // Output (stdout and stderr interleaved) beyond this is dropped; the result says so.
  size_t max_output = 64 << 10;
  // A command still printing after this many bytes is killed.
  size_t max_output_read = 16 << 20;
  // How commands are confined; null means Sandbox::Default().
  std::shared_ptr<const Sandbox> sandbox;
  // The kept output as it is read (see ProcessSpec::on_output); may be empty.
  std::function<void(std::string_view)> on_output;
};

struct SnapshotLimits {
  size_t max_files = 1000;      // QAI_SNAPSHOT_MAX_FILES
  size_t max_bytes = 32 << 20;  // total content, QAI_SNAPSHOT_MAX_MB
};

// PrepareRoot: creates the sandbox root and its two directories if missing and gives them
// their modes; FAILED_PRECONDITION when the root belongs to someone else.
[[nodiscard]] absl::Status PrepareRoot(const std::string& root);

// ProjectsIn: the projects with a workspace under root (prepared by PrepareRoot).
[[nodiscard]] absl::StatusOr<std::vector<std::string>> ProjectsIn(const std::string& root);

class Workspace {
 public:
  // Open: the workspace of project_id (a UUID) under root (absolute; prepared by PrepareRoot),
  // created if missing and handed to owner (its files too). Without an owner (the service is
  // not root) commands run as the service's own user.
  // With a quota, the workspace is a filesystem of that size of its own (disk_quota.h): mounted
  // here when it is not yet (empty: what it was marked as holding is forgotten, and what lay
  // in the directory beneath is removed first).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Workspace>> Open(
      const std::string& root, const std::string& project_id, std::optional<SandboxUser> owner,
      std::optional<DiskQuota> quota = std::nullopt);

  const std::string& dir() const { return dir_; }

  // WriteFile: creates or replaces a file (and its parent directories), owned by the
  // workspace's owner. INVALID_ARGUMENT for a path that is empty, absolute, climbs out, passes
  // through or names a symlink, names a file with other hard links that the workspace's owner
  // does not own (it may be a file from outside), or is not valid UTF-8 (or has NUL, or more
  // than 512 bytes); FAILED_PRECONDITION when a directory or another non-regular file is in the
  // way. The same rules hold for ReadFile.
  [[nodiscard]] absl::Status WriteFile(std::string_view path, std::string_view content);
  // ReadFile: a file's content; NOT_FOUND when missing; OUT_OF_RANGE when over max_bytes.
  [[nodiscard]] absl::StatusOr<std::string> ReadFile(std::string_view path,
                                                     size_t max_bytes = 1 << 20) const;
  // Run: `bash -c command` in the workspace under options.sandbox. `cancelled` is polled while
  // it runs; when it turns true, or the timeout passes, the command's whole process group is
  // killed (SIGTERM, SIGKILL a second later). Background jobs do not outlive the command: once
  // it exits, the group is killed (in bwrap mode, everything it started). When the sandbox
  // runs the project's commands as a user of their own, the workspace is first handed to that
  // user (once: its files too). With the sandbox's cgroups, the command runs in its project's
  // cgroup, and once it ends everything left in that cgroup is killed too, whichever process
  // group it is in. A command the sandbox stopped (its output, a limit's signal, the project's
  // memory limit) has a line saying why at the start of its output, where a caller that
  // shortens the output does not cut it.
  CommandResult Run(const std::string& command, const CommandOptions& options,
                    const std::function<bool()>& cancelled) const;
  // Snapshot: every regular file (relative path with '/' -> content), skipping `.git` and
  // `node_modules`, symlinks, files ReadFile would refuse, and binary files (with a NUL byte or
  // not valid UTF-8: fragments store text); FAILED_PRECONDITION, naming the limit, when the
  // limits are exceeded.
  [[nodiscard]] absl::StatusOr<std::map<std::string, std::string>> Snapshot(
      const SnapshotLimits& limits = {}) const;

  // Rebuilding a workspace from what the database knows (see WorkerPool): RemoveFile deletes
  // a file (the same path rules as WriteFile; a missing one is fine); Reset makes the
  // workspace hold exactly `files`, everything else removed. Version names the state the
  // directory is known to hold (kept next to it, out of the commands' reach when sandboxed);
  // empty when unknown, e.g. while a run is changing it.
  [[nodiscard]] absl::Status RemoveFile(std::string_view path);
  [[nodiscard]] absl::Status Reset(const std::map<std::string, std::string>& files);
  std::string Version() const;
  [[nodiscard]] absl::Status SetVersion(std::string_view version);
  // Empty: the workspace holds nothing at all (false when that cannot be read).
  bool Empty() const;
  // Remove: deletes the workspace (its quota's filesystem too) and its mark.
  [[nodiscard]] absl::Status Remove();

 private:
  Workspace(std::string project_id, std::string dir, std::string version_path,
            std::optional<SandboxUser> owner)
      : project_id_(std::move(project_id)),
        dir_(std::move(dir)),
        version_path_(std::move(version_path)),
        owner_(owner) {}
  // HandTo: makes user the owner of the workspace and everything in it (a directory only it
  // can enter), unless it already is.
  absl::Status HandTo(const SandboxUser& user) const;

  std::string project_id_;  // lower case
  std::string dir_;
  std::string version_path_;
  std::optional<SandboxUser> owner_;
};

}  // namespace qai::sandbox
