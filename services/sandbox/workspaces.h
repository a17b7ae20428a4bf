#pragma once
// Workspaces: the projects' workspaces this replica holds, each worked on by one fenced holder
// at a time.
//
// A holder (a run's worker, fenced by its lease token) opens a workspace, then restores,
// writes, reads, runs commands, lists changes and takes snapshots in it. A higher fence takes
// the workspace over: a command of the older holder still running is killed, and the older
// holder's calls are refused from then on. Operations on one workspace run one at a time.
// What the workspace is known to hold (a snapshot id) is marked on disk, out of the projects'
// reach, and cleared by the first change; so a replica that restarts still knows a workspace
// it left untouched. Which files changed since the last look is tracked by their digests.
//
//   Workspaces workspaces({.root = "/var/lib/qai/sandboxes", .sandbox = sandbox}, &store);
//   absl::StatusOr<WorkspaceInfo> info = workspaces.Open(project_id, fence);
//   absl::StatusOr<CommandResult> r = workspaces.Run(project_id, fence, "ls", {...}, cancelled);

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/sandbox/snapshot_archive.h"
#include "services/sandbox/store.h"
#include "services/sandbox/workspace.h"

namespace qai::sandbox {

struct WorkspacesOptions {
  std::string root;  // the sandbox root (absolute)
  std::shared_ptr<const Sandbox> sandbox;
  SnapshotLimits snapshot_limits;
  // Each workspace a filesystem of this size (disk_quota.h); none: directories of the root's.
  // Beyond quota->total_bytes for all of them together, the workspaces idle longest are dropped
  // (a later call on one is ABORTED: its holder opens and restores it again).
  std::optional<DiskQuota> quota;
  // Workspaces held in memory (each with its files' digests); beyond this, opening another
  // forgets those idle longest (their directories and marks stay on disk: a later call on one
  // is ABORTED and its holder opens it again).
  size_t max_open = 4096;
};

// WorkspaceInfo: what Open and Restore report.
struct WorkspaceInfo {
  std::string snapshot_id;  // the snapshot it is known to hold unchanged; empty when unknown
  bool empty = false;       // it holds nothing at all
};

// WorkspaceView: what Peek saw: whether the workspace is open here, and its files (path ->
// content, as Workspace::Snapshot reads them).
struct WorkspaceView {
  bool open = false;
  std::map<std::string, std::string> files;
};

// Change: a file's new content, or (nullopt) its removal.
struct Change {
  std::string path;
  std::optional<std::string> content;
};

// FileOutcome: one file of a write or read: content (reads) or an error.
struct FileOutcome {
  std::string path;
  std::string content;
  absl::Status status;
};

class Workspaces {
 public:
  Workspaces(WorkspacesOptions options, SandboxStore* store)
      : options_(std::move(options)), store_(store) {}

