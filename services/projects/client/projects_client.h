#pragma once
// ProjectsClient: what the other services ask ProjectService: does a project exist, may this
// caller see it, and whose is it. (Each service keeps its data of a project in its own schema;
// ownership stays ProjectService's to decide.)
//
// The question is asked with the caller's own identity, so ProjectService's ownership rules
// decide: a user's or admin's bearer token is passed on as it came; a SERVICE caller (the
// projects relay delivering an initial prompt) is represented by this service's own key, and
// acts for the project's owner.
//
// A user's question about their own project is answered from an OwnerCache (owner_cache.h)
// while ProjectService's last answer is fresh: a project's owner never changes, and this saves
// a call to ProjectService on almost every read. A service told of a project's deletion calls
// ForgetProject.
//
//   ProjectsClient projects(MakeChannel(projects_addr), api_key, OwnerCacheOptionsFrom(config));
//   absl::StatusOr<std::string> owner = projects.ProjectOwner(call, project_id);

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/rpc.h"
#include "qai/projects/v1/projects.grpc.pb.h"
#include "services/projects/client/owner_cache.h"

namespace qai::projects {

class ProjectsClient {
 public:
  ProjectsClient(std::shared_ptr<grpc::Channel> channel, std::string api_key,
                 OwnerCacheOptions cache = {}, absl::Duration timeout = absl::Seconds(5));

  // ProjectOwner: the owner of the project, when `call`'s caller may see it. NOT_FOUND when it
  // is unknown, deleted or someone else's; UNAVAILABLE when ProjectService cannot answer. A
  // USER asking about a project the cache holds as theirs is answered without a call.
  [[nodiscard]] absl::StatusOr<std::string> ProjectOwner(const common::CallContext& call,
                                                         const std::string& project_id) const;
  // GetProject: the project itself (its names), when the caller may see it; always asked of
  // ProjectService (names change).
  [[nodiscard]] absl::StatusOr<projects::v1::Project> GetProject(
      const common::CallContext& call, const std::string& project_id) const;

  // ForgetProject: the project was deleted (this service was told of its purge): the cache's
  // answer goes.
  void ForgetProject(const std::string& project_id) const { cache_->Forget(project_id); }

 private:
  // AskOwner: ProjectService's answer.
  absl::StatusOr<std::string> AskOwner(const common::CallContext& call,
                                       const std::string& project_id) const;

  std::unique_ptr<projects::v1::ProjectService::Stub> stub_;
  const std::string api_key_;
  const std::unique_ptr<OwnerCache> cache_;
  const absl::Duration timeout_;
};

}  // namespace qai::projects
