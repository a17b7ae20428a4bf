#pragma once
// SandboxWorkspace: a project's workspace in qai-sandbox, held under a run's fence (its lease
// token), as the agent's Workspace and as the worker's way to ready and save it. Open asks the
// tier (any replica) which replica serves the project, and every later call goes there.
//
//   SandboxClient client(tier_channel, api_key);
//   SandboxWorkspace ws(&client, project_id, lease.token);
//   absl::StatusOr<HeldWorkspace> held = ws.Open();     // the snapshot it holds, or ""
//   if (held->snapshot_id != head) ws.Restore(head, journal_changes);
//   ... RunAgent(..., ws, ...) ...
//   absl::StatusOr<SavedSnapshot> saved = ws.Snapshot(common::NewUuid(), run_id);

#include <map>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "qai/sandbox/v1/sandbox.grpc.pb.h"
#include "services/orchestrator/agent/workspace.h"
#include "services/sandbox/client/sandbox_client.h"

namespace qai::orchestrator {

using sandbox::SandboxClient;
using sandbox::SandboxStub;

// HeldWorkspace: what an opened workspace is known to hold.
struct HeldWorkspace {
  std::string snapshot_id;  // the snapshot it holds unchanged; "" unknown
  bool empty = false;       // nothing at all
};

// SavedSnapshot: a snapshot CreateSnapshot stored.
struct SavedSnapshot {
  std::string id;
  // Its files, when they fit a fragment (messages::kMaxFragmentFilesBytes); else empty, and
  // files_omitted.
  std::map<std::string, std::string> files;
  std::string preview_url;
  bool files_omitted = false;
};

class SandboxWorkspace final : public Workspace {
 public:
  SandboxWorkspace(SandboxClient* client, std::string project_id, int64_t fence)
      : client_(client),
        project_id_(std::move(project_id)),
        fence_(fence),
        replica_(client->tier()) {}

  // Open: locates the project's replica, takes the workspace there (this fence) and says what
  // it holds.
  [[nodiscard]] absl::StatusOr<HeldWorkspace> Open();
  // Restore: the workspace holds the snapshot ("" none) plus the changes; the snapshot is the
  // project's own, or `snapshot_project`'s (a fork's start).
  [[nodiscard]] absl::Status Restore(const std::string& snapshot_id, const FileChanges& changes,
                                     const std::string& snapshot_project = "");
  // Snapshot: stores the workspace's files (idempotent on snapshot_id).
  [[nodiscard]] absl::StatusOr<SavedSnapshot> Snapshot(const std::string& snapshot_id,
                                                       const std::string& run_id);

  absl::StatusOr<CommandOutcome> Run(const std::string& command,
                                     const std::function<bool()>& cancelled) override;
  absl::StatusOr<std::vector<FileResult>> WriteFiles(
      const std::vector<std::pair<std::string, std::string>>& files) override;
  absl::StatusOr<std::vector<FileResult>> ReadFiles(const std::vector<std::string>& paths,
                                                    size_t max_bytes) override;
  absl::StatusOr<std::optional<FileChanges>> Changes() override;

 private:
  void Prepare(grpc::ClientContext& ctx, absl::Duration timeout) const;
  // Call: a unary call on this workspace: req gets its project and fence, the call this
  // service's key, the request id and call_timeout.
  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (SandboxStub::*method)(grpc::ClientContext*, const Request&,
                                                        Response*),
                    Request& req, Response* resp) const;

  // Heard: changes that writes and commands reported (with_changes) since the last Changes(),
  // which hands them out without asking the service again, unless a call that may have
  // changed files did not report (then it asks for the rest).
  struct Heard {
    FileChanges changes;
    bool any = false;
    bool unknown = false;
    bool incomplete = false;
  };
  // Hear: adds a call's report of its changes; nullptr: the call did not report.
  void Hear(const sandbox::v1::GetChangesResponse* report);

  SandboxClient* const client_;
  const std::string project_id_;
  const int64_t fence_;
  std::shared_ptr<SandboxStub> replica_;  // the project's replica, once Open located it
  Heard heard_;
};

}  // namespace qai::orchestrator
