#include "services/projects/run_room.h"

#include "common/log.h"
#include "services/orchestrator/client/run_settings.h"

namespace qai::projects {

RunRoom::RunRoom(std::shared_ptr<grpc::Channel> orchestrator, std::string api_key,
                 int64_t per_principal, absl::Duration timeout)
    : runs_(std::move(orchestrator), std::move(api_key), timeout), per_principal_(per_principal) {}

void RunRoom::Check(const common::CallContext& call, const std::string& project_id,
                    std::function<void(absl::Status)> done) const {
  if (per_principal_ <= 0 || call.principal.role == common::Role::kService)
    return done(absl::OkStatus());
  const orchestrator::RunCaps caps{.per_project = 0, .per_principal = per_principal_};
  runs_.CountActiveAsync(
      call, project_id, call.principal.id,
      [caps, project_id, author = call.principal.id,
       done = std::move(done)](absl::StatusOr<orchestrator::ActiveRuns> active) {
        if (!active.ok()) {
          common::Log(
              common::LogLevel::kWarn,
              "cannot count the active runs; the prompt is accepted (StartRun holds it back)",
              {{"code", static_cast<int>(active.status().code())},
               {"error", std::string(active.status().message())}});
          return done(absl::OkStatus());
        }
        done(orchestrator::CheckActiveRuns(caps, project_id, author,
                                           {.project = 0, .principal = active->principal}));
      });
}

}  // namespace qai::projects
