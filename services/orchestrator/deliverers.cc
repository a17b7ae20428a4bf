#include "services/orchestrator/deliverers.h"

#include "common/client.h"
#include "qai/messages/v1/messages.grpc.pb.h"

namespace qai::orchestrator {

std::map<std::string, common::OutboxRelay::Deliverer> MakeDeliverers(std::shared_ptr<grpc::Channel> messages_channel,
                                                                     const std::string& api_key, RunStore* store) {
  using messages::v1::MessageService;
  auto messages = std::shared_ptr<MessageService::Stub>(MessageService::NewStub(std::move(messages_channel)));
  std::map<std::string, common::OutboxRelay::Deliverer> out;
  out[kTopicRecordError] = common::UnaryDeliverer(
      messages, &MessageService::Stub::RecordAgentResult, api_key, nullptr,
      [store](const messages::v1::RecordAgentResultRequest& req, const messages::v1::Message& stored) {
        return store->SetResultMessage(req.run_id(), stored.id());
      });
  return out;
}

}  // namespace qai::orchestrator
