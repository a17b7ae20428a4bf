#include "services/messages/runs_client.h"

#include <algorithm>

#include "common/client.h"
#include "common/status.h"
#include "common/status_macros.h"

namespace qai::messages {

RunsClient::RunsClient(std::shared_ptr<grpc::Channel> channel, std::string api_key,
                       absl::Duration timeout)
    : stub_(orchestrator::v1::AgentOrchestrator::NewStub(std::move(channel))),
      api_key_(std::move(api_key)),
      timeout_(timeout) {}

absl::StatusOr<common::ActiveRuns> RunsClient::CountActive(const common::CallContext& call,
                                                           const std::string& project_id,
                                                           const std::string& author) const {
  grpc::ClientContext ctx;
  common::PrepareServiceCall(ctx, api_key_, call.request_id,
                             std::min(timeout_, call.deadline - absl::Now()));
  orchestrator::v1::CountActiveRunsRequest req;
  req.set_project_id(project_id);
  req.set_author(author);
  orchestrator::v1::CountActiveRunsResponse resp;
  QAI_RETURN_IF_ERROR(common::FromGrpcStatus(stub_->CountActiveRuns(&ctx, req, &resp)));
  return common::ActiveRuns{.project = resp.project_active(), .principal = resp.principal_active()};
}

}  // namespace qai::messages
