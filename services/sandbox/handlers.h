#pragma once
// SandboxHandlers: SandboxService's requests in, responses out: who may call (SERVICE
// principals only), which fields are valid (each bad one named), and the limits a caller
// cannot raise. The work is Workspaces'.
//
//   SandboxHandlers handlers(&workspaces, &replicas, {.self = membership->self(),
//                                                     .preview_base_url =
//                                                     "https://preview.example.com"});
//   absl::Status s = handlers.OpenWorkspace(call, req, resp);

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/pull_stream.h"
#include "common/rpc.h"
#include "qai/sandbox/v1/sandbox.pb.h"
#include "services/sandbox/replica_store.h"
#include "services/sandbox/workspaces.h"

namespace qai::sandbox {

// What a CreateSnapshot response carries of contents unless its caller says otherwise.
inline constexpr size_t kDefaultSnapshotResponseBytes = 3 << 20;

struct HandlerLimits {
  absl::Duration command_timeout = absl::Seconds(120);  // the longest, and the default
  size_t max_output = 64 << 10;       // output sent back, the most and the default
  size_t max_output_read = 16 << 20;  // a command printing more is killed
  size_t max_command_bytes = 64 << 10;
  size_t max_files = 1000;              // per WriteFiles, ReadFiles or RestoreSnapshot
  size_t max_file_bytes = 1 << 20;      // each file read, the most and the default
  size_t max_request_bytes = 3 << 20;   // file contents of one WriteFiles or RestoreSnapshot
  size_t max_snapshot_bytes = 3 << 20;  // file contents one GetSnapshot returns
};

struct HandlerOptions {
  Replica self;  // this replica (its incarnation), which serves the workspaces it opens
  std::string preview_base_url;  // a snapshot's preview is <this>/<id>/
  HandlerLimits limits;
};

class SandboxHandlers {
 public:
  SandboxHandlers(Workspaces* workspaces, ReplicaStore* replicas, HandlerOptions options)
      : workspaces_(workspaces), replicas_(replicas), options_(std::move(options)) {}

  absl::Status LocateWorkspace(const common::CallContext& call,
                               const v1::LocateWorkspaceRequest& req, v1::WorkspaceLocation& resp);
  // OpenWorkspace: the project is served here from now on, unless another live replica
  // serves it (ABORTED).
  absl::Status OpenWorkspace(const common::CallContext& call, const v1::OpenWorkspaceRequest& req,
                             v1::Workspace& resp);
  absl::Status RestoreSnapshot(const common::CallContext& call,
                               const v1::RestoreSnapshotRequest& req, v1::Workspace& resp);
  // RunCommand: runs the command of a request that passed CheckRunCommand, calling `output`
  // with each piece of its output (valid UTF-8) as it comes, and fills `end`. `cancelled` is
  // polled while it runs.
  absl::Status RunCommand(const common::CallContext& call, const v1::RunCommandRequest& req,
                          const std::function<void(std::string)>& output,
                          const std::function<bool()>& cancelled, v1::CommandEnd& end);
  absl::Status WriteFiles(const common::CallContext& call, const v1::WriteFilesRequest& req,
                          v1::WriteFilesResponse& resp);
  absl::Status ReadFiles(const common::CallContext& call, const v1::ReadFilesRequest& req,
                         v1::ReadFilesResponse& resp);
  absl::Status GetChanges(const common::CallContext& call, const v1::GetChangesRequest& req,
                          v1::GetChangesResponse& resp);
  // GetSnapshot: a snapshot's files; with contents, at most max_snapshot_bytes of them
  // (FAILED_PRECONDITION beyond).
  absl::Status GetSnapshot(const common::CallContext& call, const v1::GetSnapshotRequest& req,
                           v1::SnapshotFiles& resp);
  absl::Status CreateSnapshot(const common::CallContext& call, const v1::CreateSnapshotRequest& req,
                              v1::Snapshot& resp);
  absl::Status PurgeProject(const common::CallContext& call, const v1::PurgeProjectRequest& req);
  // ArchiveSnapshot: the checks of an archive's request, then its pieces, one read each
  // (snapshot_archive.h).
  absl::StatusOr<common::PullSource<v1::ArchiveChunk>> ArchiveSnapshot(
      const common::CallContext& call, const v1::ArchiveSnapshotRequest& req);
  // GetWorkspaceFiles: the workspace's files now, when it is open here (Workspaces::Peek); with
  // contents, at most max_snapshot_bytes of them (FAILED_PRECONDITION beyond).
  absl::Status GetWorkspaceFiles(const common::CallContext& call,
                                 const v1::GetWorkspaceFilesRequest& req, v1::WorkspaceFiles& resp);

  // CheckRunCommand: the service-only and field checks of RunCommand, which its stream makes
  // before it takes a command thread, so a bad request is answered at once.
  absl::Status CheckRunCommand(const common::CallContext& call,
                               const v1::RunCommandRequest& req) const;

 private:
  // FillChanges: the workspace's changes since the last look (GetChanges' answer).
  absl::Status FillChanges(const std::string& project_id, int64_t fence,
                           v1::GetChangesResponse& resp);
  // ReportChanges: resp's `changes` (a WriteFiles or RunCommand with_changes), when they can be
  // read; left unset otherwise.
  template <typename Response>
  void ReportChanges(const std::string& project_id, int64_t fence, Response& resp);

  Workspaces* const workspaces_;
  ReplicaStore* const replicas_;
  const HandlerOptions options_;
};

}  // namespace qai::sandbox
