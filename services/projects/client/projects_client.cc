#include "services/projects/client/projects_client.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/client.h"
#include "common/log.h"
#include "common/status.h"

namespace qai::projects {

using common::CallContext;
using common::Log;
using common::LogLevel;
using common::PrepareServiceCall;
using common::Role;
using common::WithRetryDelay;

ProjectsClient::ProjectsClient(std::shared_ptr<grpc::Channel> channel, std::string api_key,
                               OwnerCacheOptions cache, absl::Duration timeout)
    : stub_(projects::v1::ProjectService::NewStub(std::move(channel))),
      api_key_(std::move(api_key)),
      cache_(std::make_unique<OwnerCache>(cache)),
      timeout_(timeout) {}

absl::StatusOr<std::string> ProjectsClient::ProjectOwner(const CallContext& call,
                                                         const std::string& project_id) const {
  // Only an owner's own question is answered here: whom else a project is shown to (admins,
  // services) stays ProjectService's rule, and a NOT_FOUND is asked again every time.
  if (call.principal.role == Role::kUser) {
    std::optional<std::string> owner = cache_->Owner(project_id);
    if (owner && *owner == call.principal.id) return *std::move(owner);
  }
  const uint64_t generation = cache_->Generation();
  absl::StatusOr<std::string> owner = AskOwner(call, project_id);
  if (owner.ok()) cache_->Remember(project_id, *owner, generation);
  return owner;
}

absl::StatusOr<std::string> ProjectsClient::AskOwner(const CallContext& call,
                                                     const std::string& project_id) const {
  absl::StatusOr<projects::v1::Project> project = GetProject(call, project_id);
  if (!project.ok()) return project.status();
  return project->owner();
}

absl::StatusOr<projects::v1::Project> ProjectsClient::GetProject(
    const CallContext& call, const std::string& project_id) const {
  grpc::ClientContext ctx;
  const bool as_caller = call.principal.role != Role::kService && !call.authorization.empty();
  // The downstream call gets no more time than the caller has left.
  const absl::Duration timeout = std::min(timeout_, call.deadline - absl::Now());
  PrepareServiceCall(ctx, as_caller ? "" : api_key_, call.request_id, timeout);
  if (as_caller) ctx.AddMetadata("authorization", call.authorization);
  projects::v1::GetProjectRequest req;
  req.set_id(project_id);
  projects::v1::Project project;
  const grpc::Status status = stub_->GetProject(&ctx, req, &project);
  if (status.ok()) return project;
  switch (status.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
      return absl::NotFoundError(absl::StrCat("project ", project_id, " not found"));
    case grpc::StatusCode::UNAUTHENTICATED:
      // The caller's own token, refused (it expired since the caller's call began).
      if (as_caller) return absl::UnauthenticatedError(status.error_message());
      [[fallthrough]];
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      if (absl::Now() >= call.deadline)
        return absl::DeadlineExceededError("deadline passed while checking the project");
      [[fallthrough]];
    default:
      // Anything else is ProjectService's trouble (or a key it does not accept), not the caller's.
      Log(LogLevel::kWarn, "projects service call failed",
          {{"code", status.error_code()}, {"error", status.error_message()}});
      return WithRetryDelay(absl::UnavailableError("projects service unavailable; retry"),
                            absl::Milliseconds(500));
  }
}

}  // namespace qai::projects
