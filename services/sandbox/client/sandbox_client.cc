#include "services/sandbox/client/sandbox_client.h"

#include <utility>

#include "common/client.h"

namespace qai::sandbox {

SandboxClient::SandboxClient(std::shared_ptr<grpc::Channel> tier, std::string api_key,
                             absl::Duration command_timeout, common::GrpcLimits limits)
    : api_key(std::move(api_key)),
      command_timeout(command_timeout),
      limits_(limits),
      tier_(v1::SandboxService::NewStub(std::move(tier))) {}

std::shared_ptr<SandboxStub> SandboxClient::ReplicaAt(const std::string& address) {
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

}  // namespace qai::sandbox
