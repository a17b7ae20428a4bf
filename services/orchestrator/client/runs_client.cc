#include "services/orchestrator/client/runs_client.h"

#include <algorithm>
#include <utility>

#include "common/client.h"
#include "common/status.h"
#include "common/status_macros.h"

namespace qai::orchestrator {
namespace {

v1::CountActiveRunsRequest CountRequest(const std::string& project_id, const std::string& author) {
  v1::CountActiveRunsRequest req;
  req.set_project_id(project_id);
  req.set_author(author);
  return req;
}

ActiveRuns FromResponse(const v1::CountActiveRunsResponse& resp) {
  return ActiveRuns{.project = resp.project_active(), .principal = resp.principal_active()};
}

}  // namespace

RunsClient::RunsClient(std::shared_ptr<grpc::Channel> channel, std::string api_key,
                       absl::Duration timeout)
    : stub_(v1::AgentOrchestrator::NewStub(std::move(channel))),
      api_key_(std::move(api_key)),
      timeout_(timeout) {}

absl::StatusOr<ActiveRuns> RunsClient::CountActive(const common::CallContext& call,
                                                   const std::string& project_id,
                                                   const std::string& author) const {
  grpc::ClientContext ctx;
  common::PrepareServiceCall(ctx, api_key_, call.request_id,
                             std::min(timeout_, call.deadline - absl::Now()));
  v1::CountActiveRunsResponse resp;
  QAI_RETURN_IF_ERROR(common::FromGrpcStatus(
      stub_->CountActiveRuns(&ctx, CountRequest(project_id, author), &resp)));
  return FromResponse(resp);
}

void RunsClient::CountActiveAsync(const common::CallContext& call, const std::string& project_id,
                                  const std::string& author,
                                  std::function<void(absl::StatusOr<ActiveRuns>)> done) const {
  struct Pending {
    grpc::ClientContext ctx;
    v1::CountActiveRunsRequest req;
    v1::CountActiveRunsResponse resp;
  };
  auto pending = std::make_shared<Pending>();
  common::PrepareServiceCall(pending->ctx, api_key_, call.request_id,
                             std::min(timeout_, call.deadline - absl::Now()));
  pending->req = CountRequest(project_id, author);
  stub_->async()->CountActiveRuns(&pending->ctx, &pending->req, &pending->resp,
                                  [pending, done = std::move(done)](grpc::Status status) {
                                    if (!status.ok()) return done(common::FromGrpcStatus(status));
                                    done(FromResponse(pending->resp));
                                  });
}

void RunsClient::VersionExistsAsync(const common::CallContext& call, const std::string& project_id,
                                    int number, std::function<void(absl::Status)> done) const {
  struct Pending {
    grpc::ClientContext ctx;
    v1::GetVersionRequest req;
    v1::Version resp;
  };
  auto pending = std::make_shared<Pending>();
  // Its listing of files is read too; a few milliseconds at most, within the timeout.
  common::PrepareServiceCall(pending->ctx, api_key_, call.request_id,
                             std::min(timeout_ * 5, call.deadline - absl::Now()));
  pending->req.set_project_id(project_id);
  pending->req.set_number(number);
  stub_->async()->GetVersion(&pending->ctx, &pending->req, &pending->resp,
                             [pending, done = std::move(done)](grpc::Status status) {
                               done(common::FromGrpcStatus(status));
                             });
}

}  // namespace qai::orchestrator
