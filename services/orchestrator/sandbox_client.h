#pragma once
// SandboxWorkspace: a project's workspace in qai-sandbox, held under a run's fence (its lease
// token), as the agent's Workspace and as the worker's way to ready and save it.
//
//   SandboxClient client(channel, api_key);
//   SandboxWorkspace ws(&client, project_id, lease.token);
//   absl::StatusOr<std::string> held = ws.Open();                  // the snapshot it holds, or ""
//   if (*held != head) ws.Restore(head, journal_changes);
//   ... RunAgent(..., ws, ...) ...
//   absl::StatusOr<SavedSnapshot> saved = ws.Snapshot(common::NewUuid(), run_id);

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "qai/sandbox/v1/sandbox.grpc.pb.h"
#include "services/orchestrator/workspace.h"

namespace qai::orchestrator {

// SandboxClient: the stub, this service's key, and how long calls may take.
struct SandboxClient {
  SandboxClient(std::shared_ptr<grpc::Channel> channel, std::string api_key,
                absl::Duration command_timeout = absl::Seconds(120));
  std::unique_ptr<sandbox::v1::SandboxService::Stub> stub;
  std::string api_key;
  absl::Duration command_timeout;          // asked of every command
  absl::Duration call_timeout = absl::Seconds(60);  // every other call
};

// SavedSnapshot: a snapshot CreateSnapshot stored.
struct SavedSnapshot {
  std::string id;
  std::map<std::string, std::string> files;
  std::string preview_url;
};

class SandboxWorkspace final : public Workspace {
 public:
  SandboxWorkspace(SandboxClient* client, std::string project_id, int64_t fence)
      : client_(client), project_id_(std::move(project_id)), fence_(fence) {}

  // Open: takes the workspace (this fence) and says which snapshot it holds ("" unknown).
  [[nodiscard]] absl::StatusOr<std::string> Open();
  // Restore: the workspace holds the snapshot ("" none) plus the changes.
  [[nodiscard]] absl::Status Restore(const std::string& snapshot_id, const FileChanges& changes);
  // Snapshot: stores the workspace's files (idempotent on snapshot_id).
  [[nodiscard]] absl::StatusOr<SavedSnapshot> Snapshot(const std::string& snapshot_id, const std::string& run_id);

  absl::StatusOr<CommandOutcome> Run(const std::string& command, const std::function<bool()>& cancelled) override;
  absl::StatusOr<std::vector<FileResult>> WriteFiles(
      const std::vector<std::pair<std::string, std::string>>& files) override;
  absl::StatusOr<std::vector<FileResult>> ReadFiles(const std::vector<std::string>& paths, size_t max_bytes) override;
  absl::StatusOr<std::optional<FileChanges>> Changes() override;

 private:
  void Prepare(grpc::ClientContext& ctx, absl::Duration timeout) const;
  // Call: a unary call on this workspace: req gets its project and fence, the call this
  // service's key, the request id and call_timeout.
  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (sandbox::v1::SandboxService::Stub::*method)(grpc::ClientContext*, const Request&,
                                                                               Response*),
                    Request& req, Response* resp) const;

  SandboxClient* const client_;
  const std::string project_id_;
  const int64_t fence_;
};

}  // namespace qai::orchestrator
