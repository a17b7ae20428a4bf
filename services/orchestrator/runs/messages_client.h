#pragma once
// MessagesClient: what the orchestrator asks MessageService, as a SERVICE principal: a
// project's recent conversation (the agent's context) and the storing of a run's result.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "qai/messages/v1/messages.grpc.pb.h"
#include "services/orchestrator/model/model.h"

namespace qai::orchestrator {

class MessagesClient {
 public:
  MessagesClient(std::shared_ptr<grpc::Channel> channel, std::string api_key,
                 absl::Duration timeout = absl::Seconds(10));

  // History: the project's messages before `message_id` (the one that started the run), at
  // most `max_messages` of the newest, oldest first, as conversation turns. An ASSISTANT
  // message with a fragment brings its summary along, so the model knows what exists.
  [[nodiscard]] absl::StatusOr<std::vector<ChatMessage>> History(const std::string& project_id,
                                                                 const std::string& message_id,
                                                                 size_t max_messages) const;

  // Record: RecordAgentResult (idempotent on the run id); returns the stored message's id.
  [[nodiscard]] absl::StatusOr<std::string> Record(
      const messages::v1::RecordAgentResultRequest& request) const;

 private:
  std::unique_ptr<messages::v1::MessageService::Stub> stub_;
  const std::string api_key_;
  const absl::Duration timeout_;
};

}  // namespace qai::orchestrator