  // Open: the project's workspace for the holder with `fence`, created (with the project's
  // own user) if missing. FAILED_PRECONDITION when a higher fence holds it, or the project was
  // purged.
  [[nodiscard]] absl::StatusOr<WorkspaceInfo> Open(const std::string& project_id, int64_t fence);
  // Restore: the workspace holds exactly the snapshot (none: nothing) plus the changes. The
  // snapshot must be the project's own, or `snapshot_project`'s when that is given (a fork's
  // start; the workspace is then not marked as holding a snapshot of its own).
  [[nodiscard]] absl::StatusOr<WorkspaceInfo> Restore(const std::string& project_id, int64_t fence,
                                                      const std::string& snapshot_id,
                                                      const std::vector<Change>& changes,
                                                      const std::string& snapshot_project = "");
  // Run: the command, as Workspace::Run, also killed when the holder is fenced out.
  [[nodiscard]] absl::StatusOr<CommandResult> Run(const std::string& project_id, int64_t fence,
                                                  const std::string& command,
                                                  CommandOptions options,
                                                  const std::function<bool()>& cancelled);
  [[nodiscard]] absl::StatusOr<std::vector<FileOutcome>> Write(
      const std::string& project_id, int64_t fence, const std::vector<FileOutcome>& files);
  [[nodiscard]] absl::StatusOr<std::vector<FileOutcome>> Read(const std::string& project_id,
                                                              int64_t fence,
                                                              const std::vector<std::string>& paths,
                                                              size_t max_bytes);
  // Changes: what changed since the last Open, Restore, Changes or Snapshot; nullopt when the
  // workspace is (or was then) beyond the snapshot limits.
  [[nodiscard]] absl::StatusOr<std::optional<std::vector<Change>>> Changes(
      const std::string& project_id, int64_t fence);
  // Snapshot: stores the workspace's files as snapshot_id (idempotent) and marks the workspace
  // as holding it.
  [[nodiscard]] absl::StatusOr<SnapshotRecord> Snapshot(const std::string& project_id,
                                                        int64_t fence,
                                                        const std::string& snapshot_id,
                                                        const std::string& run_id);
  // Peek: the workspace's files as they are now, when it is open here (else open is false and
  // nothing is read), for anyone: no fence, and no wait for the holder's operation (a command
  // may be running: a file it is writing may show partly written). Nothing of the workspace
  // changes, its holder's changes tracking included. FAILED_PRECONDITION beyond the snapshot
  // limits.
  [[nodiscard]] absl::StatusOr<WorkspaceView> Peek(const std::string& project_id);
  // ListSnapshot and ReadContents: a snapshot's files and contents (SandboxStore's); any
  // replica answers.
  [[nodiscard]] absl::StatusOr<std::vector<ListedFile>> ListSnapshot(
      const std::string& project_id, const std::string& snapshot_id,
      const std::vector<std::string>& paths) {
    return store_->ListSnapshot(project_id, snapshot_id, paths);
  }
  [[nodiscard]] absl::StatusOr<std::map<std::string, std::string>> ReadContents(
      const std::vector<std::string>& hashes) {
    return store_->ReadContents(hashes);
  }
  // Purge: removes the project's snapshots and assignment everywhere and its workspace here
  // (other replicas hear of it: see Discard), and kills what runs in it (and removes its
  // cgroup).
  [[nodiscard]] absl::Status Purge(const std::string& project_id);
  // Discard: removes the project's workspace on this replica only (and kills what runs in it):
  // another replica purged the project.
  [[nodiscard]] absl::Status Discard(const std::string& project_id);
  // DiscardPurged: discards every workspace here whose project was purged (a purge this
  // replica missed hearing of); how many.
  [[nodiscard]] absl::StatusOr<int> DiscardPurged();
  // OpenArchive: a snapshot's archive (SnapshotArchive::Open); any replica answers.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<SnapshotArchive>> OpenArchive(
      const std::string& snapshot_id, const std::string& project_id, ArchiveFormat format,
      const std::string& folder) {
    return SnapshotArchive::Open(store_, snapshot_id, project_id, format, folder);
  }

 private:
  struct Entry;
  // Held: the entry of an open workspace whose holder is `fence`, with its operation lock
  // taken; ABORTED when it is not open here, FAILED_PRECONDITION when fenced out. The lock
  // moves out of Hold to its caller, which the thread-safety analysis cannot follow: Entry::op
  // stays a std::mutex, and what it guards says so in a comment.
  struct Held {
    std::shared_ptr<Entry> entry;
    std::unique_lock<std::mutex> lock;
  };
  absl::StatusOr<Held> Hold(const std::string& project_id, int64_t fence);
  // Touch: the workspace is about to change: its mark is cleared.
  absl::Status Touch(Entry& entry);
  // MakeRoom: drops idle workspaces, longest idle first, while the workspaces' filesystems
  // hold more than quota->total_bytes together; looks at most once a second.
  void MakeRoom();
  // Drop: removes the workspace's files here unless an operation runs on it; whether it did.
  bool Drop(const std::string& project_id);
  // EntryFor: the project's entry, made if missing.
  std::shared_ptr<Entry> EntryFor(const std::string& project_id);
  // RemoveFiles: removes the workspace here (entry's op lock held); not open here afterwards.
  absl::Status RemoveFiles(Entry& entry, const std::string& project_id);
  // SetWorkspace: the entry's workspace from now on (entry's op lock held), as Peek sees it too.
  static void SetWorkspace(Entry& entry, std::shared_ptr<Workspace> ws);
  // ForgetIdleLocked: drops the entries idle longest, but never one in use, until at most
  // max_open - 1 remain.
  void ForgetIdleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Digests: the checkpoint of the workspace as it is now (nullopt beyond the limits).
  std::optional<std::map<std::string, std::string>> Digests(
      const Workspace& ws, std::map<std::string, std::string>* files = nullptr) const;

  const WorkspacesOptions options_;
  SandboxStore* const store_;
  absl::Mutex mu_;
  // By project id (lower case).
  std::map<std::string, std::shared_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> last_room_ns_{0};  // MakeRoom's last look
};

}  // namespace qai::sandbox
