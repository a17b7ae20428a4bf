#pragma once
// RunHandlers: AgentOrchestrator's unary calls, proto in and proto out. They validate requests
// (naming every bad field), decide who may see a run (ProjectService decides who may see its
// project; SERVICE principals see all), and translate between protos and RunStore records.
// WatchRun, the stream, is watch.h.

#include <functional>

#include "absl/status/status.h"
#include "common/jwt.h"
#include "common/page_token.h"
#include "common/rpc.h"
#include "qai/orchestrator/v1/orchestrator.pb.h"
#include "services/orchestrator/client/run_settings.h"
#include "services/orchestrator/store/run_store.h"
#include "services/projects/client/projects_client.h"

namespace qai::orchestrator {

class RunHandlers {
 public:
  // run_queued is called after a run was queued here (to wake this replica's workers at once);
  // StartRun's settings are checked against `bounds`.
  RunHandlers(RunStore* store, const projects::ProjectsClient* projects,
              const common::PageTokenCodec* tokens, const orchestrator::RunBounds* bounds,
              std::function<void()> run_queued)
      : store_(store),
        projects_(projects),
        tokens_(tokens),
        bounds_(bounds),
        run_queued_(std::move(run_queued)) {}

  absl::Status StartRun(const common::CallContext& call, const v1::StartRunRequest& req,
                        v1::Run& resp);
  absl::Status GetRun(const common::CallContext& call, const v1::GetRunRequest& req, v1::Run& resp);
  absl::Status ListRuns(const common::CallContext& call, const v1::ListRunsRequest& req,
                        v1::ListRunsResponse& resp);
  absl::Status CancelRun(const common::CallContext& call, const v1::CancelRunRequest& req,
                         v1::Run& resp);
  absl::Status CancelProjectRuns(const common::CallContext& call,
                                 const v1::CancelProjectRunsRequest& req);
  absl::Status CountActiveRuns(const common::CallContext& call,
                               const v1::CountActiveRunsRequest& req,
                               v1::CountActiveRunsResponse& resp);

  // VisibleRun: the run, if the caller may see it (NOT_FOUND otherwise, as for unknown runs).
  [[nodiscard]] absl::StatusOr<RunRecord> VisibleRun(const common::CallContext& call,
                                                     const std::string& id) const;

 private:
  RunStore* const store_;
  const projects::ProjectsClient* const projects_;
  const common::PageTokenCodec* const tokens_;
  const orchestrator::RunBounds* const bounds_;
  const std::function<void()> run_queued_;
};

void ToProto(const RunRecord& record, v1::Run& out);

// CheckProject: whether the caller may see the project (NOT_FOUND, as for an unknown one, when
// not; services see every project).
[[nodiscard]] absl::Status CheckProject(const projects::ProjectsClient& projects,
                                        const common::CallContext& call,
                                        const std::string& project_id);

// A principal id (a JWT subject) as StartRun's author may give it.
inline constexpr size_t kMaxAuthorChars = common::kMaxJwtSubjectChars;

}  // namespace qai::orchestrator
