#pragma once
// RunRoom: whether a user may start one more run, asked before CreateProject accepts a first
// prompt, so a user at QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL hears so at once (RESOURCE_EXHAUSTED, as
// CreateMessage answers) instead of finding the prompt waiting. The orchestrator counts the
// user's runs queued or running (CountActiveRuns, asked without blocking a thread); when it
// cannot say, the prompt is accepted, and StartRun holds it back until there is room.
//
//   RunRoom room(orchestrator_channel, api_key, /*per_principal=*/20);
//   room.Check(call, project_id, [](absl::Status s) { ... });

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/rpc.h"
#include "services/orchestrator/client/runs_client.h"

namespace qai::projects {

class RunRoom {
 public:
  // per_principal: the cap (0 = none: every check passes at once). timeout: the longest a check
  // waits for the orchestrator (never beyond the call's own deadline).
  RunRoom(std::shared_ptr<grpc::Channel> orchestrator, std::string api_key, int64_t per_principal,
          absl::Duration timeout = absl::Seconds(1));

  // Check: calls `done` (now, or on a gRPC thread) with OK, or RESOURCE_EXHAUSTED when the
  // caller has per_principal runs active. SERVICE callers are not counted.
  void Check(const common::CallContext& call, const std::string& project_id,
             std::function<void(absl::Status)> done) const;

 private:
  const orchestrator::RunsClient runs_;
  const int64_t per_principal_;
};

}  // namespace qai::projects
