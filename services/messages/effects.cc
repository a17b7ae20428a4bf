#include "services/messages/effects.h"

#include "common/client.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"

namespace qai::messages {

std::string StartRunPayload(const std::string& project_id, const std::string& message_id,
                            const std::string& prompt, const std::string& author,
                            const orchestrator::RequestedRunSettings& settings,
                            const messages::v1::ForkOf* fork) {
  orchestrator::v1::StartRunRequest start;
  start.set_project_id(project_id);
  start.set_message_id(message_id);
  start.set_prompt(prompt);
  start.set_author(author);
  start.set_max_iterations(settings.max_iterations);
  start.set_model(std::string(settings.model));
  if (settings.timeout != nullptr) *start.mutable_timeout() = *settings.timeout;
  if (fork != nullptr) {
    start.set_restore_project_id(fork->project_id());
    start.set_restore_version(fork->version());
  }
  return start.SerializeAsString();
}

std::map<std::string, common::OutboxRelay::Deliverer> MakeDeliverers(
    std::shared_ptr<grpc::Channel> orchestrator_channel, const std::string& api_key,
    MessageStore* store) {
  using orchestrator::v1::AgentOrchestrator;
  auto orchestrator = std::shared_ptr<AgentOrchestrator::Stub>(
      AgentOrchestrator::NewStub(std::move(orchestrator_channel)));
  std::map<std::string, common::OutboxRelay::Deliverer> out;
  out[kTopicStartRun] = common::UnaryDeliverer(
      orchestrator, &AgentOrchestrator::Stub::StartRun, api_key,
      // StartRun is idempotent on the message id; the row id makes the request id stable too.
      [](const common::OutboxRow& row, orchestrator::v1::StartRunRequest& req) {
        req.set_request_id(row.id);
      },
      [store](const orchestrator::v1::StartRunRequest& req,
              const orchestrator::v1::Run& run) -> absl::Status {
        if (run.id().empty()) return absl::OkStatus();
        return store->SetRunId(req.message_id(), run.id());
      });
  return out;
}

std::map<std::string, common::OutboxRelay::ParkedHandler> MakeParkedHandlers() {
  std::map<std::string, common::OutboxRelay::ParkedHandler> out;
  out[kTopicStartRun] = [](common::DbConnection& conn, const common::OutboxRow& row,
                           const absl::Status& why) {
    orchestrator::v1::StartRunRequest req;
    if (!req.ParseFromString(row.payload)) return absl::OkStatus();  // not ours to explain
    return RecordPromptNotRun(conn, row.id, req.message_id(), std::string(why.message()));
  };
  return out;
}

}  // namespace qai::messages
