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
//   ProjectsClient projects(MakeChannel(projects_addr), api_key);
//   absl::StatusOr<std::string> owner = projects.ProjectOwner(call, project_id);

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/rpc.h"
#include "qai/projects/v1/projects.grpc.pb.h"

namespace qai::projects {

class ProjectsClient {
 public:
  ProjectsClient(std::shared_ptr<grpc::Channel> channel, std::string api_key,
                 absl::Duration timeout = absl::Seconds(5));

  // ProjectOwner: the owner of the project, when `call`'s caller may see it. NOT_FOUND when it
  // is unknown, deleted or someone else's; UNAVAILABLE when ProjectService cannot answer.
  [[nodiscard]] absl::StatusOr<std::string> ProjectOwner(const common::CallContext& call,
                                                         const std::string& project_id) const;
  // GetProject: the project itself (its names), as ProjectOwner decides whether it is seen.
  [[nodiscard]] absl::StatusOr<projects::v1::Project> GetProject(
      const common::CallContext& call, const std::string& project_id) const;

 private:
  std::unique_ptr<projects::v1::ProjectService::Stub> stub_;
  const std::string api_key_;
  const absl::Duration timeout_;
};

}  // namespace qai::projects
