#include "services/projects/effects.h"

#include "common/client.h"
#include "qai/messages/v1/messages.grpc.pb.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"

namespace qai::projects {

std::string FirstPromptPayload(const std::string& project_id, const std::string& prompt,
                               const std::string& owner) {
  messages::v1::CreateMessageRequest req;
  req.set_project_id(project_id);
  req.set_content(prompt);
  req.set_owner(owner);
  return req.SerializeAsString();
}

std::string ForkFirstMessagePayload(const std::string& project_id, const std::string& content,
                                    const std::string& owner, const std::string& source,
                                    int version) {
  messages::v1::CreateMessageRequest req;
  req.set_project_id(project_id);
  req.set_content(content);
  req.set_owner(owner);
  req.mutable_fork_of()->set_project_id(source);
  req.mutable_fork_of()->set_version(version);
  return req.SerializeAsString();
}

std::string PurgeMessagesPayload(const std::string& project_id) {
  messages::v1::PurgeProjectMessagesRequest req;
  req.set_project_id(project_id);
  return req.SerializeAsString();
}

std::string CancelRunsPayload(const std::string& project_id) {
  orchestrator::v1::CancelProjectRunsRequest req;
  req.set_project_id(project_id);
  req.set_purge(true);  // its previews go with it
  return req.SerializeAsString();
}

std::map<std::string, common::OutboxRelay::Deliverer> MakeDeliverers(
    const DownstreamTargets& targets) {
  using messages::v1::MessageService;
  using orchestrator::v1::AgentOrchestrator;
  auto messages = std::shared_ptr<MessageService::Stub>(
      MessageService::NewStub(common::MakeChannel(targets.messages_addr, targets.limits)));
  auto orchestrator = std::shared_ptr<AgentOrchestrator::Stub>(
      AgentOrchestrator::NewStub(common::MakeChannel(targets.orchestrator_addr, targets.limits)));

  std::map<std::string, common::OutboxRelay::Deliverer> out;
  out[kTopicCreateMessage] = common::UnaryDeliverer(
      messages, &MessageService::Stub::CreateMessage, targets.api_key,
      // The receiver deduplicates on this id: a redelivery returns the first message.
      [](const common::OutboxRow& row, messages::v1::CreateMessageRequest& req) {
        req.set_request_id(row.id);
      });
  // Purging and cancelling are idempotent by nature: a redelivery changes nothing.
  out[kTopicPurgeMessages] = common::UnaryDeliverer(
      messages, &MessageService::Stub::PurgeProjectMessages, targets.api_key);
  out[kTopicCancelRuns] = common::UnaryDeliverer(
      orchestrator, &AgentOrchestrator::Stub::CancelProjectRuns, targets.api_key);
  return out;
}

}  // namespace qai::projects
