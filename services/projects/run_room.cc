#include "services/projects/run_room.h"

#include <algorithm>

#include "common/client.h"
#include "common/log.h"
#include "common/run_settings.h"
#include "common/status.h"

namespace qai::projects {

RunRoom::RunRoom(std::shared_ptr<grpc::Channel> orchestrator, std::string api_key,
                 int64_t per_principal, absl::Duration timeout)
    : stub_(orchestrator::v1::AgentOrchestrator::NewStub(std::move(orchestrator))),
      api_key_(std::move(api_key)),
      per_principal_(per_principal),
      timeout_(timeout) {}

void RunRoom::Check(const common::CallContext& call, const std::string& project_id,
                    std::function<void(absl::Status)> done) const {
  if (per_principal_ <= 0 || call.principal.role == common::Role::kService)
    return done(absl::OkStatus());
  struct Pending {
    grpc::ClientContext ctx;
    orchestrator::v1::CountActiveRunsRequest req;
    orchestrator::v1::CountActiveRunsResponse resp;
  };
  auto pending = std::make_shared<Pending>();
  common::PrepareServiceCall(pending->ctx, api_key_, call.request_id,
                             std::min(timeout_, call.deadline - absl::Now()));
  pending->req.set_project_id(project_id);
  pending->req.set_author(call.principal.id);
  const common::RunCaps caps{.per_project = 0, .per_principal = per_principal_};
  stub_->async()->CountActiveRuns(
      &pending->ctx, &pending->req, &pending->resp,
      [pending, caps, done = std::move(done)](grpc::Status status) {
        if (!status.ok()) {
          common::Log(
              common::LogLevel::kWarn,
              "cannot count the active runs; the prompt is accepted (StartRun holds it back)",
              {{"code", static_cast<int>(status.error_code())}, {"error", status.error_message()}});
          return done(absl::OkStatus());
        }
        done(
            common::CheckActiveRuns(caps, pending->req.project_id(), pending->req.author(),
                                    {.project = 0, .principal = pending->resp.principal_active()}));
      });
}

}  // namespace qai::projects
