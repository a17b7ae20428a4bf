#pragma once
// The AgentOrchestrator calls qai-orchbench makes: StartRun with qai-messages' key (x-api-key),
// the way its outbox relay calls it; reads (GetRun, WatchRun) as an admin (a bearer token),
// since no service's key may make them.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"

namespace qai::orchbench {

// Prompt: a USER message that exists in MessageService, and so can have a run.
struct Prompt {
  std::string project_id;
  std::string message_id;
  std::string prompt;
};

// MakeChannels: `count` channels to target that do not share a connection (gRPC pools
// subchannels by target and arguments, so identical channels would ride on one).
std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(const std::string& target, int count);

// AsService: the call carries the service key and ends after `timeout` (none when infinite).
void AsService(grpc::ClientContext& ctx, const std::string& api_key,
               absl::Duration timeout = absl::Seconds(10));
// AsReader: the call carries the (admin's) bearer token and ends after `timeout`.
void AsReader(grpc::ClientContext& ctx, const std::string& token,
              absl::Duration timeout = absl::Seconds(10));

class Orchestrator {
 public:
  // api_key: qai-messages' (StartRun); token: an admin's (GetRun).
  Orchestrator(const std::shared_ptr<grpc::Channel>& channel, std::string api_key,
               std::string token)
      : stub_(orchestrator::v1::AgentOrchestrator::NewStub(channel)),
        api_key_(std::move(api_key)),
        token_(std::move(token)) {}

  [[nodiscard]] absl::StatusOr<orchestrator::v1::Run> StartRun(const Prompt& prompt) const;
  [[nodiscard]] absl::StatusOr<orchestrator::v1::Run> GetRun(const std::string& run_id) const;
  [[nodiscard]] absl::Status CancelProjectRuns(const std::string& project_id) const;
  // WaitForEnd: polls GetRun until the run is finished.
  [[nodiscard]] absl::StatusOr<orchestrator::v1::Run> WaitForEnd(const std::string& run_id,
                                                                 absl::Duration timeout) const;

  orchestrator::v1::AgentOrchestrator::Stub& stub() const { return *stub_; }
  const std::string& token() const { return token_; }

 private:
  std::unique_ptr<orchestrator::v1::AgentOrchestrator::Stub> stub_;
  std::string api_key_;
  std::string token_;
};

// ReadPrompts: the lines "<project id>\t<message id>\t<prompt>" of a file written by
// `qai-orchbench --mode setup`.
[[nodiscard]] absl::StatusOr<std::vector<Prompt>> ReadPrompts(const std::string& path);

}  // namespace qai::orchbench
