#pragma once
// VersionHandlers: AgentOrchestrator's calls on a project's versions, proto in and proto out:
// ListVersions and GetVersion. The caller must be able to see the project (ProjectService
// decides; a foreign project is NOT_FOUND); a version's files come from qai-sandbox, from the
// snapshot the version names.
//
//   VersionHandlers versions(&version_store, &projects, &sandbox, &page_tokens);
//   absl::Status s = versions.GetVersion(call, req, resp);

#include "absl/status/status.h"
#include "common/page_token.h"
#include "common/rpc.h"
#include "qai/orchestrator/v1/orchestrator.pb.h"
#include "services/orchestrator/store/version_store.h"
#include "services/projects/client/projects_client.h"
#include "services/sandbox/client/sandbox_client.h"

namespace qai::orchestrator {

class VersionHandlers {
 public:
  VersionHandlers(VersionStore* store, const projects::ProjectsClient* projects,
                  const sandbox::SandboxClient* sandbox, const common::PageTokenCodec* tokens)
      : store_(store), projects_(projects), sandbox_(sandbox), tokens_(tokens) {}

  absl::Status ListVersions(const common::CallContext& call, const v1::ListVersionsRequest& req,
                            v1::ListVersionsResponse& resp);
  absl::Status GetVersion(const common::CallContext& call, const v1::GetVersionRequest& req,
                          v1::Version& resp);

 private:
  VersionStore* const store_;
  const projects::ProjectsClient* const projects_;
  const sandbox::SandboxClient* const sandbox_;
  const common::PageTokenCodec* const tokens_;
};

void ToProto(const VersionRecord& record, v1::Version& out);

}  // namespace qai::orchestrator
