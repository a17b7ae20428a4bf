#include "services/orchestrator/store/effects.h"

#include "common/client.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "qai/messages/v1/messages.grpc.pb.h"
#include "qai/orchestrator/v1/orchestrator.pb.h"
#include "qai/projects/v1/projects.grpc.pb.h"
#include "qai/sandbox/v1/sandbox.grpc.pb.h"
#include "services/orchestrator/store/events.h"
#include "services/orchestrator/store/run_store.h"

namespace qai::orchestrator {

std::string ErrorResult(const std::string& run_id, const std::string& project_id) {
  messages::v1::RecordAgentResultRequest req;
  req.set_run_id(run_id);
  req.set_project_id(project_id);
  req.set_content(std::string(kErrorMessage));
  req.set_type(messages::v1::Message::TYPE_ERROR);
  return req.SerializeAsString();
}

std::string PurgeSandboxPayload(const std::string& project_id) {
  sandbox::v1::PurgeProjectRequest purge;
  purge.set_project_id(project_id);
  return purge.SerializeAsString();
}

std::map<std::string, common::OutboxRelay::Deliverer> MakeDeliverers(
    std::shared_ptr<grpc::Channel> messages_channel,
    std::shared_ptr<grpc::Channel> projects_channel, std::shared_ptr<grpc::Channel> sandbox_channel,
    const std::string& api_key, RunStore* store) {
  using messages::v1::MessageService;
  using projects::v1::ProjectService;
  auto messages =
      std::shared_ptr<MessageService::Stub>(MessageService::NewStub(std::move(messages_channel)));
  auto projects =
      std::shared_ptr<ProjectService::Stub>(ProjectService::NewStub(std::move(projects_channel)));
  auto sandbox_stub = std::shared_ptr<sandbox::v1::SandboxService::Stub>(
      sandbox::v1::SandboxService::NewStub(std::move(sandbox_channel)));
  std::map<std::string, common::OutboxRelay::Deliverer> out;
  out[kTopicRecordResult] = out[kTopicRecordErrorBefore] = common::UnaryDeliverer(
      messages, &MessageService::Stub::RecordAgentResult, api_key, nullptr,
      [store](const messages::v1::RecordAgentResultRequest& req,
              const messages::v1::Message& stored) {
        const messages::v1::Fragment& f = req.fragment();
        return store->ResultStored({.run_id = req.run_id(),
                                    .message_id = stored.id(),
                                    .sandbox_url = f.sandbox_url(),
                                    .title = f.title(),
                                    .succeeded_event = [&](int version) {
                                      return events::Succeeded(f.title(), req.content(),
                                                               f.summary(), f.sandbox_url(),
                                                               stored.id(), version);
                                    }});
      });
  out[kTopicRecordLatestRun] =
      common::UnaryDeliverer(projects, &ProjectService::Stub::RecordLatestRun, api_key);
  out[kTopicPurgeSandbox] = common::UnaryDeliverer(
      sandbox_stub, &sandbox::v1::SandboxService::Stub::PurgeProject, api_key);
  return out;
}

std::map<std::string, common::OutboxRelay::ParkedHandler> MakeParkedHandlers(RunStore* store) {
  std::map<std::string, common::OutboxRelay::ParkedHandler> out;
  out[kTopicRecordResult] = [store](common::DbConnection& conn, const common::OutboxRow& row,
                                    const absl::Status& why) {
    messages::v1::RecordAgentResultRequest req;
    if (!req.ParseFromString(row.payload)) return absl::OkStatus();  // nothing to end
    const std::string error = absl::StrCat("its result could not be stored: ", why.message());
    return store->ResultRefused(conn, req.run_id(), error, events::Failed(error));
  };
  return out;
}

std::map<std::string, common::OutboxRelay::BatchDeliverer> MakeBatchDeliverers(
    std::shared_ptr<grpc::Channel> projects, const std::string& api_key) {
  auto stub = std::shared_ptr<projects::v1::ProjectService::Stub>(
      projects::v1::ProjectService::NewStub(std::move(projects)));
  std::map<std::string, common::OutboxRelay::BatchDeliverer> out;
  out[kTopicRecordLatestRun] =
      [stub, api_key](const std::vector<common::OutboxRow>& rows) -> absl::Status {
    projects::v1::RecordLatestRunsRequest req;
    for (const common::OutboxRow& row : rows) {
      if (!req.add_runs()->ParseFromString(row.payload)) {
        return absl::InternalError(
            absl::StrCat("outbox row ", row.id, " has an unreadable payload"));
      }
    }
    grpc::ClientContext ctx;
    common::PrepareServiceCall(ctx, api_key, common::CurrentRequestId(), absl::Seconds(10));
    google::protobuf::Empty empty;
    return common::FromGrpcStatus(stub->RecordLatestRuns(&ctx, req, &empty));
  };
  return out;
}

std::string LatestRunNews(const RunStateChange& change) {
  projects::v1::RecordLatestRunRequest req;
  req.set_project_id(change.project_id);
  req.mutable_run()->set_id(change.run_id);
  req.mutable_run()->set_state(v1::Run::State_Name(static_cast<v1::Run::State>(change.state)));
  common::SetTimestamp(change.run_create_time, req.mutable_run_create_time());
  req.set_sequence(change.sequence);
  return req.SerializeAsString();
}

}  // namespace qai::orchestrator
