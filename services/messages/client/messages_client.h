#pragma once
// MessagesClient: what another service (the orchestrator) asks MessageService, as a SERVICE
// principal (x-api-key): a project's conversation before a message (an agent's context). A
// run's result goes the other way through the orchestrator's outbox (its store/effects.h).
//
//   MessagesClient messages(common::MakeChannel(messages_addr), api_key);
//   absl::StatusOr<std::vector<v1::Message>> before = messages.Before(project_id, message_id, 20);

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "qai/messages/v1/messages.grpc.pb.h"

namespace qai::messages {

// What a fragment may carry (RecordAgentResult refuses more): its files, and their contents in
// all. A caller with more leaves the files out (the version has them).
inline constexpr size_t kMaxFragmentFiles = 1000;
inline constexpr size_t kMaxFragmentFilesBytes = 3 << 20;

class MessagesClient {
 public:
  MessagesClient(std::shared_ptr<grpc::Channel> channel, std::string api_key,
                 absl::Duration timeout = absl::Seconds(10));

  // Before: the project's messages before `message_id`, at most `max_messages` of the newest,
  // oldest first, without their fragments' files (VIEW_BASIC). NOT_FOUND when `message_id` is
  // not in the project (deleted meanwhile).
  [[nodiscard]] absl::StatusOr<std::vector<v1::Message>> Before(const std::string& project_id,
                                                                const std::string& message_id,
                                                                size_t max_messages) const;

 private:
  std::unique_ptr<v1::MessageService::Stub> stub_;
  const std::string api_key_;
  const absl::Duration timeout_;
};

}  // namespace qai::messages
