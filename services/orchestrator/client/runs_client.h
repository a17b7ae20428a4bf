#pragma once
// RunsClient: what other services ask AgentOrchestrator before they accept a prompt: how many
// runs a project and a principal have queued or running now (CountActiveRuns), so a prompt
// past a cap is refused at once rather than waiting in an outbox, and whether a version exists
// (a fork's start). Asked as the calling service (x-api-key), with the caller's request id, and
// never past the caller's own deadline.
//
//   RunsClient runs(orchestrator_channel, api_key);
//   absl::StatusOr<ActiveRuns> active = runs.CountActive(call, project_id, author);
//   runs.CountActiveAsync(call, project_id, author, [](absl::StatusOr<ActiveRuns> active) {...});

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/rpc.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"
#include "services/orchestrator/client/run_settings.h"

namespace qai::orchestrator {

class RunsClient {
 public:
  // timeout: the longest a count waits for the answer (never beyond the call's own deadline).
  RunsClient(std::shared_ptr<grpc::Channel> channel, std::string api_key,
             absl::Duration timeout = absl::Seconds(1));

  // CountActive: the runs queued or running of the project and of `author` (none when empty);
  // the orchestrator's error when it cannot say (UNAVAILABLE while it is down or unreachable).
  [[nodiscard]] absl::StatusOr<ActiveRuns> CountActive(const common::CallContext& call,
                                                       const std::string& project_id,
                                                       const std::string& author) const;

  // CountActiveAsync: the same without blocking a thread: `done` runs on a gRPC thread.
  void CountActiveAsync(const common::CallContext& call, const std::string& project_id,
                        const std::string& author,
                        std::function<void(absl::StatusOr<ActiveRuns>)> done) const;

  // VersionExistsAsync: whether the project has version `number` (GetVersion, asked as this
  // service): OK, NOT_FOUND, or the orchestrator's error when it cannot say. `done` runs on a
  // gRPC thread.
  void VersionExistsAsync(const common::CallContext& call, const std::string& project_id,
                          int number, std::function<void(absl::Status)> done) const;

 private:
  std::unique_ptr<v1::AgentOrchestrator::Stub> stub_;
  const std::string api_key_;
  const absl::Duration timeout_;
};

}  // namespace qai::orchestrator
