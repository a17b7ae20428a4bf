#pragma once
// VersionHandlers: AgentOrchestrator's calls on a project's versions, proto in and proto out:
// ListVersions, GetVersion, RestoreVersion, DiffVersions and DownloadVersion. The caller must be
// able to see the project (ProjectService decides; a foreign project is NOT_FOUND); a version's
// files come from qai-sandbox, from the snapshot the version names; a restore is a run
// (RunStore::Start with the version to bring back), queued in the project's line like a prompt.
//
//   VersionHandlers versions(&version_store, &run_store, &projects, &sandbox, &page_tokens,
//                            &bounds, [&pool] { pool.Wake(); });
//   absl::Status s = versions.GetVersion(call, req, resp);

#include <functional>

#include "absl/status/status.h"
#include "common/page_token.h"
#include "common/pull_stream.h"
#include "common/rpc.h"
#include "qai/orchestrator/v1/orchestrator.pb.h"
#include "services/orchestrator/client/run_settings.h"
#include "services/orchestrator/store/run_store.h"
#include "services/orchestrator/store/version_store.h"
#include "services/projects/client/projects_client.h"
#include "services/sandbox/client/sandbox_client.h"

namespace qai::orchestrator {

class VersionHandlers {
 public:
  // run_queued is called after a restore was queued here (to wake this replica's workers).
  VersionHandlers(VersionStore* store, RunStore* runs, const projects::ProjectsClient* projects,
                  const sandbox::SandboxClient* sandbox, const common::PageTokenCodec* tokens,
                  const orchestrator::RunBounds* bounds, std::function<void()> run_queued)
      : store_(store),
        runs_(runs),
        projects_(projects),
        sandbox_(sandbox),
        tokens_(tokens),
        bounds_(bounds),
        run_queued_(std::move(run_queued)) {}

  absl::Status ListVersions(const common::CallContext& call, const v1::ListVersionsRequest& req,
                            v1::ListVersionsResponse& resp);
  absl::Status GetVersion(const common::CallContext& call, const v1::GetVersionRequest& req,
                          v1::Version& resp);
  absl::Status RestoreVersion(const common::CallContext& call, const v1::RestoreVersionRequest& req,
                              v1::Run& resp);
  // DiffVersions: diffs.cc.
  absl::Status DiffVersions(const common::CallContext& call, const v1::DiffVersionsRequest& req,
                            v1::DiffVersionsResponse& resp);
  // DownloadVersion: download.cc; the checks, then the archive's messages.
  absl::StatusOr<common::PullSource<v1::DownloadVersionResponse>> DownloadVersion(
      const common::CallContext& call, const v1::DownloadVersionRequest& req);

 private:
  VersionStore* const store_;
  RunStore* const runs_;
  const projects::ProjectsClient* const projects_;
  const sandbox::SandboxClient* const sandbox_;
  const common::PageTokenCodec* const tokens_;
  const orchestrator::RunBounds* const bounds_;
  const std::function<void()> run_queued_;
};

void ToProto(const VersionRecord& record, v1::Version& out);

}  // namespace qai::orchestrator
