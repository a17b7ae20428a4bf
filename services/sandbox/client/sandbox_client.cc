#include "services/sandbox/client/sandbox_client.h"

#include <utility>

#include "common/client.h"
#include "common/log.h"
#include "common/status.h"

namespace qai::sandbox {

SandboxClient::SandboxClient(std::shared_ptr<grpc::Channel> tier, std::string api_key,
                             absl::Duration command_timeout, common::GrpcLimits limits)
    : api_key(std::move(api_key)),
      command_timeout(command_timeout),
      limits_(limits),
      tier_(v1::SandboxService::NewStub(std::move(tier))) {}

std::shared_ptr<SandboxStub> SandboxClient::ReplicaAt(const std::string& address) const {
  if (address.empty()) return tier_;
  absl::MutexLock lock(&mu_);
  std::shared_ptr<SandboxStub>& stub = replicas_[address];
  if (stub == nullptr) {
    if (replicas_.size() > kMaxReplicas) {
      // Stubs in use live on in their workspaces; the others are made again when needed.
      std::erase_if(replicas_, [&](const auto& entry) { return entry.first != address; });
    }
    stub = v1::SandboxService::NewStub(common::MakeChannel(address, limits_));
  }
  return stub;
}

absl::StatusOr<v1::SnapshotFiles> SandboxClient::GetSnapshot(
    const std::string& project_id, const std::string& snapshot_id, bool with_contents,
    const std::vector<std::string>& paths) const {
  v1::GetSnapshotRequest req;
  req.set_project_id(project_id);
  req.set_snapshot_id(snapshot_id);
  req.set_with_contents(with_contents);
  for (const std::string& path : paths) req.add_paths(path);
  grpc::ClientContext ctx;
  common::PrepareServiceCall(ctx, api_key, common::CurrentRequestId(), call_timeout);
  v1::SnapshotFiles files;
  grpc::Status s = tier_->GetSnapshot(&ctx, req, &files);
  if (!s.ok()) return common::FromGrpcStatus(s);
  return files;
}

absl::StatusOr<v1::WorkspaceFiles> SandboxClient::GetWorkspaceFiles(
    const std::string& project_id, bool with_contents,
    const std::vector<std::string>& paths) const {
  v1::LocateWorkspaceRequest where;
  where.set_project_id(project_id);
  v1::WorkspaceLocation location;
  grpc::ClientContext locate;
  common::PrepareServiceCall(locate, api_key, common::CurrentRequestId(), call_timeout);
  if (grpc::Status s = tier_->LocateWorkspace(&locate, where, &location); !s.ok())
    return common::FromGrpcStatus(s);
  v1::GetWorkspaceFilesRequest req;
  req.set_project_id(project_id);
  req.set_with_contents(with_contents);
  for (const std::string& path : paths) req.add_paths(path);
  grpc::ClientContext ctx;
  common::PrepareServiceCall(ctx, api_key, common::CurrentRequestId(), call_timeout);
  v1::WorkspaceFiles files;
  if (grpc::Status s = ReplicaAt(location.address())->GetWorkspaceFiles(&ctx, req, &files);
      !s.ok()) {
    return common::FromGrpcStatus(s);
  }
  return files;
}

}  // namespace qai::sandbox
