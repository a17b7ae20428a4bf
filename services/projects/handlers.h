#pragma once
// ProjectHandlers: ProjectService's calls, proto in and proto out. They validate requests
// (naming every bad field), decide what the caller may see, and translate between protos
// and the store's records. No SQL here; no gRPC plumbing either (see service.h).

#include <functional>

#include "absl/status/status.h"
#include "common/page_token.h"
#include "common/rpc.h"
#include "qai/projects/v1/projects.pb.h"
#include "services/orchestrator/client/runs_client.h"
#include "services/projects/run_room.h"
#include "services/projects/store.h"

namespace qai::projects {

namespace pb = ::qai::projects::v1;

class ProjectHandlers {
 public:
  // outbox_written is called after a committed change queued outbox rows (to wake the relay).
  // room (may be null: no cap) says whether a CreateProject's author may start another run.
  // orchestrator (may be null: no fork) says whether a version to fork exists.
  ProjectHandlers(ProjectStore* store, const common::PageTokenCodec* tokens,
                  std::function<void()> outbox_written, const RunRoom* room = nullptr,
                  const orchestrator::RunsClient* orchestrator = nullptr)
      : store_(store),
        tokens_(tokens),
        outbox_written_(std::move(outbox_written)),
        room_(room),
        orchestrator_(orchestrator) {}

  // Create and Get never block: they answer through `reply` (see common::ServeUnaryAsync).
  void CreateProject(const common::CallContext& call, const pb::CreateProjectRequest& req,
                     pb::Project& resp, common::Reply reply);
  void GetProject(const common::CallContext& call, const pb::GetProjectRequest& req,
                  pb::Project& resp, common::Reply reply);
  // ForkProject: a project of the caller's, whose first message brings a version of a project
  // the caller may see (the orchestrator is asked whether the version exists).
  void ForkProject(const common::CallContext& call, const pb::ForkProjectRequest& req,
                   pb::Project& resp, common::Reply reply);
  absl::Status ListProjects(const common::CallContext& call, const pb::ListProjectsRequest& req,
                            pb::ListProjectsResponse& resp);
  absl::Status UpdateProject(const common::CallContext& call, const pb::UpdateProjectRequest& req,
                             pb::Project& resp);
  absl::Status DeleteProject(const common::CallContext& call, const pb::DeleteProjectRequest& req);
  // SERVICE principals only (the orchestrator's outbox).
  absl::Status RecordLatestRun(const common::CallContext& call,
                               const pb::RecordLatestRunRequest& req);
  absl::Status RecordLatestRuns(const common::CallContext& call,
                                const pb::RecordLatestRunsRequest& req);

 private:
  static constexpr int kMaxLatestRuns = 500;

  // Create: the project of `params` once its author has room for the first run (RunRoom); a
  // repeat of a request that made its project answers that project.
  void Create(const common::CallContext& call, CreateParams params, pb::Project& resp,
              common::Reply reply);

  ProjectStore* const store_;
  const common::PageTokenCodec* const tokens_;
  const std::function<void()> outbox_written_;
  const RunRoom* const room_;
  const orchestrator::RunsClient* const orchestrator_;
};

// EtagOf: the etag of a record version; ParseEtag its inverse (nullopt for anything else).
std::string EtagOf(int64_t version);
std::optional<int64_t> ParseEtag(std::string_view etag);

// ToProto: a record as the API shows it.
void ToProto(const ProjectRecord& record, pb::Project& out);

// Limits of docs/api.md.
inline constexpr size_t kMaxDisplayNameChars = 100;

}  // namespace qai::projects
