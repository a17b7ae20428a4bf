#pragma once
// SandboxClient: how another service reaches qai-sandbox: the tier (a channel that balances
// over every replica, for calls any replica answers, such as LocateWorkspace) and a channel per
// replica a workspace lives on (every call on a workspace goes to its replica). Calls carry the
// caller's service key (x-api-key) and time out after command_timeout (RunCommand) or
// call_timeout (the others).
//
//   SandboxClient client(common::MakeChannel("dns:///qai-sandbox:50054"), api_key);
//   std::shared_ptr<SandboxStub> replica = client.ReplicaAt(location.address());

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/grpc_limits.h"
#include "grpcpp/channel.h"
#include "qai/sandbox/v1/sandbox.grpc.pb.h"

namespace qai::sandbox {

using SandboxStub = v1::SandboxService::Stub;

// SandboxClient: the tier (a channel that reaches any replica), a channel per replica called
// since, this service's key, and how long calls may take.
class SandboxClient {
 public:
  SandboxClient(std::shared_ptr<grpc::Channel> tier, std::string api_key,
                absl::Duration command_timeout = absl::Seconds(120),
                common::GrpcLimits limits = {});

  // tier: a stub that reaches any replica.
  const std::shared_ptr<SandboxStub>& tier() const { return tier_; }
  // ReplicaAt: a stub of the replica at `address` (host:port); the tier's for "".
  std::shared_ptr<SandboxStub> ReplicaAt(const std::string& address) const;

  // GetSnapshot: a snapshot's files (only `paths` when given; with their contents when asked),
  // from any replica.
  [[nodiscard]] absl::StatusOr<v1::SnapshotFiles> GetSnapshot(
      const std::string& project_id, const std::string& snapshot_id, bool with_contents,
      const std::vector<std::string>& paths = {}) const;
  // GetWorkspaceFiles: the project's workspace's files now (only `paths` when given; with their
  // contents when asked), from the replica that serves it (LocateWorkspace, which assigns one
  // to a project that has none, as a run's next call would); `open` false when it is not open
  // there.
  [[nodiscard]] absl::StatusOr<v1::WorkspaceFiles> GetWorkspaceFiles(
      const std::string& project_id, bool with_contents,
      const std::vector<std::string>& paths = {}) const;

  const std::string api_key;
  const absl::Duration command_timeout;             // asked of every command
  absl::Duration call_timeout = absl::Seconds(60);  // every other call

 private:
  // Channels kept to replicas; past this many (replicas came and went), the idle ones go.
  static constexpr size_t kMaxReplicas = 256;
  const common::GrpcLimits limits_;
  const std::shared_ptr<SandboxStub> tier_;
  mutable absl::Mutex mu_;
  // By address.
  mutable std::map<std::string, std::shared_ptr<SandboxStub>> replicas_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qai::sandbox
