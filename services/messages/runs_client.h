#pragma once
// RunsClient: what MessageService asks AgentOrchestrator before it accepts a prompt: how many
// runs the project and the prompt's author have queued or running now (CountActiveRuns), so a
// prompt past a cap is refused at once rather than waiting in the outbox. Asked as this
// service (x-api-key), over the channel the outbox relay uses for StartRun.
//
//   RunsClient runs(orchestrator_channel, api_key);
//   absl::StatusOr<common::ActiveRuns> active = runs.CountActive(call, project_id, author);

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/rpc.h"
#include "common/run_settings.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"

namespace qai::messages {

class RunsClient {
 public:
  // timeout: the longest CreateMessage waits for the answer (never beyond its own deadline).
  RunsClient(std::shared_ptr<grpc::Channel> channel, std::string api_key,
             absl::Duration timeout = absl::Seconds(1));

  // CountActive: the runs queued or running of the project and of `author` (none when empty);
  // the orchestrator's error when it cannot say (UNAVAILABLE while it is down or unreachable).
  [[nodiscard]] absl::StatusOr<common::ActiveRuns> CountActive(const common::CallContext& call,
                                                               const std::string& project_id,
                                                               const std::string& author) const;

 private:
  std::unique_ptr<orchestrator::v1::AgentOrchestrator::Stub> stub_;
  const std::string api_key_;
  const absl::Duration timeout_;
};

}  // namespace qai::messages
